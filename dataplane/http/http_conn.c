/* HTTP/1.1 server connections: bytes in from the backend, requests out to the handler,
 * responses back in request order. One struct http_conn per connection, on its core.
 *
 *   in buffer:  [ dispatched requests ... | request being read | free ]
 *               0                  parsed ^                len ^   cap ^
 *
 * Dispatched requests point into the buffer and hold a reference on it; when the buffer
 * must grow or is all consumed, the connection takes a fresh one and the old one lives
 * until its last exchange is released. Only the partial request at the tail is copied.
 *
 * What a client can make the server hold is bounded: requests in handlers (max_pipeline)
 * and composed responses not yet sent (max_output_bytes) pause reading, so TCP pushes
 * back; a head, a body, and a stalled reader each have a deadline; and near the
 * connection cap the connection that has gone longest without progress makes room. */
#include "http.h"
#include "base_assert.h"
#include "clock.h"
#include "core.h"
#include "log.h"
#include "pool.h"
#include "timer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* At a drain, a connection that has said nothing yet but was taken this recently is kept
 * for its first request (likely on its way), which is answered and closes it. */
#define HTTP_DRAIN_FIRST_REQUEST_MS 1000

/* RS_UPGRADE: an upgrade request waits for its response; bytes after it are kept unread
 * for whoever takes the connection over. */
enum read_state { RS_HEAD, RS_BODY_CL, RS_BODY_CHUNKED, RS_STOPPED, RS_UPGRADE };

struct http_conn {
	struct net_conn *nc; /* NULL once the backend reported it closed */
	struct buf *in;
	size_t parsed;
	enum read_state rs;
	struct http_exchange *cur; /* head parsed, body being read */
	size_t head_len;
	struct http_chunked ch;
	size_t ch_src, ch_dst; /* relative to parsed */
	struct list_node fifo; /* exchanges in request order */
	unsigned nexchanges;   /* in fifo */
	unsigned undone;       /* dispatched and not yet answered */
	uint64_t head_started_ms, last_rx_ms;
	uint64_t body_started_ms; /* the body's clock: its head parsed, or reading resumed */
	uint64_t rx_bytes, body_rx_base; /* bytes received in all, and when the body clock started */
	size_t out_bytes;     /* composed responses not yet sent, each with sizeof(exchange) */
	uint64_t last_tx_ms;  /* output last went out, or became sendable */
	uint64_t progress_ms; /* last finished a request or sent bytes: its place in h->all */
	struct timer timer;
	uint8_t paused, peer_eof, draining;
	uint8_t paused_for_output; /* the pause is (now) the output cap's, counted once */
	uint8_t closing; /* aborted by us (evicted, stalled): not a candidate again */
	uint8_t spoke; /* a byte has arrived */
	struct list_node core_node;
};

struct http_core {
	const struct http_config *cfg;
	const struct net_backend *nb;
	http_handler_fn *handler;
	struct pool conns, exchanges;
	/* Every open http_conn, least recent progress first (finished a request, or sent
	 * bytes): the front is where room is made when the connection table fills. */
	struct list_node all;
	uint64_t open;
	unsigned max_conns, reserve; /* evict once fewer than `reserve` slots are left */
	uint64_t evict_logged_ms, send_timeout_logged_ms; /* warnings at most once a second */
	int draining; /* a connection taken now (already under way at the drain) gets one answer */
	char date[40];
	size_t date_len;
	time_t date_sec;
	struct net_events ev;
	struct http_counters ctr;
	struct hist latency; /* request read to response ready, on the connection's core */
};

static void process_input(struct core *c, struct http_conn *hc);

/* Bytes of a request not yet complete are buffered. */
static int has_partial(const struct http_conn *hc)
{
	return hc->in && hc->in->len > hc->parsed;
}
static void conn_timer_update(struct core *c, struct http_conn *hc);
static void make_room(struct core *c, struct http_conn *newest);

/* ---- exchanges ---- */

static void vec_init(struct http_vec *v, char *inl, size_t cap)
{
	v->p = inl;
	v->len = 0;
	v->cap = cap;
	v->heap = NULL;
}

static int vec_append(struct http_vec *v, const void *data, size_t len)
{
	if (v->len + len > v->cap) {
		size_t ncap = v->cap * 2;
		while (ncap < v->len + len)
			ncap *= 2;
		char *n = malloc(ncap);
		if (!n)
			return -ENOMEM;
		memcpy(n, v->p, v->len);
		free(v->heap);
		v->heap = n;
		v->p = n;
		v->cap = ncap;
	}
	memcpy(v->p + v->len, data, len);
	v->len += len;
	return 0;
}

static struct http_exchange *exchange_new(struct core *c, struct http_conn *hc)
{
	struct http_core *h = c->http;
	struct http_exchange *ex = pool_get(&h->exchanges);
	if (!ex) {
		h->ctr.alloc_failures++;
		return NULL;
	}
	ex->msg.type = MSG_HTTP_RESPONSE;
	ex->in = NULL;
	ex->conn = hc;
	ex->home_core = (uint16_t)c->index;
	ex->done = ex->close_after = ex->interim = ex->stream = 0;
	ex->takeover = NULL;
	ex->answer = NULL;
	ex->status = 0;
	ex->sent = 0;
	ex->t_start_ns = c->now_ns;
	vec_init(&ex->head, ex->head_inline, sizeof(ex->head_inline));
	vec_init(&ex->extra, ex->extra_inline, sizeof(ex->extra_inline));
	vec_init(&ex->body, ex->body_inline, sizeof(ex->body_inline));
	ex->conn_node.next = ex->conn_node.prev = NULL;
	return ex;
}

/* The response hands the connection over (a 101, or an event stream's head). */
static int is_takeover(const struct http_exchange *ex)
{
	return ex->takeover && (ex->status == 101 || ex->stream);
}

static void exchange_free(struct core *c, struct http_exchange *ex)
{
	DURO_ASSERT(ex->home_core == c->index);
	if (ex->takeover) {
		http_takeover_fn *fn = ex->takeover;
		ex->takeover = NULL;
		fn(c, ex, NULL, NULL, 0);
	}
	if (ex->in)
		buf_unref(&c->bufs, ex->in);
	free(ex->head.heap);
	free(ex->extra.heap);
	free(ex->body.heap);
	pool_put(&c->http->exchanges, ex);
}

static void conn_free(struct core *c, struct http_conn *hc)
{
	struct http_core *h = c->http;
	DURO_ASSERT(!hc->nc && hc->nexchanges == 0);
	if (hc->cur)
		exchange_free(c, hc->cur);
	if (hc->in)
		buf_unref(&c->bufs, hc->in);
	timer_cancel(&hc->timer);
	list_del(&hc->core_node);
	h->open--;
	h->ctr.conns_open = h->open;
	pool_put(&h->conns, hc);
}

static int reading_body(const struct http_conn *hc)
{
	return hc->rs == RS_BODY_CL || hc->rs == RS_BODY_CHUNKED;
}

static void body_clock_start(struct core *c, struct http_conn *hc)
{
	hc->body_started_ms = c->now_ms;
	hc->body_rx_base = hc->rx_bytes;
}

/* Moves the connection to the back of the eviction order: it just made progress. */
static void conn_progress(struct core *c, struct http_conn *hc)
{
	hc->progress_ms = c->now_ms;
	list_del(&hc->core_node);
	list_add_tail(&c->http->all, &hc->core_node);
}

/* Whether a pause stays for the output cap: the requests were answered (below
 * max_pipeline) but more than half of max_output_bytes is unsent. A pause the pipelining
 * cap began is the output cap's from here, counted once. */
static int paused_by_output(struct core *c, struct http_conn *hc)
{
	const struct http_config *cfg = c->http->cfg;
	if (!hc->paused || hc->undone >= cfg->max_pipeline || hc->out_bytes <= cfg->max_output_bytes / 2)
		return 0;
	if (!hc->paused_for_output) {
		hc->paused_for_output = 1;
		c->http->ctr.output_pauses++;
	}
	return 1;
}

/* Resumes reading paused by max_pipeline or max_output_bytes once both allow it: the
 * output only when half of it is sent, so a slow reader does not flip it per segment. */
static void maybe_resume(struct core *c, struct http_conn *hc)
{
	const struct http_config *cfg = c->http->cfg;
	if (!hc->paused || !hc->nc || hc->undone >= cfg->max_pipeline)
		return;
	if (paused_by_output(c, hc))
		return;
	hc->paused = 0;
	hc->paused_for_output = 0;
	/* The wait was ours, not the client's: a head or body under way starts its clock again. */
	if (reading_body(hc))
		body_clock_start(c, hc);
	else if (hc->rs == RS_HEAD && hc->head_started_ms)
		hc->head_started_ms = c->now_ms;
	c->http->nb->pause_read(c, hc->nc, 0);
	process_input(c, hc);
}

/* Unlinks a finished (sent or abandoned) exchange; may free the connection. */
static void exchange_release(struct core *c, struct http_conn *hc, struct http_exchange *ex)
{
	list_del(&ex->conn_node);
	hc->nexchanges--;
	exchange_free(c, ex);
	if (!hc->nc) {
		if (hc->nexchanges == 0)
			conn_free(c, hc);
		return;
	}
	maybe_resume(c, hc);
}

/* ---- responses ---- */

void http_resp_status(struct http_exchange *ex, int status) { ex->status = status; }

int http_resp_header(struct http_exchange *ex, const char *name, size_t nlen, const char *value,
		     size_t vlen)
{
	/* A CR or LF in a header from a class would split the response: refuse it. */
	if (memchr(name, '\r', nlen) || memchr(name, '\n', nlen) || memchr(value, '\r', vlen) ||
	    memchr(value, '\n', vlen) || memchr(name, ':', nlen) || nlen == 0)
		return -EINVAL;
	if (vec_append(&ex->extra, name, nlen) < 0 || vec_append(&ex->extra, ": ", 2) < 0 ||
	    vec_append(&ex->extra, value, vlen) < 0 || vec_append(&ex->extra, "\r\n", 2) < 0)
		return -ENOMEM;
	return 0;
}

int http_resp_body(struct http_exchange *ex, const void *data, size_t len)
{
	return vec_append(&ex->body, data, len);
}

void http_resp_reset(struct http_exchange *ex)
{
	ex->extra.len = 0;
	ex->body.len = 0;
}

const char *http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 417: return "Expectation Failed";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	case 507: return "Insufficient Storage";
	default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
	}
}

static void refresh_date(struct http_core *h)
{
	time_t now = time(NULL);
	if (now == h->date_sec)
		return;
	struct tm tm;
	gmtime_r(&now, &tm);
	h->date_len = strftime(h->date, sizeof(h->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	h->date_sec = now;
}

/* Writes the status line and header section, on the connection's core. */
static const char tls_headers[] = "Strict-Transport-Security: max-age=31536000\r\n"
			   "X-Content-Type-Options: nosniff\r\n";

static void compose_head(struct core *c, struct http_conn *hc, struct http_exchange *ex)
{
	struct http_core *h = c->http;
	if (ex->interim) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		ex->head.len = 0;
		if (vec_append(&ex->head, cont, sizeof(cont) - 1) < 0)
			ex->head.len = 0;
		return;
	}
	int takeover = is_takeover(ex);
	if ((ex->status < 200 && !(ex->status == 101 && takeover)) || ex->status > 999)
		ex->status = 500;
	if ((hc->draining || !ex->req.keep_alive) && !takeover)
		ex->close_after = 1;
	/* A 101 has no body; a stream's body runs until the connection closes. */
	int no_body = ex->status == 204 || ex->status == 304 || takeover;
	if (no_body)
		ex->body.len = 0;
	refresh_date(h);
	char line[256];
	int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\nDate: %.*s\r\nServer: duro\r\n",
			 ex->status, http_reason(ex->status), (int)h->date_len, h->date);
	int m = no_body ? 0
			: snprintf(line + n, sizeof(line) - (size_t)n, "Content-Length: %zu\r\n",
				   ex->body.len);
	ex->head.len = 0;
	if (vec_append(&ex->head, line, (size_t)(n + m)) < 0 ||
	    vec_append(&ex->head, ex->extra.p, ex->extra.len) < 0 ||
	    ((ex->close_after || ex->stream) &&
	     vec_append(&ex->head, "Connection: close\r\n", 19) < 0) ||
	    /* Over TLS: browsers are told to come back over TLS only (a year), and not to
	     * guess content types. */
	    (hc->nc->secure && vec_append(&ex->head, tls_headers, sizeof(tls_headers) - 1) < 0) ||
	    vec_append(&ex->head, "\r\n", 2) < 0) {
		/* Out of memory for a few hundred bytes: nothing sensible to send. */
		ex->head.len = 0;
		ex->body.len = 0;
		ex->close_after = 1;
	}
	/* HEAD: the header section describes the body, which is not sent. */
	if (ex->req.method_len == 4 && memcmp(ex->req.method, "HEAD", 4) == 0)
		ex->body.len = 0;
	h->ctr.responses++;
	h->ctr.status_class[ex->status / 100 <= 5 ? ex->status / 100 : 5]++;
}

static void finish_on_home(struct core *c, struct http_exchange *ex)
{
	struct http_conn *hc = ex->conn;
	DURO_ASSERT(!ex->done);
	ex->done = 1;
	if (!ex->interim)
		hc->undone--;
	if (!hc->nc) {
		/* The client is gone; nobody to send to. */
		exchange_release(c, hc, ex);
		return;
	}
	compose_head(c, hc, ex);
	hc->out_bytes += sizeof(*ex) + ex->head.len + ex->body.len;
	/* Answered while paused at max_pipeline: the pause may be the output cap's now, and
	 * is counted so even if nothing more is sent (a reader whose window stays shut). */
	paused_by_output(c, hc);
	/* Output becomes sendable when the first response in line is ready: the send clock
	 * starts then, not while an earlier request is still in its handler. */
	if (hc->fifo.next == &ex->conn_node)
		hc->last_tx_ms = c->now_ms;
	if (!ex->interim)
		hist_add(&c->http->latency, clock_now_ns() - ex->t_start_ns);
	if (ex->close_after) {
		hc->rs = RS_STOPPED;
	} else if (is_takeover(ex)) {
		hc->rs = RS_UPGRADE; /* nothing more is parsed: the bytes are the new owner's */
	} else if (ex->takeover && hc->rs == RS_UPGRADE) {
		/* An upgrade refused: back to HTTP with what the client sent meanwhile. */
		hc->rs = RS_HEAD;
		if (!hc->paused)
			c->http->nb->pause_read(c, hc->nc, 0);
		process_input(c, hc);
		if (!hc->nc)
			return;
	}
	c->http->nb->want_write(c, hc->nc);
	conn_timer_update(c, hc);
}

void http_exchange_internal_init(struct http_exchange *ex, unsigned home_core,
				 http_answer_fn *answer)
{
	ex->in = NULL;
	ex->conn = NULL;
	ex->home_core = (uint16_t)home_core;
	ex->done = ex->close_after = ex->interim = ex->stream = 0;
	ex->takeover = NULL;
	ex->answer = answer;
	ex->status = 0;
	ex->sent = 0;
	ex->t_start_ns = 0;
	vec_init(&ex->head, ex->head_inline, sizeof(ex->head_inline));
	vec_init(&ex->extra, ex->extra_inline, sizeof(ex->extra_inline));
	vec_init(&ex->body, ex->body_inline, sizeof(ex->body_inline));
	ex->conn_node.next = ex->conn_node.prev = NULL;
}

void http_exchange_internal_free(struct http_exchange *ex)
{
	free(ex->head.heap);
	free(ex->extra.heap);
	free(ex->body.heap);
	ex->head.heap = ex->extra.heap = ex->body.heap = NULL;
}

void http_respond(struct core *c, struct http_exchange *ex)
{
	if (ex->answer) {
		ex->answer(c, ex);
		return;
	}
	if (ex->home_core == c->index) {
		finish_on_home(c, ex);
		return;
	}
	ex->msg.type = MSG_HTTP_RESPONSE;
	core_send(c, ex->home_core, &ex->msg);
}

void http_resp_error(struct http_exchange *ex, int status, const char *text)
{
	http_resp_reset(ex);
	http_resp_status(ex, status);
	if (http_resp_header(ex, "Content-Type", 12, "text/plain; charset=utf-8", 25) < 0 ||
	    http_resp_body(ex, text, strlen(text)) < 0 || http_resp_body(ex, "\n", 1) < 0)
		http_resp_reset(ex);
}

void http_respond_error(struct core *c, struct http_exchange *ex, int status, const char *text)
{
	http_resp_error(ex, status, text);
	http_respond(c, ex);
}

static void on_response_msg(struct core *c, struct core_msg *m)
{
	finish_on_home(c, (struct http_exchange *)m);
}

/* ---- errors found while reading ---- */

static void conn_fail(struct core *c, struct http_conn *hc, int status, const char *why)
{
	struct http_core *h = c->http;
	if (status == 431)
		h->ctr.head_too_large++;
	else if (status == 413)
		h->ctr.body_too_large++;
	else if (status == 408 && reading_body(hc))
		h->ctr.timeouts_body++;
	else if (status == 408)
		h->ctr.timeouts_head++;
	else
		h->ctr.bad_requests++;
	log_debug("core %u conn %u: %d %s", c->index, hc->nc->id, status, why);
	hc->rs = RS_STOPPED;
	c->http->nb->pause_read(c, hc->nc, 1);
	struct http_exchange *ex = hc->cur;
	hc->cur = NULL;
	if (!ex)
		ex = exchange_new(c, hc);
	if (!ex) {
		c->http->nb->close(c, hc->nc, NET_CLOSE_ABORT);
		return;
	}
	/* The error answers the request being read; its parse may be partial. */
	ex->req.keep_alive = 0;
	ex->req.method = "GET";
	ex->req.method_len = 3;
	ex->close_after = 1;
	list_add_tail(&hc->fifo, &ex->conn_node);
	hc->nexchanges++;
	hc->undone++;
	http_respond_error(c, ex, status, why);
}

/* ---- reading ---- */

static void dispatch(struct core *c, struct http_conn *hc, struct http_exchange *ex, size_t total)
{
	struct http_core *h = c->http;
	ex->in = hc->in;
	buf_ref(hc->in);
	hc->parsed += total;
	hc->cur = NULL;
	hc->rs = RS_HEAD;
	if (!ex->req.keep_alive || hc->draining) {
		/* Nothing after this request is read: its response closes the connection. */
		hc->rs = RS_STOPPED;
	}
	list_add_tail(&hc->fifo, &ex->conn_node);
	hc->nexchanges++;
	hc->undone++;
	h->ctr.requests++;
	conn_progress(c, hc);
	h->handler(c, ex);
	if (ex->takeover && !ex->done && hc->nc && hc->rs != RS_STOPPED) {
		hc->rs = RS_UPGRADE;
		h->nb->pause_read(c, hc->nc, 1);
	}
}

/* Makes room for `more` bytes after what is unparsed; returns 0 or -ENOMEM. Requests
 * already dispatched keep the old buffer alive through their references. */
static int ensure_room(struct core *c, struct http_conn *hc, size_t more)
{
	struct buf *in = hc->in;
	if (!in) {
		hc->in = buf_new(&c->bufs, more > BUF_SMALL_SIZE ? more : BUF_SMALL_SIZE);
		hc->parsed = 0;
		return hc->in ? 0 : -ENOMEM;
	}
	if (in->cap - in->len >= more)
		return 0;
	size_t keep = in->len - hc->parsed;
	size_t need = keep + more;
	if (in->refs == 1 && need <= in->cap) {
		memmove(in->data, in->data + hc->parsed, keep);
	} else {
		size_t cap = in->cap;
		while (cap < need)
			cap *= 2;
		struct buf *nb = buf_new(&c->bufs, cap);
		if (!nb)
			return -ENOMEM;
		memcpy(nb->data, in->data + hc->parsed, keep);
		buf_unref(&c->bufs, in);
		hc->in = in = nb;
	}
	in->len = (uint32_t)keep;
	hc->parsed = 0;
	/* A request whose body is being read points into the old bytes: parse its head again
	 * in place. (A head still incomplete is parsed from scratch on the next bytes.) */
	if (hc->cur && (hc->rs == RS_BODY_CL || hc->rs == RS_BODY_CHUNKED)) {
		long r = http_parse_request(in->data, in->len, c->http->cfg->max_head_bytes,
					    &hc->cur->req);
		DURO_ASSERT(r == (long)hc->head_len);
	}
	return 0;
}

static void queue_continue(struct core *c, struct http_conn *hc)
{
	/* Only when nothing is ahead of it: a 100 must not overtake earlier responses. */
	if (hc->nexchanges)
		return;
	struct http_exchange *ex = exchange_new(c, hc);
	if (!ex)
		return; /* the client sends the body after its own timeout anyway */
	ex->interim = 1;
	list_add_tail(&hc->fifo, &ex->conn_node);
	hc->nexchanges++;
	finish_on_home(c, ex);
}

static void process_input(struct core *c, struct http_conn *hc)
{
	struct http_core *h = c->http;
	const struct http_config *cfg = h->cfg;
	while (hc->nc && hc->rs < RS_STOPPED && hc->in) {
		if (hc->undone >= cfg->max_pipeline || hc->out_bytes >= cfg->max_output_bytes) {
			if (!hc->paused) {
				hc->paused = 1;
				hc->paused_for_output = hc->undone < cfg->max_pipeline;
				if (hc->paused_for_output)
					h->ctr.output_pauses++;
				else
					h->ctr.pipeline_pauses++;
				h->nb->pause_read(c, hc->nc, 1);
			}
			break;
		}
		char *base = hc->in->data + hc->parsed;
		size_t avail = hc->in->len - hc->parsed;
		if (hc->rs == RS_HEAD) {
			if (avail == 0)
				break;
			if (!hc->head_started_ms)
				hc->head_started_ms = c->now_ms;
			if (!hc->cur && !(hc->cur = exchange_new(c, hc))) {
				h->nb->close(c, hc->nc, NET_CLOSE_ABORT);
				return;
			}
			struct http_request *req = &hc->cur->req;
			long r = http_parse_request(base, avail, cfg->max_head_bytes, req);
			if (r == 0)
				break;
			if (r < 0) {
				conn_fail(c, hc, (int)-r, http_reason((int)-r));
				return;
			}
			hc->head_started_ms = 0;
			hc->head_len = (size_t)r;
			if (req->content_length > 0 && (uint64_t)req->content_length > cfg->max_body_bytes) {
				conn_fail(c, hc, 413, "request body too large");
				return;
			}
			if (req->chunked) {
				memset(&hc->ch, 0, sizeof(hc->ch));
				hc->ch_src = hc->ch_dst = hc->head_len;
				hc->rs = RS_BODY_CHUNKED;
				body_clock_start(c, hc);
			} else if (req->content_length > 0) {
				hc->rs = RS_BODY_CL;
				body_clock_start(c, hc);
			} else {
				dispatch(c, hc, hc->cur, hc->head_len);
				continue;
			}
			if (req->expect_continue && avail == hc->head_len)
				queue_continue(c, hc);
			continue;
		}
		struct http_request *req = &hc->cur->req;
		if (hc->rs == RS_BODY_CL) {
			size_t total = hc->head_len + (size_t)req->content_length;
			if (avail < total) {
				if (ensure_room(c, hc, total - avail) < 0) {
					conn_fail(c, hc, 503, "out of memory for the request body");
					return;
				}
				break;
			}
			req->body = base + hc->head_len;
			req->body_len = (size_t)req->content_length;
			dispatch(c, hc, hc->cur, total);
			continue;
		}
		DURO_ASSERT(hc->rs == RS_BODY_CHUNKED);
		int r = http_chunked_decode(&hc->ch, base, avail, &hc->ch_src, &hc->ch_dst,
					    cfg->max_body_bytes, cfg->max_head_bytes);
		if (r < 0) {
			conn_fail(c, hc, -r, r == -413 ? "request body too large" : http_reason(-r));
			return;
		}
		if (r == 0) {
			/* Grow when full; decoded bytes have been compacted behind ch_dst already. */
			if (hc->in->len == hc->in->cap && ensure_room(c, hc, BUF_SMALL_SIZE) < 0) {
				conn_fail(c, hc, 503, "out of memory for the request body");
				return;
			}
			break;
		}
		req->body = base + hc->head_len;
		req->body_len = hc->ch_dst - hc->head_len;
		dispatch(c, hc, hc->cur, hc->ch_src);
	}
	/* All consumed: hand the buffer back rather than keep a copy's worth of memory idle. */
	if (hc->in && hc->parsed == hc->in->len) {
		buf_unref(&c->bufs, hc->in);
		hc->in = NULL;
		hc->parsed = 0;
	}
}

/* ---- backend events ---- */

static void *on_accept(struct core *c, struct net_conn *conn)
{
	struct http_core *h = c->http;
	struct http_conn *hc = pool_get(&h->conns);
	if (!hc)
		return NULL;
	memset(hc, 0, sizeof(*hc));
	hc->nc = conn;
	list_init(&hc->fifo);
	hc->rs = RS_HEAD;
	hc->last_rx_ms = c->now_ms;
	/* The header clock starts at accept: a client that connects and says nothing is on
	 * the same 10 s budget as one that says little. */
	hc->head_started_ms = c->now_ms;
	hc->progress_ms = c->now_ms;
	hc->draining = (uint8_t)h->draining;
	list_add_tail(&h->all, &hc->core_node);
	h->open++;
	h->ctr.conns_total++;
	h->ctr.conns_open = h->open;
	conn_timer_update(c, hc);
	make_room(c, hc);
	return hc;
}

static void on_data(struct core *c, struct net_conn *conn, const char *data, size_t len)
{
	struct http_conn *hc = conn->user;
	core_did_work(c);
	hc->last_rx_ms = c->now_ms;
	hc->rx_bytes += len;
	hc->spoke |= len > 0;
	if (len == 0) {
		/* Half-close: answer the complete requests, drop a partial one, then close. */
		hc->peer_eof = 1;
		hc->rs = RS_STOPPED;
		if (hc->nexchanges == 0)
			c->http->nb->close(c, conn, NET_CLOSE_GRACEFUL);
		return;
	}
	if (hc->rs == RS_STOPPED)
		return; /* bytes after a closing request are not read */
	if (ensure_room(c, hc, len) < 0) {
		conn_fail(c, hc, 503, "out of memory for the request");
		return;
	}
	memcpy(hc->in->data + hc->in->len, data, len);
	hc->in->len += (uint32_t)len;
	process_input(c, hc);
	if (hc->nc)
		conn_timer_update(c, hc);
}

static unsigned fill_output(struct core *c, struct net_conn *conn, struct iovec *iov, unsigned max)
{
	(void)c;
	struct http_conn *hc = conn->user;
	unsigned n = 0;
	for (struct list_node *p = hc->fifo.next; p != &hc->fifo && n + 2 <= max; p = p->next) {
		struct http_exchange *ex = LIST_CONTAINER(p, struct http_exchange, conn_node);
		if (!ex->done)
			break;
		size_t skip = ex->sent;
		if (skip < ex->head.len) {
			iov[n].iov_base = ex->head.p + skip;
			iov[n++].iov_len = ex->head.len - skip;
			skip = 0;
		} else {
			skip -= ex->head.len;
		}
		if (skip < ex->body.len) {
			iov[n].iov_base = ex->body.p + skip;
			iov[n++].iov_len = ex->body.len - skip;
		}
		if (ex->close_after || is_takeover(ex))
			break;
	}
	return n;
}

/* The upgrade response is written: the connection leaves HTTP. Requests before it were
 * answered and written first (responses go in order), and none was read after it. */
static void take_over(struct core *c, struct http_conn *hc, struct http_exchange *ex)
{
	struct net_conn *conn = hc->nc;
	DURO_ASSERT(hc->nexchanges == 1 && !hc->cur);
	http_takeover_fn *fn = ex->takeover;
	ex->takeover = NULL;
	c->http->ctr.takeovers++;
	const char *rest = hc->in ? hc->in->data + hc->parsed : NULL;
	size_t len = hc->in ? hc->in->len - hc->parsed : 0;
	int eof = hc->peer_eof;
	hc->nc = NULL;
	fn(c, ex, conn, rest, len);
	if (eof && conn->ev->on_data)
		conn->ev->on_data(c, conn, NULL, 0); /* the FIN seen meanwhile is the new owner's */
	list_del(&ex->conn_node);
	hc->nexchanges--;
	exchange_free(c, ex);
	conn_free(c, hc);
}

static void on_sent(struct core *c, struct net_conn *conn, size_t n)
{
	struct http_conn *hc = conn->user;
	if (n) {
		hc->last_tx_ms = c->now_ms;
		conn_progress(c, hc);
	}
	while (n && !list_empty(&hc->fifo)) {
		struct http_exchange *ex = LIST_CONTAINER(hc->fifo.next, struct http_exchange, conn_node);
		DURO_ASSERT(ex->done);
		size_t left = ex->head.len + ex->body.len - ex->sent;
		if (n < left) {
			ex->sent += n;
			DURO_ASSERT(hc->out_bytes >= n);
			hc->out_bytes -= n;
			maybe_resume(c, hc);
			if (hc->nc)
				conn_timer_update(c, hc);
			return;
		}
		n -= left;
		DURO_ASSERT(hc->out_bytes >= left + sizeof(*ex));
		hc->out_bytes -= left + sizeof(*ex);
		if (is_takeover(ex)) {
			take_over(c, hc, ex);
			return;
		}
		int close_after = ex->close_after;
		exchange_release(c, hc, ex);
		if (close_after) {
			c->http->nb->close(c, conn, NET_CLOSE_GRACEFUL);
			return;
		}
	}
	/* Some responses may have been sent whole while nothing else waits. */
	if (hc->nexchanges == 0 && (hc->peer_eof || hc->rs == RS_STOPPED))
		c->http->nb->close(c, conn, NET_CLOSE_GRACEFUL);
	else
		conn_timer_update(c, hc);
}

static void on_closed(struct core *c, struct net_conn *conn, int err)
{
	(void)err;
	struct http_conn *hc = conn->user;
	hc->nc = NULL;
	timer_cancel(&hc->timer);
	/* Answered but unsent responses can go now; unanswered ones come back later. */
	for (struct list_node *p = hc->fifo.next, *next; p != &hc->fifo; p = next) {
		next = p->next;
		struct http_exchange *ex = LIST_CONTAINER(p, struct http_exchange, conn_node);
		if (ex->done) {
			list_del(&ex->conn_node);
			hc->nexchanges--;
			exchange_free(c, ex);
		}
	}
	hc->out_bytes = 0;
	if (hc->nexchanges == 0)
		conn_free(c, hc);
}

/* ---- timers ---- */

enum deadline { DL_NONE, DL_HEAD, DL_BODY, DL_SEND, DL_IDLE };

/* The earliest deadline that applies to the connection now, and which one it is. */
static enum deadline next_deadline(struct core *c, const struct http_conn *hc, uint64_t *at)
{
	const struct http_config *cfg = c->http->cfg;
	enum deadline which = DL_NONE;
	uint64_t best = UINT64_MAX, t;
	if (hc->rs == RS_HEAD && hc->head_started_ms && !hc->paused) {
		best = hc->head_started_ms + cfg->header_timeout_ms;
		which = DL_HEAD;
	}
	/* The body's clock runs only while reading is not paused by us. A total deadline,
	 * not one between reads: a byte every few seconds must not hold the request open. */
	if (reading_body(hc) && !hc->paused) {
		t = hc->body_started_ms + cfg->body_timeout_ms;
		if (cfg->body_min_rate)
			t += (hc->rx_bytes - hc->body_rx_base) * 1000 / cfg->body_min_rate;
		if (hc->last_rx_ms + cfg->idle_timeout_ms < t)
			t = hc->last_rx_ms + cfg->idle_timeout_ms; /* and a body that stops */
		if (t < best) {
			best = t;
			which = DL_BODY;
		}
	}
	/* Output the client could take: the first response in line is ready. */
	if (!list_empty(&hc->fifo) &&
	    LIST_CONTAINER(hc->fifo.next, struct http_exchange, conn_node)->done) {
		t = hc->last_tx_ms + cfg->send_timeout_ms;
		if (t < best) {
			best = t;
			which = DL_SEND;
		}
	}
	if (which == DL_NONE && hc->undone == 0 && hc->nexchanges == 0 && !reading_body(hc)) {
		best = hc->last_rx_ms + cfg->idle_timeout_ms;
		which = DL_IDLE;
	}
	*at = best;
	return which;
}

/* Closes a connection now, dropping what it has queued; it is no candidate again. */
static void conn_abort(struct core *c, struct http_conn *hc)
{
	hc->closing = 1;
	c->http->nb->close(c, hc->nc, NET_CLOSE_ABORT);
}

static void conn_timer_fired(struct core *c, struct timer *t)
{
	struct http_conn *hc = LIST_CONTAINER(t, struct http_conn, timer);
	struct http_core *h = c->http;
	if (!hc->nc || hc->closing)
		return;
	if (hc->draining && !hc->spoke && hc->rs == RS_HEAD && hc->nexchanges == 0 &&
	    c->now_ms >= hc->head_started_ms + HTTP_DRAIN_FIRST_REQUEST_MS) {
		h->nb->close(c, hc->nc, NET_CLOSE_GRACEFUL); /* no first request came */
		return;
	}
	uint64_t at;
	enum deadline which = next_deadline(c, hc, &at);
	if (which == DL_NONE)
		return;
	if (c->now_ms < at) {
		conn_timer_update(c, hc);
		return;
	}
	switch (which) {
	case DL_HEAD:
		conn_fail(c, hc, 408, "request header not complete in time");
		return;
	case DL_BODY:
		conn_fail(c, hc, 408, "request body not complete in time");
		return;
	case DL_SEND:
		h->ctr.timeouts_send++;
		if (c->now_ms >= h->send_timeout_logged_ms + 1000) {
			h->send_timeout_logged_ms = c->now_ms;
			log_warn("core %u conn %u: the client took no response bytes for %u ms "
				 "(limits.send_timeout_ms); %zu bytes queued, closed (%llu so far)",
				 c->index, hc->nc->id, h->cfg->send_timeout_ms, hc->out_bytes,
				 (unsigned long long)h->ctr.timeouts_send);
		}
		conn_abort(c, hc);
		return;
	case DL_IDLE:
		h->ctr.timeouts_idle++;
		h->nb->close(c, hc->nc, has_partial(hc) ? NET_CLOSE_ABORT : NET_CLOSE_GRACEFUL);
		return;
	case DL_NONE:
		break;
	}
}

static void conn_timer_update(struct core *c, struct http_conn *hc)
{
	uint64_t deadline;
	if (next_deadline(c, hc, &deadline) == DL_NONE)
		return; /* waiting on handlers: their time is theirs */
	if (hc->draining && !hc->spoke && deadline > hc->head_started_ms + HTTP_DRAIN_FIRST_REQUEST_MS)
		deadline = hc->head_started_ms + HTTP_DRAIN_FIRST_REQUEST_MS;
	/* Armed earlier than needed is fine: the callback re-evaluates. Later is not. */
	if (!timer_armed(&hc->timer) || hc->timer.expires_ms > deadline)
		timer_arm(c, &hc->timer, deadline, conn_timer_fired);
}

/* ---- room for new clients ---- */

/* Candidates hold no request in a handler (closing one would lose its answer) and have
 * not been handed to another layer. */
static int evictable(const struct http_conn *hc)
{
	return hc->nc && !hc->closing && hc->undone == 0 && hc->rs != RS_UPGRADE;
}

static const char *conn_doing(const struct http_conn *hc)
{
	if (!list_empty(&hc->fifo))
		return "not reading its responses";
	if (reading_body(hc))
		return "sending a request body";
	return has_partial(hc) ? "sending a request head" : "idle";
}

/* Scanned from the front for a candidate on each accept near the cap: connections with
 * requests in handlers are skipped, and a front full of them refuses rather than scan on. */
#define EVICT_SCAN_MAX 64

/* Called on each accept. Once fewer than `reserve` connection slots are left on this
 * core, the connection that has gone longest without progress (finishing a request or
 * taking response bytes) is closed, so a new client is answered even when slow or idle
 * clients fill the table; nginx reuses idle keep-alive connections the same way, and slow
 * requests are how such an attack fills it. Connections of other layers (WebSockets) and
 * requests in handlers are never chosen: a table full of those refuses new clients. */
static void make_room(struct core *c, struct http_conn *newest)
{
	struct http_core *h = c->http;
	if (h->nb->counters(c)->active + h->reserve <= h->max_conns)
		return;
	unsigned scanned = 0;
	for (struct list_node *p = h->all.next; p != &h->all && scanned < EVICT_SCAN_MAX;
	     p = p->next, scanned++) {
		struct http_conn *hc = LIST_CONTAINER(p, struct http_conn, core_node);
		if (hc == newest)
			return;
		if (!evictable(hc))
			continue;
		h->ctr.conns_evicted++;
		if (c->now_ms >= h->evict_logged_ms + 1000) {
			h->evict_logged_ms = c->now_ms;
			log_warn("core %u: near limits.max_connections_per_core (%u): closed conn %u, "
				 "%s, no progress for %llu ms, to make room (%llu so far)",
				 c->index, h->max_conns, hc->nc->id, conn_doing(hc),
				 (unsigned long long)(c->now_ms - hc->progress_ms),
				 (unsigned long long)h->ctr.conns_evicted);
		}
		conn_abort(c, hc);
		return;
	}
}

/* ---- per core ---- */

int http_core_init(struct core *c, const struct http_config *cfg, const struct net_backend *nb,
		   const struct net_config *ncfg, http_handler_fn *handler)
{
	struct http_core *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	c->http = h;
	h->cfg = cfg;
	h->nb = nb;
	h->handler = handler;
	list_init(&h->all);
	h->max_conns = ncfg->max_conns_per_core;
	/* An eighth of the table, 2 to 256 slots: room for a burst of new clients while the
	 * connections closed for them finish closing. */
	h->reserve = h->max_conns / 8 < 2 ? 2 : h->max_conns / 8 > 256 ? 256 : h->max_conns / 8;
	pool_init(&h->conns, "http_conn", sizeof(struct http_conn), 256, ncfg->max_conns_per_core);
	pool_init(&h->exchanges, "http_exchange", sizeof(struct http_exchange), 128, 0);
	h->ev = (struct net_events){ .on_accept = on_accept, .on_data = on_data,
				     .fill_output = fill_output, .on_sent = on_sent,
				     .on_closed = on_closed };
	core_set_msg_handler(c, MSG_HTTP_RESPONSE, on_response_msg);
	return nb->core_init(c, ncfg, &h->ev);
}

/* At exit, connections the shutdown deadline closed: the backend goes without reporting
 * them closed, so what they own is given back here. A request whose body was being read
 * holds the connection's input buffer (malloc'd above BUF_SMALL_SIZE), and answered
 * responses hold theirs. Requests still in a handler are not touched: their exchange may
 * be in another core's hands, which is stopping at the same time. */
static void conns_fini(struct core *c)
{
	struct http_core *h = c->http;
	for (struct list_node *p = h->all.next; p != &h->all; p = p->next) {
		struct http_conn *hc = LIST_CONTAINER(p, struct http_conn, core_node);
		for (struct list_node *q = hc->fifo.next, *next; q != &hc->fifo; q = next) {
			next = q->next;
			struct http_exchange *ex = LIST_CONTAINER(q, struct http_exchange, conn_node);
			if (!ex->done)
				continue;
			list_del(&ex->conn_node);
			hc->nexchanges--;
			ex->takeover = NULL; /* its owner (the WebSocket layer) is gone already */
			exchange_free(c, ex);
		}
		if (hc->cur) {
			hc->cur->takeover = NULL;
			exchange_free(c, hc->cur);
			hc->cur = NULL;
		}
		if (hc->in) {
			buf_unref(&c->bufs, hc->in);
			hc->in = NULL;
		}
	}
}

void http_core_fini(struct core *c)
{
	struct http_core *h = c->http;
	if (!h)
		return;
	conns_fini(c);
	h->nb->core_fini(c);
	pool_destroy(&h->conns);
	pool_destroy(&h->exchanges);
	free(h);
	c->http = NULL;
}

void http_drain(struct core *c)
{
	struct http_core *h = c->http;
	h->draining = 1;
	h->nb->stop_accepting(c);
	for (struct list_node *p = h->all.next; p != &h->all; p = p->next) {
		struct http_conn *hc = LIST_CONTAINER(p, struct http_conn, core_node);
		if (hc->draining || !hc->nc)
			continue;
		hc->draining = 1;
		if (hc->nexchanges == 0 && hc->rs == RS_HEAD && !has_partial(hc) && !hc->spoke &&
		    c->now_ms < hc->head_started_ms + HTTP_DRAIN_FIRST_REQUEST_MS) {
			conn_timer_update(c, hc); /* just taken: its first request is answered */
		} else if (hc->nexchanges == 0 && hc->rs == RS_HEAD && !has_partial(hc)) {
			hc->rs = RS_STOPPED;
			h->nb->close(c, hc->nc, NET_CLOSE_GRACEFUL);
		} else if (hc->rs == RS_HEAD) {
			/* A request half read is abandoned; answered ones still go out. */
			if (hc->nexchanges == 0)
				h->nb->close(c, hc->nc, NET_CLOSE_ABORT);
			else
				hc->rs = RS_STOPPED;
		}
	}
}

uint64_t http_open_conns(struct core *c) { return c->http ? c->http->open : 0; }
const struct hist *http_latency(struct core *c) { return &c->http->latency; }
const struct http_counters *http_counters(struct core *c) { return &c->http->ctr; }
const struct net_backend *http_backend(struct core *c) { return c->http->nb; }

const struct net_counters *http_net_counters(struct core *c)
{
	return c->http->nb->counters(c);
}
