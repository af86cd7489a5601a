/* Outbound HTTP from objects (fetch.c): duro_fetch, the destinations the config allows
 * (outbound.allow), and the per-core HTTP client a fetch runs on once its gate opens. */
#ifndef DURO_OBJ_FETCH_H
#define DURO_OBJ_FETCH_H

#include "call.h"
#include "obj-t.h"

/* One outbound.allow pattern, such as http://127.0.0.1:8080 (exactly there), a wildcard
 * first label in https with host "*.example.com", or any port with "localhost:*"; the
 * port defaults to the scheme's. */
struct obj_allow {
	uint8_t tls;
	uint8_t any_host;   /* "*" */
	uint8_t suffix;     /* "*.example.com": host is ".example.com" */
	uint16_t port;      /* 0: any */
	char host[OBJ_OUTBOUND_HOST_MAX];
};

/* Parses a pattern: 0, or -EINVAL with the reason in why (for the config's error). */
int obj_allow_parse(const char *pattern, struct obj_allow *out, const char **why);

/* fetch_resolve.c. Looks names[0..count) up now, then starts the thread that keeps them
 * resolved (cfg's resolve_interval_ms and hosts_file, kept until fetch_resolve_stop).
 * Returns 0; without a thread (logged) the names stay as resolved now. */
int fetch_resolve_start(const struct obj_outbound_config *cfg,
			const char (*names)[OBJ_OUTBOUND_HOST_MAX], unsigned count);
/* Stops the thread (after any lookup under way) and forgets the names. */
void fetch_resolve_stop(void);
/* host's address, when host is a name outbound.allow spells out, into
 * d's address with port: 0, or -EHOSTUNREACH (no such name, or it never resolved). Reads
 * what the resolver thread published, without a lock or a system call: for any core. */
int fetch_resolve(const char *host, uint16_t port, struct net_dial *d);
/* A connection to the address of host (a name or not) failed: the resolver looks the
 * names up again soon (at most once a second), without waiting for its interval. */
void fetch_resolve_failed(const char *host);

/* Where an outbound WebSocket goes (obj_outbound_target). */
struct obj_target {
	struct net_dial dial;             /* address, TLS; server_name points at name */
	char name[OBJ_OUTBOUND_HOST_MAX]; /* the host, for SNI and the certificate check */
	char host[OBJ_OUTBOUND_HOST_MAX + 8]; /* the Host field */
	char target[4096];                /* path and query, "/" when none */
};
/* Checks url against outbound.allow (refused and counted like a fetch: nothing is sent)
 * and resolves it as duro_fetch does; `ws`: a ws:// or wss:// URL, else http(s)://.
 * Returns 0 with t filled, -EINVAL (malformed, or the other family of scheme), -EACCES
 * (not allowed), -EHOSTUNREACH (a name that never resolved), -EOPNOTSUPP (a core
 * without outbound connections). For namespace ns (counters, logs). A pattern names a
 * destination, not a protocol: http and ws patterns allow the same places, as https and
 * wss do (a WebSocket begins as an HTTP request). */
int obj_outbound_target(struct core *c, unsigned ns, const char *url, int ws,
			struct obj_target *t);

/* Per core: the HTTP client over the core's backend (none where the core has no network:
 * then every fetch fails with -EOPNOTSUPP). */
int fetch_core_init(struct core *c);
void fetch_core_fini(struct core *c);
/* call_events.fetch. */
void fetch_start(struct core *c, struct obj_call *call);

#endif
