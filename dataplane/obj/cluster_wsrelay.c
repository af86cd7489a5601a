/* Cluster mode's WebSockets for a slot another box owns: the client's socket (down) stays
 * on the core that accepted it; a relay socket (up) from that core to the owner box opens
 * the same upgrade there, marked with the slot and epoch (Duro-Forwarded), so the object
 * holds an ordinary socket of its own and every WebSocket feature works as on one box.
 *
 *   client ==down== edge core --up: ws client, masked--> owner box: object's socket
 *
 *   DIALING --owner's 101--> 101 to the client --> OPEN
 *      `--refused (503) or no connection: wait for the table, ask again (2 s), else answer
 *   OPEN --up dropped (1006), or closed by the owner's runtime (1012 slot moved, 1001
 *   server shutting down)--> LOST:
 *      the client's messages wait (a few); the owner is looked up and dialed again
 *      (REDIALING) with the same request, so the class accepts the socket again there;
 *      no owner within OBJ_CLUSTER_WSR_REROUTE_MS: the client is closed 1013.
 *   any other close of either side is passed to the other (a dropped client: up aborted,
 *   so the object sees 1006 as it would on one box).
 *
 * Frames are relayed as whole messages; pings are answered on each hop. */
#include "cluster_wsrelay.h"
#include "base_assert.h"
#include "buf.h"
#include "cluster_forward.h"
#include "cluster_gate.h"
#include "core.h"
#include "http.h"
#include "log.h"
#include "obj.h"
#include "obj_ws_int.h"
#include "request.h"
#include "slotmap.h"
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define WSR_SLAB 64
#define WSR_FIELDS_MAX 8192

enum wsr_state { WSR_DIALING, WSR_OPEN, WSR_LOST, WSR_REDIALING };

enum { REF_DOWN = 1, REF_UP = 2 };

struct wsr {
	struct ws_site site; /* first: the sockets' user; site.relay = 1 */
	struct list_node node;
	struct timer timer;
	struct http_exchange *ex; /* the client's upgrade until it is answered */
	struct ws_conn *down, *up;
	uint64_t first_ms, asked_ms, gen;
	unsigned slot;
	uint8_t state;
	uint8_t held; /* the 101 is on its way: the http layer's takeover comes */
	unsigned status; /* the owner's last non-101 answer, or 0 */
	unsigned npend;
	size_t pend_bytes;
	struct buf *pend[OBJ_CLUSTER_WSR_MAX_PENDING];
	uint8_t pend_bin[OBJ_CLUSTER_WSR_MAX_PENDING];
	char accept[29];
	char boxname[64];
	char *target, *host, *fields; /* the request as the owner is sent it (malloc) */
	size_t fields_len;
	uint64_t state_id; /* the client socket's, sent on every dial (cluster_wsstate.h) */
};

/* On the owner: a relayed socket this core holds and the edge that holds its client. */
struct wsr_in {
	ws_handle h;
	int64_t incarnation;
	uint16_t slot;
	char box[OBJ_CLUSTER_WSR_BOX_MAX + 1];
};

struct obj_cluster_wsr_core {
	struct pool relays;
	struct list_node live;
	struct wsr_in *in; /* OBJ_CLUSTER_WSR_MAX_PER_CORE entries, nin in use */
	unsigned nin;
};

int obj_cluster_wsr_init(struct core *c)
{
	if (!c->obj->cluster)
		return 0;
	struct obj_cluster_wsr_core *wc = calloc(1, sizeof(*wc));
	if (!wc)
		return -ENOMEM;
	pool_init(&wc->relays, "cluster_wsr", sizeof(struct wsr), WSR_SLAB,
		  OBJ_CLUSTER_WSR_MAX_PER_CORE);
	list_init(&wc->live);
	wc->in = calloc(OBJ_CLUSTER_WSR_MAX_PER_CORE, sizeof(*wc->in));
	if (!wc->in) {
		free(wc);
		return -ENOMEM;
	}
	c->obj->cluster_wsr = wc;
	return 0;
}

static void pend_drop(struct core *c, struct wsr *r)
{
	for (unsigned i = 0; i < r->npend; i++)
		buf_unref(&c->bufs, r->pend[i]);
	r->npend = 0;
	r->pend_bytes = 0;
}

/* What a relay holds besides its sockets and exchange: its timer, the messages waiting,
 * the upgrade's copy; and its place in the core's list. */
static void wsr_unlink(struct core *c, struct wsr *r)
{
	timer_cancel(&r->timer);
	pend_drop(c, r);
	free(r->target);
	free(r->host);
	free(r->fields);
	list_del(&r->node);
}

void obj_cluster_wsr_fini(struct core *c)
{
	struct obj_cluster_wsr_core *wc = c->obj->cluster_wsr;
	if (!wc)
		return;
	/* Shutting down: the sockets and exchanges go with the layers that hold them. */
	while (!list_empty(&wc->live))
		wsr_unlink(c, LIST_CONTAINER(wc->live.next, struct wsr, node));
	pool_destroy(&wc->relays);
	free(wc->in);
	free(wc);
	c->obj->cluster_wsr = NULL;
}

static void wsr_free(struct core *c, struct wsr *r)
{
	wsr_unlink(c, r);
	if (r->state != WSR_DIALING)
		c->obj->ctr.cluster_ws_open--;
	pool_put(&c->obj->cluster_wsr->relays, r);
}

static void maybe_free(struct core *c, struct wsr *r)
{
	if (!r->down && !r->up && !r->ex && !r->held)
		wsr_free(c, r);
}

static struct wsr *relay_of(struct ws_conn *wc)
{
	struct ws_site *s = ws_conn_user(wc);
	DURO_ASSERT(s->relay);
	return (struct wsr *)s;
}

static int name_is(const char *n, size_t len, const char *want)
{
	return len == strlen(want) && !strncasecmp(n, want, len);
}

/* Fields the relay's own request writes, or that describe the client's hop only. */
static int own_field(const char *n, size_t len)
{
	static const char *const names[] = {
		"Connection", "Keep-Alive", "Transfer-Encoding", "Content-Length",
		"Proxy-Connection", "TE", "Upgrade", "Expect", "Host", "Sec-WebSocket-Key",
		"Sec-WebSocket-Version", "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol",
		OBJ_CLUSTER_FWD_HEADER, OBJ_CLUSTER_WSR_HEADER, OBJ_CLUSTER_WSSTATE_HEADER,
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (name_is(n, len, names[i]))
			return 1;
	return 0;
}

/* A close code that may go on the wire for one received or raised on the other side. */
static unsigned wire_code(unsigned code)
{
	if (code < 1000 || code == WS_CLOSE_NO_STATUS || code == WS_CLOSE_ABNORMAL ||
	    code == 1015 || code >= 5000)
		return WS_CLOSE_NORMAL;
	return code;
}

static void close_with(struct core *c, struct ws_conn *wc, unsigned code, const char *reason,
		       size_t rlen)
{
	char rb[WS_MAX_CONTROL + 1];
	if (rlen > WS_MAX_CONTROL - 2)
		rlen = WS_MAX_CONTROL - 2;
	memcpy(rb, reason ? reason : "", rlen);
	rb[rlen] = 0;
	ws_close_local(c, wc, wire_code(code), rlen ? rb : NULL);
}

static void dial(struct core *c, struct wsr *r);

/* The client's upgrade is answered without a socket: its reservation goes. */
static void answer_error(struct core *c, struct wsr *r, int status, const char *text)
{
	struct http_exchange *ex = r->ex;
	r->ex = NULL;
	if (r->down) {
		ws_release(c, r->down, 0);
		r->down = NULL;
	}
	c->obj->ctr.cluster_ws_failed++;
	maybe_free(c, r);
	http_resp_error(ex, status, text);
	http_resp_header(ex, "Retry-After", 11, "1", 1);
	http_respond(c, ex);
}

static void give_up(struct core *c, struct wsr *r, const char *why)
{
	if (r->state == WSR_DIALING) {
		char text[300];
		int st = r->status && r->status != 503 ? (int)r->status : 503;
		if (r->status)
			snprintf(text, sizeof(text), "%d the owner box %s answered the relayed upgrade "
				 "with %u", st, r->boxname, r->status);
		else
			snprintf(text, sizeof(text), "%d slot %u: %s", st, r->slot, why);
		answer_error(c, r, st, text);
		return;
	}
	/* Open to the client: it is told to come back. */
	c->obj->ctr.cluster_ws_failed++;
	log_info("core %u: relayed WebSocket of slot %u closed 1013: %s", c->index, r->slot, why);
	struct ws_conn *down = r->down;
	if (!down) {
		maybe_free(c, r);
		return;
	}
	ws_close_local(c, down, WS_CLOSE_TRY_LATER, "no owner box for this object; reconnect");
}

static void tick(struct core *c, struct timer *t)
{
	struct wsr *r = LIST_CONTAINER(t, struct wsr, timer);
	const struct obj_cluster_table *tab = c->obj->cluster;
	if (tab->gen != r->gen || c->now_ms >= r->asked_ms + OBJ_CLUSTER_FWD_REASK_MS ||
	    c->now_ms >= r->first_ms + (r->state == WSR_DIALING ? OBJ_CLUSTER_FWD_RETRY_MS
								 : OBJ_CLUSTER_WSR_REROUTE_MS)) {
		dial(c, r);
		return;
	}
	timer_arm(c, &r->timer, c->now_ms + OBJ_CLUSTER_FWD_TICK_MS, tick);
}

static void wait_or_give_up(struct core *c, struct wsr *r, const char *why)
{
	uint64_t bound = r->state == WSR_DIALING ? OBJ_CLUSTER_FWD_RETRY_MS
						 : OBJ_CLUSTER_WSR_REROUTE_MS;
	if (c->now_ms >= r->first_ms + bound) {
		give_up(c, r, why);
		return;
	}
	r->gen = c->obj->cluster->gen;
	timer_arm(c, &r->timer, c->now_ms + OBJ_CLUSTER_FWD_TICK_MS, tick);
}

/* Dials the slot's owner now (always the last thing its caller does: the socket's report
 * may come at once and free r). */
static void dial(struct core *c, struct wsr *r)
{
	const struct obj_cluster_table *t = c->obj->cluster;
	unsigned slot = r->slot;
	r->asked_ms = c->now_ms;
	if (r->state != WSR_DIALING)
		c->obj->ctr.cluster_ws_retries++;
	if (!t->serving || c->now_ms >= t->deadline_ms) {
		if (r->state == WSR_DIALING) {
			r->status = 0;
			answer_error(c, r, 503, "503 not serving objects: this box is fenced or joining");
			return;
		}
		wait_or_give_up(c, r, "this box is fenced");
		return;
	}
	/* A slot this box owns is dialed at this box's own address like any other: the
	 * object holds the relay's far end, and the client's end stays here when the slot
	 * moves away. */
	if (t->owner[slot] == OBJ_CLUSTER_NO_OWNER || t->owner[slot] >= t->nboxes) {
		wait_or_give_up(c, r, "the slot has no owner yet");
		return;
	}
	const struct obj_cluster_box *b = &t->boxes[t->owner[slot]];
	snprintf(r->boxname, sizeof(r->boxname), "%s", b->name);
	struct net_dial d;
	if (net_parse_dial(b->addr, &d) < 0) {
		give_up(c, r, "the owner's address cannot be dialed");
		return;
	}
	/* This box by its incarnation: the owner watches that member (none found: unwatched). */
	const char *me = NULL;
	for (unsigned i = 0; i < t->nboxes && !me; i++)
		if (t->boxes[i].live && t->boxes[i].incarnation == t->incarnation &&
		    strlen(t->boxes[i].name) <= OBJ_CLUSTER_WSR_BOX_MAX && !strchr(t->boxes[i].name, ' '))
			me = t->boxes[i].name;
	char f[WSR_FIELDS_MAX + 256];
	int n = snprintf(f, sizeof(f), "%.*s%s: %u %lld\r\n", (int)r->fields_len, r->fields,
			 OBJ_CLUSTER_FWD_HEADER, slot, (long long)t->epoch[slot]);
	if (me && n > 0 && (size_t)n < sizeof(f))
		n += snprintf(f + n, sizeof(f) - (size_t)n, "%s: %s %lld%s\r\n",
			      OBJ_CLUSTER_WSR_HEADER, me, (long long)t->incarnation,
			      r->state == WSR_DIALING ? "" : " reopen");
	if (n > 0 && (size_t)n < sizeof(f))
		n += snprintf(f + n, sizeof(f) - (size_t)n, "%s: %016llx\r\n",
			      OBJ_CLUSTER_WSSTATE_HEADER, (unsigned long long)r->state_id);
	if (n < 0 || (size_t)n >= sizeof(f)) {
		give_up(c, r, "the request is too large to relay");
		return;
	}
	struct ws_conn *up = ws_reserve(c, WS_KIND_SOCKET, &r->site);
	if (!up) {
		wait_or_give_up(c, r, "too many WebSockets on this core");
		return;
	}
	ws_conn_set_ref(up, REF_UP);
	int e = ws_client_prepare_fields(c, up, &d, r->host ? r->host : b->addr, r->target, f,
					 (size_t)n);
	if (e < 0) {
		ws_release(c, up, 0);
		give_up(c, r, "the relay socket could not be prepared");
		return;
	}
	r->up = up;
	if (r->state == WSR_LOST)
		r->state = WSR_REDIALING;
	ws_client_start(c, up);
}

/* The http layer hands the client's connection over after the 101 (conn NULL: it left). */
static void takeover(struct core *c, struct http_exchange *ex, struct net_conn *conn,
		     const char *rest, size_t len)
{
	struct route_result *rr = route_result_of(ex);
	struct ws_conn *down = rr->wc;
	rr->wc = NULL;
	struct wsr *r = relay_of(down); /* held until here */
	if (conn) {
		ws_takeover(c, down, conn, rest, len);
		r->held = 0;
		maybe_free(c, r); /* when both sides ended meanwhile */
		return;
	}
	ws_release(c, down, 0);
	r->down = NULL;
	r->held = 0;
	if (r->up) {
		ws_abort_local(c, r->up); /* the owner sees the client gone (1006) */
		return;
	}
	maybe_free(c, r);
}

static void opened(struct core *c, struct wsr *r)
{
	if (r->state == WSR_DIALING) {
		struct http_exchange *ex = r->ex;
		r->ex = NULL;
		r->state = WSR_OPEN;
		c->obj->ctr.cluster_ws_relayed++;
		c->obj->ctr.cluster_ws_open++;
		http_resp_reset(ex);
		http_resp_status(ex, 101);
		http_resp_header(ex, "Upgrade", 7, "websocket", 9);
		http_resp_header(ex, "Connection", 10, "Upgrade", 7);
		http_resp_header(ex, "Sec-WebSocket-Accept", 20, r->accept, 28);
		http_resp_header(ex, "Duro-Forwarded-To", 17, r->boxname, strlen(r->boxname));
		ex->takeover = takeover;
		r->held = 1;
		http_respond(c, ex);
		return;
	}
	/* Found the owner again: what the client said meanwhile goes first. */
	r->state = WSR_OPEN;
	c->obj->ctr.cluster_ws_rerouted++;
	for (unsigned i = 0; i < r->npend; i++) {
		struct buf *m = r->pend[i];
		if (ws_send_local(c, r->up, r->pend_bin[i] ? WS_OP_BINARY : WS_OP_TEXT, m->data,
				  m->len) == 0)
			c->obj->ctr.cluster_ws_to_owner++;
	}
	pend_drop(c, r);
}

void obj_cluster_wsr_open(struct core *c, struct ws_conn *wc, int err)
{
	struct wsr *r = relay_of(wc);
	DURO_ASSERT(wc == r->up);
	if (err == 0) {
		opened(c, r);
		return;
	}
	r->up = NULL;
	unsigned status = ws_client_failed_status(c);
	if (r->state == WSR_REDIALING)
		r->state = WSR_LOST;
	if (!r->down && !r->ex) {
		maybe_free(c, r);
		return;
	}
	if (err == -ECANCELED) {
		give_up(c, r, "shutting down");
		return;
	}
	r->status = status;
	if (status && status != 503 && r->state == WSR_DIALING) {
		give_up(c, r, "refused"); /* the class's own answer: not asked again */
		return;
	}
	wait_or_give_up(c, r, status ? "refused by the owner" : "the owner box cannot be reached");
}

void obj_cluster_wsr_message(struct core *c, struct ws_conn *wc, int binary, struct buf *msg)
{
	struct wsr *r = relay_of(wc);
	enum ws_opcode op = binary ? WS_OP_BINARY : WS_OP_TEXT;
	if (wc == r->up) {
		if (r->down && ws_send_local(c, r->down, op, msg->data, msg->len) == 0)
			c->obj->ctr.cluster_ws_from_owner++;
		buf_unref(&c->bufs, msg);
		return;
	}
	if (r->state == WSR_OPEN && r->up) {
		if (ws_send_local(c, r->up, op, msg->data, msg->len) == 0)
			c->obj->ctr.cluster_ws_to_owner++;
		buf_unref(&c->bufs, msg);
		return;
	}
	/* No owner socket right now: kept for the next one, a few. */
	if (r->npend >= OBJ_CLUSTER_WSR_MAX_PENDING ||
	    r->pend_bytes + msg->len > OBJ_CLUSTER_WSR_MAX_PENDING_BYTES) {
		buf_unref(&c->bufs, msg);
		c->obj->ctr.cluster_ws_failed++;
		ws_close_local(c, wc, WS_CLOSE_TRY_LATER,
			       "too many messages while the object's box is found again");
		return;
	}
	r->pend[r->npend] = msg;
	r->pend_bin[r->npend++] = (uint8_t)binary;
	r->pend_bytes += msg->len;
}

/* The owner's socket ended in a way that says the object may live on elsewhere now. */
static int reroutable(unsigned code, const char *reason, size_t rlen, int clean)
{
	static const char shut[] = "server shutting down";
	static const char moved[] = OBJ_CLUSTER_WSR_MOVED;
	if (code == WS_CLOSE_ABNORMAL && !clean)
		return 1;
	/* Only the runtime's own closes: an object's 1001 or 1012 reaches the client. */
	if (code == OBJ_CLUSTER_WSR_MOVED_CODE)
		return rlen == sizeof(moved) - 1 && !memcmp(reason, moved, rlen);
	return code == WS_CLOSE_GOING_AWAY && rlen == sizeof(shut) - 1 &&
	       !memcmp(reason, shut, rlen);
}

void obj_cluster_wsr_closed(struct core *c, struct ws_conn *wc, unsigned code,
			    const char *reason, size_t rlen, int clean)
{
	struct wsr *r = relay_of(wc);
	if (wc == r->down) {
		r->down = NULL;
		struct ws_conn *up = r->up;
		if (!up) {
			maybe_free(c, r);
			return;
		}
		/* Tail calls: the other side's report may free r. */
		if (r->state != WSR_OPEN || (code == WS_CLOSE_ABNORMAL && !clean))
			ws_abort_local(c, up);
		else
			close_with(c, up, code, reason, rlen);
		return;
	}
	DURO_ASSERT(wc == r->up);
	r->up = NULL;
	if (!r->down) {
		maybe_free(c, r);
		return;
	}
	if (r->state == WSR_OPEN && reroutable(code, reason, rlen, clean)) {
		r->state = WSR_LOST;
		r->first_ms = c->now_ms;
		r->gen = c->obj->cluster->gen;
		log_info("core %u: the owner's socket of a relayed WebSocket (slot %u, box %s) "
			 "ended (%u): finding the object's box again", c->index, r->slot, r->boxname,
			 code);
		timer_arm(c, &r->timer, c->now_ms + OBJ_CLUSTER_FWD_TICK_MS, tick);
		return;
	}
	close_with(c, r->down, code, reason, rlen);
}

/* The client's fields the owner is sent again with each dial, "name: value\r\n" each. */
static int copy_request(struct wsr *r, const struct http_request *rq)
{
	const char *t = rq->target;
	size_t tl = rq->target_len;
	if (rq->absolute_form) {
		if (rq->path < rq->target || rq->path > rq->target + rq->target_len)
			return -EINVAL;
		tl = (size_t)(rq->target + rq->target_len - rq->path);
		t = rq->path;
	}
	if (memchr(t, 0, tl))
		return -EINVAL;
	r->target = strndup(t, tl);
	if (rq->authority && rq->authority_len && !memchr(rq->authority, 0, rq->authority_len))
		r->host = strndup(rq->authority, rq->authority_len);
	r->fields = malloc(WSR_FIELDS_MAX);
	if (!r->target || !r->fields)
		return -ENOMEM;
	size_t n = 0;
	for (unsigned i = 0; i < rq->nheaders; i++) {
		const struct http_header *h = &rq->headers[i];
		if (own_field(h->name, h->name_len) || memchr(h->value, '\r', h->value_len) ||
		    memchr(h->value, '\n', h->value_len) || memchr(h->value, 0, h->value_len))
			continue;
		size_t need = h->name_len + 2 + h->value_len + 2;
		if (n + need > WSR_FIELDS_MAX)
			return -E2BIG;
		memcpy(r->fields + n, h->name, h->name_len);
		n += h->name_len;
		memcpy(r->fields + n, ": ", 2);
		n += 2;
		memcpy(r->fields + n, h->value, h->value_len);
		n += h->value_len;
		memcpy(r->fields + n, "\r\n", 2);
		n += 2;
	}
	r->fields_len = n;
	return 0;
}

void obj_cluster_wsr_upgrade(struct core *c, struct http_exchange *ex, unsigned slot, int minted)
{
	struct obj_cluster_wsr_core *wc = c->obj->cluster_wsr;
	DURO_ASSERT(wc && c->obj->cluster);
	if (minted) {
		c->obj->ctr.cluster_ws_failed++;
		http_respond_error(c, ex, 503, "503 a WebSocket to a new object (.../new) cannot be "
				   "relayed to its owner box; connect with its ID");
		return;
	}
	char accept[29];
	int h = ws_handshake_check(&ex->req, accept);
	if (h == -426) {
		http_resp_error(ex, 426, "unsupported WebSocket version: this server speaks 13");
		http_resp_header(ex, "Sec-WebSocket-Version", 21, "13", 2);
		http_respond(c, ex);
		return;
	}
	if (h < 0) {
		http_respond_error(c, ex, 400, "malformed WebSocket upgrade request");
		return;
	}
	struct wsr *r = pool_get(&wc->relays);
	if (!r) {
		c->obj->ctr.cluster_ws_failed++;
		http_respond_error(c, ex, 503, "503 too many relayed WebSockets on this core");
		return;
	}
	memset(r, 0, sizeof(*r));
	r->site.relay = 1;
	r->site.id = route_result_of(ex)->id;
	r->site.ns = route_result_of(ex)->ns;
	list_add_tail(&wc->live, &r->node);
	memcpy(r->accept, accept, sizeof(r->accept));
	r->slot = slot;
	r->state = WSR_DIALING;
	r->first_ms = c->now_ms;
	r->ex = ex;
	/* Unguessable, so that no other client's socket is given this one's attachment. */
	if (getrandom(&r->state_id, sizeof(r->state_id), 0) != (ssize_t)sizeof(r->state_id) ||
	    !r->state_id)
		r->state_id = (c->now_ns ^ (uint64_t)(uintptr_t)r) | 1;
	int e = copy_request(r, &ex->req);
	if (e < 0) {
		answer_error(c, r, e == -E2BIG ? 431 : e == -ENOMEM ? 503 : 400,
			     "the upgrade request cannot be relayed to its owner box");
		return;
	}
	r->down = ws_reserve(c, WS_KIND_SOCKET, &r->site);
	if (!r->down) {
		answer_error(c, r, 503, "503 too many WebSockets on this core");
		return;
	}
	ws_conn_set_ref(r->down, REF_DOWN);
	route_result_of(ex)->wc = r->down;
	dial(c, r);
}

/* ---- on the owner: relayed sockets and their edges ---- */

void obj_cluster_wsr_inbound(struct core *c, struct http_exchange *ex)
{
	struct obj_cluster_wsr_core *wc = c->obj->cluster_wsr;
	struct route_result *rr = route_result_of(ex);
	if (!wc || !rr->ws_handle || rr->ws_kind != WS_KIND_SOCKET)
		return;
	size_t n, mn;
	const char *v = http_find_header(&ex->req, OBJ_CLUSTER_WSR_HEADER, &n);
	if (!v || !http_find_header(&ex->req, OBJ_CLUSTER_FWD_HEADER, &mn))
		return;
	struct wsr_in e;
	int reopen;
	if (obj_cluster_parse_relay(v, n, e.box, &e.incarnation, &reopen) < 0)
		return; /* served, just not watched */
	if (wc->nin == OBJ_CLUSTER_WSR_MAX_PER_CORE) {
		obj_cluster_wsr_table(c); /* drops the entries of sockets gone */
		if (wc->nin == OBJ_CLUSTER_WSR_MAX_PER_CORE)
			return;
	}
	e.h = rr->ws_handle;
	e.slot = (uint16_t)slotmap_slot(rr->id.bytes);
	wc->in[wc->nin++] = e;
}

static int edge_live(const struct obj_cluster_table *t, const struct wsr_in *e)
{
	for (unsigned i = 0; i < t->nboxes; i++)
		if (t->boxes[i].live && t->boxes[i].incarnation == e->incarnation &&
		    !strcmp(t->boxes[i].name, e->box))
			return 1;
	return 0;
}

void obj_cluster_wsr_table(struct core *c)
{
	struct obj_cluster_wsr_core *wc = c->obj->cluster_wsr;
	const struct obj_cluster_table *t = c->obj->cluster;
	if (!wc || !t)
		return;
	unsigned keep = 0;
	for (unsigned i = 0; i < wc->nin; i++) {
		struct wsr_in e = wc->in[i];
		struct ws_conn *s = ws_lookup(c, e.h);
		if (!s)
			continue; /* gone */
		if (!ws_is_open(s)) {
			wc->in[keep++] = e; /* not accepted yet, or closing */
			continue;
		}
		if (!edge_live(t, &e)) {
			/* The box holding the client left the cluster: as if the client dropped. */
			c->obj->ctr.cluster_ws_edge_lost++;
			ws_abort_local(c, s);
			continue;
		}
		if (!(t->owned[e.slot / 64] >> (e.slot % 64) & 1)) {
			c->obj->ctr.cluster_ws_slot_moved++;
			ws_close_local(c, s, OBJ_CLUSTER_WSR_MOVED_CODE, OBJ_CLUSTER_WSR_MOVED);
			continue;
		}
		wc->in[keep++] = e;
	}
	wc->nin = keep;
}
