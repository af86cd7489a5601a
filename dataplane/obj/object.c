/* Each core's table of live objects: a hash table by ID, an LRU list, idle eviction (an
 * object with sockets hibernates sooner) and unloading. An object never outlives its core
 * and is only ever touched on it. */
#include "object.h"
#include "base_assert.h"
#include "call.h"
#include "cluster_gate.h"
#include "core.h"
#include "http.h"
#include "kv.h"
#include "log.h"
#include "obj_ws.h"
#include "version.h"
#include "sql.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* How often each core looks for idle objects to evict. */
#define EVICT_SCAN_MS 1000

static size_t bucket_of(const struct obj_core *oc, const struct duro_id *id)
{
	/* ID bytes are uniform (random or PRF output an attacker cannot steer). */
	uint64_t h;
	memcpy(&h, id->bytes + 2, sizeof(h));
	return (size_t)h & (oc->nbuckets - 1);
}

struct object *object_find(struct core *c, const struct duro_id *id)
{
	struct obj_core *oc = c->obj;
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

struct object *object_new(struct core *c, unsigned ns, const struct duro_id *id,
			  struct obj_version *ver, int *err)
{
	struct obj_core *oc = c->obj;
	DURO_ASSERT(ns < oc->view.nns && !object_find(c, id));
	const struct obj_ns_entry *e = &oc->view.ns[ns];
	struct obj_version *target = obj_version_target(e, id);
	if (!ver)
		ver = target;
	if (oc->count >= oc->nbuckets && table_grow(oc) < 0) {
		*err = -ENOMEM;
		return NULL;
	}
	/* State sizes differ per class, so objects come from malloc, once per activation. */
	struct object *obj = calloc(1, sizeof(*obj) + ver->cls->state_size);
	if (!obj) {
		*err = -ENOMEM;
		return NULL;
	}
	obj->id = *id;
	obj->ns = e->ns;
	obj->cls = ver->cls;
	obj->ver = ver;
	obj->state_cap = ver->cls->state_size;
	list_init(&obj->conts);
	if (ver != target) /* pinned to an older version: it switches once it can */
		list_add_tail(&oc->switching, &obj->switch_node);
	obj->core = c;
	obj->last_used_ms = c->now_ms;
	list_init(&obj->calls_made);
	list_init(&obj->calls_pending);
	obj_ws_attach(c, obj); /* sockets that stayed open while it hibernated */
	return obj;
}

void object_insert(struct core *c, struct object *obj)
{
	struct obj_core *oc = c->obj;
	size_t b = bucket_of(oc, &obj->id);
	obj->hnext = oc->buckets[b];
	oc->buckets[b] = obj;
	oc->count++;
	list_add_tail(&oc->lru, &obj->lru);
	oc->ctr.activations++;
	oc->ctr.active = oc->count;
	obj_cluster_trace(c, &obj->id, "activate");
	obj_version_count(c, obj->ver, 1);
}

/* What every way out of memory shares: the deploy lists let go, memory freed. */
static void object_free(struct object *obj)
{
	/* sync() callbacks still on their way find the object by its ID, or activate it. */
	while (!list_empty(&obj->conts))
		list_del(obj->conts.next);
	if (list_linked(&obj->switch_node))
		list_del(&obj->switch_node);
	free(obj->state_mem);
	free(obj->name);
	free(obj);
}

void object_discard(struct core *c, struct object *obj)
{
	c->obj->ctr.load_failures++;
	sql_free(c, obj);
	kv_free_all(c, obj);
	obj_ws_detach(c, obj);
	object_free(obj);
}

void object_touch(struct core *c, struct object *obj)
{
	obj->last_used_ms = c->now_ms;
	list_del(&obj->lru);
	list_add_tail(&c->obj->lru, &obj->lru);
}

/* Answers every response the object still holds: it is going away. */
static void fail_deferred(struct core *c, struct object *obj)
{
	/* Requests waiting for its SQL connection (sql_ahead.c) never ran: they hear the same. */
	for (struct http_exchange *ex = sql_ahead_take_parked(obj), *next; ex; ex = next) {
		next = (struct http_exchange *)ex->msg.next;
		http_respond_error(c, ex, 503, "the object was reset before answering");
	}
	while (obj->deferred) {
		struct http_exchange *ex = obj->deferred;
		obj->deferred = (struct http_exchange *)ex->msg.next;
		http_respond_error(c, ex, 503, "the object was reset before answering");
	}
	obj->ndeferred = 0;
}

/* The version's on_unload, unless the object switched to it and never loaded. */
static void run_unload(struct core *c, struct object *obj)
{
	if (!obj->cls->on_unload || obj->needs_load)
		return;
	obj->running = 1;
	obj_version_enter(c, obj, ATTRIB_UNLOAD);
	obj->cls->on_unload((struct duro_object *)obj);
	obj_version_leave(c, obj, 0);
	obj->running = 0;
}

void object_unload(struct core *c, struct object *obj)
{
	struct obj_core *oc = c->obj;
	DURO_ASSERT(!obj->running && !obj->syncs && !obj->answered);
	obj->unloading = 1; /* held calls answered now hear that the callee was reset */
	fail_deferred(c, obj);
	run_unload(c, obj);
	call_object_unload(c, obj);
	sql_free(c, obj); /* closes its connection */
	kv_free_all(c, obj);
	obj_ws_detach(c, obj);
	obj_cluster_trace(c, &obj->id, "unload");
	table_remove(oc, obj);
	list_del(&obj->lru);
	oc->ctr.evictions++;
	oc->ctr.active = oc->count;
	obj_version_count(c, obj->ver, -1);
	object_free(obj);
}

int object_switch(struct core *c, struct object *obj, struct obj_version *ver)
{
	DURO_ASSERT(!obj->running && !obj->syncs && list_empty(&obj->conts) && !obj->answered &&
		    ver != obj->ver);
	size_t size = ver->cls->state_size;
	void *mem = NULL;
	if (size > obj->state_cap && !(mem = calloc(1, size)))
		return -ENOMEM;
	fail_deferred(c, obj);
	run_unload(c, obj);
	if (mem) {
		free(obj->state_mem);
		obj->state_mem = mem;
		obj->state_cap = size;
	} else {
		memset(obj->state_mem ? obj->state_mem : obj->state, 0, obj->state_cap);
	}
	obj_version_count(c, obj->ver, -1);
	obj_version_count(c, ver, 1);
	obj->ver = ver;
	obj->cls = ver->cls;
	obj->needs_load = 1;
	if (list_linked(&obj->switch_node))
		list_del(&obj->switch_node);
	return 0;
}

static void evict_scan(struct core *c, struct timer *t)
{
	struct obj_core *oc = c->obj;
	const struct obj_config *cfg = oc->rt->cfg;
	uint64_t idle = cfg->evict_idle_ms;
	/* Objects whose only activity is open sockets hibernate sooner. */
	uint64_t hibernate = cfg->websockets.hibernate_idle_ms;
	uint64_t soonest = idle < hibernate ? idle : hibernate;
	for (struct list_node *n = oc->lru.next, *next; n != &oc->lru; n = next) {
		next = n->next;
		struct object *obj = LIST_CONTAINER(n, struct object, lru);
		if (obj->last_used_ms + soonest > c->now_ms)
			break;
		if (obj->last_used_ms + (obj->group ? hibernate : idle) > c->now_ms)
			continue;
		/* Writes not yet in RocksDB, responses it holds, sync() callbacks pending (code of
		 * its version) or calls it waits for keep it in memory. */
		if (!kv_dirty(c, obj) && !obj->ndeferred && list_empty(&obj->conts) && !obj->ncalls)
			object_unload(c, obj);
	}
	kv_trim_cache(c);
	timer_arm(c, t, c->now_ms + EVICT_SCAN_MS, evict_scan);
}

int object_table_init(struct core *c)
{
	struct obj_core *oc = c->obj;
	oc->nbuckets = 1024;
	oc->buckets = calloc(oc->nbuckets, sizeof(*oc->buckets));
	if (!oc->buckets)
		return -ENOMEM;
	list_init(&oc->lru);
	list_init(&oc->switching);
	timer_arm(c, &oc->evict_timer, c->now_ms + EVICT_SCAN_MS, evict_scan);
	return 0;
}

void object_table_fini(struct core *c)
{
	struct obj_core *oc = c->obj;
	if (oc->buckets)
		while (!list_empty(&oc->lru))
			object_unload(c, LIST_CONTAINER(oc->lru.next, struct object, lru));
	timer_cancel(&oc->evict_timer);
	free(oc->buckets);
	oc->buckets = NULL;
}
