/* A small etcd v3 client over its JSON gateway (POST /v3/... over plain HTTP/1.1), for the
 * cluster thread only: blocking calls bounded by a timeout per endpoint, failing over
 * along the endpoint list, and one streaming watch read without blocking. Never on a core. */
#ifndef DURO_CONTROL_ETCD_H
#define DURO_CONTROL_ETCD_H

#include "etcd_wire.h"
#include "http_parse.h"

#include <jansson.h>
#include <stdint.h>

#define ETCD_MAX_ENDPOINTS 8
#define ETCD_MAX_REPLY (64u << 20) /* a reply larger than this is refused (-EFBIG) */
#define ETCD_MAX_WATCH_LINE (16u << 20) /* one watch message */

struct etcd_endpoint {
	char host[128];
	char port[8];
	char text[160]; /* the URL as configured, for messages */
};

struct etcd_counters {
	uint64_t requests, failures, failovers, bad_replies, watch_messages, watch_bad;
};

struct etcd_client {
	struct etcd_endpoint ep[ETCD_MAX_ENDPOINTS];
	unsigned n, cur;       /* cur: the endpoint tried first (the last one that answered) */
	unsigned timeout_ms;
	char last_error[512];  /* what the last failed call met, for logs and status */
	struct etcd_counters ctr;
};

/* From "http://host:port" URLs (checked by the config). 0 or -EINVAL. */
int etcd_init(struct etcd_client *e, const char (*urls)[128], unsigned n, unsigned timeout_ms);

/* POSTs body (borrowed) to path ("/v3/kv/range") and parses the reply into *out (a new
 * reference the caller releases). Tries each endpoint once, starting at the current one.
 * Returns 0; -ETIMEDOUT, -EBADMSG (a broken reply) or another connect/read errno when no
 * endpoint answered; -EPROTO for an answer that is not HTTP 200 with a JSON object (the
 * gateway's error text in last_error): a working member said so, no other is tried. */
int etcd_call(struct etcd_client *e, const char *path, json_t *body, json_t **out);

/* A watch stream: one connection, its reply read as it comes. */
struct etcd_watch {
	int fd;
	char *buf;         /* the reply as etcd_http frames it (etcd_wire.h) */
	size_t len, cap;
	struct etcd_http http;
	uint64_t opened_ms;
};

/* Opens a watch with the create_request `req` (borrowed) on the first endpoint that takes
 * the connection. 0 (w->fd readable when messages come) or a negative errno. */
int etcd_watch_open(struct etcd_client *e, struct etcd_watch *w, json_t *req);
/* Reads what is there without blocking and calls fn with each whole message (borrowed).
 * Returns 0 (more may come), or a negative errno: the stream is over (-EPIPE at its end,
 * -EPROTO for a bad head or framing, -E2BIG for a message over ETCD_MAX_WATCH_LINE). */
int etcd_watch_read(struct etcd_client *e, struct etcd_watch *w,
		    void (*fn)(void *arg, json_t *msg), void *arg);
void etcd_watch_close(struct etcd_watch *w);

#endif
