/* The socket side of the object runtime, on the core that holds a WebSocket or event
 * stream: a site per object keeps what that core needs without asking the object's core
 * (the auto-response pair), turns a socket's messages and close into events sent to the
 * object's core, and reserves and hands over sockets at the upgrade.
 *
 *   socket core A                                object core B
 *   ws_conn --message--> MSG_OBJ_WS_EVENT ----> group (obj_ws_group.c) -> event
 *   ws_conn <--frames--- MSG_WS_BATCH (one per core, encoded once) <- send / broadcast */
#include "obj_ws_int.h"
#include "base_assert.h"
#include "cluster_wsrelay.h"
#include "clock.h"
#include "core.h"
#include "http.h"
#include "request.h"

#include <errno.h>

static struct ws_site *site_find(struct obj_ws_core *w, const struct duro_id *id, unsigned ns)
{
	for (struct ws_site *s = w->sites[obj_ws_bucket(id, w->nsite_buckets)]; s; s = s->hnext)
		if (obj_ws_same(&s->id, s->ns, id, ns))
			return s;
	return NULL;
}

static struct ws_site *site_get(struct core *c, const struct duro_id *id, unsigned ns)
{
	struct obj_ws_core *w = c->obj->ws;
	struct ws_site *s = site_find(w, id, ns);
	if (s) {
		s->refs++;
		return s;
	}
	TABLE_GROW(struct ws_site, w->sites, w->nsite_buckets, w->nsites);
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->id = *id;
	s->ns = (uint16_t)ns;
	s->refs = 1;
	size_t b = obj_ws_bucket(id, w->nsite_buckets);
	s->hnext = w->sites[b];
	w->sites[b] = s;
	w->nsites++;
	return s;
}

static void site_put(struct core *c, struct ws_site *s)
{
	struct obj_ws_core *w = c->obj->ws;
	DURO_ASSERT(s->refs > 0);
	if (--s->refs)
		return;
	struct ws_site **pp = &w->sites[obj_ws_bucket(&s->id, w->nsite_buckets)];
	while (*pp != s)
		pp = &(*pp)->hnext;
	*pp = s->hnext;
	w->nsites--;
	free(s->auto_pair);
	free(s);
}

/* ---- on the socket's core ---- */

static struct ws_event *event_new(struct core *c, struct ws_conn *wc, enum ws_event_what what)
{
	struct obj_ws_core *w = c->obj->ws;
	struct ws_event *ev = pool_get(&w->events);
	if (!ev) {
		w->ctr.events_lost++;
		return NULL;
	}
	struct ws_site *s = ws_conn_user(wc);
	ev->msg.type = MSG_OBJ_WS_EVENT;
	ev->msg.src_core = (uint16_t)c->index;
	ev->msg.next = NULL;
	ev->what = (uint8_t)what;
	ev->binary = ev->clean = ev->error = 0;
	ev->code = 0;
	ev->reason_len = 0;
	ev->ns = s->ns;
	ev->id = s->id;
	ev->member = ws_conn_ref(wc);
	ev->data = NULL;
	ev->time_ms = 0;
	ev->err = 0;
	ev->reconnect = 0;
	return ev;
}

static void event_send(struct core *c, struct ws_event *ev)
{
	core_send(c, slotmap_owner(&c->obj->view.map, ev->id.bytes), &ev->msg);
}

static void on_socket_message(struct core *c, struct ws_conn *wc, int binary, struct buf *msg)
{
	struct obj_ws_core *w = c->obj->ws;
	struct ws_site *s = ws_conn_user(wc);
	if (s->relay) {
		obj_cluster_wsr_message(c, wc, binary, msg);
		return;
	}
	if (!binary && s->auto_pair && msg->len == s->auto_req_len &&
	    memcmp(msg->data, s->auto_pair, msg->len) == 0) {
		/* Answered here: the object, maybe hibernated, is not woken. */
		buf_unref(&c->bufs, msg);
		if (ws_send_local(c, wc, WS_OP_TEXT, s->auto_pair + s->auto_req_len,
				  s->auto_res_len) < 0)
			return;
		w->ctr.auto_responses++;
		struct ws_event *ev = event_new(c, wc, EV_AUTO);
		if (ev) {
			ev->time_ms = (int64_t)clock_wall_ms();
			event_send(c, ev);
		}
		return;
	}
	struct ws_event *ev = event_new(c, wc, EV_MESSAGE);
	if (!ev) {
		buf_unref(&c->bufs, msg);
		return;
	}
	ev->binary = (uint8_t)binary;
	ev->data = msg;
	event_send(c, ev);
}

static void on_socket_closed(struct core *c, struct ws_conn *wc, unsigned code, const char *reason,
			     size_t rlen, int clean)
{
	struct ws_site *s = ws_conn_user(wc);
	if (s->relay == OBJ_WS_RELAY_SSE) {
		obj_cluster_sse_closed(c, wc);
		return;
	}
	if (s->relay) {
		obj_cluster_wsr_closed(c, wc, code, reason, rlen, clean);
		return;
	}
	struct ws_event *ev = event_new(c, wc, EV_CLOSE);
	if (ev) {
		ev->code = (uint16_t)code;
		ev->clean = (uint8_t)clean;
		ev->error = !clean && code != WS_CLOSE_ABNORMAL;
		if (rlen > sizeof(ev->reason))
			rlen = sizeof(ev->reason);
		if (rlen)
			memcpy(ev->reason, reason, rlen);
		ev->reason_len = (uint16_t)rlen;
		event_send(c, ev);
	}
	site_put(c, s);
}

/* An outbound socket opened, or never will (then the ws layer frees it: no on_closed). */
static void on_socket_open(struct core *c, struct ws_conn *wc, int err)
{
	struct ws_site *s = ws_conn_user(wc);
	if (s->relay) {
		obj_cluster_wsr_open(c, wc, err);
		return;
	}
	struct ws_event *ev = event_new(c, wc, EV_OPEN);
	if (ev) {
		ev->err = (int16_t)err;
		event_send(c, ev);
	}
	if (err < 0)
		site_put(c, s);
}

static const struct ws_events socket_events = { .on_message = on_socket_message,
						.on_closed = on_socket_closed,
						.on_open = on_socket_open };

struct ws_conn *obj_ws_site_reserve(struct core *c, const struct duro_id *id, unsigned ns)
{
	struct ws_site *s = site_get(c, id, ns);
	struct ws_conn *wc = s ? ws_reserve(c, WS_KIND_SOCKET, s) : NULL;
	if (!wc && s)
		site_put(c, s);
	return wc;
}

void obj_ws_site_unreserve(struct core *c, struct ws_conn *wc)
{
	struct ws_site *s = ws_conn_user(wc);
	ws_release(c, wc, 0);
	site_put(c, s);
}

const struct ws_events *obj_ws_events(void) { return &socket_events; }

void obj_ws_event_free(struct core *c, struct ws_event *ev)
{
	if (ev->data)
		buf_unref(&c->bufs, ev->data);
	pool_put(&c->obj->ws->events, ev);
}

static void on_event_done(struct core *c, struct core_msg *m)
{
	obj_ws_event_free(c, (struct ws_event *)m);
}

/* The HTTP exchange of an upgrade ends: hand the connection over, or give the socket up. */
static void takeover(struct core *c, struct http_exchange *ex, struct net_conn *conn,
		     const char *rest, size_t len)
{
	struct route_result *rr = route_result_of(ex);
	struct ws_conn *wc = rr->wc;
	rr->wc = NULL;
	if (conn) {
		ws_conn_set_ref(wc, rr->member);
		ws_takeover(c, wc, conn, rest, len);
		return;
	}
	struct ws_site *s = ws_conn_user(wc);
	if (rr->accepted) {
		ws_conn_set_ref(wc, rr->member);
		ws_release(c, wc, 1); /* on_socket_closed tells the object, drops the site */
	} else {
		ws_release(c, wc, 0);
		site_put(c, s);
	}
}

static int wants_events(const struct http_request *req)
{
	size_t n;
	const char *v = http_find_header(req, "Accept", &n);
	return v && memmem(v, n, "text/event-stream", 17) != NULL;
}

int obj_ws_route(struct core *c, struct http_exchange *ex)
{
	struct route_result *rr = route_result_of(ex);
	struct obj_ws_core *w = c->obj->ws;
	rr->wc = NULL;
	rr->ws_handle = 0;
	rr->accepted = 0;
	rr->member = 0;
	enum ws_kind kind;
	if (ws_is_upgrade(&ex->req))
		kind = WS_KIND_SOCKET;
	else if (wants_events(&ex->req))
		kind = WS_KIND_STREAM;
	else
		return 0;
	struct ws_site *s = site_get(c, &rr->id, rr->ns);
	struct ws_conn *wc = s ? ws_reserve(c, kind, s) : NULL;
	if (!wc) {
		if (s)
			site_put(c, s);
		w->ctr.refused_core++;
		http_respond_error(c, ex, 503, "too many WebSockets on this core");
		return -1;
	}
	rr->wc = wc;
	rr->ws_handle = ws_conn_handle(wc);
	rr->ws_kind = (uint8_t)kind;
	ex->takeover = takeover;
	return 0;
}

void obj_ws_site_msg(struct core *c, struct core_msg *m)
{
	struct ws_site_msg *sm = (struct ws_site_msg *)m;
	if (sm->back) {
		free(sm->pair);
		free(sm);
		return;
	}
	struct ws_site *s = site_find(c->obj->ws, &sm->id, sm->ns);
	if (s) {
		char *old = s->auto_pair;
		s->auto_pair = sm->pair;
		s->auto_req_len = sm->req_len;
		s->auto_res_len = sm->res_len;
		sm->pair = old; /* freed at home */
	}
	sm->back = 1;
	core_send(c, sm->msg.src_core, &sm->msg);
}

/* ---- per core ---- */

int obj_ws_site_init(struct core *c)
{
	struct obj_ws_core *w = c->obj->ws;
	w->nsite_buckets = 256;
	w->sites = calloc(w->nsite_buckets, sizeof(*w->sites));
	if (!w->sites)
		return -ENOMEM;
	pool_init(&w->events, "ws_event", sizeof(struct ws_event), 1024, 0);
	core_set_msg_handler(c, MSG_OBJ_WS_EVENT_DONE, on_event_done);
	core_set_msg_handler(c, MSG_OBJ_WS_SITE, obj_ws_site_msg);
	return 0;
}

void obj_ws_site_fini(struct core *c)
{
	struct obj_ws_core *w = c->obj->ws;
	for (size_t i = 0; i < w->nsite_buckets && w->sites; i++)
		for (struct ws_site *s = w->sites[i], *nx; s; s = nx) {
			nx = s->hnext;
			free(s->auto_pair);
			free(s);
		}
	free(w->sites);
	w->sites = NULL;
	pool_destroy(&w->events);
}
