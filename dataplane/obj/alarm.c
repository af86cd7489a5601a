/* Alarms: the calls of duro.h over reserved keys of the object (so they are transactional
 * like any write), and each core's schedule: a table of pending alarms with a timer each,
 * changed only when the writes that set or cleared an alarm are durable (a commit note per
 * change). A due alarm runs its object's on_alarm as an event; a failure retries with
 * exponential backoff, and an alarm that keeps failing is dropped. Start-up loads each
 * core's alarms from the alarms column family, where every event's alarm writes are
 * mirrored. */
#include "alarm.h"
#include "cluster_gate.h"
#include "base_assert.h"
#include "clock.h"
#include "commit.h"
#include "core.h"
#include "kv.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A pending alarm: about 180 bytes, all in this struct (the name inline). */
struct alarm {
	struct alarm *hnext;
	struct timer timer;
	struct duro_id id;
	int64_t time_ms;        /* wall clock, as set */
	int64_t last_fired_ms;  /* wall clock, for the runaway throttle */
	uint32_t throttled;
	uint16_t ns;
	uint8_t retries;
	uint8_t namelen;
	char name[DURO_MAX_ALARM_NAME];
};

struct alarm_core {
	struct alarm **buckets; /* by object ID only: one chain holds all of an object's alarms */
	size_t nbuckets, count;
	alarm_run_fn *run;
	const struct obj_alarm_config *cfg;
	struct obj_alarm_counters ctr;
};

/* A change to an object's alarms, applied to the core's table when its batch is durable. */
struct alarm_change {
	struct commit_note note; /* first */
	struct duro_id id;
	unsigned ns;
	int64_t time_ms; /* -1: deleted */
	uint8_t wipe;    /* delete_all: every alarm of the object */
	uint8_t namelen;
	char name[DURO_MAX_ALARM_NAME];
};

static const char *class_name(struct core *c, unsigned ns)
{
	return c->obj->view.ns[ns].cls->name;
}

static size_t bucket(const struct alarm_core *ac, const struct duro_id *id)
{
	uint64_t h;
	memcpy(&h, id->bytes + 4, sizeof(h));
	return (size_t)h & (ac->nbuckets - 1);
}

static struct alarm **find(struct alarm_core *ac, const struct duro_id *id, const char *name,
			   size_t namelen)
{
	struct alarm **pp = &ac->buckets[bucket(ac, id)];
	while (*pp && (memcmp(&(*pp)->id, id, sizeof(*id)) || (*pp)->namelen != namelen ||
		       memcmp((*pp)->name, name, namelen)))
		pp = &(*pp)->hnext;
	return pp;
}

static void grow(struct alarm_core *ac)
{
	size_t n = ac->nbuckets * 2;
	struct alarm **nb = calloc(n, sizeof(*nb));
	if (!nb)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < ac->nbuckets; i++)
		for (struct alarm *a = ac->buckets[i], *next; a; a = next) {
			next = a->hnext;
			size_t b = (size_t)0;
			uint64_t h;
			memcpy(&h, a->id.bytes + 4, sizeof(h));
			b = (size_t)h & (n - 1);
			a->hnext = nb[b];
			nb[b] = a;
		}
	free(ac->buckets);
	ac->buckets = nb;
	ac->nbuckets = n;
}

static void alarm_fired(struct core *c, struct timer *t);

/* Doubling from retry_initial_ms; the shift stops at 20 (max_retries is at most 20 anyway,
 * and 3,600,000 << 20 ms still fits with room). */
#define ALARM_MAX_BACKOFF_SHIFT 20

uint64_t alarm_retry_delay_ms(const struct obj_alarm_config *cfg, unsigned retries)
{
	unsigned shift = retries < ALARM_MAX_BACKOFF_SHIFT ? retries : ALARM_MAX_BACKOFF_SHIFT;
	return (uint64_t)cfg->retry_initial_ms << shift;
}

/* After an alarm fired well, its commit decides; this only catches an event that changed
 * nothing of the alarm. */
#define ALARM_SAFETY_NET_MS 60000
/* An alarm due while another box owns its object (cluster mode) looks again this soon. */
#define ALARM_NOT_OWNER_RETRY_MS 1000

/* Arms a's timer for its time, throttled when it was re-armed too soon after firing. */
static void arm(struct core *c, struct alarm *a)
{
	const struct obj_alarm_config *cfg = c->obj->alarms->cfg;
	int64_t now = (int64_t)clock_wall_ms();
	int64_t when = a->time_ms;
	if (a->last_fired_ms && when < a->last_fired_ms + (int64_t)cfg->min_interval_ms) {
		when = a->last_fired_ms + (int64_t)cfg->min_interval_ms;
		a->throttled++;
		c->obj->alarms->ctr.throttled++;
		if (a->throttled == 1 || a->throttled % 1000 == 0)
			log_warn("alarms: an object of class %s re-arms its alarm faster than every %u ms: "
				 "throttled (%u times)", class_name(c, a->ns), cfg->min_interval_ms, a->throttled);
	}
	int64_t delay = when > now ? when - now : 0;
	/* Never early: both clocks are read in whole ms, and the turn's clock may be a little
	 * behind the wall clock just read, so round up by one. */
	timer_arm(c, &a->timer, clock_now_ms() + (uint64_t)delay + 1, alarm_fired);
}

static void arm_in(struct core *c, struct alarm *a, uint64_t ms)
{
	timer_arm(c, &a->timer, c->now_ms + ms, alarm_fired);
}

static void remove_alarm(struct alarm_core *ac, struct alarm **pp)
{
	struct alarm *a = *pp;
	*pp = a->hnext;
	timer_cancel(&a->timer);
	free(a);
	ac->count--;
	ac->ctr.pending = ac->count;
}

static struct alarm *upsert(struct core *c, const struct duro_id *id, unsigned ns, const char *name,
			    size_t namelen, int64_t time_ms)
{
	struct alarm_core *ac = c->obj->alarms;
	struct alarm **pp = find(ac, id, name, namelen);
	struct alarm *a = *pp;
	if (!a) {
		if (ac->count >= ac->nbuckets)
			grow(ac);
		a = calloc(1, sizeof(*a));
		if (!a) {
			log_error("alarms: out of memory: an alarm fires after a restart");
			return NULL;
		}
		a->id = *id;
		a->ns = (uint16_t)ns;
		a->namelen = (uint8_t)namelen;
		memcpy(a->name, name, namelen);
		size_t b = bucket(ac, id);
		a->hnext = ac->buckets[b];
		ac->buckets[b] = a;
		ac->count++;
		ac->ctr.pending = ac->count;
	}
	a->time_ms = time_ms;
	a->retries = 0;
	return a;
}

/* The change's batch failed: what is stored still holds, and an alarm that fired into
 * that commit must fire again, at its stored time (past, for one that just fired). */
static void restore(struct core *c, const struct alarm_change *ch)
{
	struct alarm_core *ac = c->obj->alarms;
	for (struct alarm *a = ac->buckets[bucket(ac, &ch->id)]; a; a = a->hnext)
		if (!memcmp(&a->id, &ch->id, sizeof(ch->id)) &&
		    (ch->wipe || (a->namelen == ch->namelen && !memcmp(a->name, ch->name, ch->namelen))))
			arm(c, a);
}

static void apply(struct core *c, const struct alarm_change *ch)
{
	struct alarm_core *ac = c->obj->alarms;
	if (ch->wipe) {
		struct alarm **pp = &ac->buckets[bucket(ac, &ch->id)];
		while (*pp) {
			if (!memcmp(&(*pp)->id, &ch->id, sizeof(ch->id)))
				remove_alarm(ac, pp);
			else
				pp = &(*pp)->hnext;
		}
		return;
	}
	if (ch->time_ms < 0) {
		struct alarm **pp = find(ac, &ch->id, ch->name, ch->namelen);
		if (*pp)
			remove_alarm(ac, pp);
		return;
	}
	struct alarm *a = upsert(c, &ch->id, ch->ns, ch->name, ch->namelen, ch->time_ms);
	if (a)
		arm(c, a);
}

/* Alarms exist exactly when the writes that set them are durable. */
static void change_heard(struct core *c, struct commit_note *n, int status)
{
	struct alarm_change *ch = (struct alarm_change *)n;
	if (status == 0)
		apply(c, ch);
	else if (status != COMMIT_NOTE_DISCARD)
		restore(c, ch);
	free(ch);
}

static void alarm_fired(struct core *c, struct timer *t)
{
	struct alarm *a = LIST_CONTAINER(t, struct alarm, timer);
	struct alarm_core *ac = c->obj->alarms;
	const struct obj_alarm_config *cfg = ac->cfg;
	/* Cluster mode: an alarm of an object this box does not own now (fenced, or its slot
	 * is another box's) waits; firing it here would run a second instance. */
	if (!obj_cluster_owns(c, &a->id)) {
		ac->ctr.not_owner_deferred++;
		arm_in(c, a, ALARM_NOT_OWNER_RETRY_MS);
		return;
	}
	a->last_fired_ms = (int64_t)clock_wall_ms();
	ac->ctr.fired++;
	if (a->retries)
		ac->ctr.retries++;
	/* The table changes only when the handler's writes are durable, and never during
	 * this call: a stays valid. */
	int r = ac->run(c, &a->id, a->ns, a->name, a->namelen, a->time_ms, a->retries, 0);
	if (r != 0 && a->retries >= cfg->max_retries) {
		ac->ctr.dropped++;
		log_warn("alarms: an alarm of class %s still failed after %u retries: dropped",
			 class_name(c, a->ns), (unsigned)a->retries);
		r = ac->run(c, &a->id, a->ns, a->name, a->namelen, a->time_ms, a->retries, 1);
	}
	if (r == 0) {
		/* Cleared or re-set by the event just committed: its durability updates this
		 * entry, however long the disk takes (a timer here fired alarms twice under
		 * load). Should the commit fail, alarm_restore fires it again. The long timer is
		 * only a net for an event that left the alarm as it was. */
		a->retries = 0;
		arm_in(c, a, ALARM_SAFETY_NET_MS);
		return;
	}
	uint64_t backoff = alarm_retry_delay_ms(cfg, a->retries);
	a->retries++;
	arm_in(c, a, backoff);
}

/* The namespace now running the class an alarm was stored for, or -1. */
static int ns_of_class(struct core *c, const char *name, size_t len)
{
	const struct obj_view *v = &c->obj->view;
	for (unsigned i = 0; i < v->nns; i++)
		if (strlen(v->ns[i].cls->name) == len && !memcmp(v->ns[i].cls->name, name, len))
			return (int)i;
	return -1;
}

/* Loads this core's share of the stored alarms in [lo, hi) of the alarms family; due ones
 * fire on the first turns. Returns how many it scheduled. */
static size_t load_range(struct core *c, const char *lo, size_t lolen, const char *hi, size_t hilen)
{
	struct alarm_core *ac = c->obj->alarms;
	struct store_iter *it = store_iter_open(c->obj->rt->store, STORE_CF_ALARMS, lo, lolen, hi,
						hilen, 0);
	if (!it)
		return 0;
	const char *k, *v;
	size_t kl, vl, n = 0;
	while (store_iter_next(it, &k, &kl, &v, &vl) == 1) {
		if (kl < KEYS_META_ID_LEN || kl > KEYS_META_ID_LEN + DURO_MAX_ALARM_NAME || vl <= 8)
			continue;
		struct duro_id id;
		memcpy(id.bytes, k + 1, DURO_ID_BYTES);
		if (slotmap_owner(&c->obj->view.map, id.bytes) != c->index)
			continue;
		int ns = ns_of_class(c, v + 8, vl - 8);
		if (ns < 0) {
			ac->ctr.load_skipped++; /* its class is bound no more */
			continue;
		}
		int64_t t;
		memcpy(&t, v, sizeof(t));
		struct alarm *a = upsert(c, &id, (unsigned)ns, k + KEYS_META_ID_LEN,
					 kl - KEYS_META_ID_LEN, t);
		if (a) {
			arm(c, a);
			n++;
		}
	}
	store_iter_close(it);
	return n;
}

static void load(struct core *c)
{
	struct alarm_core *ac = c->obj->alarms;
	const char lo[1] = { KEYS_ALARMS_OBJECT }, hi[1] = { KEYS_ALARMS_OBJECT + 1 };
	load_range(c, lo, 1, hi, 1);
	if (ac->count || ac->ctr.load_skipped)
		log_info("core %u: %zu alarms loaded%s", c->index, ac->count,
			 ac->ctr.load_skipped ? " (some skipped: their classes are not bound)" : "");
}

size_t alarm_load_slot(struct core *c, unsigned slot)
{
	uint8_t lo2[2], hi2[2];
	char lo[3] = { KEYS_ALARMS_OBJECT }, hi[3] = { KEYS_ALARMS_OBJECT };
	size_t hilen = 3;
	if (keys_slot_bounds(slot, lo2, hi2)) {
		memcpy(hi + 1, hi2, 2);
	} else {
		hi[0]++; /* the last slot: up to the tag's end */
		hilen = 1;
	}
	memcpy(lo + 1, lo2, 2);
	return load_range(c, lo, 3, hi, hilen);
}

size_t alarm_drop_slot(struct core *c, unsigned slot)
{
	struct alarm_core *ac = c->obj->alarms;
	size_t n = 0;
	for (size_t i = 0; i < ac->nbuckets; i++) {
		struct alarm **pp = &ac->buckets[i];
		while (*pp) {
			if (slotmap_slot((*pp)->id.bytes) == slot) {
				remove_alarm(ac, pp);
				n++;
			} else {
				pp = &(*pp)->hnext;
			}
		}
	}
	return n;
}

int alarm_core_init(struct core *c, alarm_run_fn *run)
{
	struct alarm_core *ac = calloc(1, sizeof(*ac));
	if (!ac)
		return -ENOMEM;
	c->obj->alarms = ac;
	ac->run = run;
	ac->cfg = &c->obj->rt->cfg->alarms;
	ac->nbuckets = 1024;
	ac->buckets = calloc(ac->nbuckets, sizeof(*ac->buckets));
	if (!ac->buckets)
		return -ENOMEM;
	load(c);
	return 0;
}

void alarm_core_fini(struct core *c)
{
	struct alarm_core *ac = c->obj ? c->obj->alarms : NULL;
	if (!ac)
		return;
	if (ac->ctr.fired || ac->count)
		log_info("core %u: alarms: %llu fired, %llu retries, %llu dropped, %llu throttled, %zu pending",
			 c->index, (unsigned long long)ac->ctr.fired, (unsigned long long)ac->ctr.retries,
			 (unsigned long long)ac->ctr.dropped, (unsigned long long)ac->ctr.throttled,
			 ac->count);
	for (size_t i = 0; i < ac->nbuckets; i++)
		while (ac->buckets[i])
			remove_alarm(ac, &ac->buckets[i]);
	free(ac->buckets);
	free(ac);
	c->obj->alarms = NULL;
}

const struct obj_alarm_counters *alarm_counters(struct core *c) { return &c->obj->alarms->ctr; }

/* ---- an event's commit ---- */

/* A change for the schedule, heard once batch seq is durable. */
static void note_change(struct core *c, struct object *obj, uint64_t seq, const char *name,
		       size_t namelen, int64_t time_ms, int wipe)
{
	struct alarm_change *ch = calloc(1, sizeof(*ch));
	if (!ch) {
		/* The alarm is stored and mirrored: it is scheduled at the next start. */
		log_error("alarms: out of memory scheduling an alarm; it fires after a restart");
		return;
	}
	ch->note.fn = change_heard;
	ch->id = obj->id;
	ch->ns = obj->ns->index;
	ch->time_ms = time_ms;
	ch->wipe = (uint8_t)wipe;
	ch->namelen = (uint8_t)namelen;
	if (namelen)
		memcpy(ch->name, name, namelen);
	commit_note(c, seq, &ch->note);
}

struct mirror {
	struct core *c;
	struct object *obj;
	struct store_batch *b;
	uint64_t seq;
};

/* An alarm key written by the event: 'o' ‖ ID ‖ name -> time ‖ class name in the alarms
 * family (what start-up loads), and a change for the schedule. */
static void mirror_write(void *arg, const char *k, size_t klen, const char *v, size_t vlen,
			 int present)
{
	struct mirror *m = arg;
	if (!keys_is_alarm(k, klen))
		return;
	struct store *st = m->c->obj->rt->store;
	const char *name = k + KEYS_ALARM_PREFIX_LEN;
	size_t namelen = klen - KEYS_ALARM_PREFIX_LEN;
	char key[KEYS_META_ID_LEN + DURO_MAX_ALARM_NAME];
	size_t kl = keys_alarm(key, m->obj->id.bytes, name, namelen);
	int64_t t = -1;
	if (present && vlen == sizeof(t)) {
		memcpy(&t, v, sizeof(t));
		const char *cls = m->obj->cls->name;
		char val[sizeof(t) + OBJ_NAME_MAX];
		size_t cl = strlen(cls);
		memcpy(val, &t, sizeof(t));
		memcpy(val + sizeof(t), cls, cl);
		store_batch_put(st, m->b, STORE_CF_ALARMS, key, kl, val, sizeof(t) + cl);
	} else {
		store_batch_delete(st, m->b, STORE_CF_ALARMS, key, kl);
	}
	note_change(m->c, m->obj, m->seq, name, namelen, t, 0);
}

void alarm_event_commit(struct core *c, struct object *obj, struct store_batch *b, uint64_t seq)
{
	struct mirror m = { c, obj, b, seq };
	if (kv_event_wiped(obj)) {
		/* delete_all: its alarms go too, from the schedule as well. */
		char lo[KEYS_META_ID_LEN], hi[KEYS_META_ID_LEN];
		keys_tagged_id_range(lo, hi, KEYS_ALARMS_OBJECT, obj->id.bytes);
		store_batch_delete_range(c->obj->rt->store, b, STORE_CF_ALARMS, lo, sizeof(lo), hi,
					 sizeof(hi));
		note_change(c, obj, seq, NULL, 0, -1, 1);
	}
	kv_event_each_write(obj, mirror_write, &m);
}

/* ---- the calls of duro.h ---- */

static size_t alarm_key(char *key, const char *name, size_t namelen)
{
	return keys_alarm_user_key(key, name, namelen);
}

static int count_named(void *arg, struct duro_str k, struct duro_str v)
{
	(void)v;
	if (k.len > KEYS_ALARM_PREFIX_LEN)
		(*(unsigned *)arg)++;
	return 0;
}

int duro_set_alarm_named(struct duro_object *o, const char *name, size_t len, int64_t time_ms)
{
	struct object *obj = (struct object *)o;
	if (len > DURO_MAX_ALARM_NAME || (name == NULL && len) || time_ms < 0)
		return -EINVAL;
	char key[KEYS_ALARM_PREFIX_LEN + DURO_MAX_ALARM_NAME];
	size_t kl = alarm_key(key, name, len);
	if (len) {
		struct duro_str v;
		int r = kv_read(obj, key, kl, &v);
		if (r < 0)
			return r;
		if (r == 0) {
			unsigned named = 0;
			struct duro_list_options opt = { .prefix = { KEYS_ALARM_PREFIX, KEYS_ALARM_PREFIX_LEN } };
			r = kv_list(obj, &opt, count_named, &named, 1);
			if (r < 0)
				return r;
			if (named >= DURO_MAX_NAMED_ALARMS)
				return -ENOSPC;
		}
	}
	int r = kv_write(obj, key, kl, &time_ms, sizeof(time_ms), 1);
	return r < 0 ? r : 0;
}

int duro_get_alarm_named(struct duro_object *o, const char *name, size_t len, int64_t *time_ms)
{
	if (len > DURO_MAX_ALARM_NAME || (name == NULL && len))
		return -EINVAL;
	char key[KEYS_ALARM_PREFIX_LEN + DURO_MAX_ALARM_NAME];
	struct duro_str v;
	int r = kv_read((struct object *)o, key, alarm_key(key, name, len), &v);
	if (r == 1 && v.len == sizeof(*time_ms))
		memcpy(time_ms, v.ptr, sizeof(*time_ms));
	return r;
}

int duro_delete_alarm_named(struct duro_object *o, const char *name, size_t len)
{
	if (len > DURO_MAX_ALARM_NAME || (name == NULL && len))
		return -EINVAL;
	char key[KEYS_ALARM_PREFIX_LEN + DURO_MAX_ALARM_NAME];
	return kv_write((struct object *)o, key, alarm_key(key, name, len), NULL, 0, 0);
}

int duro_set_alarm(struct duro_object *o, int64_t time_ms) { return duro_set_alarm_named(o, "", 0, time_ms); }
int duro_get_alarm(struct duro_object *o, int64_t *time_ms) { return duro_get_alarm_named(o, "", 0, time_ms); }
int duro_delete_alarm(struct duro_object *o) { return duro_delete_alarm_named(o, "", 0); }

struct list_arg {
	int (*fn)(void *arg, struct duro_str name, int64_t time_ms);
	void *arg;
	int count;
};

static int list_one(void *arg, struct duro_str k, struct duro_str v)
{
	struct list_arg *la = arg;
	if (k.len <= KEYS_ALARM_PREFIX_LEN || v.len != sizeof(int64_t))
		return 0;
	int64_t t;
	memcpy(&t, v.ptr, sizeof(t));
	la->count++;
	return la->fn(la->arg, (struct duro_str){ k.ptr + KEYS_ALARM_PREFIX_LEN, k.len - KEYS_ALARM_PREFIX_LEN }, t);
}

int duro_list_alarms(struct duro_object *o, int (*fn)(void *arg, struct duro_str name, int64_t time_ms),
		     void *arg)
{
	struct list_arg la = { fn, arg, 0 };
	struct duro_list_options opt = { .prefix = { KEYS_ALARM_PREFIX, KEYS_ALARM_PREFIX_LEN } };
	int r = kv_list((struct object *)o, &opt, list_one, &la, 1);
	return r < 0 ? r : la.count;
}
