/* Outbound WebSockets: duro_ws_connect checks the URL against outbound.allow (refused with
 * nothing sent), reserves a client socket on the object's core (so it hibernates with the
 * object's group like an accepted one), and queues its dial behind the event's writes
 * (the output gate: a WS_CONNECT batch, released with the event's sends). The ws layer
 * dials, checks the server's 101 and reports the open through the site (obj_ws_site.c),
 * which the group runs as the class's on_ws_open.
 *
 * A durable socket (DURO_WS_RECONNECT) also writes its intent, a reserved key of the
 * object, in the event; the event's commit mirrors it into the alarms family, as alarms
 * are, where each core finds its share at start. A redial record per durable socket
 * dials it again after a drop, or at start, with exponential backoff and jitter:
 *
 *   intent key --commit--> 'w' ‖ ID ‖ intent (alarms family) --start--> member + redial
 *   drop / failed open --> redial timer --> new client socket, same duro_ws --> on_ws_open(reconnect) */
#include "obj_ws_int.h"
#include "base_assert.h"
#include "core.h"
#include "fetch.h"
#include "keys.h"
#include "kv.h"
#include "log.h"
#include "store.h"
#include "timer.h"

#include <errno.h>
#include <sys/random.h>

/* The first redial waits about this long, each next one twice as long, up to the most. */
#define REDIAL_INITIAL_MS 200
#define REDIAL_MAX_MS 30000
/* At start, a core's stored sockets are dialed over this spread, not all at once. */
#define REDIAL_START_SPREAD_MS 200

struct ws_redial {
	struct list_node node; /* in the core's redials */
	struct timer timer;
	struct duro_id id;
	uint16_t ns;
	uint8_t redialed; /* the open to come is the runtime's, not the object's */
	uint8_t gave_up;  /* no longer allowed: not dialed again until a restart */
	duro_ws ref;
	unsigned attempts;
	char intent[KEYS_WSOUT_INTENT];
	char url[]; /* NUL-terminated */
};

static size_t intent_key(char *out, const char intent[KEYS_WSOUT_INTENT])
{
	memcpy(out, KEYS_WSOUT_PREFIX, KEYS_WSOUT_PREFIX_LEN);
	memcpy(out + KEYS_WSOUT_PREFIX_LEN, intent, KEYS_WSOUT_INTENT);
	return KEYS_WSOUT_PREFIX_LEN + KEYS_WSOUT_INTENT;
}

#define INTENT_VALUE_MAX (1 + DURO_WS_MAX_TAGS * (2 + DURO_WS_MAX_TAG) + DURO_WS_MAX_URL)

/* An intent's value: ntags, then each tag (u16 length, bytes), then the URL. Returns its
 * length, or 0 when it does not fit cap. */
static size_t intent_encode(char *out, size_t cap, const struct duro_str *tags, size_t ntags,
			    const char *url)
{
	size_t n = 1, ul = strlen(url);
	for (size_t i = 0; i < ntags; i++)
		n += 2 + tags[i].len;
	if (n + ul > cap)
		return 0;
	char *p = out;
	*p++ = (char)ntags;
	for (size_t i = 0; i < ntags; i++) {
		uint16_t l = (uint16_t)tags[i].len;
		memcpy(p, &l, 2);
		memcpy(p + 2, tags[i].ptr, l);
		p += 2 + l;
	}
	memcpy(p, url, ul);
	return n + ul;
}

/* Views into v; returns 0, or -EINVAL for a value that is not one. */
static int intent_decode(const char *v, size_t vl, struct duro_str *tags, size_t *ntags,
			 struct duro_str *url)
{
	if (vl < 1 || (unsigned char)v[0] > DURO_WS_MAX_TAGS)
		return -EINVAL;
	size_t n = (unsigned char)v[0], off = 1;
	for (size_t i = 0; i < n; i++) {
		uint16_t l;
		if (off + 2 > vl)
			return -EINVAL;
		memcpy(&l, v + off, 2);
		if (off + 2 + l > vl)
			return -EINVAL;
		tags[i] = (struct duro_str){ v + off + 2, l };
		off += 2 + l;
	}
	*ntags = n;
	*url = (struct duro_str){ v + off, vl - off };
	return url->len && url->len <= DURO_WS_MAX_URL ? 0 : -EINVAL;
}

static struct ws_redial *redial_new(struct core *c, const struct duro_id *id, unsigned ns,
				    const char *url, size_t ul)
{
	struct ws_redial *rd = calloc(1, sizeof(*rd) + ul + 1);
	if (!rd)
		return NULL;
	rd->id = *id;
	rd->ns = (uint16_t)ns;
	memcpy(rd->url, url, ul);
	list_add_tail(&c->obj->ws->redials, &rd->node);
	return rd;
}

static void redial_free(struct ws_redial *rd)
{
	timer_cancel(&rd->timer);
	list_del(&rd->node);
	free(rd);
}

static uint64_t jitter(struct obj_ws_core *w)
{
	uint64_t x = w->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	w->rng = x;
	return x;
}

static void redial_fire(struct core *c, struct timer *t);

static void redial_arm(struct core *c, struct ws_redial *rd, uint64_t delay_ms)
{
	timer_arm(c, &rd->timer, c->now_ms + delay_ms, redial_fire);
}

/* The next try: half the backoff fixed, half random, so sockets dropped together (an
 * upstream restart) do not all come back in the same millisecond. */
static void redial_schedule(struct core *c, struct ws_redial *rd)
{
	/* Shutting down: the intent stays stored, and the next start dials it. */
	if (rd->gave_up || (c->group && c->group->stopping))
		return;
	uint64_t d = REDIAL_INITIAL_MS;
	for (unsigned i = 0; i < rd->attempts && d < REDIAL_MAX_MS; i++)
		d *= 2;
	if (d > REDIAL_MAX_MS)
		d = REDIAL_MAX_MS;
	rd->attempts++;
	redial_arm(c, rd, d / 2 + jitter(c->obj->ws) % (d / 2 + 1));
}

static void redial_fire(struct core *c, struct timer *tm)
{
	struct ws_redial *rd = LIST_CONTAINER(tm, struct ws_redial, timer);
	struct obj_ws_core *w = c->obj->ws;
	struct ws_group *g = obj_ws_group_of(c, &rd->id, rd->ns, 0);
	struct ws_member *m = g ? obj_ws_group_member(g, rd->ref) : NULL;
	if (!m || m->rd != rd) {
		redial_free(rd); /* closed meanwhile */
		return;
	}
	if (!c->ws || (c->group && c->group->stopping))
		return; /* no sockets here (unit tests), or shutting down: the next start dials */
	const char *cls = c->obj->view.ns[rd->ns].cls->name;
	struct obj_target *t = malloc(sizeof(*t));
	if (!t) {
		redial_schedule(c, rd);
		return;
	}
	int r = obj_outbound_target(c, rd->ns, rd->url, 1, t);
	if (r < 0) {
		free(t);
		rd->gave_up = 1;
		log_warn("class %s: a durable WebSocket to %s is not dialed again: %s", cls, rd->url,
			 r == -EACCES ? "outbound.allow no longer names it" : strerror(-r));
		return;
	}
	struct ws_conn *wc = obj_ws_site_reserve(c, &rd->id, rd->ns);
	if (!wc) {
		free(t);
		redial_schedule(c, rd);
		return;
	}
	r = ws_client_prepare(c, wc, &t->dial, t->host, t->target);
	free(t);
	if (r < 0) {
		obj_ws_site_unreserve(c, wc);
		redial_schedule(c, rd);
		return;
	}
	m->h = ws_conn_handle(wc); /* the same core: per-core counts stay */
	ws_conn_set_ref(wc, rd->ref);
	rd->redialed = 1;
	obj_ws_group_site_pair(c, g);
	w->ctr.outbound_reconnects++;
	log_debug("class %s: dialing %s again (attempt %u)", cls, rd->url, rd->attempts);
	ws_client_start(c, wc);
}

static void out_dropped(struct core *c, struct ws_redial *rd)
{
	if (!timer_armed(&rd->timer))
		redial_schedule(c, rd);
}

static int out_opened(struct core *c, struct ws_redial *rd)
{
	(void)c;
	int r = rd->redialed;
	rd->redialed = 0;
	rd->attempts = 0;
	return r;
}

static void out_forget(struct core *c, struct object *obj, struct ws_member *m)
{
	(void)c;
	char key[KEYS_WSOUT_PREFIX_LEN + KEYS_WSOUT_INTENT];
	size_t kl = intent_key(key, m->rd->intent);
	if (kv_write(obj, key, kl, NULL, 0, 0) < 0)
		log_warn("class %s: the intent of a closed durable WebSocket could not be deleted: "
			 "it is dialed again after a restart", obj->cls->name);
	redial_free(m->rd);
	m->rd = NULL;
}

/* Writes the intent of a durable socket in the running event and gives it a redial. */
static int hold(struct core *c, struct object *obj, struct ws_member *m, duro_ws ref,
		const char *url, const struct duro_str *tags, size_t ntags)
{
	char val[INTENT_VALUE_MAX];
	size_t vl = intent_encode(val, sizeof(val), tags, ntags, url);
	if (!vl)
		return -EINVAL;
	struct ws_redial *rd = redial_new(c, &obj->id, obj->ns->index, url, strlen(url));
	if (!rd)
		return -ENOMEM;
	if (getrandom(rd->intent, sizeof(rd->intent), 0) != (ssize_t)sizeof(rd->intent)) {
		redial_free(rd);
		return -EIO;
	}
	char key[KEYS_WSOUT_PREFIX_LEN + KEYS_WSOUT_INTENT];
	size_t kl = intent_key(key, rd->intent);
	int r = kv_write(obj, key, kl, val, vl, 1);
	if (r < 0) {
		redial_free(rd);
		return r;
	}
	rd->ref = ref;
	m->rd = rd;
	return 0;
}

int duro_ws_connect(struct duro_object *o, const char *url, const struct duro_str *tags,
		    size_t ntags, const struct duro_ws_connect_opts *opts, duro_ws *out)
{
	struct object *obj = (struct object *)o;
	struct core *c = obj->core;
	struct obj_ws_core *w = c->obj->ws;
	DURO_ASSERT(obj->running);
	if (!url || strnlen(url, DURO_WS_MAX_URL + 1) > DURO_WS_MAX_URL ||
	    (opts && (opts->flags & ~DURO_WS_RECONNECT))) {
		w->ctr.outbound_refused++;
		return -EINVAL;
	}
	/* The target is large (a whole path): off the stack of a class's callback. */
	struct obj_target *t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	int r = obj_outbound_target(c, obj->ns->index, url, 1, t);
	if (r < 0) {
		free(t);
		w->ctr.outbound_refused++;
		return r;
	}
	struct ws_conn *wc = obj_ws_site_reserve(c, &obj->id, obj->ns->index);
	if (!wc) {
		free(t);
		w->ctr.refused_core++;
		return -ENOSPC;
	}
	r = ws_client_prepare(c, wc, &t->dial, t->host, t->target);
	free(t);
	duro_ws ref = 0;
	if (r == 0)
		r = obj_ws_member_join(c, obj, ws_conn_handle(wc), WS_KIND_SOCKET, tags, ntags, &ref);
	struct ws_batch *b = NULL;
	if (r == 0 && !(b = ws_batch_new(c, c->index, WS_CONNECT, NULL, NULL, 1)))
		r = -ENOMEM;
	if (r < 0) {
		if (ref)
			obj_ws_member_leave(obj, ref);
		obj_ws_site_unreserve(c, wc);
		w->ctr.outbound_refused++;
		return r;
	}
	struct ws_member *m = obj_ws_member(obj, ref);
	m->outbound = 1;
	if (opts && (opts->flags & DURO_WS_RECONNECT) && (r = hold(c, obj, m, ref, url, tags, ntags)) < 0) {
		ws_batch_free(c, b);
		obj_ws_member_leave(obj, ref);
		obj_ws_site_unreserve(c, wc);
		w->ctr.outbound_refused++;
		return r;
	}
	ws_conn_set_ref(wc, ref);
	b->targets[b->n++] = ws_conn_handle(wc);
	obj_ws_queue_out(obj, b);
	*out = ref;
	return 0;
}

int duro_ws_is_outbound(struct duro_object *o, duro_ws ws)
{
	struct ws_member *m = obj_ws_member((struct object *)o, ws);
	return m ? m->outbound : -ENOENT;
}

/* ---- the intents' mirror, and start-up ---- */

struct mirror {
	struct core *c;
	struct object *obj;
	struct store_batch *b;
};

/* 'w' ‖ ID ‖ intent -> class name length, class name, the intent's value. */
static void mirror_write(void *arg, const char *k, size_t klen, const char *v, size_t vlen,
			 int present)
{
	struct mirror *m = arg;
	if (klen != KEYS_WSOUT_PREFIX_LEN + KEYS_WSOUT_INTENT ||
	    memcmp(k, KEYS_WSOUT_PREFIX, KEYS_WSOUT_PREFIX_LEN))
		return;
	struct store *st = m->c->obj->rt->store;
	char key[KEYS_META_ID_LEN + KEYS_WSOUT_INTENT];
	keys_tagged_id(key, KEYS_WSOUT_OBJECT, m->obj->id.bytes);
	memcpy(key + KEYS_META_ID_LEN, k + KEYS_WSOUT_PREFIX_LEN, KEYS_WSOUT_INTENT);
	if (!present) {
		store_batch_delete(st, m->b, STORE_CF_ALARMS, key, sizeof(key));
		return;
	}
	const char *cls = m->obj->cls->name;
	size_t cl = strlen(cls);
	/* hold() wrote this value, so it fits; on the stack, as commits allocate nothing. */
	char val[1 + UINT8_MAX + INTENT_VALUE_MAX];
	DURO_ASSERT(cl <= UINT8_MAX && vlen <= INTENT_VALUE_MAX);
	val[0] = (char)cl;
	memcpy(val + 1, cls, cl);
	memcpy(val + 1 + cl, v, vlen);
	store_batch_put(st, m->b, STORE_CF_ALARMS, key, sizeof(key), val, 1 + cl + vlen);
}

void obj_ws_out_event_commit(struct core *c, struct object *obj, struct store_batch *b)
{
	struct mirror m = { c, obj, b };
	if (kv_event_wiped(obj)) {
		char lo[KEYS_META_ID_LEN], hi[KEYS_META_ID_LEN];
		keys_tagged_id_range(lo, hi, KEYS_WSOUT_OBJECT, obj->id.bytes);
		store_batch_delete_range(c->obj->rt->store, b, STORE_CF_ALARMS, lo, sizeof(lo), hi,
					 sizeof(hi));
	}
	kv_event_each_write(obj, mirror_write, &m);
}

static int ns_of_class(struct core *c, const char *name, size_t len)
{
	const struct obj_view *v = &c->obj->view;
	for (unsigned i = 0; i < v->nns; i++)
		if (strlen(v->ns[i].cls->name) == len && !memcmp(v->ns[i].cls->name, name, len))
			return (int)i;
	return -1;
}

/* One stored intent of this core: its member in the object's group (the object asleep)
 * and a redial soon. */
static void load_one(struct core *c, const struct duro_id *id, const char *intent, const char *v,
		     size_t vl)
{
	struct obj_ws_core *w = c->obj->ws;
	struct duro_str tags[DURO_WS_MAX_TAGS], url;
	size_t ntags, cl = vl ? (unsigned char)v[0] : 0;
	int ns = vl > 1 + cl ? ns_of_class(c, v + 1, cl) : -1;
	if (ns < 0 || intent_decode(v + 1 + cl, vl - 1 - cl, tags, &ntags, &url) < 0)
		return; /* its class is bound no more */
	struct ws_group *g = obj_ws_group_of(c, id, (unsigned)ns, 1);
	struct ws_redial *rd = g ? redial_new(c, id, (unsigned)ns, url.ptr, url.len) : NULL;
	if (!rd)
		return;
	memcpy(rd->intent, intent, KEYS_WSOUT_INTENT);
	/* A handle no socket has (generation 0) until the redial makes one. */
	ws_handle none = (ws_handle)c->index << 56 | UINT32_MAX;
	duro_ws ref;
	if (obj_ws_group_join(c, g, none, WS_KIND_SOCKET, tags, ntags, &ref) < 0) {
		redial_free(rd);
		return;
	}
	struct ws_member *m = obj_ws_group_member(g, ref);
	m->outbound = 1;
	m->rd = rd;
	rd->ref = ref;
	rd->redialed = 1;
	if (!g->obj && g->count == 1)
		w->ctr.hibernated++; /* as if it had gone to sleep with it open */
	redial_arm(c, rd, jitter(w) % REDIAL_START_SPREAD_MS);
}

static const struct obj_ws_out_hooks hooks = { .dropped = out_dropped, .opened = out_opened,
					       .forget = out_forget };

void obj_ws_out_init(struct core *c)
{
	struct obj_ws_core *w = c->obj->ws;
	list_init(&w->redials);
	w->out = &hooks;
	if (getrandom(&w->rng, sizeof(w->rng), 0) != (ssize_t)sizeof(w->rng) || !w->rng)
		w->rng = 0x9E3779B97F4A7C15ULL + c->index;
	if (!c->obj->rt->store)
		return;
	const char lo[1] = { KEYS_WSOUT_OBJECT }, hi[1] = { KEYS_WSOUT_OBJECT + 1 };
	struct store_iter *it = store_iter_open(c->obj->rt->store, STORE_CF_ALARMS, lo, 1, hi, 1, 0);
	if (!it)
		return;
	const char *k, *v;
	size_t kl, vl;
	unsigned n = 0;
	while (store_iter_next(it, &k, &kl, &v, &vl) == 1) {
		if (kl != KEYS_META_ID_LEN + KEYS_WSOUT_INTENT)
			continue;
		struct duro_id id;
		memcpy(id.bytes, k + 1, DURO_ID_BYTES);
		if (slotmap_owner(&c->obj->view.map, id.bytes) != c->index)
			continue;
		load_one(c, &id, k + KEYS_META_ID_LEN, v, vl);
		n++;
	}
	store_iter_close(it);
	if (n)
		log_info("core %u: %u durable outbound WebSockets to dial again", c->index, n);
}

void obj_ws_out_fini(struct core *c)
{
	struct obj_ws_core *w = c->obj ? c->obj->ws : NULL;
	if (!w || !w->out)
		return;
	while (!list_empty(&w->redials))
		redial_free(LIST_CONTAINER(w->redials.next, struct ws_redial, node));
}
