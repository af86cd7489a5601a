/* The storage API of duro.h behind each object: a per-object cache of keys (read-through
 * from RocksDB), the running event's writes with undo for rollback and savepoints, size
 * accounting against the object's limit, list() merging unapplied writes with RocksDB.
 *
 * A key in RocksDB is the 32-byte object ID followed by the user's key, in the class's
 * column family. An object's size and key count live in the meta family under 's' ‖ ID. */
#include "obj_int.h"
#include "base_assert.h"
#include "core.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define STATS_KEY_LEN (1 + DURO_ID_BYTES)

static struct obj_core *OC(struct core *c) { return c->obj; }

static uint64_t key_hash(const void *k, size_t n)
{
	/* FNV-1a: user keys are chosen by the class, not by remote peers, so no keyed hash. */
	uint64_t h = 1469598103934665603ull;
	const unsigned char *p = k;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static size_t entry_size(const struct kv_entry *e) { return sizeof(*e) + e->klen + e->vlen; }

static struct kv_entry *entry_new(const void *k, size_t klen, const void *v, size_t vlen, int present,
				  uint64_t seq)
{
	struct kv_entry *e = malloc(sizeof(*e) + klen + vlen);
	if (!e)
		return NULL;
	e->hnext = e->undo = NULL;
	e->seq = seq;
	e->klen = (uint32_t)klen;
	e->vlen = (uint32_t)vlen;
	e->present = (uint8_t)present;
	memcpy(e->data, k, klen);
	if (vlen)
		memcpy(e->data + klen, v, vlen);
	return e;
}

static void entry_free(struct core *c, struct kv_entry *e)
{
	OC(c)->cache_bytes -= entry_size(e);
	free(e);
}

static struct kv_entry **map_slot(struct obj_kv *kv, const void *k, size_t klen)
{
	struct kv_entry **pp = &kv->buckets[key_hash(k, klen) & (kv->nbuckets - 1)];
	while (*pp && ((*pp)->klen != klen || memcmp((*pp)->data, k, klen) != 0))
		pp = &(*pp)->hnext;
	return pp;
}

static int map_grow(struct obj_kv *kv)
{
	uint32_t n = kv->nbuckets ? kv->nbuckets * 2 : 8;
	struct kv_entry **nb = calloc(n, sizeof(*nb));
	if (!nb)
		return -ENOMEM;
	for (uint32_t i = 0; i < kv->nbuckets; i++) {
		for (struct kv_entry *e = kv->buckets[i], *next; e; e = next) {
			next = e->hnext;
			struct kv_entry **b = &nb[key_hash(e->data, e->klen) & (n - 1)];
			e->hnext = *b;
			*b = e;
		}
	}
	free(kv->buckets);
	kv->buckets = nb;
	kv->nbuckets = n;
	return 0;
}

/* Inserts e, replacing and returning the entry with its key, if any. */
static struct kv_entry *map_put(struct core *c, struct obj_kv *kv, struct kv_entry *e)
{
	struct kv_entry **pp = map_slot(kv, e->data, e->klen);
	struct kv_entry *old = *pp;
	if (old) {
		e->hnext = old->hnext;
		old->hnext = NULL;
	} else {
		e->hnext = NULL;
		kv->count++;
	}
	*pp = e;
	OC(c)->cache_bytes += entry_size(e);
	return old;
}

static size_t full_key(const struct object *obj, const void *k, size_t klen, char *out)
{
	memcpy(out, obj->id.bytes, DURO_ID_BYTES);
	memcpy(out + DURO_ID_BYTES, k, klen);
	return DURO_ID_BYTES + klen;
}

static int cf_of(const struct object *obj) { return obj->ns->cf; }

static int load_stats(struct object *obj)
{
	struct obj_kv *kv = &obj->kv;
	if (kv->stats_loaded)
		return 0;
	char key[STATS_KEY_LEN] = { 's' };
	memcpy(key + 1, obj->id.bytes, DURO_ID_BYTES);
	struct store_value v;
	int r = store_get(obj_store(), STORE_CF_META, key, sizeof(key), &v);
	if (r < 0)
		return r;
	memset(&kv->stats, 0, sizeof(kv->stats));
	if (r == 1) {
		if (v.len == sizeof(kv->stats))
			memcpy(&kv->stats, v.data, sizeof(kv->stats));
		store_value_release(&v);
	}
	kv->stats_loaded = 1;
	/* Loaded on the first write: nothing changed before it, so the rollback points taken
	 * earlier in this event must hold these figures, not the zeros they saw. */
	kv->stats_at_event = kv->stats;
	for (unsigned i = 0; i < kv->nsavepoints; i++)
		kv->savepoint_stats[i] = kv->stats;
	return 0;
}

/* Finds the entry for a key, reading RocksDB (and caching what it says) on a miss. */
static int lookup(struct core *c, struct object *obj, const void *k, size_t klen, struct kv_entry **out)
{
	struct obj_kv *kv = &obj->kv;
	if (kv->nbuckets) {
		struct kv_entry *e = *map_slot(kv, k, klen);
		if (e) {
			*out = e;
			return 0;
		}
	}
	if (kv->count >= kv->nbuckets && map_grow(kv) < 0)
		return -ENOMEM;
	struct kv_entry *e;
	if (kv->wiped_in_txn) {
		/* A delete_all of this event hides RocksDB: absent, for as long as that
		 * delete_all stands (wiped_lookups_settle). */
		e = entry_new(k, klen, NULL, 0, 0, KV_WIPED_SEQ);
	} else if (kv->wiped_seq > commit_applied_seq(c)) {
		/* Everything was deleted and RocksDB does not know yet. */
		e = entry_new(k, klen, NULL, 0, 0, 0);
	} else {
		char fk[DURO_ID_BYTES + DURO_MAX_KEY];
		size_t n = full_key(obj, k, klen, fk);
		struct store_value v;
		int r = store_get(obj_store(), cf_of(obj), fk, n, &v);
		if (r < 0)
			return r;
		e = entry_new(k, klen, r ? v.data : NULL, r ? v.len : 0, r, 0);
		if (r)
			store_value_release(&v);
	}
	if (!e)
		return -ENOMEM;
	map_put(c, kv, e);
	*out = e;
	return 0;
}

static int check_key(size_t klen) { return klen > obj_limits()->max_key ? -EINVAL : 0; }

static int is_reserved(const void *k, size_t klen)
{
	return klen >= 2 && memcmp(k, KV_RESERVED, 2) == 0;
}

int duro_get(struct duro_object *o, const void *key, size_t klen, struct duro_str *value)
{
	if (is_reserved(key, klen))
		return -EINVAL;
	return kv_read((struct object *)o, key, klen, value);
}

int kv_read(struct object *obj, const void *key, size_t klen, struct duro_str *value)
{
	DURO_ASSERT(obj->running);
	if (check_key(klen) < 0)
		return -EINVAL;
	struct kv_entry *e;
	int r = lookup(obj->core, obj, key, klen, &e);
	if (r < 0)
		return r;
	if (!e->present)
		return 0;
	value->ptr = e->data + e->klen;
	value->len = e->vlen;
	return 1;
}

int duro_get_many(struct duro_object *o, const struct duro_str *keys, size_t n, struct duro_str *values)
{
	if (n > DURO_MAX_BATCH)
		return -E2BIG;
	int found = 0;
	for (size_t i = 0; i < n; i++) {
		int r = duro_get(o, keys[i].ptr, keys[i].len, &values[i]);
		if (r < 0)
			return r;
		if (r == 0)
			values[i] = (struct duro_str){ NULL, 0 };
		found += r;
	}
	return found;
}

static int txn_push(struct obj_kv *kv, struct kv_entry *e)
{
	if (kv->ntxn == kv->txn_cap) {
		uint32_t cap = kv->txn_cap ? kv->txn_cap * 2 : 16;
		struct kv_entry **t = realloc(kv->txn, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		kv->txn = t;
		kv->txn_cap = cap;
	}
	kv->txn[kv->ntxn++] = e;
	return 0;
}

/* Writes (present=1) or deletes (present=0) one key in the running event. Returns 1 when
 * the key existed before, 0 when not, or an error. */
int kv_write(struct object *obj, const void *k, size_t klen, const void *v, size_t vlen,
		     int present)
{
	struct core *c = obj->core;
	struct obj_kv *kv = &obj->kv;
	const struct obj_storage_limits *lim = obj_limits();
	DURO_ASSERT(obj->running);
	if (check_key(klen) < 0)
		return -EINVAL;
	if (present && vlen > lim->max_value)
		return -EFBIG;
	int r = load_stats(obj);
	struct kv_entry *old;
	if (r == 0)
		r = lookup(c, obj, k, klen, &old);
	if (r < 0)
		return r;
	int existed = old->present;
	struct kv_stats next = kv->stats;
	if (existed) {
		next.bytes -= old->klen + old->vlen;
		next.keys--;
	}
	if (present) {
		next.bytes += klen + vlen;
		next.keys++;
	}
	if (present && next.bytes > lim->max_object_bytes && next.bytes > kv->stats.bytes)
		return -ENOSPC;
	if (!present && !existed && old->seq != KV_TXN_SEQ && !kv->wiped_in_txn)
		return 0; /* deleting a key that is not there changes nothing */
	struct kv_entry *e = entry_new(k, klen, v, vlen, present, KV_TXN_SEQ);
	if (!e || txn_push(kv, e) < 0) {
		free(e);
		return -ENOMEM;
	}
	struct kv_entry *replaced = map_put(c, kv, e);
	DURO_ASSERT(replaced == old);
	e->undo = old; /* kept alive (and its value valid) until the event ends */
	kv->stats = next;
	return existed;
}

int duro_put(struct duro_object *o, const void *key, size_t klen, const void *value, size_t vlen)
{
	if (is_reserved(key, klen))
		return -EINVAL;
	int r = kv_write((struct object *)o, key, klen, value, vlen, 1);
	return r < 0 ? r : 0;
}

int duro_put_many(struct duro_object *o, const struct duro_kv *entries, size_t n)
{
	if (n > DURO_MAX_BATCH)
		return -E2BIG;
	int r = duro_txn_begin(o);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		r = duro_put(o, entries[i].key.ptr, entries[i].key.len, entries[i].value.ptr,
			     entries[i].value.len);
		if (r < 0) {
			duro_txn_rollback(o);
			return r;
		}
	}
	return duro_txn_commit(o);
}

int duro_delete(struct duro_object *o, const void *key, size_t klen)
{
	if (is_reserved(key, klen))
		return -EINVAL;
	return kv_write((struct object *)o, key, klen, NULL, 0, 0);
}

int duro_delete_many(struct duro_object *o, const struct duro_str *keys, size_t n)
{
	if (n > DURO_MAX_BATCH)
		return -E2BIG;
	int r = duro_txn_begin(o), count = 0;
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		r = duro_delete(o, keys[i].ptr, keys[i].len);
		if (r < 0) {
			duro_txn_rollback(o);
			return r;
		}
		count += r;
	}
	duro_txn_commit(o);
	return count;
}

int duro_delete_all(struct duro_object *o)
{
	struct object *obj = (struct object *)o;
	struct core *c = obj->core;
	struct obj_kv *kv = &obj->kv;
	DURO_ASSERT(obj->running);
	int r = load_stats(obj);
	if (r < 0)
		return r;
	/* Every cached key becomes a deletion in the event; keys only RocksDB knows are
	 * covered by the range deletion written at commit. */
	for (uint32_t b = 0; b < kv->nbuckets; b++) {
		for (struct kv_entry *e = kv->buckets[b]; e; e = e->hnext) {
			if (!e->present)
				continue;
			struct kv_entry *d = entry_new(e->data, e->klen, NULL, 0, 0, KV_TXN_SEQ);
			if (!d || txn_push(kv, d) < 0) {
				free(d);
				return -ENOMEM;
			}
			d->undo = e;
			struct kv_entry **pp = map_slot(kv, e->data, e->klen);
			d->hnext = e->hnext;
			*pp = d;
			OC(c)->cache_bytes += entry_size(d);
			e = d;
		}
	}
	kv->wiped_in_txn = 1;
	kv->stats.bytes = 0;
	kv->stats.keys = 0;
	kv->stats_loaded = 1;
	return 0;
}

int duro_txn_begin(struct duro_object *o)
{
	struct obj_kv *kv = &((struct object *)o)->kv;
	if (kv->nsavepoints == KV_MAX_SAVEPOINTS)
		return -ENOSPC;
	kv->savepoint[kv->nsavepoints] = kv->ntxn;
	kv->savepoint_stats[kv->nsavepoints] = kv->stats;
	kv->savepoint_wiped[kv->nsavepoints] = kv->wiped_in_txn;
	kv->nsavepoints++;
	return 0;
}

int duro_txn_commit(struct duro_object *o)
{
	struct obj_kv *kv = &((struct object *)o)->kv;
	if (!kv->nsavepoints)
		return -EINVAL;
	kv->nsavepoints--;
	return 0;
}

/* Undoes the running event's writes back to position `to`, newest first. */
static void undo_to(struct core *c, struct obj_kv *kv, uint32_t to)
{
	while (kv->ntxn > to) {
		struct kv_entry *e = kv->txn[--kv->ntxn];
		struct kv_entry **pp = map_slot(kv, e->data, e->klen);
		DURO_ASSERT(*pp == e);
		struct kv_entry *old = e->undo;
		if (old) {
			old->hnext = e->hnext;
			*pp = old;
		} else {
			*pp = e->hnext;
			kv->count--;
		}
		entry_free(c, e);
	}
}

/* Keys looked up while a delete_all of the running event hid RocksDB were cached as
 * absent (KV_WIPED_SEQ). When that delete_all commits in batch `seq` they are what the
 * batch leaves; when it is undone (seq 0) they are wrong (RocksDB may hold those keys) and
 * are dropped, so the next read asks RocksDB. */
static void wiped_lookups_settle(struct core *c, struct obj_kv *kv, uint64_t seq)
{
	for (uint32_t b = 0; b < kv->nbuckets; b++) {
		struct kv_entry **pp = &kv->buckets[b];
		while (*pp) {
			struct kv_entry *e = *pp;
			if (e->seq != KV_WIPED_SEQ) {
				pp = &e->hnext;
			} else if (seq) {
				e->seq = seq;
				pp = &e->hnext;
			} else {
				*pp = e->hnext;
				kv->count--;
				entry_free(c, e);
			}
		}
	}
}

int duro_txn_rollback(struct duro_object *o)
{
	struct object *obj = (struct object *)o;
	struct obj_kv *kv = &obj->kv;
	if (!kv->nsavepoints)
		return -EINVAL;
	kv->nsavepoints--;
	undo_to(obj->core, kv, kv->savepoint[kv->nsavepoints]);
	kv->stats = kv->savepoint_stats[kv->nsavepoints];
	int was_wiped = kv->wiped_in_txn;
	kv->wiped_in_txn = kv->savepoint_wiped[kv->nsavepoints];
	if (was_wiped && !kv->wiped_in_txn)
		wiped_lookups_settle(obj->core, kv, 0);
	return 0;
}

/* Undoes every write of the running event. */
static void event_rollback(struct core *c, struct obj_kv *kv)
{
	undo_to(c, kv, 0);
	kv->stats = kv->stats_at_event;
	if (kv->wiped_in_txn)
		wiped_lookups_settle(c, kv, 0);
	kv->wiped_in_txn = 0;
}

/* Records an alarm change to apply to the core's table when the batch is durable. */
static void note_alarm(struct core *c, struct object *obj, const char *name, size_t namelen,
		       int64_t time_ms, int wipe)
{
	struct alarm_change *ch = calloc(1, sizeof(*ch));
	if (!ch) {
		/* The alarm is stored; it is scheduled at the next start (logged so). */
		log_error("alarms: out of memory scheduling an alarm; it fires after a restart");
		return;
	}
	ch->id = obj->id;
	ch->ns = obj->ns->index;
	ch->time_ms = time_ms;
	ch->wipe = (uint8_t)wipe;
	ch->namelen = (uint8_t)namelen;
	if (namelen)
		memcpy(ch->name, name, namelen);
	commit_note_alarm(c, ch);
}

/* An alarm key written by the event: mirror it in the alarms family (what start-up loads)
 * and note the change for the core's timers. Mirror key: 'o' ‖ ID ‖ name; value: time ‖
 * class name. */
static void schedule_alarm(struct core *c, struct object *obj, struct store *st,
			   struct store_batch *b, const struct kv_entry *e)
{
	const char *name = e->data + ALARM_PREFIX_LEN;
	size_t namelen = e->klen - ALARM_PREFIX_LEN;
	char key[1 + DURO_ID_BYTES + DURO_MAX_ALARM_NAME] = { 'o' };
	memcpy(key + 1, obj->id.bytes, DURO_ID_BYTES);
	memcpy(key + 1 + DURO_ID_BYTES, name, namelen);
	size_t klen = 1 + DURO_ID_BYTES + namelen;
	int64_t t = -1;
	if (e->present && e->vlen == sizeof(t)) {
		memcpy(&t, e->data + e->klen, sizeof(t));
		char val[sizeof(t) + OBJ_NAME_MAX];
		size_t cl = strlen(obj->ns->cls->name);
		memcpy(val, &t, sizeof(t));
		memcpy(val + sizeof(t), obj->ns->cls->name, cl);
		store_batch_put(st, b, STORE_CF_ALARMS, key, klen, val, sizeof(t) + cl);
	} else {
		store_batch_delete(st, b, STORE_CF_ALARMS, key, klen);
	}
	note_alarm(c, obj, name, namelen, t, 0);
}

int kv_event_begin(struct core *c, struct object *obj)
{
	(void)c;
	struct obj_kv *kv = &obj->kv;
	DURO_ASSERT(kv->ntxn == 0 && kv->nsavepoints == 0);
	kv->stats_at_event = kv->stats;
	kv->wiped_at_event = 0;
	kv->wiped_in_txn = 0;
	return 0;
}

int kv_event_end(struct core *c, struct object *obj, int ok)
{
	struct obj_kv *kv = &obj->kv;
	kv->nsavepoints = 0;
	if (!ok) {
		event_rollback(c, kv);
		return 0;
	}
	if (kv->ntxn == 0 && !kv->wiped_in_txn)
		return 0;
	if (!commit_space_ok(c)) {
		/* The disk is under its reserve: the event's writes are refused as a whole. */
		event_rollback(c, kv);
		return -ENOSPC;
	}
	uint64_t seq;
	struct store_batch *b = commit_open_batch(c, &seq);
	if (!b) {
		/* Out of memory for the batch: the event fails as a whole. */
		event_rollback(c, kv);
		return -ENOMEM;
	}
	struct store *st = obj_store();
	int cf = cf_of(obj);
	char fk[DURO_ID_BYTES + DURO_MAX_KEY];
	if (kv->wiped_in_txn) {
		uint8_t hi[DURO_ID_BYTES];
		memcpy(hi, obj->id.bytes, DURO_ID_BYTES);
		/* The ID plus one, as the exclusive end of the object's key range. */
		int i = DURO_ID_BYTES - 1;
		while (i >= 0 && ++hi[i] == 0)
			i--;
		store_batch_delete_range(st, b, cf, obj->id.bytes, DURO_ID_BYTES, hi, DURO_ID_BYTES);
		/* Its alarms go too, from the schedule as well. */
		char alo[1 + DURO_ID_BYTES] = { 'o' }, ahi[1 + DURO_ID_BYTES] = { 'o' };
		memcpy(alo + 1, obj->id.bytes, DURO_ID_BYTES);
		memcpy(ahi + 1, hi, DURO_ID_BYTES);
		store_batch_delete_range(st, b, STORE_CF_ALARMS, alo, sizeof(alo), ahi, sizeof(ahi));
		note_alarm(c, obj, NULL, 0, -1, 1);
		kv->wiped_seq = seq;
		wiped_lookups_settle(c, kv, seq);
	}
	for (uint32_t i = 0; i < kv->ntxn; i++) {
		struct kv_entry *e = kv->txn[i];
		e->seq = seq;
		if (e->undo) {
			entry_free(c, e->undo);
			e->undo = NULL;
		}
		/* A later write of the same key in this event supersedes this one in the map;
		 * the batch still records both, in order, which applies to the same result. */
		size_t n = full_key(obj, e->data, e->klen, fk);
		if (e->present)
			store_batch_put(st, b, cf, fk, n, e->data + e->klen, e->vlen);
		else
			store_batch_delete(st, b, cf, fk, n);
		if (e->klen >= ALARM_PREFIX_LEN && !memcmp(e->data, ALARM_PREFIX, ALARM_PREFIX_LEN))
			schedule_alarm(c, obj, st, b, e);
	}
	/* The size record changes only when sizes do (an overwrite of the same length, like
	 * every Counter increment, leaves it be). */
	if (memcmp(&kv->stats, &kv->stats_at_event, sizeof(kv->stats)) != 0) {
		char sk[STATS_KEY_LEN] = { 's' };
		memcpy(sk + 1, obj->id.bytes, DURO_ID_BYTES);
		if (kv->stats.keys == 0)
			store_batch_delete(st, b, STORE_CF_META, sk, sizeof(sk));
		else
			store_batch_put(st, b, STORE_CF_META, sk, sizeof(sk), &kv->stats, sizeof(kv->stats));
		/* The name goes with the first data and leaves with the last ('n' ‖ ID). */
		sk[0] = 'n';
		if (kv->stats.keys == 0)
			store_batch_delete(st, b, STORE_CF_META, sk, sizeof(sk));
		else if (kv->stats_at_event.keys == 0 && obj->name)
			store_batch_put(st, b, STORE_CF_META, sk, sizeof(sk), obj->name, obj->name_len);
	}
	kv->ntxn = 0;
	kv->wiped_in_txn = 0;
	kv->pending_seq = seq;
	return 1;
}

int duro_sync(struct duro_object *o, duro_sync_fn *done, void *arg)
{
	struct object *obj = (struct object *)o;
	DURO_ASSERT(obj->running);
	struct sync_waiter *w = malloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct sync_waiter){ .id = obj->id, .ns = obj->ns->index, .fn = done, .arg = arg };
	if (obj->kv.syncs_tail)
		obj->kv.syncs_tail->next = w;
	else
		obj->kv.syncs = w;
	obj->kv.syncs_tail = w;
	return 0;
}

int kv_dirty(struct core *c, const struct object *obj)
{
	return obj->kv.pending_seq > commit_applied_seq(c) || obj->kv.ntxn > 0;
}

void kv_free_all(struct core *c, struct object *obj)
{
	struct obj_kv *kv = &obj->kv;
	DURO_ASSERT(kv->ntxn == 0 && !kv->syncs);
	for (uint32_t b = 0; b < kv->nbuckets; b++) {
		for (struct kv_entry *e = kv->buckets[b], *next; e; e = next) {
			next = e->hnext;
			entry_free(c, e);
		}
	}
	free(kv->buckets);
	free(kv->txn);
	memset(kv, 0, sizeof(*kv));
}

/* Drops an object's clean entries (those RocksDB already holds). */
static void drop_clean(struct core *c, struct object *obj)
{
	struct obj_kv *kv = &obj->kv;
	uint64_t applied = commit_applied_seq(c);
	for (uint32_t b = 0; b < kv->nbuckets; b++) {
		struct kv_entry **pp = &kv->buckets[b];
		while (*pp) {
			struct kv_entry *e = *pp;
			if (e->seq != KV_TXN_SEQ && e->seq <= applied && kv->wiped_seq <= applied) {
				*pp = e->hnext;
				kv->count--;
				entry_free(c, e);
			} else {
				pp = &e->hnext;
			}
		}
	}
}

void kv_trim_cache(struct core *c)
{
	struct obj_core *oc = OC(c);
	size_t budget = obj_limits()->cache_bytes_per_core;
	for (struct list_node *n = oc->lru.next; n != &oc->lru && oc->cache_bytes > budget; n = n->next) {
		struct object *obj = LIST_CONTAINER(n, struct object, lru);
		if (!obj->running)
			drop_clean(c, obj);
	}
}

/* ---- list() ---- */

struct range {
	const char *lo;
	size_t lolen;
	int lo_exclusive;
	const char *hi; /* NULL: unbounded */
	size_t hilen;
};

static int key_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int r = memcmp(a, b, an < bn ? an : bn);
	return r ? r : (an < bn ? -1 : an > bn);
}

static int in_range(const struct range *r, const char *k, size_t n)
{
	int lo = key_cmp(k, n, r->lo, r->lolen);
	if (lo < 0 || (lo == 0 && r->lo_exclusive))
		return 0;
	return !r->hi || key_cmp(k, n, r->hi, r->hilen) < 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct kv_entry *x = *(struct kv_entry *const *)a, *y = *(struct kv_entry *const *)b;
	return key_cmp(x->data, x->klen, y->data, y->klen);
}

/* Builds [lo, hi) from the options; the prefix's successor bounds it above. */
static int make_range(const struct duro_list_options *opt, struct range *r, char *prefix_hi)
{
	memset(r, 0, sizeof(*r));
	r->lo = "";
	if (opt->start.ptr && opt->start_after.ptr)
		return -EINVAL;
	if (opt->start.ptr) {
		r->lo = opt->start.ptr;
		r->lolen = opt->start.len;
	} else if (opt->start_after.ptr) {
		r->lo = opt->start_after.ptr;
		r->lolen = opt->start_after.len;
		r->lo_exclusive = 1;
	}
	if (opt->end.ptr) {
		r->hi = opt->end.ptr;
		r->hilen = opt->end.len;
	}
	if (opt->prefix.ptr && opt->prefix.len) {
		if (opt->prefix.len > DURO_MAX_KEY)
			return -EINVAL;
		if (key_cmp(opt->prefix.ptr, opt->prefix.len, r->lo, r->lolen) > 0) {
			r->lo = opt->prefix.ptr;
			r->lolen = opt->prefix.len;
			r->lo_exclusive = 0;
		}
		size_t n = opt->prefix.len;
		memcpy(prefix_hi, opt->prefix.ptr, n);
		while (n && (unsigned char)prefix_hi[n - 1] == 0xff)
			n--;
		if (n) {
			prefix_hi[n - 1]++;
			if (!r->hi || key_cmp(prefix_hi, n, r->hi, r->hilen) < 0) {
				r->hi = prefix_hi;
				r->hilen = n;
			}
		}
	}
	return 0;
}

int duro_list(struct duro_object *o, const struct duro_list_options *opt, duro_list_fn *fn, void *arg)
{
	return kv_list((struct object *)o, opt, fn, arg, 0);
}

/* list() itself; reserved keys are passed to fn only when `reserved` is set. */
int kv_list(struct object *obj, const struct duro_list_options *opt, duro_list_fn *fn, void *arg,
	    int reserved)
{
	struct core *c = obj->core;
	struct obj_kv *kv = &obj->kv;
	DURO_ASSERT(obj->running);
	struct range r;
	char prefix_hi[DURO_MAX_KEY];
	if (make_range(opt, &r, prefix_hi) < 0)
		return -EINVAL;
	uint64_t applied = commit_applied_seq(c);
	int wiped = kv->wiped_in_txn || kv->wiped_seq > applied;

	/* Writes RocksDB does not have yet, sorted: they override what it says. */
	struct kv_entry **dirty = NULL;
	size_t ndirty = 0;
	if (kv->count) {
		dirty = malloc(kv->count * sizeof(*dirty));
		if (!dirty)
			return -ENOMEM;
		for (uint32_t b = 0; b < kv->nbuckets; b++)
			for (struct kv_entry *e = kv->buckets[b]; e; e = e->hnext)
				if ((e->seq > applied || wiped) && in_range(&r, e->data, e->klen))
					dirty[ndirty++] = e;
		qsort(dirty, ndirty, sizeof(*dirty), entry_cmp);
	}
	struct store_iter *it = NULL;
	if (!wiped) {
		char lo[DURO_ID_BYTES + DURO_MAX_KEY + 1], hi[DURO_ID_BYTES + DURO_MAX_KEY];
		size_t lon = full_key(obj, r.lo, r.lolen, lo), hin;
		if (r.hi) {
			hin = full_key(obj, r.hi, r.hilen, hi);
		} else {
			memcpy(hi, obj->id.bytes, DURO_ID_BYTES);
			int i = DURO_ID_BYTES - 1;
			while (i >= 0 && ++((uint8_t *)hi)[i] == 0)
				i--;
			hin = DURO_ID_BYTES;
		}
		it = store_iter_open(obj_store(), cf_of(obj), lo, lon, hi, hin, opt->reverse);
		if (!it) {
			free(dirty);
			return -ENOMEM;
		}
	}
	int count = 0, rc = 0, have_db = 0;
	const char *dk = NULL, *dv = NULL;
	size_t dkn = 0, dvn = 0;
	size_t di = opt->reverse ? ndirty : 0;
	for (;;) {
		if (opt->limit && (size_t)count >= opt->limit)
			break;
		if (it && !have_db) {
			int g;
			do {
				g = store_iter_next(it, &dk, &dkn, &dv, &dvn);
				if (g == 1) {
					dk += DURO_ID_BYTES;
					dkn -= DURO_ID_BYTES;
				}
			} while (g == 1 && !in_range(&r, dk, dkn));
			if (g < 0) {
				rc = g;
				break;
			}
			have_db = g;
			if (!g) {
				store_iter_close(it);
				it = NULL;
			}
		}
		struct kv_entry *de = NULL;
		if (opt->reverse ? di > 0 : di < ndirty)
			de = dirty[opt->reverse ? di - 1 : di];
		if (!de && !have_db)
			break;
		/* cmp < 0: RocksDB's key is next in the listing's direction. */
		int cmp;
		if (!de)
			cmp = -1;
		else if (!have_db)
			cmp = 1;
		else
			cmp = opt->reverse ? -key_cmp(dk, dkn, de->data, de->klen)
					   : key_cmp(dk, dkn, de->data, de->klen);
		struct duro_str k, v;
		int present;
		if (cmp < 0) { /* RocksDB's key comes first and nothing overrides it */
			k = (struct duro_str){ dk, dkn };
			v = (struct duro_str){ dv, dvn };
			present = 1;
			have_db = 0;
		} else {
			if (cmp == 0)
				have_db = 0; /* the cached write wins over RocksDB's older value */
			k = (struct duro_str){ de->data, de->klen };
			v = (struct duro_str){ de->data + de->klen, de->vlen };
			present = de->present;
			di += opt->reverse ? (size_t)-1 : 1;
		}
		if (!present || (!reserved && is_reserved(k.ptr, k.len)))
			continue;
		count++;
		if (fn(arg, k, v))
			break;
	}
	store_iter_close(it);
	free(dirty);
	return rc < 0 ? rc : count;
}
