/* The object side of WebSockets and event streams. On the object's core, a group per object
 * holds its sockets (handles, tags, attachments, auto-response) and outlives the object
 * when it hibernates. On each socket's core, a site per object holds what that core needs
 * without asking the object's core: the auto-response pair.
 *
 *   socket core A                                object core B
 *   ws_conn --message--> MSG_OBJ_WS_EVENT ----> group -> activate -> on_ws_message
 *   ws_conn <--frames--- MSG_WS_BATCH (one per core, encoded once) <- send / broadcast */
#include "obj.h"
#include "obj_int.h"
#include "base_assert.h"
#include "clock.h"
#include "core.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "ws.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct ws_member {
	ws_handle h; /* 0: a free entry */
	uint32_t gen;
	uint32_t next_free;
	uint8_t kind, ntags;
	uint16_t attach_len;
	char *tags;   /* ntags x (u16 length, bytes), or NULL */
	char *attach; /* or NULL */
	int64_t last_auto_ms;
};

struct ws_group {
	struct ws_group *hnext;
	struct duro_id id;
	uint16_t ns;
	struct object *obj; /* the live instance, NULL while hibernated */
	struct ws_member *m;
	uint32_t nm, cap, free_head, count;
	uint32_t per_core[DURO_MAX_CORES]; /* members per socket core: who gets a batch */
	char *auto_pair; /* request then response, or NULL */
	uint16_t auto_req_len, auto_res_len;
	unsigned event_timeout_ms;
};

struct ws_site {
	struct ws_site *hnext;
	struct duro_id id;
	uint16_t ns;
	uint32_t refs; /* sockets of this object on this core, reserved or open */
	char *auto_pair;
	uint16_t auto_req_len, auto_res_len;
};

enum ws_event_what { EV_MESSAGE, EV_CLOSE, EV_AUTO };

/* Made on the socket's core, handled on the object's core, then sent back to be freed. */
struct ws_event {
	struct core_msg msg;
	uint8_t what, binary, clean, error;
	uint16_t code, ns, reason_len;
	struct duro_id id;
	uint64_t member;
	struct buf *data; /* the message (the socket core's buffer) */
	int64_t time_ms;
	char reason[WS_MAX_CONTROL];
};

/* An auto-response pair for the sites of one core; goes there and comes back. */
struct ws_site_msg {
	struct core_msg msg;
	uint8_t back;
	uint16_t ns;
	struct duro_id id;
	char *pair; /* owned by the message; the site swaps in its own copy */
	uint16_t req_len, res_len;
};

#define MEMBER_NONE UINT32_MAX

struct obj_ws_core {
	struct ws_group **groups;
	size_t ngroup_buckets, ngroups;
	struct ws_site **sites;
	size_t nsite_buckets, nsites;
	struct pool events;
	struct obj_ws_counters ctr;
};

static unsigned max_per_object(void) { return obj_ws_config()->max_per_object; }

/* ---- hash tables keyed by object ID ---- */

static size_t id_bucket(const struct duro_id *id, size_t n)
{
	uint64_t h;
	memcpy(&h, id->bytes + 10, sizeof(h)); /* uniform bytes: a random or keyed-hash body */
	return (size_t)h & (n - 1);
}

static int same(const struct duro_id *a, unsigned ans, const struct duro_id *b, unsigned bns)
{
	return ans == bns && memcmp(a->bytes, b->bytes, DURO_ID_BYTES) == 0;
}

/* Doubles a chained table when it is as full as it is wide. */
#define TABLE_GROW(type, buckets, nb, count)                                            \
	do {                                                                            \
		if ((count) < (nb))                                                     \
			break;                                                          \
		size_t n2 = (nb) * 2;                                                   \
		type **t2 = calloc(n2, sizeof(*t2));                                    \
		if (!t2)                                                                \
			break; /* longer chains; still correct */                      \
		for (size_t i = 0; i < (nb); i++)                                       \
			for (type *e = (buckets)[i], *nx; e; e = nx) {                  \
				nx = e->hnext;                                          \
				size_t b2 = id_bucket(&e->id, n2);                      \
				e->hnext = t2[b2];                                      \
				t2[b2] = e;                                             \
			}                                                               \
		free(buckets);                                                          \
		(buckets) = t2;                                                         \
		(nb) = n2;                                                              \
	} while (0)

static struct ws_group *group_find(struct obj_ws_core *w, const struct duro_id *id, unsigned ns)
{
	for (struct ws_group *g = w->groups[id_bucket(id, w->ngroup_buckets)]; g; g = g->hnext)
		if (same(&g->id, g->ns, id, ns))
			return g;
	return NULL;
}

static struct ws_group *group_get(struct core *c, struct object *obj)
{
	struct obj_ws_core *w = c->obj->ws;
	if (obj->group)
		return obj->group;
	TABLE_GROW(struct ws_group, w->groups, w->ngroup_buckets, w->ngroups);
	struct ws_group *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->id = obj->id;
	g->ns = (uint16_t)obj->ns->index;
	g->free_head = MEMBER_NONE;
	g->obj = obj;
	size_t b = id_bucket(&g->id, w->ngroup_buckets);
	g->hnext = w->groups[b];
	w->groups[b] = g;
	w->ngroups++;
	obj->group = g;
	return g;
}

static void group_free(struct core *c, struct ws_group *g)
{
	struct obj_ws_core *w = c->obj->ws;
	struct ws_group **pp = &w->groups[id_bucket(&g->id, w->ngroup_buckets)];
	while (*pp != g)
		pp = &(*pp)->hnext;
	*pp = g->hnext;
	w->ngroups--;
	for (uint32_t i = 0; i < g->nm; i++) {
		free(g->m[i].tags);
		free(g->m[i].attach);
	}
	free(g->m);
	free(g->auto_pair);
	free(g);
}

/* No sockets and no live object: nothing left to keep. */
static void group_maybe_free(struct core *c, struct ws_group *g)
{
	if (g->count == 0 && !g->obj)
		group_free(c, g);
}

static struct ws_site *site_find(struct obj_ws_core *w, const struct duro_id *id, unsigned ns)
{
	for (struct ws_site *s = w->sites[id_bucket(id, w->nsite_buckets)]; s; s = s->hnext)
		if (same(&s->id, s->ns, id, ns))
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
	size_t b = id_bucket(id, w->nsite_buckets);
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
	struct ws_site **pp = &w->sites[id_bucket(&s->id, w->nsite_buckets)];
	while (*pp != s)
		pp = &(*pp)->hnext;
	*pp = s->hnext;
	w->nsites--;
	free(s->auto_pair);
	free(s);
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
	return ev;
}

static void event_send(struct core *c, struct ws_event *ev)
{
	core_send(c, obj_owner(&ev->id), &ev->msg);
}

static void on_socket_message(struct core *c, struct ws_conn *wc, int binary, struct buf *msg)
{
	struct obj_ws_core *w = c->obj->ws;
	struct ws_site *s = ws_conn_user(wc);
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

static const struct ws_events socket_events = { .on_message = on_socket_message,
						.on_closed = on_socket_closed };

const struct ws_events *obj_ws_events(void) { return &socket_events; }

static void event_free(struct core *c, struct ws_event *ev)
{
	if (ev->data)
		buf_unref(&c->bufs, ev->data);
	pool_put(&c->obj->ws->events, ev);
}

static void on_event_done(struct core *c, struct core_msg *m)
{
	event_free(c, (struct ws_event *)m);
}

/* The HTTP exchange of an upgrade ends: hand the connection over, or give the socket up. */
static void takeover(struct core *c, struct http_exchange *ex, struct net_conn *conn,
		     const char *rest, size_t len)
{
	struct route_result *rr = (struct route_result *)ex->user;
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
	struct route_result *rr = (struct route_result *)ex->user;
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

static void on_site_msg(struct core *c, struct core_msg *m)
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
		on_site_msg(c, &sm->msg); /* swaps the pair in, then frees itself next turn */
		return 0;
	}
	core_send(c, dst, &sm->msg);
	return 0;
}

/* ---- on the object's core ---- */

/* Holds a batch until the running event ends: it must not overtake the event's writes. */
static void queue_out(struct object *obj, struct ws_batch *b)
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
		if (obj->kv.pending_seq > commit_durable_seq(c))
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

/* Runs one socket event as an event of its object, activating it if it hibernates. */
static void run_socket_event(struct core *c, struct ws_event *ev, struct ws_group *g,
			     duro_ws ref)
{
	struct obj_ws_core *w = c->obj->ws;
	int err = 0;
	int was_live = g->obj != NULL;
	struct object *obj = obj_activate(c, ev->ns, &ev->id, &err);
	if (!obj) {
		w->ctr.events_lost++;
		log_warn("class %s: a WebSocket event was lost: the object failed to load (%d)",
			 obj_ns_name(ev->ns), err);
		return;
	}
	if (!was_live)
		w->ctr.wakeups++;
	const struct duro_class *cls = obj->ns->cls;
	unsigned timeout = g->event_timeout_ms;
	uint64_t t0 = timeout ? clock_now_ns() : 0;
	obj_event_begin(c, obj);
	int r = 0;
	struct duro_object *o = (struct duro_object *)obj;
	if (ev->what == EV_MESSAGE) {
		r = cls->on_ws_message(o, ref, ev->binary, ev->data->data, ev->data->len);
	} else {
		if (ev->error && cls->on_ws_error)
			cls->on_ws_error(o, ref, ev->code);
		if (cls->on_ws_close)
			cls->on_ws_close(o, ref, ev->code, ev->reason_len ? ev->reason : "",
					 ev->reason_len, ev->clean);
	}
	if (timeout && clock_now_ns() - t0 > (uint64_t)timeout * 1000000) {
		w->ctr.event_timeouts++;
		log_warn("class %s: a WebSocket event ran past its %u ms timeout: its writes are rolled back",
			 cls->name, timeout);
		r = -ETIMEDOUT;
	}
	if (r != 0)
		w->ctr.handler_failures++;
	obj_event_end(c, obj, r == 0);
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
			if (obj_ns_cls(ev->ns)->on_ws_message)
				run_socket_event(c, ev, g, ev->member);
			break;
		case EV_CLOSE:
			member_remove(g, mem);
			if (!g->count && !g->obj)
				w->ctr.hibernated--; /* its last socket left while it slept */
			w->ctr.closed++;
			if (obj_ns_cls(ev->ns)->on_ws_close || obj_ns_cls(ev->ns)->on_ws_error)
				run_socket_event(c, ev, g, ev->member);
			group_maybe_free(c, g);
			break;
		}
	}
	if (ev->msg.src_core == c->index) {
		event_free(c, ev);
		return;
	}
	ev->msg.type = MSG_OBJ_WS_EVENT_DONE;
	core_send(c, ev->msg.src_core, &ev->msg);
}

/* ---- duro.h ---- */

static struct http_exchange *EXM(const void *p) { return (struct http_exchange *)p; }

int duro_req_wants_ws(const struct duro_request *req)
{
	const struct route_result *rr = (const struct route_result *)EXM(req)->user;
	return rr->ws_handle && rr->ws_kind == WS_KIND_SOCKET;
}

int duro_req_wants_events(const struct duro_request *req)
{
	const struct route_result *rr = (const struct route_result *)EXM(req)->user;
	return rr->ws_handle && rr->ws_kind == WS_KIND_STREAM;
}

static int accept_common(struct duro_object *o, struct http_exchange *ex, enum ws_kind kind,
			 const struct duro_str *tags, size_t ntags, duro_ws *out)
{
	struct object *obj = (struct object *)o;
	struct core *c = obj->core;
	struct obj_ws_core *w = c->obj->ws;
	struct route_result *rr = (struct route_result *)ex->user;
	DURO_ASSERT(obj->running && rr->obj == obj);
	if (ntags > DURO_WS_MAX_TAGS) {
		http_resp_error(ex, 500, "more than 10 WebSocket tags");
		return -EINVAL;
	}
	size_t tbytes = 0;
	for (size_t i = 0; i < ntags; i++) {
		if (tags[i].len == 0 || tags[i].len > DURO_WS_MAX_TAG) {
			http_resp_error(ex, 500, "a WebSocket tag is empty or over 256 bytes");
			return -EINVAL;
		}
		tbytes += 2 + tags[i].len;
	}
	if (rr->accepted) {
		http_resp_error(ex, 500, "the socket was accepted twice");
		return -EINVAL;
	}
	struct ws_group *g = group_get(c, obj);
	if (!g) {
		http_resp_error(ex, 503, "out of memory accepting the WebSocket");
		return -ENOMEM;
	}
	if (g->count >= max_per_object()) {
		w->ctr.refused_full++;
		http_resp_error(ex, 503, "this object has its maximum of WebSockets");
		return -ENOSPC;
	}
	char *tb = NULL;
	if (ntags && !(tb = malloc(tbytes))) {
		http_resp_error(ex, 503, "out of memory accepting the WebSocket");
		return -ENOMEM;
	}
	char *p = tb;
	for (size_t i = 0; i < ntags; i++) {
		uint16_t n = (uint16_t)tags[i].len;
		memcpy(p, &n, 2);
		memcpy(p + 2, tags[i].ptr, n);
		p += 2 + n;
	}
	unsigned core = ws_handle_core(rr->ws_handle);
	int first_on_core = g->per_core[core] == 0;
	long i = member_add(g, rr->ws_handle, kind);
	if (i < 0) {
		free(tb);
		http_resp_error(ex, 503, "out of memory accepting the WebSocket");
		return -ENOMEM;
	}
	g->m[i].tags = tb;
	g->m[i].ntags = (uint8_t)ntags;
	if (g->auto_pair && first_on_core)
		send_site_pair(c, g, core);
	rr->accepted = 1;
	rr->member = member_ref(g, (uint32_t)i);
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
	struct route_result *rr = (struct route_result *)ex->user;
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
	struct route_result *rr = (struct route_result *)ex->user;
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
	return 0;
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

int obj_ws_core_init(struct core *c)
{
	struct obj_ws_core *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	c->obj->ws = w;
	w->ngroup_buckets = w->nsite_buckets = 256;
	w->groups = calloc(w->ngroup_buckets, sizeof(*w->groups));
	w->sites = calloc(w->nsite_buckets, sizeof(*w->sites));
	if (!w->groups || !w->sites)
		return -ENOMEM;
	pool_init(&w->events, "ws_event", sizeof(struct ws_event), 1024, 0);
	core_set_msg_handler(c, MSG_OBJ_WS_EVENT, on_socket_event);
	core_set_msg_handler(c, MSG_OBJ_WS_EVENT_DONE, on_event_done);
	core_set_msg_handler(c, MSG_OBJ_WS_SITE, on_site_msg);
	return 0;
}

void obj_ws_core_fini(struct core *c)
{
	struct obj_ws_core *w = c->obj ? c->obj->ws : NULL;
	if (!w)
		return;
	for (size_t i = 0; i < w->ngroup_buckets; i++)
		while (w->groups[i])
			group_free(c, w->groups[i]);
	for (size_t i = 0; i < w->nsite_buckets; i++)
		for (struct ws_site *s = w->sites[i], *nx; s; s = nx) {
			nx = s->hnext;
			free(s->auto_pair);
			free(s);
		}
	free(w->groups);
	free(w->sites);
	pool_destroy(&w->events);
	free(w);
	c->obj->ws = NULL;
}

const struct obj_ws_counters *obj_ws_counters(struct core *c) { return &c->obj->ws->ctr; }

size_t obj_ws_count(struct core *c, unsigned ns, const struct duro_id *id)
{
	struct ws_group *g = group_find(c->obj->ws, id, ns);
	return g ? g->count : 0;
}
