/* Cluster mode's forwarding: a request whose slot another box owns goes there from the
 * core that received it, over this core's keep-alive HTTP client pool (one pool per core,
 * connections reused per peer), marked with the slot and the epoch this box expects.
 *
 *   attempt --owner refuses (Duro-Refused) or the dial fails--> wait for the table
 *      |        (ticks; again once it changed or a while passed; 2 s in all) --> attempt
 *      `--answer--> hop-by-hop fields dropped --> http_respond
 *      `--sent, no whole answer--> 502 (504 on time-out): never sent twice
 *
 * An event stream (GET asking for text/event-stream) whose owner answers 200 with one is
 * passed through as it comes: the owner's head goes to the client at once, the connection
 * is taken over as a stream socket of this core (the ws layer's), and each piece of the
 * owner's body is queued on it as one shared payload; a client that reads too slowly is
 * cut off by the socket's output cap (1013), a client that leaves closes the upstream, and
 * the upstream's end (the owner closed it or died) ends the client's stream.
 *
 * Peers are trusted by the cluster table, not by outbound.allow. */
#include "cluster_forward.h"
#include "base_assert.h"
#include "cluster_gate.h"
#include "core.h"
#include "http.h"
#include "http_client.h"
#include "log.h"
#include "obj.h"
#include "obj_ws_int.h"
#include "request.h"
#include "slotmap.h"
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FWD_SLAB 64
#define FWD_TARGET_MAX 4096

struct fwd {
	struct ws_site site; /* an event stream's socket's user; site.relay = OBJ_WS_RELAY_SSE */
	struct http_exchange *ex; /* NULL once an event stream's head went to the client */
	struct ws_conn *down;     /* an event stream's client socket, until it closed */
	struct http_fetch f;
	struct http_request rq; /* ex's request as sent: headers filtered, the marker added */
	struct timer timer;
	struct list_node node; /* in flight on this core */
	uint64_t first_ms, asked_ms, gen;
	int64_t epoch; /* the slot's, when the owner was asked last */
	unsigned slot;
	uint8_t box, minted, refused;
	uint8_t stream;  /* an event stream may be passed through (on_head set) */
	uint8_t up_live; /* a passed-through stream's fetch is still in flight */
	uint8_t held;    /* its head is on its way to the client: the takeover comes */
	uint8_t in_cb;   /* inside on_head or on_body: the fetch cannot be cancelled now */
	uint8_t cut;     /* the client went away meanwhile: the callback fails the fetch */
	int last_err;
	char marker[48];
	char boxname[64]; /* the owner asked last (the table may renumber its boxes meanwhile) */
	char boxaddr[128];
	char idhex[DURO_ID_HEX + 1];
	char target[FWD_TARGET_MAX];
};

struct obj_cluster_fwd_core {
	obj_cluster_serve_fn *serve;
	struct pool fwds;
	struct list_node live;
};

int obj_cluster_fwd_init(struct core *c, obj_cluster_serve_fn *serve)
{
	if (!c->obj->cluster)
		return 0;
	struct obj_cluster_fwd_core *fc = calloc(1, sizeof(*fc));
	if (!fc)
		return -ENOMEM;
	fc->serve = serve;
	pool_init(&fc->fwds, "cluster_fwd", sizeof(struct fwd), FWD_SLAB,
		  OBJ_CLUSTER_FWD_MAX_PER_CORE);
	list_init(&fc->live);
	c->obj->cluster_fwd = fc;
	return 0;
}

void obj_cluster_fwd_fini(struct core *c)
{
	struct obj_cluster_fwd_core *fc = c->obj->cluster_fwd;
	if (!fc)
		return;
	/* Shutting down: the exchanges go with their connections, the client's requests with
	 * the client (http_client_core_fini tells nobody). */
	while (!list_empty(&fc->live)) {
		struct fwd *fw = LIST_CONTAINER(fc->live.next, struct fwd, node);
		timer_cancel(&fw->timer);
		list_del(&fw->node);
	}
	pool_destroy(&fc->fwds);
	free(fc);
	c->obj->cluster_fwd = NULL;
}

static void fwd_free(struct core *c, struct fwd *fw)
{
	timer_cancel(&fw->timer);
	list_del(&fw->node);
	pool_put(&c->obj->cluster_fwd->fwds, fw);
}

static int name_is(const char *n, size_t len, const char *want)
{
	return len == strlen(want) && !strncasecmp(n, want, len);
}

/* Fields that describe one hop, not the message: the next hop frames its own. */
static int hop_field(const char *n, size_t len)
{
	return name_is(n, len, "Connection") || name_is(n, len, "Keep-Alive") ||
	       name_is(n, len, "Transfer-Encoding") || name_is(n, len, "Content-Length") ||
	       name_is(n, len, "Proxy-Connection") || name_is(n, len, "TE") ||
	       name_is(n, len, "Upgrade") || name_is(n, len, "Expect");
}

/* The owner's answer as the client gets it: its Date, Server and framing fields go (this
 * box writes its own). The fields in ex->extra are ours, "name: value\r\n" each. */
static void strip_answer_fields(struct http_exchange *ex)
{
	char *p = ex->extra.p, *end = p + ex->extra.len, *w = p;
	while (p < end) {
		char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t len = eol ? (size_t)(eol - p) + 1 : (size_t)(end - p);
		char *colon = memchr(p, ':', len);
		size_t nlen = colon ? (size_t)(colon - p) : 0;
		if (!(colon && (hop_field(p, nlen) || name_is(p, nlen, "Date") ||
				name_is(p, nlen, "Server")))) {
			memmove(w, p, len);
			w += len;
		}
		p += len;
	}
	ex->extra.len = (size_t)(w - ex->extra.p);
}

/* Whether the answer now in ex is an owner's refusal (made before any handler ran). */
static int is_refusal(const struct http_exchange *ex)
{
	if (ex->status != 503)
		return 0;
	static const char h[] = OBJ_CLUSTER_REFUSED_HEADER ":";
	const char *p = ex->extra.p;
	size_t n = ex->extra.len;
	for (size_t i = 0; i + sizeof(h) - 1 <= n; i++)
		if ((i == 0 || p[i - 1] == '\n') && !strncasecmp(p + i, h, sizeof(h) - 1))
			return 1;
	return 0;
}

static void fwd_answer(struct core *c, struct fwd *fw, int status, const char *text)
{
	struct http_exchange *ex = fw->ex;
	fwd_free(c, fw);
	c->obj->ctr.cluster_fwd_failed++;
	http_resp_error(ex, status, text);
	http_resp_header(ex, "Retry-After", 11, "1", 1);
	http_respond(c, ex);
}

static void attempt(struct core *c, struct fwd *fw);
static void fetched(struct core *c, void *arg, int err);

/* Waits for the table (or the owner) to change, within the bound from the first try. */
static void tick(struct core *c, struct timer *t)
{
	struct fwd *fw = LIST_CONTAINER(t, struct fwd, timer);
	const struct obj_cluster_table *tab = c->obj->cluster;
	if (tab->gen != fw->gen || c->now_ms >= fw->asked_ms + OBJ_CLUSTER_FWD_REASK_MS ||
	    c->now_ms >= fw->first_ms + OBJ_CLUSTER_FWD_RETRY_MS) {
		c->obj->ctr.cluster_fwd_retries++;
		attempt(c, fw);
		return;
	}
	timer_arm(c, &fw->timer, c->now_ms + OBJ_CLUSTER_FWD_TICK_MS, tick);
}

/* A refusal, a failed dial or no owner: again later if the bound allows, else the last
 * word stands (the owner's refusal as it came, or 503). */
static void wait_or_give_up(struct core *c, struct fwd *fw, const char *why)
{
	if (c->now_ms >= fw->first_ms + OBJ_CLUSTER_FWD_RETRY_MS) {
		if (fw->refused) {
			struct http_exchange *ex = fw->ex;
			strip_answer_fields(ex);
			fwd_free(c, fw);
			c->obj->ctr.cluster_fwd_failed++;
			http_respond(c, ex);
			return;
		}
		char text[300];
		snprintf(text, sizeof(text), "503 not owner: slot %u: %s", fw->slot, why);
		fwd_answer(c, fw, 503, text);
		return;
	}
	fw->gen = c->obj->cluster->gen;
	timer_arm(c, &fw->timer, c->now_ms + OBJ_CLUSTER_FWD_TICK_MS, tick);
}

/* An event stream's request: GET, Accept naming text/event-stream. */
static int wants_stream(const struct http_request *rq)
{
	if (!(rq->method_len == 3 && !memcmp(rq->method, "GET", 3)))
		return 0;
	for (unsigned i = 0; i < rq->nheaders; i++) {
		const struct http_header *h = &rq->headers[i];
		if (h->name_len == 6 && !strncasecmp(h->name, "Accept", 6) && h->value_len >= 17 &&
		    memmem(h->value, h->value_len, "text/event-stream", 17))
			return 1;
	}
	return 0;
}

static void stream_maybe_free(struct core *c, struct fwd *fw)
{
	if (!fw->held && !fw->up_live && !fw->in_cb && !fw->down)
		fwd_free(c, fw);
}

static void stream_end(struct core *c, struct fwd *fw);

static void fetched(struct core *c, void *arg, int err)
{
	struct fwd *fw = arg;
	struct http_exchange *ex = fw->ex;
	if (!ex) {
		/* A passed-through stream ended upstream (err 0: the owner closed it; else it
		 * died, or the client's side failed it): the client's stream ends too. */
		fw->up_live = 0;
		stream_end(c, fw);
		return;
	}
	if (err == 0 && is_refusal(ex)) {
		fw->refused = 1;
		wait_or_give_up(c, fw, "refused by the owner");
		return;
	}
	if (err == -ECONNREFUSED || err == -EHOSTUNREACH || err == -ENETUNREACH ||
	    err == -EADDRNOTAVAIL) {
		/* Nothing went out: the box is down or not there. Safe to ask again. */
		fw->refused = 0;
		fw->last_err = err;
		wait_or_give_up(c, fw, "the owner box does not take connections");
		return;
	}
	if (err) {
		/* It may have run: a non-idempotent request is not sent twice. */
		char text[300];
		snprintf(text, sizeof(text), "%d forwarded to box %s (%s), no whole answer: %s",
			 err == -ETIMEDOUT ? 504 : 502, fw->boxname, fw->boxaddr, strerror(-err));
		fwd_answer(c, fw, err == -ETIMEDOUT ? 504 : 502, text);
		return;
	}
	strip_answer_fields(ex);
	/* Which box answered: for operators and tests (the owner's own answer lacks it). */
	http_resp_header(ex, "Duro-Forwarded-To", 17, fw->boxname, strlen(fw->boxname));
	fwd_free(c, fw);
	http_respond(c, ex);
}

/* The stream's client is gone: the upstream goes too (after the callback under way, if
 * one is: it sees cut). */
static void client_gone(struct core *c, struct fwd *fw)
{
	fw->down = NULL;
	if (fw->in_cb) {
		fw->cut = 1;
	} else if (fw->up_live) {
		http_client_cancel(c, &fw->f);
		fw->up_live = 0;
	}
}

/* The http layer hands the client's connection over once the stream's head is written
 * (conn NULL: the client left first). */
static void stream_takeover(struct core *c, struct http_exchange *ex, struct net_conn *conn,
			    const char *rest, size_t len)
{
	struct route_result *rr = route_result_of(ex);
	struct ws_conn *wc = rr->wc;
	rr->wc = NULL;
	struct fwd *fw = (struct fwd *)ws_conn_user(wc);
	fw->held = 0;
	if (conn) {
		ws_takeover(c, wc, conn, rest, len); /* closes it at once when it ended meanwhile */
		stream_maybe_free(c, fw);
		return;
	}
	ws_release(c, wc, 0);
	if (fw->down == wc)
		client_gone(c, fw);
	stream_maybe_free(c, fw);
}

/* The client's stream socket closed (it left, read too slowly, or this box shuts down). */
void obj_cluster_sse_closed(struct core *c, struct ws_conn *wc)
{
	struct fwd *fw = (struct fwd *)ws_conn_user(wc);
	if (fw->down != wc)
		return; /* the upstream's end closed it */
	client_gone(c, fw);
	stream_maybe_free(c, fw);
}

/* Ends a passed-through stream from this side: the upstream is closed, the client's
 * stream ends (its reconnect finds the slot's owner now). */
static void stream_end(struct core *c, struct fwd *fw)
{
	if (fw->up_live) {
		http_client_cancel(c, &fw->f);
		fw->up_live = 0;
	}
	struct ws_conn *down = fw->down;
	fw->down = NULL;
	if (down)
		ws_close_local(c, down, WS_CLOSE_GOING_AWAY, NULL);
	stream_maybe_free(c, fw);
}

void obj_cluster_fwd_table(struct core *c)
{
	struct obj_cluster_fwd_core *fc = c->obj->cluster_fwd;
	const struct obj_cluster_table *t = c->obj->cluster;
	if (!fc || !t)
		return;
	struct list_node *n = fc->live.next;
	while (n != &fc->live) {
		struct fwd *fw = LIST_CONTAINER(n, struct fwd, node);
		n = n->next; /* fw may be freed below */
		if (fw->ex || fw->in_cb || !fw->up_live)
			continue; /* not a stream, or one ending anyway */
		unsigned o = t->owner[fw->slot];
		if (o < t->nboxes && t->epoch[fw->slot] == fw->epoch &&
		    !strcmp(t->boxes[o].name, fw->boxname))
			continue;
		stream_end(c, fw);
	}
}

static int is_event_stream_type(const struct http_exchange *ex)
{
	static const char h[] = "Content-Type:";
	const char *p = ex->extra.p;
	size_t n = ex->extra.len;
	for (size_t i = 0; i + sizeof(h) - 1 <= n; i++) {
		if ((i == 0 || p[i - 1] == '\n') && !strncasecmp(p + i, h, sizeof(h) - 1)) {
			const char *v = p + i + sizeof(h) - 1;
			const char *eol = memchr(v, '\n', (size_t)(p + n - v));
			size_t vlen = eol ? (size_t)(eol - v) : (size_t)(p + n - v);
			return memmem(v, vlen, "text/event-stream", 17) != NULL;
		}
	}
	return 0;
}

/* The owner's head is in ex: an event stream is passed through from here on. */
static int stream_head(struct core *c, void *arg)
{
	struct fwd *fw = arg;
	struct http_exchange *ex = fw->ex;
	if (ex->status != 200 || !is_event_stream_type(ex))
		return 0; /* anything else is collected and answered as a whole */
	fw->site.relay = OBJ_WS_RELAY_SSE;
	struct ws_conn *wc = ws_reserve(c, WS_KIND_STREAM, &fw->site);
	if (!wc)
		return -ENOMEM; /* this core's socket limit: 502 */
	strip_answer_fields(ex);
	http_resp_header(ex, "Duro-Forwarded-To", 17, fw->boxname, strlen(fw->boxname));
	timer_cancel(&fw->timer);
	route_result_of(ex)->wc = wc;
	ex->stream = 1;
	ex->takeover = stream_takeover;
	fw->down = wc;
	fw->ex = NULL;
	fw->held = 1;
	fw->up_live = 1;
	fw->in_cb = 1;
	http_respond(c, ex);
	fw->in_cb = 0;
	return fw->cut ? -ECONNABORTED : 1;
}

/* A piece of the owner's stream: one payload, queued by reference on the client's socket
 * (over the socket's output cap the client is cut off, 1013). */
static int stream_body(struct core *c, void *arg, const char *p, size_t n)
{
	struct fwd *fw = arg;
	if (!fw->down)
		return -ECONNABORTED;
	struct ws_payload *pl = ws_payload_new(c, n);
	if (!pl)
		return -ENOMEM;
	memcpy(pl->data, p, n);
	struct ws_batch *b = ws_batch_new(c, c->index, WS_SEND, pl, pl, 1);
	ws_payload_unref(c, pl);
	if (!b)
		return -ENOMEM;
	b->targets[b->n++] = ws_conn_handle(fw->down);
	fw->in_cb = 1;
	ws_batch_send(c, b);
	fw->in_cb = 0;
	return fw->cut ? -ECONNABORTED : 0;
}

/* Builds the request for the owner: ex's own, its hop fields and any marker replaced by
 * ours; a minted ID's "new" segment replaced by the ID. */
static int compose(struct fwd *fw, const struct obj_cluster_table *t)
{
	const struct http_request *in = &fw->ex->req;
	struct http_request *rq = &fw->rq;
	memcpy(rq, in, offsetof(struct http_request, nheaders));
	rq->nheaders = 0;
	for (unsigned i = 0; i < in->nheaders; i++) {
		const struct http_header *h = &in->headers[i];
		if (hop_field(h->name, h->name_len) || name_is(h->name, h->name_len, "Host") ||
		    name_is(h->name, h->name_len, OBJ_CLUSTER_FWD_HEADER))
			continue;
		if (rq->nheaders + 1 >= DURO_MAX_HEADERS)
			return -E2BIG;
		rq->headers[rq->nheaders++] = *h;
	}
	int n = snprintf(fw->marker, sizeof(fw->marker), "%u %lld", fw->slot,
			 (long long)t->epoch[fw->slot]);
	rq->headers[rq->nheaders++] = (struct http_header){
		.name = OBJ_CLUSTER_FWD_HEADER, .name_len = sizeof(OBJ_CLUSTER_FWD_HEADER) - 1,
		.value = fw->marker, .value_len = (uint32_t)n};
	rq->body = in->body;
	rq->body_len = in->body_len;
	/* HEAD goes as GET: this box writes the head, and its Content-Length must be the
	 * body's (compose_head drops the body of a HEAD answer, not its length). */
	if (rq->method_len == 4 && !memcmp(rq->method, "HEAD", 4)) {
		rq->method = "GET";
		rq->method_len = 3;
	}
	if (fw->minted) {
		/* The path's "new" segment ends at subpath_off; the path lies in the target. */
		const struct route_result *rr = route_result_of(fw->ex);
		if (in->path < in->target || in->path + in->path_len > in->target + in->target_len ||
		    rr->subpath_off < 3)
			return -EINVAL;
		size_t seg_end = (size_t)(in->path - in->target) + rr->subpath_off;
		size_t pre = seg_end - 3;
		size_t post = in->target_len - seg_end;
		if (pre + DURO_ID_HEX + post > sizeof(fw->target))
			return -E2BIG;
		memcpy(fw->target, in->target, pre);
		memcpy(fw->target + pre, fw->idhex, DURO_ID_HEX);
		memcpy(fw->target + pre + DURO_ID_HEX, in->target + seg_end, post);
		rq->target = fw->target;
		rq->target_len = (uint32_t)(pre + DURO_ID_HEX + post);
	}
	return 0;
}

static void attempt(struct core *c, struct fwd *fw)
{
	const struct obj_cluster_table *t = c->obj->cluster;
	struct http_exchange *ex = fw->ex;
	unsigned slot = fw->slot;
	fw->asked_ms = c->now_ms;
	http_resp_reset(ex);
	ex->status = 0;
	if (!t->serving || c->now_ms >= t->deadline_ms) {
		fwd_answer(c, fw, 503, "503 not serving objects: this box is fenced or joining");
		return;
	}
	if (t->owned[slot / 64] >> (slot % 64) & 1) {
		/* The slot came here meanwhile: served on this box like any other. */
		int minted = fw->minted;
		obj_cluster_serve_fn *serve = c->obj->cluster_fwd->serve;
		fwd_free(c, fw);
		serve(c, ex, minted);
		return;
	}
	if (t->owner[slot] == OBJ_CLUSTER_NO_OWNER || t->owner[slot] >= t->nboxes) {
		fw->refused = 0;
		wait_or_give_up(c, fw, "the slot has no owner yet; retry shortly");
		return;
	}
	fw->box = t->owner[slot];
	fw->epoch = t->epoch[slot];
	if (fw->minted) /* the owner's answer is added after it */
		http_resp_header(ex, "Duro-Id", 7, fw->idhex, DURO_ID_HEX);
	const struct obj_cluster_box *b = &t->boxes[fw->box];
	snprintf(fw->boxname, sizeof(fw->boxname), "%s", b->name);
	snprintf(fw->boxaddr, sizeof(fw->boxaddr), "%s", b->addr);
	struct http_fetch *f = &fw->f;
	memset(f, 0, sizeof(*f));
	if (net_parse_dial(b->addr, &f->dial) < 0) {
		char text[300];
		snprintf(text, sizeof(text), "503 not owner: slot %u belongs to box %s whose address "
			 "%s this box cannot dial", slot, b->name, b->addr);
		fwd_answer(c, fw, 503, text);
		return;
	}
	int r = compose(fw, t);
	if (r < 0) {
		fwd_answer(c, fw, r == -E2BIG ? 431 : 400,
			   "request cannot be forwarded to its owner box (too many fields or a "
			   "target too long)");
		return;
	}
	if (ex->req.authority) {
		f->host = ex->req.authority;
		f->host_len = ex->req.authority_len;
	} else {
		f->host = fw->boxaddr;
		f->host_len = strlen(fw->boxaddr);
	}
	f->req = &fw->rq;
	f->out = ex;
	f->max_response_bytes = OBJ_CLUSTER_FWD_MAX_BODY;
	f->deadline_ms = c->now_ms + OBJ_CLUSTER_FWD_TIMEOUT_MS;
	f->done = fetched;
	f->arg = fw;
	if (fw->stream) {
		f->on_head = stream_head;
		f->on_body = stream_body;
	} else {
		/* Behind the others to that box, on one connection: fewer sends and wake-ups
		 * under load, but a held response (a Lock's waiter, a long poll) stalls every
		 * request behind it, since HTTP/1.1 answers in order. Off unless configured. */
		f->pipeline = c->obj->rt->cfg->cluster_pipeline;
	}
	r = c->hclient ? http_client_fetch(c, f) : -EOPNOTSUPP;
	if (r < 0) {
		char text[200];
		snprintf(text, sizeof(text), "502 cannot forward to box %s: %s", b->name, strerror(-r));
		fwd_answer(c, fw, 502, text);
	}
}

void obj_cluster_forward(struct core *c, struct http_exchange *ex, unsigned slot, int minted)
{
	struct obj_cluster_fwd_core *fc = c->obj->cluster_fwd;
	DURO_ASSERT(fc && c->obj->cluster);
	struct fwd *fw = pool_get(&fc->fwds);
	if (!fw) {
		c->obj->ctr.cluster_fwd_failed++;
		http_respond_error(c, ex, 503, "503 too many requests in flight to other boxes "
				   "(or out of memory); retry shortly");
		return;
	}
	memset(fw, 0, offsetof(struct fwd, target));
	list_add_tail(&fc->live, &fw->node);
	fw->ex = ex;
	fw->slot = slot;
	fw->minted = (uint8_t)minted;
	fw->first_ms = c->now_ms;
	fw->stream = (uint8_t)wants_stream(&ex->req);
	if (minted)
		duro_id_to_string(&route_result_of(ex)->id, fw->idhex);
	c->obj->ctr.cluster_fwd++;
	attempt(c, fw);
}
