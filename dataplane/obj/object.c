/* The object runtime: routing on the connection's core, then on the owner core a table of
 * live objects, activation, one event at a time per object, and LRU idle eviction.
 *
 * The request crosses cores by pointer: the exchange (allocated on the connection's core)
 * goes to the owner core over the ring, the handler fills its response there, and
 * http_respond sends it back. The object never outlives its core; the exchange never
 * leaves its owner's pool. */
#include "obj.h"
#include "obj_int.h"
#include "base_assert.h"
#include "clock.h"
#include "core.h"
#include "hex.h"
#include "http.h"
#include "log.h"
#include "siphash.h"
#include "slotmap.h"
#include "timer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* How often each core looks for idle objects to evict. */
#define EVICT_SCAN_MS 1000
#define TRIM_MIN_INTERVAL_MS 5

/* Read-only once the cores start. */
static struct {
	const struct obj_config *cfg;
	struct duro_namespace ns[DURO_MAX_BINDINGS];
	unsigned nns;
	struct slotmap map;
	struct store *store;
} rt;

struct store *obj_store(void) { return rt.store; }
const struct obj_storage_limits *obj_limits(void) { return &rt.cfg->limits; }
const struct store_config *obj_store_config(void) { return &rt.cfg->store; }
const struct obj_alarm_config *obj_alarm_config(void) { return &rt.cfg->alarms; }
unsigned obj_owner(const struct duro_id *id) { return slotmap_owner(&rt.map, id->bytes); }
const char *obj_ns_name(unsigned ns) { return rt.ns[ns].cls->name; }
const struct duro_class *obj_ns_cls(unsigned ns) { return rt.ns[ns].cls; }
const struct obj_ws_config *obj_ws_config(void) { return &rt.cfg->websockets; }

int obj_ns_of_class(const char *class_name, size_t len)
{
	for (unsigned i = 0; i < rt.nns; i++)
		if (strlen(rt.ns[i].cls->name) == len && !memcmp(rt.ns[i].cls->name, class_name, len))
			return (int)i;
	return -1;
}

/* ---- runtime ---- */

int obj_runtime_init(const struct obj_config *cfg, unsigned ncores)
{
	rt.cfg = cfg;
	rt.nns = 0;
	slotmap_build(&rt.map, ncores);
	int r = store_open(&cfg->store, &rt.store);
	if (r < 0)
		return r;
	char err[512];
	r = store_migrate(rt.store, cfg->migrations, cfg->nmigrations, err, sizeof(err));
	if (r == -EINVAL) {
		log_error("%s", err);
		return r;
	}
	if (r < 0)
		return r;
	for (unsigned i = 0; i < cfg->nbindings; i++) {
		struct duro_namespace *ns = &rt.ns[rt.nns];
		const struct obj_binding *b = &cfg->bindings[i];
		ns->index = rt.nns;
		ns->binding = b;
		ns->cls = obj_find_class(b->class_name);
		if (!ns->cls) {
			log_error("config: binding %s: unknown class \"%s\"", b->name, b->class_name);
			return -EINVAL;
		}
		uint8_t secret[32];
		char deleted_by[STORE_NAME_MAX];
		r = store_class(rt.store, ns->cls->name, &ns->cf, secret, deleted_by);
		if (r == -ENOENT && deleted_by[0]) {
			log_error("config: durable_objects.bindings[%u]: class \"%s\" was deleted by migration tag \"%s\" and is still bound",
				  i, b->class_name, deleted_by);
			return -EINVAL;
		}
		if (r == -ENOENT) {
			log_error("config: durable_objects.bindings[%u]: class \"%s\" has no migration: list it in new_classes of a migrations tag",
				  i, b->class_name);
			return -EINVAL;
		}
		if (r < 0)
			return r;
		obj_namespace_keys(ns, secret);
		rt.nns++;
	}
	return 0;
}

/* Keys an import adopted: kept until the runtime ends, since a core may be deriving an
 * ID with the keys they replaced. Only the control plane adds to the list, one import at a
 * time. */
struct adopted_keys {
	struct adopted_keys *next;
	uint8_t keys[32];
};
static struct adopted_keys *adopted;

static void free_adopted_keys(void)
{
	while (adopted) {
		struct adopted_keys *next = adopted->next;
		free(adopted);
		adopted = next;
	}
}

void obj_runtime_fini(void)
{
	free_adopted_keys();
	store_close(rt.store);
	memset(&rt, 0, sizeof(rt));
}

const struct duro_namespace *duro_namespace(const char *binding)
{
	for (unsigned i = 0; i < rt.nns; i++)
		if (strcmp(rt.ns[i].binding->name, binding) == 0)
			return &rt.ns[i];
	return NULL;
}

static const struct duro_namespace *namespace_n(const char *binding, size_t len)
{
	for (unsigned i = 0; i < rt.nns; i++) {
		const char *b = rt.ns[i].binding->name;
		if (strlen(b) == len && memcmp(b, binding, len) == 0)
			return &rt.ns[i];
	}
	return NULL;
}

/* ---- object table ---- */

static size_t bucket_of(const struct obj_core *oc, const struct duro_id *id)
{
	/* ID bytes are uniform (random or PRF output an attacker cannot steer). */
	uint64_t h;
	memcpy(&h, id->bytes + 2, sizeof(h));
	return (size_t)h & (oc->nbuckets - 1);
}

static struct object *table_find(struct obj_core *oc, const struct duro_id *id)
{
	for (struct object *o = oc->buckets[bucket_of(oc, id)]; o; o = o->hnext)
		if (memcmp(o->id.bytes, id->bytes, DURO_ID_BYTES) == 0)
			return o;
	return NULL;
}

static int table_grow(struct obj_core *oc)
{
	size_t n = oc->nbuckets * 2;
	struct object **nb = calloc(n, sizeof(*nb));
	if (!nb)
		return -ENOMEM;
	struct object **old = oc->buckets;
	size_t oldn = oc->nbuckets;
	oc->buckets = nb;
	oc->nbuckets = n;
	for (size_t i = 0; i < oldn; i++) {
		for (struct object *o = old[i], *next; o; o = next) {
			next = o->hnext;
			size_t b = bucket_of(oc, &o->id);
			o->hnext = nb[b];
			nb[b] = o;
		}
	}
	free(old);
	return 0;
}

static void table_remove(struct obj_core *oc, struct object *obj)
{
	struct object **pp = &oc->buckets[bucket_of(oc, &obj->id)];
	while (*pp != obj)
		pp = &(*pp)->hnext;
	*pp = obj->hnext;
	oc->count--;
}

/* ---- lifecycle ---- */

/* Answers every response the object still holds: it is going away. */
static void fail_deferred(struct core *c, struct object *obj)
{
	while (obj->deferred) {
		struct http_exchange *ex = obj->deferred;
		obj->deferred = (struct http_exchange *)ex->msg.next;
		http_respond_error(c, ex, 503, "the object was reset before answering");
	}
	obj->ndeferred = 0;
}

static void object_unload(struct core *c, struct object *obj)
{
	struct obj_core *oc = c->obj;
	DURO_ASSERT(!obj->running);
	fail_deferred(c, obj);
	if (obj->ns->cls->on_unload) {
		obj->running = 1;
		obj->ns->cls->on_unload((struct duro_object *)obj);
		obj->running = 0;
	}
	kv_free_all(c, obj);
	obj_ws_detach(c, obj);
	table_remove(oc, obj);
	list_del(&obj->lru);
	oc->ctr.evictions++;
	oc->ctr.active = oc->count;
	free(obj->name);
	free(obj);
}

static struct object *object_activate(struct core *c, const struct duro_namespace *ns,
				      const struct duro_id *id, int *err)
{
	struct obj_core *oc = c->obj;
	struct object *obj = table_find(oc, id);
	if (obj)
		return obj;
	if (oc->count >= oc->nbuckets && table_grow(oc) < 0) {
		*err = -ENOMEM;
		return NULL;
	}
	/* State sizes differ per class, so objects come from malloc, once per activation. */
	obj = calloc(1, sizeof(*obj) + ns->cls->state_size);
	if (!obj) {
		*err = -ENOMEM;
		return NULL;
	}
	obj->id = *id;
	obj->ns = ns;
	obj->core = c;
	obj->last_used_ms = c->now_ms;
	obj_ws_attach(c, obj); /* sockets that stayed open while it hibernated */
	if (ns->cls->on_load) {
		/* on_load may read storage but its writes are not kept: it runs outside events. */
		obj->running = 1;
		kv_event_begin(c, obj);
		int r = ns->cls->on_load((struct duro_object *)obj);
		kv_event_end(c, obj, 0);
		obj->running = 0;
		commit_attach_syncs(c, obj);
		obj_ws_flush(c, obj);
		if (r != 0) {
			oc->ctr.load_failures++;
			kv_free_all(c, obj);
			obj_ws_detach(c, obj);
			free(obj);
			*err = -EIO;
			return NULL;
		}
	}
	size_t b = bucket_of(oc, id);
	obj->hnext = oc->buckets[b];
	oc->buckets[b] = obj;
	oc->count++;
	list_add_tail(&oc->lru, &obj->lru);
	oc->ctr.activations++;
	oc->ctr.active = oc->count;
	return obj;
}

struct object *obj_activate(struct core *c, unsigned ns, const struct duro_id *id, int *err)
{
	return object_activate(c, &rt.ns[ns], id, err);
}

static void evict_scan(struct core *c, struct timer *t)
{
	struct obj_core *oc = c->obj;
	uint64_t idle = rt.cfg->evict_idle_ms;
	/* Objects whose only activity is open sockets hibernate sooner. */
	uint64_t hibernate = rt.cfg->websockets.hibernate_idle_ms;
	uint64_t soonest = idle < hibernate ? idle : hibernate;
	for (struct list_node *n = oc->lru.next, *next; n != &oc->lru; n = next) {
		next = n->next;
		struct object *obj = LIST_CONTAINER(n, struct object, lru);
		if (obj->last_used_ms + soonest > c->now_ms)
			break;
		if (obj->last_used_ms + (obj->group ? hibernate : idle) > c->now_ms)
			continue;
		/* Writes not yet in RocksDB, or responses it holds, keep it in memory. */
		if (!kv_dirty(c, obj) && !obj->ndeferred)
			object_unload(c, obj);
	}
	kv_trim_cache(c);
	timer_arm(c, t, c->now_ms + EVICT_SCAN_MS, evict_scan);
}

/* ---- events on the owner core ---- */

#define event_begin obj_event_begin
#define event_end obj_event_end

static long decode_segment(const char *s, size_t n, char *out, size_t cap);

/* Keeps the name an object was reached by, so its first write can record it (kv.c): the
 * control plane lists objects by name, which Cloudflare cannot. */
static void remember_name(struct object *obj, const char *seg, size_t len)
{
	char name[DURO_MAX_NAME];
	long n = decode_segment(seg, len, name, sizeof(name));
	if (n <= 0 || !(obj->name = malloc((size_t)n)))
		return;
	memcpy(obj->name, name, (size_t)n);
	obj->name_len = (uint16_t)n;
}

static void run_request(struct core *c, struct http_exchange *ex)
{
	struct obj_core *oc = c->obj;
	struct route_result *rr = (struct route_result *)ex->user;
	const struct duro_namespace *ns = &rt.ns[rr->ns];
	DURO_ASSERT(slotmap_owner(&rt.map, rr->id.bytes) == c->index);
	oc->ctr.requests++;
	int err = 0;
	struct object *obj = object_activate(c, ns, &rr->id, &err);
	if (!obj) {
		http_respond_error(c, ex, 500, err == -ENOMEM ? "out of memory activating the object"
							      : "the object failed to load");
		return;
	}
	http_resp_status(ex, 200);
	rr->obj = obj;
	if (rr->name_len && !obj->name)
		remember_name(obj, ex->req.path + rr->name_off, rr->name_len);
	obj->defer_current = 0;
	event_begin(c, obj);
	int r = ns->cls->on_request((struct duro_object *)obj, (const struct duro_request *)ex,
				    (struct duro_response *)ex);
	int wrote = event_end(c, obj, r == 0);
	if (obj->defer_current) {
		obj->defer_current = 0;
		if (r == 0 && wrote >= 0) {
			http_resp_reset(ex);
			ex->msg.next = obj->deferred ? &obj->deferred->msg : NULL;
			obj->deferred = ex;
			obj->ndeferred++;
			return; /* answered later, by duro_deferred_respond */
		}
	}
	if (wrote == -ENOSPC) {
		http_resp_error(ex, 507, "storage full: the write was not saved");
	} else if (r != 0 || wrote < 0) {
		oc->ctr.handler_failures++;
		/* At most a line a second per core: a client that makes a handler fail on purpose
		 * must not fill the log. */
		if (r != 0 && c->now_ms >= oc->failure_logged_ms + 1000) {
			oc->failure_logged_ms = c->now_ms;
			log_warn("class %s: on_request failed (%d): its writes are rolled back "
				 "(%llu handler failures on core %u so far)", ns->cls->name, r,
				 (unsigned long long)oc->ctr.handler_failures, c->index);
		}
		http_resp_error(ex, 500, "the object's handler failed");
	}
	/* Over twice the budget: trim now rather than at the next scan, but at most every few
	 * ms, since unapplied writes (which cannot go) may alone be over it. */
	if (c->obj->cache_bytes > 2 * obj_limits()->cache_bytes_per_core &&
	    c->now_ms >= c->obj->last_trim_ms + TRIM_MIN_INTERVAL_MS) {
		c->obj->last_trim_ms = c->now_ms;
		kv_trim_cache(c);
	}
	/* The output gate: nothing leaves before the object's writes so far are durable. */
	if (obj->kv.pending_seq > commit_durable_seq(c))
		commit_gate(c, ex, obj->kv.pending_seq);
	else
		http_respond(c, ex);
}

/* Every event of an object starts and ends here: most recently used, one at a time, inside
 * a transaction whose writes commit when it ends well. */
void obj_event_begin(struct core *c, struct object *obj)
{
	DURO_ASSERT(!obj->running); /* events never nest */
	obj->last_used_ms = c->now_ms;
	list_del(&obj->lru);
	list_add_tail(&c->obj->lru, &obj->lru);
	obj->running = 1;
	kv_event_begin(c, obj);
}

/* Returns kv_event_end's result: 1 wrote, 0 nothing to write, or a negative errno. */
int obj_event_end(struct core *c, struct object *obj, int ok)
{
	int wrote = kv_event_end(c, obj, ok);
	obj->running = 0;
	commit_attach_syncs(c, obj);
	obj_ws_flush(c, obj);
	return wrote;
}

void obj_run_sync(struct core *c, struct sync_waiter *w)
{
	const struct duro_namespace *ns = &rt.ns[w->ns];
	int err = 0;
	struct object *obj = object_activate(c, ns, &w->id, &err);
	if (!obj) {
		log_warn("class %s: a sync() outcome was lost: the object failed to load (%d)",
			 ns->cls->name, err);
		free(w);
		return;
	}
	event_begin(c, obj);
	w->fn((struct duro_object *)obj, w->status, w->arg);
	if (event_end(c, obj, 1) < 0)
		log_warn("class %s: writes of a sync() callback refused (storage full or out of memory)",
			 ns->cls->name);
	free(w);
}

int obj_run_alarm(struct core *c, const struct duro_id *id, unsigned nsi, const char *name,
		  size_t namelen, int64_t time_ms, unsigned retries, int drop)
{
	const struct duro_namespace *ns = &rt.ns[nsi];
	int err = 0;
	struct object *obj = object_activate(c, ns, id, &err);
	if (!obj)
		return err ? err : -EIO;
	event_begin(c, obj);
	int r = 0;
	if (!drop && ns->cls->on_alarm) {
		struct duro_alarm_info info = { .retry_count = retries, .is_retry = retries > 0,
						.name = namelen ? name : NULL, .name_len = namelen };
		r = ns->cls->on_alarm((struct duro_object *)obj, &info);
	}
	if (r == 0) {
		/* Done: clear the alarm, unless the handler set it again for another time. */
		char key[ALARM_PREFIX_LEN + DURO_MAX_ALARM_NAME];
		memcpy(key, ALARM_PREFIX, ALARM_PREFIX_LEN);
		memcpy(key + ALARM_PREFIX_LEN, name, namelen);
		struct duro_str v;
		if (kv_read(obj, key, ALARM_PREFIX_LEN + namelen, &v) == 1 && v.len == sizeof(time_ms) &&
		    !memcmp(v.ptr, &time_ms, sizeof(time_ms)))
			r = kv_write(obj, key, ALARM_PREFIX_LEN + namelen, NULL, 0, 0) < 0 ? -EIO : 0;
	}
	int wrote = event_end(c, obj, r == 0);
	return r != 0 ? r : (wrote < 0 ? wrote : 0);
}

void obj_reset(struct core *c, struct object *obj)
{
	log_warn("class %s: object reset after a failed commit", obj->ns->cls->name);
	obj->kv.pending_seq = 0;
	object_unload(c, obj);
}

static void on_request_msg(struct core *c, struct core_msg *m)
{
	run_request(c, (struct http_exchange *)m);
}

/* ---- routing on the connection's core ---- */

/* Percent-decodes a path segment into out; returns its length or -1. */
static long decode_segment(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '%') {
			if (i + 2 >= n)
				return -1;
			int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			ch = (char)(hi << 4 | lo);
			i += 2;
		}
		if (o == cap)
			return -1;
		out[o++] = ch;
	}
	return (long)o;
}

void obj_handle_http(struct core *c, struct http_exchange *ex)
{
	struct obj_core *oc = c->obj;
	const struct http_request *req = &ex->req;
	const char *path = req->path;
	size_t plen = req->path_len;
	const struct obj_route *route = NULL;
	for (unsigned i = 0; i < rt.cfg->nroutes; i++) {
		const struct obj_route *r = &rt.cfg->routes[i];
		size_t n = strlen(r->prefix);
		if (plen >= n && memcmp(path, r->prefix, n) == 0) {
			route = r;
			break;
		}
	}
	if (!route) {
		oc->ctr.not_found++;
		http_respond_error(c, ex, 404, "no route for this path");
		return;
	}
	size_t pos = strlen(route->prefix);
	const struct duro_namespace *ns;
	if (route->kind == ROUTE_GENERIC) {
		const char *slash = memchr(path + pos, '/', plen - pos);
		size_t blen = slash ? (size_t)(slash - (path + pos)) : plen - pos;
		ns = namespace_n(path + pos, blen);
		if (!ns) {
			oc->ctr.not_found++;
			http_respond_error(c, ex, 404, "no such binding");
			return;
		}
		pos += blen + (slash ? 1 : 0);
	} else {
		ns = &rt.ns[route->binding];
	}
	const char *seg = path + pos;
	const char *end = memchr(seg, '/', plen - pos);
	size_t slen = end ? (size_t)(end - seg) : plen - pos;
	struct route_result *rr = (struct route_result *)ex->user;
	rr->ns = (uint16_t)ns->index;
	rr->subpath_off = (uint16_t)(pos + slen);
	rr->name_off = rr->name_len = 0;
	if (pos + slen > UINT16_MAX) {
		http_respond_error(c, ex, 414, "path too long");
		return;
	}
	int r;
	if (route->kind == ROUTE_NAME) {
		char name[DURO_MAX_NAME];
		long n = decode_segment(seg, slen, name, sizeof(name));
		if (n <= 0) {
			oc->ctr.bad_ids++;
			http_respond_error(c, ex, 400,
					   n == 0 ? "missing object name"
						  : "object name malformed or over 256 bytes");
			return;
		}
		r = duro_id_from_name(ns, name, (size_t)n, &rr->id);
		DURO_ASSERT(r == 0);
		rr->name_off = (uint16_t)pos;
		rr->name_len = (uint16_t)slen;
	} else if (route->kind == ROUTE_GENERIC && slen == 3 && memcmp(seg, "new", 3) == 0) {
		r = duro_id_new(ns, &rr->id);
		if (r < 0) {
			http_respond_error(c, ex, 503, "no randomness for a new ID");
			return;
		}
		char hex[DURO_ID_HEX + 1];
		duro_id_to_string(&rr->id, hex);
		http_resp_header(ex, "Duro-Id", 7, hex, DURO_ID_HEX);
	} else {
		r = duro_id_from_string(ns, seg, slen, &rr->id);
		if (r < 0) {
			oc->ctr.bad_ids++;
			if (r == -EINVAL)
				http_respond_error(c, ex, 400, "malformed object ID: want 64 hex digits");
			else
				http_respond_error(c, ex, 404, "no such object in this namespace");
			return;
		}
	}
	if (obj_ws_route(c, ex) < 0)
		return;
	unsigned owner = slotmap_owner(&rt.map, rr->id.bytes);
	if (owner == c->index) {
		run_request(c, ex);
		return;
	}
	oc->ctr.forwarded++;
	ex->msg.type = MSG_OBJ_REQUEST;
	core_send(c, owner, &ex->msg);
}

/* ---- per core ---- */

int obj_core_init(struct core *c)
{
	struct obj_core *oc = calloc(1, sizeof(*oc));
	if (!oc)
		return -ENOMEM;
	c->obj = oc;
	oc->nbuckets = 1024;
	oc->buckets = calloc(oc->nbuckets, sizeof(*oc->buckets));
	if (!oc->buckets)
		return -ENOMEM;
	list_init(&oc->lru);
	core_set_msg_handler(c, MSG_OBJ_REQUEST, on_request_msg);
	timer_arm(c, &oc->evict_timer, c->now_ms + EVICT_SCAN_MS, evict_scan);
	int r = commit_core_init(c);
	if (r == 0)
		r = alarm_core_init(c);
	return r < 0 ? r : obj_ws_core_init(c);
}

void obj_core_fini(struct core *c)
{
	struct obj_core *oc = c->obj;
	if (!oc)
		return;
	while (!list_empty(&oc->lru))
		object_unload(c, LIST_CONTAINER(oc->lru.next, struct object, lru));
	obj_ws_core_fini(c);
	alarm_core_fini(c);
	commit_core_fini(c);
	timer_cancel(&oc->evict_timer);
	free(oc->buckets);
	free(oc);
	c->obj = NULL;
}

const struct obj_counters *obj_counters(struct core *c) { return &c->obj->ctr; }

/* ---- control plane ---- */

unsigned obj_namespaces(void) { return rt.nns; }
const char *obj_namespace_binding(unsigned ns) { return rt.ns[ns].binding->name; }
const char *obj_namespace_class(unsigned ns) { return rt.ns[ns].cls->name; }
int obj_namespace_cf(unsigned ns) { return rt.ns[ns].cf; }
struct store *obj_runtime_store(void) { return rt.store; }

int obj_parse_id(const char *hex, size_t len, unsigned *ns, struct duro_id *id)
{
	int r = -ENOENT;
	for (unsigned i = 0; i < rt.nns; i++) {
		r = duro_id_from_string(&rt.ns[i], hex, len, id);
		if (r == 0) {
			*ns = i;
			return 0;
		}
		if (r == -EINVAL)
			return r;
	}
	return r;
}

int obj_id_from_name(const char *binding, const char *name, size_t len, unsigned *ns,
		     struct duro_id *id)
{
	const struct duro_namespace *n = duro_namespace(binding);
	if (!n)
		return -ENOENT;
	int r = duro_id_from_name(n, name, len, id);
	if (r == 0)
		*ns = n->index;
	return r;
}

void obj_describe(struct core *c, unsigned ns, const struct duro_id *id, struct obj_info *out)
{
	struct object *obj = table_find(c->obj, id);
	memset(out, 0, sizeof(*out));
	if (obj && obj->ns->index == ns) {
		out->in_memory = 1;
		out->running = obj->running;
		out->deferred = obj->ndeferred;
	}
	out->sockets = (unsigned)obj_ws_count(c, ns, id);
	out->hibernated = !out->in_memory && out->sockets > 0;
}

int obj_evict(struct core *c, unsigned ns, const struct duro_id *id)
{
	struct object *obj = table_find(c->obj, id);
	if (!obj || obj->ns->index != ns)
		return 0;
	if (obj->running || kv_dirty(c, obj) || obj->ndeferred)
		return -EBUSY;
	object_unload(c, obj);
	return 1;
}

int obj_storage_settled(struct core *c) { return commit_applied_seq(c) >= commit_durable_seq(c); }

int obj_namespace_adopt(unsigned ns, const uint8_t secret[32])
{
	struct adopted_keys *a = malloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	memcpy(a->keys, secret, 32);
	a->next = adopted;
	adopted = a;
	atomic_store_explicit(&rt.ns[ns].keys, a->keys, memory_order_release);
	return 0;
}

static int any_key(void *arg, struct duro_str k, struct duro_str v)
{
	(void)k;
	(void)v;
	*(int *)arg = 1;
	return 1;
}

struct delete_wait {
	void (*done)(void *arg, int status);
	void *arg;
};

static void delete_synced(struct duro_object *o, int status, void *arg)
{
	(void)o;
	struct delete_wait *w = arg;
	w->done(w->arg, status);
	free(w);
}

int obj_import(struct core *c, unsigned ns, const struct duro_id *id, const char *name,
	       size_t name_len, const struct duro_kv *entries, size_t n,
	       void (*done)(void *arg, int status), void *arg)
{
	int err = 0;
	struct object *obj = object_activate(c, &rt.ns[ns], id, &err);
	if (!obj)
		return err ? err : -EIO;
	if (obj->running)
		return -EBUSY;
	struct delete_wait *w = malloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct delete_wait){ done, arg };
	event_begin(c, obj);
	struct duro_list_options all = { .limit = 1 };
	int found = 0;
	int r = kv_list(obj, &all, any_key, &found, 1);
	if (r >= 0 && found)
		r = -EEXIST;
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = kv_write(obj, entries[i].key.ptr, entries[i].key.len, entries[i].value.ptr,
			     entries[i].value.len, 1);
	if (r >= 0 && name_len && !obj->name && (obj->name = malloc(name_len))) {
		memcpy(obj->name, name, name_len);
		obj->name_len = (uint16_t)name_len;
	}
	if (r >= 0)
		r = duro_sync((struct duro_object *)obj, delete_synced, w);
	int wrote = event_end(c, obj, r >= 0);
	if (r < 0) {
		free(w);
		return r;
	}
	(void)wrote; /* a refused write reaches done through the sync */
	return 0;
}

int obj_delete(struct core *c, unsigned ns, const struct duro_id *id,
	       void (*done)(void *arg, int status), void *arg)
{
	struct delete_wait *w = malloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct delete_wait){ done, arg };
	int err = 0;
	struct object *obj = object_activate(c, &rt.ns[ns], id, &err);
	if (!obj) {
		free(w);
		return err ? err : -EIO;
	}
	if (obj->running) {
		free(w);
		return -EBUSY;
	}
	event_begin(c, obj);
	int r = duro_delete_all((struct duro_object *)obj);
	if (r == 0)
		r = duro_sync((struct duro_object *)obj, delete_synced, w);
	int wrote = event_end(c, obj, r == 0);
	if (r < 0 || wrote < 0) {
		if (r == 0)
			return 0; /* the sync callback reports the failure and frees w */
		free(w);
		return r;
	}
	return 0;
}

/* ---- duro.h accessors: a duro_request and a duro_response are the exchange ---- */

static const struct http_exchange *EX(const void *p) { return p; }

void *duro_state(struct duro_object *obj) { return ((struct object *)obj)->state; }
const struct duro_id *duro_object_id(const struct duro_object *obj)
{
	return &((const struct object *)obj)->id;
}
const char *duro_object_class(const struct duro_object *obj)
{
	return ((const struct object *)obj)->ns->cls->name;
}

struct duro_deferred *duro_res_defer(struct duro_response *res)
{
	struct http_exchange *ex = (struct http_exchange *)res;
	struct object *obj = ((struct route_result *)ex->user)->obj;
	/* Only the response of the on_request running now can be deferred. */
	DURO_ASSERT(obj && obj->running);
	if (obj->ndeferred >= OBJ_MAX_DEFERRED || obj->defer_current)
		return NULL;
	obj->defer_current = 1;
	return (struct duro_deferred *)ex;
}

int duro_deferred_respond(struct duro_object *o, struct duro_deferred *d, int status,
			  const char *content_type, const void *body, size_t len)
{
	struct object *obj = (struct object *)o;
	struct http_exchange *ex = (struct http_exchange *)d;
	DURO_ASSERT(obj->running && obj->ndeferred > 0);
	struct http_exchange **pp = &obj->deferred;
	while (*pp && *pp != ex)
		pp = (struct http_exchange **)&(*pp)->msg.next;
	DURO_ASSERT(*pp == ex); /* a handle of this object, answered once */
	*pp = (struct http_exchange *)ex->msg.next;
	obj->ndeferred--;
	http_resp_reset(ex);
	http_resp_status(ex, status);
	int r = 0;
	if (content_type)
		r = http_resp_header(ex, "Content-Type", 12, content_type, strlen(content_type));
	if (r == 0)
		r = http_resp_body(ex, body, len);
	if (r < 0)
		http_resp_error(ex, 500, "out of memory answering a deferred response");
	struct core *c = obj->core;
	if (obj->kv.pending_seq > commit_durable_seq(c))
		commit_gate(c, ex, obj->kv.pending_seq);
	else
		http_respond(c, ex);
	return r;
}

int duro_var(const struct duro_object *obj, const char *name, struct duro_str *value)
{
	const struct obj_binding *b = ((const struct object *)obj)->ns->binding;
	for (unsigned i = 0; i < b->nvars; i++) {
		if (!strcmp(b->vars[i].name, name)) {
			value->ptr = b->vars[i].value;
			value->len = strlen(b->vars[i].value);
			return 1;
		}
	}
	return 0;
}

struct duro_str duro_req_method(const struct duro_request *req)
{
	return (struct duro_str){ EX(req)->req.method, EX(req)->req.method_len };
}
struct duro_str duro_req_path(const struct duro_request *req)
{
	return (struct duro_str){ EX(req)->req.path, EX(req)->req.path_len };
}
struct duro_str duro_req_subpath(const struct duro_request *req)
{
	const struct http_exchange *ex = EX(req);
	const struct route_result *rr = (const struct route_result *)ex->user;
	return (struct duro_str){ ex->req.path + rr->subpath_off, ex->req.path_len - rr->subpath_off };
}
struct duro_str duro_req_query(const struct duro_request *req)
{
	const struct http_exchange *ex = EX(req);
	return (struct duro_str){ ex->req.query ? ex->req.query : "", ex->req.query_len };
}
int duro_req_query_param(const struct duro_request *req, const char *name, struct duro_str *out)
{
	struct duro_str q = duro_req_query(req);
	size_t n = strlen(name);
	const char *p = q.ptr, *end = q.ptr + q.len;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(e - p));
		const char *k_end = eq ? eq : e;
		if ((size_t)(k_end - p) == n && memcmp(p, name, n) == 0) {
			out->ptr = eq ? eq + 1 : e;
			out->len = eq ? (size_t)(e - eq - 1) : 0;
			return 1;
		}
		p = e + 1;
	}
	return 0;
}
int duro_req_query_int(const struct duro_request *req, const char *name, int64_t lo, int64_t hi,
		       int64_t *out)
{
	struct duro_str v;
	char buf[24];
	if (!duro_req_query_param(req, name, &v))
		return 0;
	if (v.len == 0 || v.len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, v.ptr, v.len);
	buf[v.len] = 0;
	char *end;
	errno = 0;
	long long x = strtoll(buf, &end, 10);
	if (*end || errno || x < lo || x > hi)
		return -EINVAL;
	*out = x;
	return 1;
}

int64_t duro_now_ms(void) { return (int64_t)clock_wall_ms(); }

int duro_req_header(const struct duro_request *req, const char *name, struct duro_str *out)
{
	size_t len;
	const char *v = http_find_header(&EX(req)->req, name, &len);
	if (!v)
		return 0;
	out->ptr = v;
	out->len = len;
	return 1;
}
struct duro_str duro_req_body(const struct duro_request *req)
{
	const struct http_exchange *ex = EX(req);
	return (struct duro_str){ ex->req.body ? ex->req.body : "", ex->req.body_len };
}
int duro_req_is(const struct duro_request *req, const char *method)
{
	const struct http_exchange *ex = EX(req);
	size_t n = strlen(method);
	return ex->req.method_len == n && memcmp(ex->req.method, method, n) == 0;
}

void duro_res_status(struct duro_response *res, int status)
{
	http_resp_status((struct http_exchange *)res, status);
}
int duro_res_header(struct duro_response *res, const char *name, const char *value)
{
	return http_resp_header((struct http_exchange *)res, name, strlen(name), value,
				strlen(value));
}
int duro_res_body(struct duro_response *res, const void *data, size_t len)
{
	return http_resp_body((struct http_exchange *)res, data, len);
}
int duro_res_text(struct duro_response *res, int status, const char *text)
{
	duro_res_status(res, status);
	int r = duro_res_header(res, "Content-Type", "text/plain; charset=utf-8");
	if (r == 0)
		r = duro_res_body(res, text, strlen(text));
	if (r == 0)
		r = duro_res_body(res, "\n", 1);
	return r;
}
