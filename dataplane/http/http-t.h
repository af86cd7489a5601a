/* HTTP types shared with the layers above: the exchange (one request and its response)
 * that travels between the connection's core and the object's core, and the config. */
#ifndef DURO_HTTP_HTTP_T_H
#define DURO_HTTP_HTTP_T_H

#include "core-t.h"
#include "http_parse.h"
#include "list.h"
#include "net.h"

#include <stddef.h>
#include <stdint.h>

struct http_config {
	size_t max_head_bytes;       /* 431 above it; default 16 KiB */
	uint64_t max_body_bytes;     /* 413 above it; default 1 MiB */
	unsigned header_timeout_ms;  /* head not complete in time: 408 and close; default 10 s */
	/* A body must arrive within body_timeout_ms of its head, plus one second for every
	 * body_min_rate bytes received (0: no extension): else 408 and close. 20 s and
	 * 500 bytes/s by default (Apache's mod_reqtimeout): a byte every 2 s is cut, a large
	 * upload at a modest rate is not. */
	unsigned body_timeout_ms;
	unsigned body_min_rate;
	/* A connection whose queued responses take no bytes for this long is closed: the
	 * client stopped reading. Default 30 s. */
	unsigned send_timeout_ms;
	unsigned idle_timeout_ms;    /* keep-alive connection with nothing to do; default 60 s */
	unsigned max_pipeline;       /* requests in flight per connection before reading pauses */
	/* Composed, unsent responses per connection (each counted with its bookkeeping) before
	 * reading pauses; it resumes once half is sent. Default 1 MiB. */
	size_t max_output_bytes;
	unsigned shutdown_timeout_ms; /* on SIGTERM, how long in-flight requests may take */
};

/* A growable byte run with inline storage; spills to malloc when it outgrows it. */
struct http_vec {
	char *p;
	size_t len, cap;
	char *heap; /* non-NULL once spilled: freed with the exchange */
};

#define HTTP_HEAD_INLINE 384
#define HTTP_EXTRA_INLINE 256
#define HTTP_BODY_INLINE 512
#define HTTP_USER_BYTES 96

struct http_conn;
struct http_exchange;

/* Takes the answer of an exchange made inside duro (an object's call), on the core where
 * it was answered, instead of a connection. */
typedef void http_answer_fn(struct core *c, struct http_exchange *ex);

/* Hands a connection over to the layer above once its upgrade response is written:
 * `conn` with what the client sent after the request (rest, len), or conn NULL when the
 * exchange ended without a hand-over (another status, or the client left). */
typedef void http_takeover_fn(struct core *c, struct http_exchange *ex, struct net_conn *conn,
			      const char *rest, size_t len);

/* One request and its response. Allocated on the connection's (home) core from its pool and
 * freed there; lent to the object's core while it handles the request, and the response
 * parts it fills (and their malloc'd spill, if any) become the home core's to free. */
struct http_exchange {
	struct core_msg msg; /* first: carried by pointer over the rings */
	struct http_request req;
	struct buf *in;        /* reference on the bytes req points into */
	struct http_conn *conn;
	uint16_t home_core;
	uint8_t done;          /* response complete, ready to send in order */
	uint8_t close_after;   /* close the connection once this response is sent */
	uint8_t interim;       /* a 100 Continue, not a response */
	uint8_t stream;        /* an open-ended response (event stream) taken over when sent */
	/* Set by the handler, during its call on the home core, on a request it may turn into
	 * a WebSocket (status 101) or an event stream (stream = 1): reading stops until the
	 * response, and the function is called exactly once on the home core. */
	http_takeover_fn *takeover;
	http_answer_fn *answer; /* NULL for a request read from a connection */
	int status;
	struct http_vec head, extra, body;
	size_t sent; /* bytes of head+body already written */
	uint64_t t_start_ns;
	struct list_node conn_node; /* in the connection's FIFO, request order */
	/* Scratch for the layer above (routing result, object ID); opaque to http. */
	_Alignas(8) unsigned char user[HTTP_USER_BYTES];
	char head_inline[HTTP_HEAD_INLINE];
	char extra_inline[HTTP_EXTRA_INLINE];
	char body_inline[HTTP_BODY_INLINE];
};

/* All uint64_t: the control plane sums them word by word. */
struct http_counters {
	uint64_t requests, responses, status_class[6]; /* [2] = 2xx … [5] = 5xx */
	uint64_t bad_requests, head_too_large, body_too_large, timeouts_head, timeouts_idle;
	uint64_t conns_open, conns_total, pipeline_pauses, alloc_failures, takeovers;
	uint64_t timeouts_body;  /* 408: body_timeout_ms (or the body stalled idle_timeout_ms) */
	uint64_t timeouts_send;  /* closed: the client took no response bytes for send_timeout_ms */
	uint64_t output_pauses;  /* reading paused at max_output_bytes */
	uint64_t conns_evicted;  /* closed to make room near max_connections_per_core */
};

#endif
