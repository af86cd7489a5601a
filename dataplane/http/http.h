/* HTTP/1.1 server connections over the network backend: parsing, keep-alive, pipelining
 * with responses in request order, bodies, 100-continue, timeouts and error statuses. */
#ifndef DURO_HTTP_HTTP_H
#define DURO_HTTP_HTTP_H

#include "hist.h"
#include "http-t.h"

/* Called on the connection's core with a complete request. The handler owns the exchange
 * until it calls http_respond (from any core), exactly once. */
typedef void http_handler_fn(struct core *c, struct http_exchange *ex);

/* Sets up this core's HTTP state over the backend; returns 0 or a negative errno. */
int http_core_init(struct core *c, const struct http_config *cfg, const struct net_backend *nb,
		   const struct net_config *ncfg, http_handler_fn *handler);
void http_core_fini(struct core *c);

/* Stops accepting and asks every connection to close after its in-flight requests. */
void http_drain(struct core *c);
/* Connections still open on this core. */
uint64_t http_open_conns(struct core *c);
const struct http_counters *http_counters(struct core *c);
/* Time from a request's first byte to its response being ready, per response. */
const struct hist *http_latency(struct core *c);
const struct net_counters *http_net_counters(struct core *c);
/* The backend this core's connections run on. */
const struct net_backend *http_backend(struct core *c);

/* Response building, on whichever core holds the exchange. Status first, then headers,
 * then body; each returns 0 or -ENOMEM (then the response becomes a 500). */
void http_resp_status(struct http_exchange *ex, int status);
int http_resp_header(struct http_exchange *ex, const char *name, size_t nlen, const char *value,
		     size_t vlen);
int http_resp_body(struct http_exchange *ex, const void *data, size_t len);
/* Forgets headers and body set so far (a handler failed after writing some). */
void http_resp_reset(struct http_exchange *ex);

/* An exchange made inside duro, in memory its maker owns (struct http_exchange first):
 * no connection; http_respond hands it to `answer`. internal_free frees what the response
 * spilled to the heap; the maker then frees the exchange. */
void http_exchange_internal_init(struct http_exchange *ex, unsigned home_core,
				 http_answer_fn *answer);
void http_exchange_internal_free(struct http_exchange *ex);

/* Hands the finished response back to the connection's core: `c` is the calling core. */
void http_respond(struct core *c, struct http_exchange *ex);
/* Replaces whatever response was built with a plain-text one (text plus a newline). */
void http_resp_error(struct http_exchange *ex, int status, const char *text);
/* Shortcut: http_resp_error, then http_respond. */
void http_respond_error(struct core *c, struct http_exchange *ex, int status, const char *text);

const char *http_reason(int status);

#endif
