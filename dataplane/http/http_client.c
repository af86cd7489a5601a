/* HTTP/1.1 client connections: a request goes out on a pooled connection to the same
 * place or a new one (net_backend.dial), its head composed once with the Host and
 * Content-Length fields, its body sent from the caller's memory; the answer is parsed as
 * it comes (http_parse_response), framed by Content-Length, chunked coding or the close,
 * and written into the caller's exchange. A connection whose answer allowed keep-alive
 * goes back to the core's pool; one that the server closed while pooled is noticed then
 * and dropped. A request on a reused connection that fails before any byte of its answer
 * is tried once more on a new one (the server may have closed it as we sent) when none of
 * it was sent or its method may be repeated (may_retry).
 *
 *   fetch --pooled?--> send head+body --> head --> body --> done --> pool or close
 *          `--dial-->  (connect timeout)        (deadline for the whole)          */
#include "http_client.h"
#include "base_assert.h"
#include "core.h"
#include "http.h"
#include "http_parse.h"
#include "log.h"
#include "pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HC_POOL_SLAB 64
#define HC_MAX_TRAILER 4096

enum hc_state { HC_DIALING, HC_BUSY, HC_IDLE, HC_GONE };

struct http_client_conn {
	struct net_conn *nc;
	uint64_t dial;
	enum hc_state state;
	struct http_fetch *f; /* in flight; NULL when idle */
	/* The pool key: where it goes. */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint8_t tls;
	char server_name[256];
	/* Output: the composed head, then the caller's body. */
	char *head;
	size_t head_len, head_cap, sent;
	/* Input: a head being read, or chunked bytes not yet decoded. */
	char *in;
	size_t in_len, in_cap;
	uint8_t head_done, chunked, until_close, no_body, got_bytes, keep_alive, lent, reused;
	uint8_t streaming; /* the body goes to f->on_body */
	int fail_err; /* the request failed while its bytes were lent: told at on_closed */
	int64_t body_left;
	uint64_t body_len;
	struct http_chunked ch;
	struct timer timer;
	struct list_node idle_node;
	struct list_node all_node; /* every connection of the core, for the final free */
	uint64_t idle_since_ms;
	/* Pipelined (pipe): requests in flight are f, f->qnext, ... (qtail last, qlen of
	 * them), answered in that order; qcompose is the first not yet copied into obuf, which
	 * holds their bytes, osent of them sent (ototal and osum: all bytes copied and sent
	 * over the connection's life); pin holds answer bytes not parsed yet. */
	uint8_t pipe;
	unsigned qlen;
	struct http_fetch *qtail, *qcompose;
	char *obuf, *pin;
	size_t olen, ocap, osent, pin_len, pin_cap;
	uint64_t ototal, osum;
	struct list_node pipe_node;
};

struct http_client_core {
	const struct http_client_config *cfg;
	const struct net_backend *nb;
	struct pool conns;
	struct list_node idle; /* oldest first */
	struct list_node all;
	struct list_node pipes; /* pipelined connections */
	unsigned nidle;
	struct http_client_counters ctr;
	struct http_response rs; /* the head being parsed (parsing is synchronous: one will do) */
};

static const struct net_events hc_events;

static struct http_client_core *HCC(struct core *c) { return c->hclient; }

const struct http_client_counters *http_client_counters(struct core *c) { return &HCC(c)->ctr; }

static int append(char **p, size_t *len, size_t *cap, const void *data, size_t n)
{
	if (n == 0)
		return 0;
	if (*len + n > *cap) {
		size_t ncap = *cap ? *cap * 2 : 1024;
		while (ncap < *len + n)
			ncap *= 2;
		char *q = realloc(*p, ncap);
		if (!q)
			return -ENOMEM;
		*p = q;
		*cap = ncap;
	}
	memcpy(*p + *len, data, n);
	*len += n;
	return 0;
}

static int is_head_method(const struct http_request *rq)
{
	return rq->method_len == 4 && memcmp(rq->method, "HEAD", 4) == 0;
}

/* The request line and header section, appended to *p. */
static int compose_to(char **p, size_t *len, size_t *cap, const struct http_fetch *f)
{
	const struct http_request *rq = f->req;
	char line[64];
	int r = append(p, len, cap, rq->method, rq->method_len);
	r = r ? r : append(p, len, cap, " ", 1);
	r = r ? r : append(p, len, cap, rq->target, rq->target_len);
	r = r ? r : append(p, len, cap, " HTTP/1.1\r\nHost: ", 17);
	r = r ? r : append(p, len, cap, f->host, f->host_len);
	r = r ? r : append(p, len, cap, "\r\n", 2);
	for (unsigned i = 0; r == 0 && i < rq->nheaders; i++) {
		const struct http_header *h = &rq->headers[i];
		r = append(p, len, cap, h->name, h->name_len);
		r = r ? r : append(p, len, cap, ": ", 2);
		r = r ? r : append(p, len, cap, h->value, h->value_len);
		r = r ? r : append(p, len, cap, "\r\n", 2);
	}
	int n = 0;
	/* A body, or a method that carries one (POST with none says so). */
	if (rq->body_len || !((rq->method_len == 3 && !memcmp(rq->method, "GET", 3)) ||
			      is_head_method(rq)))
		n = snprintf(line, sizeof(line), "Content-Length: %zu\r\n", rq->body_len);
	r = r ? r : append(p, len, cap, line, (size_t)n);
	r = r ? r : append(p, len, cap, "\r\n", 2);
	return r;
}

/* The request line and header section, once per request. */
static int compose(struct http_client_conn *hc, const struct http_fetch *f)
{
	hc->head_len = hc->sent = 0;
	return compose_to(&hc->head, &hc->head_len, &hc->head_cap, f);
}

/* ---- the pool ---- */

static int same_place(const struct http_client_conn *hc, const struct http_fetch *f)
{
	return hc->addrlen == f->dial.addrlen && !memcmp(&hc->addr, &f->dial.addr, hc->addrlen) &&
	       hc->tls == !!f->dial.tls &&
	       !strcmp(hc->server_name, f->dial.server_name ? f->dial.server_name : "");
}

static void conn_free(struct core *c, struct http_client_conn *hc)
{
	struct http_client_core *cc = HCC(c);
	timer_cancel(&hc->timer);
	if (hc->state == HC_IDLE && !hc->pipe) { /* an idle pipelined one is in no pool */
		list_del(&hc->idle_node);
		cc->nidle--;
		cc->ctr.idle = cc->nidle;
	}
	list_del(&hc->all_node);
	if (hc->pipe)
		list_del(&hc->pipe_node);
	free(hc->head);
	free(hc->in);
	free(hc->obuf);
	free(hc->pin);
	pool_put(&cc->conns, hc);
}

/* The connection is given up: closed now, freed when the backend says it is gone (or
 * now, while only dialing: the dial's failure comes back to nobody). */
static void conn_drop(struct core *c, struct http_client_conn *hc)
{
	struct http_client_core *cc = HCC(c);
	if (hc->state == HC_IDLE && !hc->pipe) {
		list_del(&hc->idle_node);
		cc->nidle--;
		cc->ctr.idle = cc->nidle;
	}
	timer_cancel(&hc->timer);
	hc->f = NULL;
	if (hc->state == HC_DIALING) {
		hc->state = HC_GONE;
		cc->nb->dial_cancel(c, hc->dial); /* on_dial_failed frees it */
		return;
	}
	hc->state = HC_GONE;
	if (hc->nc)
		cc->nb->close(c, hc->nc, NET_CLOSE_ABORT); /* on_closed frees it */
}

/* RFC 9110 section 9.2.2: methods whose repetition has the effect of one request. */
static int idempotent(const struct http_request *rq)
{
	static const char *const m[] = { "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", NULL };
	for (unsigned i = 0; m[i]; i++)
		if (rq->method_len == strlen(m[i]) && !memcmp(rq->method, m[i], rq->method_len))
			return 1;
	return 0;
}

/* A reused connection closed or reset under a request before any byte of its answer: the
 * server may have closed it while the request was on its way, a race every keep-alive
 * client meets. The request goes once more on a new connection if none of its bytes left
 * (the send failed: the server never saw it), or if it may be repeated; a POST the server
 * may have acted on fails with the error instead (RFC 9110 section 9.2.2). */
static int may_retry(const struct http_client_conn *hc, const struct http_fetch *f)
{
	return hc->reused && !hc->got_bytes && !f->retried && (hc->sent == 0 || idempotent(f->req));
}

static void finish(struct core *c, struct http_client_conn *hc, int err);
static int retry(struct core *c, struct http_fetch *f);
/* Pipelined connections (below). */
static void pipe_fail(struct core *c, struct http_client_conn *hc, int err);
static void pipe_data(struct core *c, struct http_client_conn *hc, const char *data, size_t len);
static unsigned pipe_fill(struct http_client_conn *hc, struct iovec *iov);
static void pipe_sent(struct http_client_conn *hc, size_t n);
static int pipe_start(struct core *c, struct http_fetch *f);

static void fetch_timeout(struct core *c, struct timer *t)
{
	struct http_client_conn *hc = LIST_CONTAINER(t, struct http_client_conn, timer);
	if (hc->state == HC_IDLE) {
		conn_drop(c, hc);
		return;
	}
	HCC(c)->ctr.timeouts++;
	if (hc->pipe) {
		pipe_fail(c, hc, -ETIMEDOUT);
		return;
	}
	finish(c, hc, -ETIMEDOUT);
}

static void arm_for(struct core *c, struct http_client_conn *hc, const struct http_fetch *f)
{
	uint64_t at = f->deadline_ms;
	if (hc->state == HC_DIALING && c->now_ms + HCC(c)->cfg->connect_timeout_ms < at)
		at = c->now_ms + HCC(c)->cfg->connect_timeout_ms;
	timer_arm(c, &hc->timer, at, fetch_timeout);
}

static void start_request(struct core *c, struct http_client_conn *hc)
{
	hc->head_done = hc->chunked = hc->until_close = hc->got_bytes = hc->streaming = 0;
	hc->in_len = 0;
	hc->body_len = 0;
	hc->body_left = 0;
	memset(&hc->ch, 0, sizeof(hc->ch));
	HCC(c)->nb->want_write(c, hc->nc);
}

static int start(struct core *c, struct http_fetch *f);

/* Hands f back to its caller. */
static void deliver(struct core *c, struct http_fetch *f, int err)
{
	f->conn = NULL;
	if (err == 0)
		HCC(c)->ctr.responses++;
	f->done(c, f->arg, err);
}

/* The request on hc ends with err (0: the answer is whole). The connection goes back to
 * the pool if it may, else away; done() runs now, or, while the backend still reads the
 * request's bytes (lent by fill_output), once the connection is closed. */
static void finish(struct core *c, struct http_client_conn *hc, int err)
{
	struct http_client_core *cc = HCC(c);
	struct http_fetch *f = hc->f;
	DURO_ASSERT(f);
	if (hc->lent) {
		hc->fail_err = err ? err : 1; /* 1: a whole answer */
		timer_cancel(&hc->timer);
		if (hc->state != HC_GONE) {
			hc->state = HC_GONE;
			cc->nb->close(c, hc->nc, NET_CLOSE_ABORT);
		}
		return;
	}
	hc->f = NULL;
	if (err == -ECONNRESET && may_retry(hc, f)) {
		conn_drop(c, hc);
		if (retry(c, f) == 0)
			return;
		deliver(c, f, err);
		return;
	}
	if (err == 0 && hc->keep_alive && !hc->until_close && hc->state == HC_BUSY) {
		timer_cancel(&hc->timer);
		if (cc->nidle >= cc->cfg->max_idle_per_core && cc->nidle) {
			struct http_client_conn *old =
				LIST_CONTAINER(cc->idle.next, struct http_client_conn, idle_node);
			conn_drop(c, old);
		}
		hc->state = HC_IDLE;
		hc->idle_since_ms = c->now_ms;
		list_add_tail(&cc->idle, &hc->idle_node);
		cc->nidle++;
		cc->ctr.idle = cc->nidle;
		timer_arm(c, &hc->timer, c->now_ms + cc->cfg->idle_timeout_ms, fetch_timeout);
	} else {
		conn_drop(c, hc);
	}
	deliver(c, f, err);
}

/* ---- the answer ---- */

/* Body bytes (decoded) into the caller's exchange. */
static int body_bytes(struct core *c, struct http_client_conn *hc, const char *p, size_t n)
{
	struct http_fetch *f = hc->f;
	if (hc->streaming)
		return n ? f->on_body(c, f->arg, p, n) : 0;
	if (hc->body_len + n > f->max_response_bytes) {
		HCC(c)->ctr.too_large++;
		return -EFBIG;
	}
	hc->body_len += n;
	return n ? http_resp_body(f->out, p, n) : 0;
}

/* A chunked body: raw bytes kept in `in` and decoded in place there. */
static int chunked_bytes(struct core *c, struct http_client_conn *hc, const char *p, size_t n)
{
	if (append(&hc->in, &hc->in_len, &hc->in_cap, p, n) < 0)
		return -ENOMEM;
	size_t src = 0, dst = 0;
	int r = http_chunked_decode(&hc->ch, hc->in, hc->in_len, &src, &dst,
				    hc->streaming ? UINT64_MAX : hc->f->max_response_bytes,
				    HC_MAX_TRAILER);
	if (r == -413) {
		HCC(c)->ctr.too_large++;
		return -EFBIG;
	}
	if (r < 0)
		return -EPROTO;
	int e = body_bytes(c, hc, hc->in, dst);
	if (e < 0)
		return e;
	memmove(hc->in, hc->in + src, hc->in_len - src);
	hc->in_len -= src;
	return r; /* 1: the body is whole */
}

/* Applies the head just parsed: the status and fields into the exchange, the framing. */
static int take_head(struct core *c, struct http_client_conn *hc, const struct http_response *rs)
{
	struct http_fetch *f = hc->f;
	http_resp_status(f->out, rs->status);
	for (unsigned i = 0; i < rs->nheaders; i++) {
		const struct http_header *h = &rs->headers[i];
		int r = http_resp_header(f->out, h->name, h->name_len, h->value, h->value_len);
		if (r < 0)
			return r == -EINVAL ? -EPROTO : r;
	}
	hc->keep_alive = rs->keep_alive;
	hc->no_body = is_head_method(f->req) || rs->status == 204 || rs->status == 304;
	hc->chunked = !hc->no_body && rs->chunked;
	hc->body_left = hc->no_body ? 0 : rs->content_length;
	hc->until_close = !hc->no_body && !rs->chunked && rs->content_length < 0;
	if (hc->body_left > 0 && (uint64_t)hc->body_left > f->max_response_bytes) {
		HCC(c)->ctr.too_large++;
		return -EFBIG; /* known before a byte of it is read */
	}
	if (f->on_head) {
		int r = f->on_head(c, f->arg);
		if (r < 0)
			return r;
		if (r == 1) {
			hc->streaming = 1;
			timer_cancel(&hc->timer); /* open-ended: it lasts as long as both ends do */
		}
	}
	return 0;
}

/* Body bytes at p: the answer ends when they complete it. */
static void body_in(struct core *c, struct http_client_conn *hc, const char *p, size_t len)
{
	int r;
	if (hc->no_body || (!hc->chunked && !hc->until_close && hc->body_left == 0)) {
		if (len) /* more than the answer: the connection's framing is lost */
			hc->keep_alive = 0;
		finish(c, hc, 0);
		return;
	}
	if (hc->chunked) {
		r = chunked_bytes(c, hc, p, len);
		if (r < 0) {
			finish(c, hc, r);
		} else if (r == 1) {
			if (hc->in_len)
				hc->keep_alive = 0;
			finish(c, hc, 0);
		}
		return;
	}
	if (!len)
		return;
	size_t take = len;
	if (!hc->until_close && (uint64_t)hc->body_left < take)
		take = (size_t)hc->body_left;
	r = body_bytes(c, hc, p, take);
	if (r < 0) {
		finish(c, hc, r);
		return;
	}
	if (!hc->until_close) {
		hc->body_left -= (int64_t)take;
		if (hc->body_left == 0) {
			if (take < len)
				hc->keep_alive = 0;
			finish(c, hc, 0);
		}
	}
}

static void on_data(struct core *c, struct net_conn *nc, const char *data, size_t len)
{
	struct http_client_conn *hc = nc->user;
	struct http_client_core *cc = HCC(c);
	if (hc->state == HC_IDLE) {
		/* The server closed (or spoke) while pooled: the connection is not reusable. */
		conn_drop(c, hc);
		return;
	}
	if (!hc->f || hc->state != HC_BUSY)
		return;
	if (hc->pipe) {
		pipe_data(c, hc, data, len);
		return;
	}
	if (len == 0) { /* FIN */
		finish(c, hc, hc->until_close && hc->head_done ? 0 : -ECONNRESET);
		return;
	}
	hc->got_bytes = 1;
	if (hc->head_done) {
		body_in(c, hc, data, len);
		return;
	}
	if (append(&hc->in, &hc->in_len, &hc->in_cap, data, len) < 0) {
		finish(c, hc, -ENOMEM);
		return;
	}
	struct http_response *rs = &cc->rs;
	for (;;) {
		long n = http_parse_response(hc->in, hc->in_len, cc->cfg->max_head_bytes, rs);
		if (n == 0)
			return;
		if (n < 0) {
			cc->ctr.bad_responses++;
			finish(c, hc, -EPROTO);
			return;
		}
		if (rs->status >= 200) {
			/* The fields point into `in`: taken before the head's bytes go. */
			int r = take_head(c, hc, rs);
			if (r < 0) {
				finish(c, hc, r);
				return;
			}
			memmove(hc->in, hc->in + n, hc->in_len - (size_t)n);
			hc->in_len -= (size_t)n;
			break;
		}
		/* An interim answer (100 Continue): skipped. */
		memmove(hc->in, hc->in + n, hc->in_len - (size_t)n);
		hc->in_len -= (size_t)n;
	}
	hc->head_done = 1;
	/* What followed the head is body: a chunked one is decoded where it is. */
	if (hc->chunked) {
		body_in(c, hc, NULL, 0);
		return;
	}
	/* Kept for the connection's next answer; the body goes straight to the exchange (the
	 * buffer is freed only with the connection, after any call below). */
	size_t rl = hc->in_len;
	hc->in_len = 0;
	body_in(c, hc, hc->in, rl);
}

/* ---- the request ---- */

static unsigned fill_output(struct core *c, struct net_conn *nc, struct iovec *iov, unsigned max)
{
	(void)c;
	struct http_client_conn *hc = nc->user;
	if (hc->pipe)
		return max ? pipe_fill(hc, iov) : 0;
	if (!hc->f || hc->state != HC_BUSY || max < 2)
		return 0;
	const struct http_request *rq = hc->f->req;
	size_t total = hc->head_len + rq->body_len;
	if (hc->sent >= total)
		return 0;
	unsigned n = 0;
	if (hc->sent < hc->head_len) {
		iov[n].iov_base = hc->head + hc->sent;
		iov[n++].iov_len = hc->head_len - hc->sent;
	}
	if (rq->body_len) {
		size_t off = hc->sent > hc->head_len ? hc->sent - hc->head_len : 0;
		iov[n].iov_base = (void *)(rq->body + off);
		iov[n++].iov_len = rq->body_len - off;
	}
	hc->lent = 1;
	return n;
}

static void on_sent(struct core *c, struct net_conn *nc, size_t n)
{
	(void)c;
	struct http_client_conn *hc = nc->user;
	if (hc->pipe) {
		pipe_sent(hc, n);
		return;
	}
	hc->lent = 0;
	hc->sent += n;
}

static void *on_connected(struct core *c, struct net_conn *nc)
{
	struct http_client_conn *hc = nc->user;
	struct http_client_core *cc = HCC(c);
	hc->nc = nc;
	if (hc->state == HC_GONE) {
		conn_free(c, hc); /* given up meanwhile: closed at once, no on_closed */
		return NULL;
	}
	cc->ctr.connects++;
	hc->state = HC_BUSY;
	if (hc->f)
		arm_for(c, hc, hc->f);
	start_request(c, hc);
	return hc;
}

static int retry(struct core *c, struct http_fetch *f)
{
	HCC(c)->ctr.retries++;
	f->retried = 1;
	return start(c, f);
}

static void on_closed(struct core *c, struct net_conn *nc, int err)
{
	struct http_client_conn *hc = nc->user;
	struct http_client_core *cc = HCC(c);
	struct http_fetch *f = hc->f;
	if (hc->pipe) {
		hc->nc = NULL;
		hc->lent = 0;
		hc->state = HC_GONE; /* pipe_fail must not drop it: it is gone */
		if (f)
			pipe_fail(c, hc, hc->until_close && hc->head_done ? 0 : err ? err : -ECONNRESET);
		conn_free(c, hc);
		return;
	}
	hc->nc = NULL;
	hc->lent = 0;
	hc->f = NULL;
	int fail = hc->fail_err;
	int was = hc->state;
	if (was == HC_IDLE) {
		list_del(&hc->idle_node);
		cc->nidle--;
		cc->ctr.idle = cc->nidle;
	}
	hc->state = HC_GONE;
	int again = f && may_retry(hc, f), whole = hc->until_close && hc->head_done;
	conn_free(c, hc);
	if (!f)
		return;
	if (fail) {
		deliver(c, f, fail == 1 ? 0 : fail);
		return;
	}
	if (whole) {
		deliver(c, f, 0);
		return;
	}
	cc->ctr.resets++;
	if (again && retry(c, f) == 0)
		return;
	deliver(c, f, err ? err : -ECONNRESET);
}

static void on_dial_failed(struct core *c, void *user, int err)
{
	struct http_client_conn *hc = user;
	struct http_client_core *cc = HCC(c);
	struct http_fetch *f = hc->f;
	int gone = hc->state == HC_GONE;
	hc->f = NULL;
	hc->state = HC_GONE;
	conn_free(c, hc);
	if (gone || !f)
		return;
	cc->ctr.connect_failures++;
	/* Every request queued on a pipelined connection never left: each is told. */
	for (struct http_fetch *next; f; f = next) {
		next = f->qnext;
		f->qnext = NULL;
		deliver(c, f, err == -ECANCELED ? -ETIMEDOUT : err);
	}
}

/* ---- pipelined connections ---- */

static void pipe_reset_parse(struct http_client_conn *hc)
{
	hc->head_done = hc->chunked = hc->until_close = hc->got_bytes = hc->no_body = 0;
	hc->body_len = 0;
	hc->body_left = 0;
	memset(&hc->ch, 0, sizeof(hc->ch));
}

/* Gives up the connection and everything on it: the request being answered gets err (0:
 * it was whole, framed by the close); each one behind it is sent once more on a new
 * connection if it may be (none of it left, or idempotent), else gets -ECONNRESET. The
 * requests' bytes were copied, so they are told now, whatever the backend still reads. */
static void pipe_fail(struct core *c, struct http_client_conn *hc, int err)
{
	struct http_client_core *cc = HCC(c);
	struct http_fetch *head = hc->f;
	uint64_t sent = hc->osum;
	int got = hc->got_bytes;
	hc->f = hc->qtail = hc->qcompose = NULL;
	hc->qlen = 0;
	if (hc->state != HC_GONE)
		conn_drop(c, hc);
	for (struct http_fetch *f = head, *next; f; f = next) {
		next = f->qnext;
		f->qnext = NULL;
		f->conn = NULL;
		int e = f == head ? err : -ECONNRESET;
		if (e == -ECONNRESET && !(f == head && got) && !f->retried &&
		    (sent <= f->q_start || idempotent(f->req))) {
			cc->ctr.resets++;
			if (retry(c, f) == 0)
				continue;
		}
		deliver(c, f, e);
	}
}

/* The answer at the front is whole: its request leaves the queue and is told. */
static void pipe_answered(struct core *c, struct http_client_conn *hc)
{
	struct http_client_core *cc = HCC(c);
	struct http_fetch *f = hc->f;
	hc->f = f->qnext;
	f->qnext = NULL;
	if (!hc->f)
		hc->qtail = NULL;
	hc->qlen--;
	int keep = hc->keep_alive && !hc->until_close;
	pipe_reset_parse(hc);
	timer_cancel(&hc->timer);
	if (hc->f)
		arm_for(c, hc, hc->f);
	else if (keep) {
		hc->state = HC_IDLE;
		hc->idle_since_ms = c->now_ms;
		timer_arm(c, &hc->timer, c->now_ms + cc->cfg->idle_timeout_ms, fetch_timeout);
	}
	deliver(c, f, 0);
	if (!keep && hc->state != HC_GONE)
		pipe_fail(c, hc, -ECONNRESET); /* the server ends the connection here */
}

/* Parses answer bytes at p for the front request; returns how many it took (it stops at
 * the end of that answer), or a negative errno. *whole is set once that answer is. */
static long pipe_step(struct core *c, struct http_client_conn *hc, char *p, size_t n, int *whole)
{
	struct http_client_core *cc = HCC(c);
	*whole = 0;
	size_t used = 0;
	while (!hc->head_done) {
		long h = http_parse_response(p + used, n - used, cc->cfg->max_head_bytes, &cc->rs);
		if (h == 0)
			return (long)used;
		if (h < 0) {
			cc->ctr.bad_responses++;
			return -EPROTO;
		}
		hc->got_bytes = 1;
		if (cc->rs.status >= 200) {
			int r = take_head(c, hc, &cc->rs);
			if (r < 0)
				return r;
			hc->head_done = 1;
		}
		used += (size_t)h;
	}
	if (hc->no_body || (!hc->chunked && !hc->until_close && hc->body_left == 0)) {
		*whole = 1;
		return (long)used;
	}
	if (hc->chunked) {
		size_t src = 0, dst = 0;
		int r = http_chunked_decode(&hc->ch, p + used, n - used, &src, &dst,
					    hc->f->max_response_bytes, HC_MAX_TRAILER);
		if (r == -413) {
			cc->ctr.too_large++;
			return -EFBIG;
		}
		if (r < 0)
			return -EPROTO;
		int e = body_bytes(c, hc, p + used, dst);
		if (e < 0)
			return e;
		*whole = r == 1;
		return (long)(used + src);
	}
	size_t take = n - used;
	if (!hc->until_close && (uint64_t)hc->body_left < take)
		take = (size_t)hc->body_left;
	int r = body_bytes(c, hc, p + used, take);
	if (r < 0)
		return r;
	if (!hc->until_close) {
		hc->body_left -= (int64_t)take;
		*whole = hc->body_left == 0;
	}
	return (long)(used + take);
}

static void pipe_data(struct core *c, struct http_client_conn *hc, const char *data, size_t len)
{
	if (len == 0) { /* FIN */
		pipe_fail(c, hc, hc->until_close && hc->head_done ? 0 : -ECONNRESET);
		return;
	}
	if (append(&hc->pin, &hc->pin_len, &hc->pin_cap, data, len) < 0) {
		pipe_fail(c, hc, -ENOMEM);
		return;
	}
	size_t off = 0;
	while (hc->f && hc->state == HC_BUSY && off < hc->pin_len) {
		int whole;
		long r = pipe_step(c, hc, hc->pin + off, hc->pin_len - off, &whole);
		if (r < 0) {
			pipe_fail(c, hc, (int)r);
			return;
		}
		off += (size_t)r;
		if (whole)
			pipe_answered(c, hc); /* may end the connection */
		else if (r == 0)
			break; /* more bytes needed */
	}
	if (hc->state == HC_GONE)
		return;
	if (!hc->f && off < hc->pin_len) {
		pipe_fail(c, hc, 0); /* bytes nobody asked for: the framing is lost */
		return;
	}
	memmove(hc->pin, hc->pin + off, hc->pin_len - off);
	hc->pin_len -= off;
}

/* Copies the requests not yet copied, then lends what is unsent. */
static unsigned pipe_fill(struct http_client_conn *hc, struct iovec *iov)
{
	if (hc->state != HC_BUSY)
		return 0;
	for (struct http_fetch *f = hc->qcompose; f; f = f->qnext) {
		size_t at = hc->olen;
		if (compose_to(&hc->obuf, &hc->olen, &hc->ocap, f) < 0 ||
		    append(&hc->obuf, &hc->olen, &hc->ocap, f->req->body, f->req->body_len) < 0) {
			hc->olen = at; /* sent later, when memory allows */
			hc->qcompose = f;
			break;
		}
		f->q_start = hc->ototal;
		hc->ototal += hc->olen - at;
		hc->qcompose = f->qnext;
	}
	if (hc->osent >= hc->olen)
		return 0;
	iov[0].iov_base = hc->obuf + hc->osent;
	iov[0].iov_len = hc->olen - hc->osent;
	hc->lent = 1;
	return 1;
}

static void pipe_sent(struct http_client_conn *hc, size_t n)
{
	hc->lent = 0;
	hc->osent += n;
	hc->osum += n;
	if (hc->osent == hc->olen)
		hc->olen = hc->osent = 0;
}

static void pipe_enqueue(struct core *c, struct http_client_conn *hc, struct http_fetch *f)
{
	f->conn = hc;
	f->qnext = NULL;
	f->q_start = UINT64_MAX; /* none of it copied, so none of it sent */
	if (hc->qtail)
		hc->qtail->qnext = f;
	else
		hc->f = f;
	hc->qtail = f;
	hc->qlen++;
	if (!hc->qcompose)
		hc->qcompose = f;
	if (hc->state == HC_IDLE) {
		HCC(c)->ctr.reused++;
		hc->state = HC_BUSY;
		timer_cancel(&hc->timer);
		arm_for(c, hc, f);
	}
	if (hc->state == HC_BUSY)
		HCC(c)->nb->want_write(c, hc->nc);
}

/* A connection for f's place, not dialed yet; owned by this core's pool (conn_free). */
static struct http_client_conn *conn_new(struct core *c, const struct http_fetch *f)
{
	struct http_client_core *cc = HCC(c);
	struct http_client_conn *hc = pool_get(&cc->conns);
	if (!hc)
		return NULL;
	memset(hc, 0, sizeof(*hc));
	list_add_tail(&cc->all, &hc->all_node);
	hc->state = HC_DIALING;
	memcpy(&hc->addr, &f->dial.addr, f->dial.addrlen);
	hc->addrlen = f->dial.addrlen;
	hc->tls = !!f->dial.tls;
	snprintf(hc->server_name, sizeof(hc->server_name), "%s",
		 f->dial.server_name ? f->dial.server_name : "");
	return hc;
}

/* Dials hc for f (already attached to it); a dial that fails at once frees hc. */
static int conn_dial(struct core *c, struct http_client_conn *hc, struct http_fetch *f)
{
	int r = HCC(c)->nb->dial(c, &f->dial, &hc_events, hc, &hc->dial);
	if (r < 0) {
		f->conn = NULL;
		hc->state = HC_GONE;
		conn_free(c, hc);
		return r;
	}
	arm_for(c, hc, f);
	return 0;
}

/* Puts f on this core's pipelined connection to its place, or dials one. */
static int pipe_start(struct core *c, struct http_fetch *f)
{
	struct http_client_core *cc = HCC(c);
	for (struct list_node *n = cc->pipes.next; n != &cc->pipes; n = n->next) {
		struct http_client_conn *hc = LIST_CONTAINER(n, struct http_client_conn, pipe_node);
		if (hc->state == HC_GONE || hc->qlen >= HTTP_CLIENT_PIPE_MAX || !same_place(hc, f))
			continue;
		pipe_enqueue(c, hc, f);
		return 0;
	}
	struct http_client_conn *hc = conn_new(c, f);
	if (!hc)
		return -ENOMEM;
	list_add_tail(&cc->pipes, &hc->pipe_node);
	hc->pipe = 1;
	hc->keep_alive = 1;
	pipe_enqueue(c, hc, f);
	return conn_dial(c, hc, f);
}

static const struct net_events hc_events = {
	.on_accept = on_connected,
	.on_data = on_data,
	.fill_output = fill_output,
	.on_sent = on_sent,
	.on_closed = on_closed,
	.on_dial_failed = on_dial_failed,
};

/* Takes a pooled connection to f's place, or dials one. */
static int start(struct core *c, struct http_fetch *f)
{
	struct http_client_core *cc = HCC(c);
	if (!cc->nb->dial)
		return -EOPNOTSUPP;
	if (f->pipeline && !f->on_head)
		return pipe_start(c, f);
	if (!f->retried) {
		for (struct list_node *n = cc->idle.prev; n != &cc->idle; n = n->prev) {
			struct http_client_conn *hc = LIST_CONTAINER(n, struct http_client_conn, idle_node);
			if (!same_place(hc, f))
				continue;
			list_del(&hc->idle_node);
			cc->nidle--;
			cc->ctr.idle = cc->nidle;
			if (compose(hc, f) < 0) {
				conn_drop(c, hc);
				return -ENOMEM;
			}
			hc->state = HC_BUSY;
			hc->f = f;
			hc->reused = 1;
			hc->fail_err = 0;
			f->conn = hc;
			cc->ctr.reused++;
			arm_for(c, hc, f);
			start_request(c, hc);
			return 0;
		}
	}
	struct http_client_conn *hc = conn_new(c, f);
	if (!hc)
		return -ENOMEM;
	if (compose(hc, f) < 0) {
		conn_free(c, hc);
		return -ENOMEM;
	}
	hc->f = f;
	f->conn = hc;
	return conn_dial(c, hc, f);
}

void http_client_cancel(struct core *c, struct http_fetch *f)
{
	struct http_client_conn *hc = f->conn;
	if (hc && hc->pipe) {
		/* Its answer cannot be skipped: the connection goes, the others on it are asked
		 * again or told (pipe_fail), f is not. */
		struct http_fetch **pp = &hc->f, *prev = NULL;
		while (*pp && *pp != f) {
			prev = *pp;
			pp = &(*pp)->qnext;
		}
		if (!*pp)
			return;
		*pp = f->qnext;
		if (hc->qtail == f)
			hc->qtail = prev;
		if (hc->qcompose == f)
			hc->qcompose = f->qnext;
		hc->qlen--;
		f->qnext = NULL;
		f->conn = NULL;
		pipe_fail(c, hc, -ECONNRESET);
		return;
	}
	if (!hc || hc->f != f)
		return;
	f->conn = NULL;
	if (hc->lent) {
		/* The backend still reads the request's bytes: on_closed frees the connection
		 * and tells nobody (no f). */
		hc->f = NULL;
		hc->fail_err = 0;
		timer_cancel(&hc->timer);
		if (hc->state != HC_GONE) {
			hc->state = HC_GONE;
			HCC(c)->nb->close(c, hc->nc, NET_CLOSE_ABORT);
		}
		return;
	}
	conn_drop(c, hc);
}

int http_client_fetch(struct core *c, struct http_fetch *f)
{
	f->conn = NULL;
	f->retried = 0;
	HCC(c)->ctr.requests++;
	return start(c, f);
}

int http_client_core_init(struct core *c, const struct http_client_config *cfg,
			  const struct net_backend *nb)
{
	struct http_client_core *cc = calloc(1, sizeof(*cc));
	if (!cc)
		return -ENOMEM;
	cc->cfg = cfg;
	cc->nb = nb;
	pool_init(&cc->conns, "http_client", sizeof(struct http_client_conn), HC_POOL_SLAB, 0);
	list_init(&cc->idle);
	list_init(&cc->all);
	list_init(&cc->pipes);
	c->hclient = cc;
	return 0;
}

void http_client_core_fini(struct core *c)
{
	struct http_client_core *cc = HCC(c);
	if (!cc)
		return;
	/* The backend is gone or going: nothing it holds is told any more. */
	while (!list_empty(&cc->all)) {
		struct http_client_conn *hc = LIST_CONTAINER(cc->all.next, struct http_client_conn, all_node);
		list_del(&hc->all_node);
		free(hc->head);
		free(hc->in);
		free(hc->obuf);
		free(hc->pin);
	}
	pool_destroy(&cc->conns);
	free(cc);
	c->hclient = NULL;
}
