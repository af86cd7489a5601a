/* The object side of WebSockets and event streams, on the object's core: a group per
 * object holds its sockets (handles, tags, attachments, auto-response) and outlives the
 * object while it hibernates. The duro_ws_* calls of duro.h live here; what an object
 * sends goes to each socket's core as one batch per core, encoded once, behind the
 * output gate. Socket events arriving from the sites update membership, then run as
 * events of the object (through the run function given at init). */
#include "obj_ws_int.h"
#include "base_assert.h"
#include "cluster_wsstate.h"
#include "commit.h"
#include "core.h"
#include "http.h"
#include "log.h"
#include "request.h"

#include <errno.h>

static unsigned max_per_object(struct core *c) { return c->obj->ws->cfg->max_per_object; }

static struct ws_group *group_find(struct obj_ws_core *w, const struct duro_id *id, unsigned ns)
{
	for (struct ws_group *g = w->groups[obj_ws_bucket(id, w->ngroup_buckets)]; g; g = g->hnext)
		if (obj_ws_same(&g->id, g->ns, id, ns))
			return g;
	return NULL;
}

static struct ws_group *group_new(struct core *c, const struct duro_id *id, unsigned ns)
{
	struct obj_ws_core *w = c->obj->ws;
	TABLE_GROW(struct ws_group, w->groups, w->ngroup_buckets, w->ngroups);
	struct ws_group *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->id = *id;
	g->ns = (uint16_t)ns;
	g->free_head = MEMBER_NONE;
	size_t b = obj_ws_bucket(&g->id, w->ngroup_buckets);
	g->hnext = w->groups[b];
	w->groups[b] = g;
	w->ngroups++;
	return g;
}

struct ws_group *obj_ws_group_of(struct core *c, const struct duro_id *id, unsigned ns, int create)
{
	struct ws_group *g = group_find(c->obj->ws, id, ns);
	return g || !create ? g : group_new(c, id, ns);
}

static struct ws_group *group_get(struct core *c, struct object *obj)
{
	if (obj->group)
		return obj->group;
	struct ws_group *g = group_new(c, &obj->id, obj->ns->index);
	if (!g)
		return NULL;
	g->obj = obj;
	obj->group = g;
	return g;
}

static void group_free(struct core *c, struct ws_group *g)
{
	struct obj_ws_core *w = c->obj->ws;
	struct ws_group **pp = &w->groups[obj_ws_bucket(&g->id, w->ngroup_buckets)];
	while (*pp != g)
		pp = &(*pp)->hnext;
	*pp = g->hnext;
	w->ngroups--;
	for (uint32_t i = 0; i < g->nm; i++) {
		free(g->m[i].tags);
		free(g->m[i].attach);
		obj_cluster_ws_member_free(&g->m[i]);
	}
	free(g->m);
	free(g->auto_pair);
	free(g);
}

/* No sockets, no live object and no event running on it: nothing left to keep. */
static void group_maybe_free(struct core *c, struct ws_group *g)
{
	if (g->count == 0 && !g->obj && !g->pinned)
		group_free(c, g);
}

/* ---- members ---- */

static duro_ws member_ref(const struct ws_group *g, uint32_t i)
{
	return (duro_ws)g->m[i].gen << 32 | i;
}

static struct ws_member *member_get(struct ws_group *g, duro_ws ref)
{
	uint32_t i = (uint32_t)ref, gen = (uint32_t)(ref >> 32);
	if (!g || i >= g->nm || !g->m[i].h || g->m[i].gen != gen)
		return NULL;
	return &g->m[i];
}

static struct ws_member *obj_member(struct duro_object *o, duro_ws ref)
{
	return member_get(((struct object *)o)->group, ref);
}

static long member_add(struct ws_group *g, ws_handle h, enum ws_kind kind)
{
	if (g->free_head == MEMBER_NONE) {
		if (g->nm == g->cap) {
			uint32_t ncap = g->cap ? g->cap * 2 : 8;
			struct ws_member *nm = realloc(g->m, (size_t)ncap * sizeof(*nm));
			if (!nm)
				return -ENOMEM;
			g->m = nm;
			g->cap = ncap;
		}
		memset(&g->m[g->nm], 0, sizeof(g->m[0]));
		g->m[g->nm].next_free = MEMBER_NONE;
		g->free_head = g->nm++;
	}
	uint32_t i = g->free_head;
	struct ws_member *m = &g->m[i];
	g->free_head = m->next_free;
	m->gen++;
	if (m->gen == 0)
		m->gen = 1; /* a ref of 0 never names a socket */
	m->h = h;
	m->kind = (uint8_t)kind;
	m->ntags = 0;
	m->tags = NULL;
	m->attach = NULL;
	m->attach_len = 0;
	m->last_auto_ms = 0;
	m->outbound = 0;
	m->rd = NULL;
	m->state_id = 0;
	m->state_saved = 0;
	m->state_pending = NULL;
	m->state_pending_len = 0;
	g->count++;
	g->per_core[ws_handle_core(h)]++;
	return (long)i;
}

static void member_remove(struct ws_group *g, struct ws_member *m)
{
	uint32_t i = (uint32_t)(m - g->m);
	g->per_core[ws_handle_core(m->h)]--;
	free(m->tags);
	free(m->attach);
	m->tags = m->attach = NULL;
	obj_cluster_ws_member_free(m);
	m->h = 0;
	m->next_free = g->free_head;
	g->free_head = i;
	g->count--;
}

static int member_has_tag(const struct ws_member *m, const char *tag, size_t tlen)
{
	const char *p = m->tags;
	for (unsigned k = 0; k < m->ntags; k++) {
		uint16_t n;
		memcpy(&n, p, 2);
		if (n == tlen && memcmp(p + 2, tag, tlen) == 0)
			return 1;
		p += 2 + n;
	}
	return 0;
}

/* Tells core `dst`'s site of this group the auto-response pair. */
static int send_site_pair(struct core *c, struct ws_group *g, unsigned dst)
{
	struct ws_site_msg *sm = calloc(1, sizeof(*sm));
	if (!sm)
		return -ENOMEM;
	size_t n = (size_t)g->auto_req_len + g->auto_res_len;
	if (g->auto_pair && !(sm->pair = malloc(n))) {
		free(sm);
		return -ENOMEM;
	}
	if (g->auto_pair)
		memcpy(sm->pair, g->auto_pair, n);
	sm->msg.type = MSG_OBJ_WS_SITE;
	sm->msg.src_core = (uint16_t)c->index;
	sm->id = g->id;
	sm->ns = g->ns;
	sm->req_len = g->auto_req_len;
	sm->res_len = g->auto_res_len;
	if (dst == c->index) {
		obj_ws_site_msg(c, &sm->msg); /* swaps the pair in, then frees itself next turn */
		return 0;
	}
	core_send(c, dst, &sm->msg);
	return 0;
}

/* ---- on the object's core ---- */

/* Holds a batch until the running event ends: it must not overtake the event's writes. */
static void queue_out(struct object *obj, struct ws_batch *b)
{
	obj_ws_queue_out(obj, b);
}

void obj_ws_queue_out(struct object *obj, struct ws_batch *b)
{
	b->msg.next = NULL;
	if (obj->ws_out_tail)
		obj->ws_out_tail->next = &b->msg;
	else
		obj->ws_out_head = &b->msg;
	obj->ws_out_tail = &b->msg;
}

void obj_ws_flush(struct core *c, struct object *obj)
{
	struct core_msg *m = obj->ws_out_head;
	obj->ws_out_head = obj->ws_out_tail = NULL;
	while (m) {
		struct core_msg *next = m->next;
		struct ws_batch *b = (struct ws_batch *)m;
		if (obj->kv.pending_seq > commit_gate_seq(c))
			commit_gate_msg(c, m, obj->kv.pending_seq);
		else
			ws_batch_send(c, b);
		m = next;
	}
}

void obj_ws_attach(struct core *c, struct object *obj)
{
	struct ws_group *g = group_find(c->obj->ws, &obj->id, obj->ns->index);
	obj->group = g;
	if (!g)
		return;
	if (g->count)
		c->obj->ws->ctr.hibernated--;
	g->obj = obj;
}

void obj_ws_detach(struct core *c, struct object *obj)
{
	struct ws_group *g = obj->group;
	DURO_ASSERT(!obj->ws_out_head);
	obj->group = NULL;
	if (!g)
		return;
	g->obj = NULL;
	if (g->count) {
		c->obj->ws->ctr.hibernations++;
		c->obj->ws->ctr.hibernated++;
	}
	group_maybe_free(c, g);
}

/* A socket event for one of this core's objects: membership first, then the event. */
static void run_event(struct core *c, struct ws_event *ev, struct ws_group *g, uint64_t state_id)
{
	struct obj_ws_core *w = c->obj->ws;
	struct obj_ws_event e = {
		.ns = ev->ns, .id = ev->id, .ws = ev->member, .close = ev->what == EV_CLOSE,
		.binary = ev->binary, .data = ev->data ? ev->data->data : NULL,
		.len = ev->data ? ev->data->len : 0, .code = ev->code, .clean = ev->clean,
		.error = ev->error, .reason = ev->reason, .rlen = ev->reason_len,
		.open = ev->what == EV_OPEN, .err = ev->err, .reconnect = ev->reconnect,
		.timeout_ms = g->event_timeout_ms, .state_id = state_id,
	};
	int was_live = g->obj != NULL;
	int r = w->run(c, &e);
	if (r == -ENOENT) {
		w->ctr.events_lost++;
		return;
	}
	if (!was_live && g->obj)
		w->ctr.wakeups++;
	if (r == -ETIMEDOUT)
		w->ctr.event_timeouts++;
	if (r != 0)
		w->ctr.handler_failures++;
}

static void on_socket_event(struct core *c, struct core_msg *m)
{
	struct ws_event *ev = (struct ws_event *)m;
	struct obj_ws_core *w = c->obj->ws;
	struct ws_group *g = group_find(w, &ev->id, ev->ns);
	struct ws_member *mem = member_get(g, ev->member);
	if (mem) {
		switch (ev->what) {
		case EV_AUTO:
			mem->last_auto_ms = ev->time_ms;
			break;
		case EV_MESSAGE:
			w->ctr.messages++;
			run_event(c, ev, g, 0);
			break;
		case EV_OPEN:
			if (ev->err == 0) {
				w->ctr.outbound_opened++;
				if (mem->rd)
					ev->reconnect = (uint8_t)w->out->opened(c, mem->rd);
				run_event(c, ev, g, 0);
				break;
			}
			w->ctr.outbound_failed++;
			if (mem->rd) {
				w->out->dropped(c, mem->rd); /* held: tried again, nothing run */
				break;
			}
			/* a socket that never opened leaves as a closed one does */
			__attribute__((fallthrough));
		case EV_CLOSE:
			if (mem->rd) {
				/* A durable socket dropped: the object hears of it as on_ws_open with
				 * reconnect once it is open again, not as a close. */
				w->out->dropped(c, mem->rd);
				break;
			}
			uint64_t state_id = mem->state_saved ? mem->state_id : 0;
			member_remove(g, mem);
			if (!g->count && !g->obj)
				w->ctr.hibernated--; /* its last socket left while it slept */
			w->ctr.closed++;
			/* The group stays while the event runs: the object may activate into it, and
			 * a load that fails detaches from it. Pinned rather than counted: the
			 * handler's duro_ws_count, and activation's hibernation gauge, must not see
			 * the socket that left. */
			g->pinned = 1;
			run_event(c, ev, g, state_id);
			g->pinned = 0;
			group_maybe_free(c, g);
			break;
		}
	}
	if (ev->msg.src_core == c->index) {
		obj_ws_event_free(c, ev);
		return;
	}
	ev->msg.type = MSG_OBJ_WS_EVENT_DONE;
	core_send(c, ev->msg.src_core, &ev->msg);
}

static struct http_exchange *EXM(const void *p) { return (struct http_exchange *)p; }

int obj_ws_member_join(struct core *c, struct object *obj, ws_handle h, enum ws_kind kind,
		       const struct duro_str *tags, size_t ntags, duro_ws *out)
{
	if (ntags > DURO_WS_MAX_TAGS)
		return -EINVAL;
	struct ws_group *g = group_get(c, obj);
	return g ? obj_ws_group_join(c, g, h, kind, tags, ntags, out) : -ENOMEM;
}

int obj_ws_group_join(struct core *c, struct ws_group *g, ws_handle h, enum ws_kind kind,
		      const struct duro_str *tags, size_t ntags, duro_ws *out)
{
	struct obj_ws_core *w = c->obj->ws;
	if (ntags > DURO_WS_MAX_TAGS)
		return -EINVAL;
	size_t tbytes = 0;
	for (size_t i = 0; i < ntags; i++) {
		if (tags[i].len == 0 || tags[i].len > DURO_WS_MAX_TAG)
			return -EINVAL;
		tbytes += 2 + tags[i].len;
	}
	if (g->count >= max_per_object(c)) {
		w->ctr.refused_full++;
		return -ENOSPC;
	}
	char *tb = NULL;
	if (ntags && !(tb = malloc(tbytes)))
		return -ENOMEM;
	char *p = tb;
	for (size_t i = 0; i < ntags; i++) {
		uint16_t n = (uint16_t)tags[i].len;
		memcpy(p, &n, 2);
		memcpy(p + 2, tags[i].ptr, n);
		p += 2 + n;
	}
	unsigned core = ws_handle_core(h);
	int first_on_core = g->per_core[core] == 0;
	long i = member_add(g, h, kind);
	if (i < 0) {
		free(tb);
		return -ENOMEM;
	}
	g->m[i].tags = tb;
	g->m[i].ntags = (uint8_t)ntags;
	if (g->auto_pair && first_on_core)
		send_site_pair(c, g, core);
	*out = member_ref(g, (uint32_t)i);
	return 0;
}

struct ws_member *obj_ws_member(struct object *obj, duro_ws ref)
{
	return member_get(obj->group, ref);
}

struct ws_member *obj_ws_group_member(struct ws_group *g, duro_ws ref)
{
	return member_get(g, ref);
}

void obj_ws_group_site_pair(struct core *c, struct ws_group *g)
{
	if (g->auto_pair)
		send_site_pair(c, g, c->index);
}

void obj_ws_member_leave(struct object *obj, duro_ws ref)
{
	struct ws_member *m = member_get(obj->group, ref);
	if (m)
		member_remove(obj->group, m);
}

static int accept_common(struct duro_object *o, struct http_exchange *ex, enum ws_kind kind,
			 const struct duro_str *tags, size_t ntags, duro_ws *out)
{
	struct object *obj = (struct object *)o;
	struct core *c = obj->core;
	struct obj_ws_core *w = c->obj->ws;
	struct route_result *rr = route_result_of(ex);
	DURO_ASSERT(obj->running && rr->obj == obj);
	if (rr->accepted) {
		http_resp_error(ex, 500, "the socket was accepted twice");
		return -EINVAL;
	}
	duro_ws ref;
	int r = obj_ws_member_join(c, obj, rr->ws_handle, kind, tags, ntags, &ref);
	if (r == -EINVAL) {
		http_resp_error(ex, 500, ntags > DURO_WS_MAX_TAGS ? "more than 10 WebSocket tags"
					     : "a WebSocket tag is empty or over 256 bytes");
		return r;
	}
	if (r == -ENOSPC) {
		http_resp_error(ex, 503, "this object has its maximum of WebSockets");
		return r;
	}
	if (r < 0) {
		http_resp_error(ex, 503, "out of memory accepting the WebSocket");
		return r;
	}
	rr->accepted = 1;
	rr->member = ref;
	obj_cluster_ws_accepted(c, obj, ex, obj_ws_member(obj, ref));
	if (kind == WS_KIND_SOCKET)
		w->ctr.accepted++;
	else
		w->ctr.streams++;
	*out = rr->member;
	return 0;
}

int duro_ws_accept(struct duro_object *o, const struct duro_request *req,
		   struct duro_response *res, const struct duro_str *tags, size_t ntags,
		   duro_ws *out)
{
	struct http_exchange *ex = EXM(res);
	(void)req;
	struct route_result *rr = route_result_of(ex);
	if (!rr->ws_handle || rr->ws_kind != WS_KIND_SOCKET) {
		http_resp_error(ex, 426, "this resource wants a WebSocket upgrade");
		http_resp_header(ex, "Upgrade", 7, "websocket", 9);
		return -EINVAL;
	}
	char accept[29];
	int r = ws_handshake_check(&ex->req, accept);
	if (r == -426) {
		http_resp_error(ex, 426, "unsupported WebSocket version: this server speaks 13");
		http_resp_header(ex, "Sec-WebSocket-Version", 21, "13", 2);
		return -EINVAL;
	}
	if (r < 0) {
		http_resp_error(ex, 400, "malformed WebSocket upgrade request");
		return -EINVAL;
	}
	r = accept_common(o, ex, WS_KIND_SOCKET, tags, ntags, out);
	if (r < 0)
		return r;
	/* No Sec-WebSocket-Extensions in the answer: permessage-deflate and any other
	 * extension offered is declined (RFC 6455 section 9.1). */
	http_resp_reset(ex);
	http_resp_status(ex, 101);
	http_resp_header(ex, "Upgrade", 7, "websocket", 9);
	http_resp_header(ex, "Connection", 10, "Upgrade", 7);
	http_resp_header(ex, "Sec-WebSocket-Accept", 20, accept, 28);
	return 0;
}

int duro_sse_accept(struct duro_object *o, const struct duro_request *req,
		    struct duro_response *res, const struct duro_str *tags, size_t ntags,
		    duro_ws *out)
{
	struct http_exchange *ex = EXM(res);
	(void)req;
	struct route_result *rr = route_result_of(ex);
	if (!rr->ws_handle || rr->ws_kind != WS_KIND_STREAM) {
		http_resp_error(ex, 406, "this resource is an event stream: send Accept: text/event-stream");
		return -EINVAL;
	}
	int r = accept_common(o, ex, WS_KIND_STREAM, tags, ntags, out);
	if (r < 0)
		return r;
	http_resp_reset(ex);
	http_resp_status(ex, 200);
	http_resp_header(ex, "Content-Type", 12, "text/event-stream", 17);
	http_resp_header(ex, "Cache-Control", 13, "no-store", 8);
	ex->stream = 1;
	return 0;
}

int duro_ws_each(struct duro_object *o, const char *tag, int (*fn)(void *arg, duro_ws ws),
		 void *arg)
{
	struct ws_group *g = ((struct object *)o)->group;
	if (!g)
		return 0;
	size_t tlen = tag ? strlen(tag) : 0;
	int n = 0;
	for (uint32_t i = 0; i < g->nm; i++) {
		struct ws_member *m = &g->m[i];
		if (!m->h || (tag && !member_has_tag(m, tag, tlen)))
			continue;
		n++;
		if (fn(arg, member_ref(g, i)))
			break;
	}
	return n;
}

size_t duro_ws_count(struct duro_object *o)
{
	struct ws_group *g = ((struct object *)o)->group;
	return g ? g->count : 0;
}

int duro_ws_tags(struct duro_object *o, duro_ws ws, struct duro_str *tags, size_t max)
{
	struct ws_member *m = obj_member(o, ws);
	if (!m)
		return -ENOENT;
	const char *p = m->tags;
	for (unsigned k = 0; k < m->ntags; k++) {
		uint16_t n;
		memcpy(&n, p, 2);
		if (k < max)
			tags[k] = (struct duro_str){ p + 2, n };
		p += 2 + n;
	}
	return m->ntags;
}

int duro_ws_is_stream(struct duro_object *o, duro_ws ws)
{
	struct ws_member *m = obj_member(o, ws);
	return m ? m->kind == WS_KIND_STREAM : -ENOENT;
}

#define WS_MAX_SEND (32u << 20)

int duro_ws_send(struct duro_object *o, duro_ws ws, int binary, const void *data, size_t len)
{
	struct object *obj = (struct object *)o;
	struct core *c = obj->core;
	struct ws_member *m = obj_member(o, ws);
	if (!m)
		return -ENOENT;
	if (len > WS_MAX_SEND)
		return -EMSGSIZE;
	int stream = m->kind == WS_KIND_STREAM;
	if (stream && binary)
		return -EINVAL;
	struct ws_payload *p = stream ? ws_payload_event(c, data, len)
				      : ws_payload_frame(c, binary ? WS_OP_BINARY : WS_OP_TEXT, data, len);
	if (!p)
		return -ENOMEM;
	struct ws_batch *b = ws_batch_new(c, ws_handle_core(m->h), WS_SEND, stream ? NULL : p,
					  stream ? p : NULL, 1);
	ws_payload_unref(c, p);
	if (!b)
		return -ENOMEM;
	b->targets[b->n++] = m->h;
	c->obj->ws->ctr.sends++;
	queue_out(obj, b);
	return 0;
}

int duro_ws_broadcast(struct duro_object *o, const char *tag, duro_ws except, int binary,
		      const void *data, size_t len)
{
	struct object *obj = (struct object *)o;
	struct core *c = obj->core;
	struct ws_group *g = obj->group;
	if (len > WS_MAX_SEND)
		return -EMSGSIZE;
	if (!g || !g->count)
		return 0;
	size_t tlen = tag ? strlen(tag) : 0;
	struct ws_payload *frame = NULL, *event = NULL;
	struct ws_batch *per[DURO_MAX_CORES] = { 0 };
	int n = 0, r = 0;
	for (uint32_t i = 0; i < g->nm; i++) {
		struct ws_member *m = &g->m[i];
		if (!m->h || member_ref(g, i) == except || (tag && !member_has_tag(m, tag, tlen)))
			continue;
		int stream = m->kind == WS_KIND_STREAM;
		if (stream && binary)
			continue;
		/* Encoded once, on first need, for every socket of every core. */
		if (!stream && !frame &&
		    !(frame = ws_payload_frame(c, binary ? WS_OP_BINARY : WS_OP_TEXT, data, len))) {
			r = -ENOMEM;
			break;
		}
		if (stream && !event && !(event = ws_payload_event(c, data, len))) {
			r = -ENOMEM;
			break;
		}
		unsigned core = ws_handle_core(m->h);
		struct ws_batch *b = per[core];
		if (b && ((stream && !b->stream) || (!stream && !b->frame))) {
			/* First socket of the other kind on this core: the batch needs both. */
			if (stream) {
				b->stream = event;
				event->refs++;
			} else {
				b->frame = frame;
				frame->refs++;
			}
		}
		if (!b && !(b = per[core] = ws_batch_new(c, core, WS_SEND, stream ? NULL : frame,
							  stream ? event : NULL, g->per_core[core]))) {
			r = -ENOMEM;
			break;
		}
		DURO_ASSERT(b->n < b->cap);
		b->targets[b->n++] = m->h;
		n++;
	}
	for (unsigned k = 0; k < DURO_MAX_CORES; k++) {
		if (!per[k])
			continue;
		if (r < 0)
			ws_batch_free(c, per[k]);
		else
			queue_out(obj, per[k]);
	}
	if (frame)
		ws_payload_unref(c, frame);
	if (event)
		ws_payload_unref(c, event);
	if (r < 0)
		return r;
	c->obj->ws->ctr.broadcasts++;
	c->obj->ws->ctr.deliveries += (uint64_t)n;
	return n;
}

int duro_ws_close(struct duro_object *o, duro_ws ws, int code, const char *reason)
{
	struct object *obj = (struct object *)o;
	struct core *c = obj->core;
	struct ws_group *g = obj->group;
	struct ws_member *m = obj_member(o, ws);
	if (!m)
		return -ENOENT;
	size_t rlen = reason ? strlen(reason) : 0;
	if ((code != 1000 && (code < 3000 || code > 4999)) || rlen > WS_MAX_CONTROL - 2)
		return -EINVAL;
	uint8_t body[WS_MAX_CONTROL];
	body[0] = (uint8_t)(code >> 8);
	body[1] = (uint8_t)code;
	if (rlen)
		memcpy(body + 2, reason, rlen);
	struct ws_payload *p = NULL;
	if (m->kind == WS_KIND_SOCKET && !(p = ws_payload_frame(c, WS_OP_CLOSE, body, 2 + rlen)))
		return -ENOMEM;
	struct ws_batch *b = ws_batch_new(c, ws_handle_core(m->h), WS_CLOSE, p, NULL, 1);
	if (p)
		ws_payload_unref(c, p);
	if (!b)
		return -ENOMEM;
	b->close_code = (uint16_t)code;
	b->targets[b->n++] = m->h;
	/* Gone for the object at once; the socket's core finishes the close handshake. */
	if (m->rd)
		c->obj->ws->out->forget(c, obj, m);
	if (m->state_saved)
		obj_cluster_ws_forget(obj, m->state_id);
	member_remove(g, m);
	queue_out(obj, b);
	return 0;
}

int duro_ws_set_attachment(struct duro_object *o, duro_ws ws, const void *data, size_t len)
{
	struct ws_member *m = obj_member(o, ws);
	if (!m)
		return -ENOENT;
	if (len > DURO_WS_MAX_ATTACHMENT)
		return -EFBIG;
	char *a = NULL;
	if (len && !(a = malloc(len)))
		return -ENOMEM;
	if (len)
		memcpy(a, data, len);
	free(m->attach);
	m->attach = a;
	m->attach_len = (uint16_t)len;
	/* Cluster mode: kept with the object's data too, so it follows a slot move. */
	return m->state_id ? obj_cluster_ws_save((struct object *)o, m) : 0;
}

int duro_ws_attachment(struct duro_object *o, duro_ws ws, struct duro_str *out)
{
	struct ws_member *m = obj_member(o, ws);
	if (!m)
		return -ENOENT;
	if (!m->attach)
		return 0;
	*out = (struct duro_str){ m->attach, m->attach_len };
	return 1;
}

int duro_ws_set_auto_response(struct duro_object *o, const char *request, size_t reqlen,
			      const char *response, size_t reslen)
{
	struct object *obj = (struct object *)o;
	struct core *c = obj->core;
	if (request && (reqlen == 0 || reqlen > DURO_WS_MAX_AUTO || reslen > DURO_WS_MAX_AUTO ||
			(reslen && !response)))
		return -EINVAL;
	struct ws_group *g = group_get(c, obj);
	if (!g)
		return -ENOMEM;
	char *pair = NULL;
	if (request) {
		if (!(pair = malloc(reqlen + reslen + 1)))
			return -ENOMEM;
		memcpy(pair, request, reqlen);
		if (reslen)
			memcpy(pair + reqlen, response, reslen);
	}
	free(g->auto_pair);
	g->auto_pair = pair;
	g->auto_req_len = request ? (uint16_t)reqlen : 0;
	g->auto_res_len = request ? (uint16_t)reslen : 0;
	int r = 0;
	for (unsigned k = 0; k < c->group->ncores; k++)
		if (g->per_core[k] && send_site_pair(c, g, k) < 0)
			r = -ENOMEM;
	return r;
}

int64_t duro_ws_auto_response_time(struct duro_object *o, duro_ws ws)
{
	struct ws_member *m = obj_member(o, ws);
	return m ? m->last_auto_ms : -ENOENT;
}

void duro_ws_set_event_timeout(struct duro_object *o, unsigned ms)
{
	struct object *obj = (struct object *)o;
	struct ws_group *g = group_get(obj->core, obj);
	if (g)
		g->event_timeout_ms = ms;
}

/* ---- per core ---- */

int obj_ws_core_init(struct core *c, obj_ws_run_fn *run)
{
	struct obj_ws_core *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	c->obj->ws = w;
	w->run = run;
	w->cfg = &c->obj->rt->cfg->websockets;
	w->ngroup_buckets = 256;
	w->groups = calloc(w->ngroup_buckets, sizeof(*w->groups));
	if (!w->groups)
		return -ENOMEM;
	core_set_msg_handler(c, MSG_OBJ_WS_EVENT, on_socket_event);
	return obj_ws_site_init(c);
}

void obj_ws_core_fini(struct core *c)
{
	struct obj_ws_core *w = c->obj ? c->obj->ws : NULL;
	if (!w)
		return;
	for (size_t i = 0; i < w->ngroup_buckets && w->groups; i++)
		while (w->groups[i])
			group_free(c, w->groups[i]);
	free(w->groups);
	obj_ws_site_fini(c);
	free(w);
	c->obj->ws = NULL;
}

const struct obj_ws_counters *obj_ws_core_counters(struct core *c) { return &c->obj->ws->ctr; }

size_t obj_ws_count(struct core *c, unsigned ns, const struct duro_id *id)
{
	struct ws_group *g = group_find(c->obj->ws, id, ns);
	return g ? g->count : 0;
}
