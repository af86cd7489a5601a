/* HTTP/1.1 client connections (http_client.c): duro's own outbound requests over the
 * network backend's outbound connections, with a keep-alive pool per core, timeouts and
 * a cap on what an answer may hold. The answer is written into an http_exchange's
 * response parts (status, header lines, body), the same place a handler writes its own. */
#ifndef DURO_HTTP_HTTP_CLIENT_H
#define DURO_HTTP_HTTP_CLIENT_H

#include "http-t.h"
#include "timer.h"

struct http_client_config {
	unsigned connect_timeout_ms; /* a connection not made in time fails the request */
	unsigned idle_timeout_ms;    /* a pooled connection unused this long is closed */
	unsigned max_idle_per_core;  /* pooled connections per core; the oldest go first */
	size_t max_head_bytes;       /* of an answer's head */
};

struct http_client_counters {
	uint64_t requests, responses, connects, connect_failures, reused, timeouts, too_large;
	uint64_t bad_responses, resets, retries;
	uint64_t idle; /* gauge: pooled connections */
};

/* One request. The caller fills the first part and keeps it, and everything it points
 * to, unchanged until done runs (exactly once, on this core, never from inside
 * http_client_fetch). */
struct http_fetch {
	struct net_dial dial;       /* where to, and TLS */
	const char *host;           /* the Host field's value */
	size_t host_len;
	const struct http_request *req; /* method, target (path and query), headers, body */
	struct http_exchange *out;  /* where the answer goes: http_resp_status/header/body */
	uint64_t max_response_bytes; /* of the body; more fails with -EFBIG */
	uint64_t deadline_ms;       /* core time by which it is answered, else -ETIMEDOUT */
	/* err 0: out holds the answer; else -ECONNREFUSED (and other connect errors),
	 * -ETIMEDOUT, -ECONNRESET (closed or reset before a whole answer; on a reused
	 * connection, before any byte of it, the request is first sent once more on a new
	 * connection if none of it had left or its method is idempotent), -EFBIG, -EPROTO (not
	 * HTTP/1.x, or a malformed head), -EOPNOTSUPP (TLS where the backend has none),
	 * -ENOMEM. */
	void (*done)(struct core *c, void *arg, int err);
	void *arg;
	/* Optional, for open-ended answers (event streams). on_head runs once the answer's
	 * status and fields are in out, before any byte of its body, and returns 1: the body
	 * goes to on_body as it arrives (decoded; neither collected in out nor bounded by
	 * max_response_bytes; the deadline no longer applies); 0: it is collected into out as
	 * usual; a negative errno: the request fails with it. on_body gets p[0..n) (the
	 * client's, valid during the call) and returns 0, or a negative errno that fails the
	 * request. done still ends the request (0: the body ended as framed, or at the close). */
	int (*on_head)(struct core *c, void *arg);
	int (*on_body)(struct core *c, void *arg, const char *p, size_t n);
	/* Pipelined: sent on this core's connection to the same place behind the requests
	 * already on it (up to HTTP_CLIENT_PIPE_MAX; past that one more connection is made),
	 * answered in order; its head and body are copied when it is sent. Not with on_head.
	 * When the connection fails, a request behind the one being answered is sent once more
	 * on a new connection if none of it had left or its method is idempotent (as a reused
	 * connection's failure above), else fails with -ECONNRESET. */
	uint8_t pipeline;
	/* The client's. */
	struct http_client_conn *conn;
	struct http_fetch *qnext;  /* behind it on a pipelined connection */
	uint64_t q_start;          /* where its bytes begin in the connection's output */
	uint8_t retried;
};

/* Requests in flight on one pipelined connection. */
#define HTTP_CLIENT_PIPE_MAX 64

/* Per-core set-up over the backend the core's connections use. Returns 0 or -ENOMEM. */
int http_client_core_init(struct core *c, const struct http_client_config *cfg,
			  const struct net_backend *nb);
/* Closes pooled connections and fails requests in flight with -ECANCELED. */
void http_client_core_fini(struct core *c);
/* Starts f (reusing a pooled connection to the same place when there is one). Returns 0:
 * done will run; or -EOPNOTSUPP (a backend without outbound connections), -ENOMEM, and
 * done will not run. */
int http_client_fetch(struct core *c, struct http_fetch *f);
/* Gives f up (its connection is closed, done does not run). Not from inside f's own
 * callbacks (on_head, on_body: fail those with an error instead). A no-op when f is not
 * in flight. */
void http_client_cancel(struct core *c, struct http_fetch *f);
const struct http_client_counters *http_client_counters(struct core *c);

#endif
