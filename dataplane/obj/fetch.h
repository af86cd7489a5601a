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

/* Per core: the HTTP client over the core's backend (none where the core has no network:
 * then every fetch fails with -EOPNOTSUPP). */
int fetch_core_init(struct core *c);
void fetch_core_fini(struct core *c);
/* call_events.fetch. */
void fetch_start(struct core *c, struct obj_call *call);

#endif
