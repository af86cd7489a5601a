/* The storage API of duro.h behind each object: a per-object cache of keys (read-through
 * from RocksDB), the running event's writes with undo for rollback and savepoints, size
 * accounting against the object's limit, and the event's writes into the commit batch
 * (list() is kv_list.c). Keys on disk: storage/keys.h. */
#include "kv.h"
#include "base_assert.h"
#include "commit.h"
#include "core.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct obj_core *OC(struct core *c) { return c->obj; }
static const struct obj_storage_limits *limits_of(const struct object *obj)
{
	return &obj->core->obj->rt->cfg->limits;
}

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

static int cf_of(const struct object *obj) { return obj->ns->cf; }

static int load_stats(struct object *obj)
{
	struct obj_kv *kv = &obj->kv;
	if (kv->stats_loaded)
		return 0;
	char key[KEYS_META_ID_LEN];
	keys_tagged_id(key, KEYS_META_STATS, obj->id.bytes);
	struct store_value v;
	int r = store_get(obj->core->obj->rt->store, STORE_CF_META, key, sizeof(key), &v);
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
		char fk[KEYS_ID_BYTES + DURO_MAX_KEY];
		size_t n = keys_data(fk, obj->id.bytes, k, klen);
		struct store_value v;
		int r = store_get(OC(c)->rt->store, cf_of(obj), fk, n, &v);
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

static int check_key(const struct object *obj, size_t klen)
{
	return klen > limits_of(obj)->max_key ? -EINVAL : 0;
}

int duro_get(struct duro_object *o, const void *key, size_t klen, struct duro_str *value)
{
	if (keys_is_reserved(key, klen))
		return -EINVAL;
	return kv_read((struct object *)o, key, klen, value);
}

int kv_read(struct object *obj, const void *key, size_t klen, struct duro_str *value)
{
	DURO_ASSERT(obj->running);
	if (check_key(obj, klen) < 0)
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
	const struct obj_storage_limits *lim = limits_of(obj);
	DURO_ASSERT(obj->running);
	if (check_key(obj, klen) < 0)
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
	struct keys_stats next = kv->stats;
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
	if (keys_is_reserved(key, klen))
		return -EINVAL;
	int r = kv_write((struct object *)o, key, klen, value, vlen, 1);
	return r < 0 ? r : 0;
}

int duro_put_many(struct duro_object *o, const struct duro_kv *entries, size_t n)
{
	if (n > DURO_MAX_BATCH)
		return -E2BIG;
	struct object *obj = (struct object *)o;
	int r = kv_txn_begin(obj);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		r = duro_put(o, entries[i].key.ptr, entries[i].key.len, entries[i].value.ptr,
			     entries[i].value.len);
		if (r < 0) {
			kv_txn_rollback(obj);
			return r;
		}
	}
	return kv_txn_commit(obj);
}

int duro_delete(struct duro_object *o, const void *key, size_t klen)
{
	if (keys_is_reserved(key, klen))
		return -EINVAL;
	return kv_write((struct object *)o, key, klen, NULL, 0, 0);
}

int duro_delete_many(struct duro_object *o, const struct duro_str *keys, size_t n)
{
	if (n > DURO_MAX_BATCH)
		return -E2BIG;
	struct object *obj = (struct object *)o;
	int r = kv_txn_begin(obj), count = 0;
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		r = duro_delete(o, keys[i].ptr, keys[i].len);
		if (r < 0) {
			kv_txn_rollback(obj);
			return r;
		}
		count += r;
	}
	kv_txn_commit(obj);
	return count;
}

int kv_delete_all(struct object *obj)
{
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

int kv_txn_begin(struct object *obj)
{
	struct obj_kv *kv = &obj->kv;
	if (kv->nsavepoints == KV_MAX_SAVEPOINTS)
		return -ENOSPC;
	kv->savepoint[kv->nsavepoints] = kv->ntxn;
	kv->savepoint_stats[kv->nsavepoints] = kv->stats;
	kv->savepoint_wiped[kv->nsavepoints] = kv->wiped_in_txn;
	kv->nsavepoints++;
	return 0;
}

int kv_txn_commit(struct object *obj)
{
	struct obj_kv *kv = &obj->kv;
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

unsigned kv_txn_depth(const struct object *obj) { return obj->kv.nsavepoints; }

int kv_txn_rollback(struct object *obj)
{
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

void kv_event_begin(struct object *obj)
{
	struct obj_kv *kv = &obj->kv;
	DURO_ASSERT(kv->ntxn == 0 && kv->nsavepoints == 0);
	kv->stats_at_event = kv->stats;
	kv->wiped_at_event = 0;
	kv->wiped_in_txn = 0;
}

void kv_event_rollback(struct core *c, struct object *obj)
{
	struct obj_kv *kv = &obj->kv;
	kv->nsavepoints = 0;
	undo_to(c, kv, 0);
	kv->stats = kv->stats_at_event;
	if (kv->wiped_in_txn)
		wiped_lookups_settle(c, kv, 0);
	kv->wiped_in_txn = 0;
}

int kv_event_wrote(const struct object *obj) { return obj->kv.ntxn > 0 || obj->kv.wiped_in_txn; }
int kv_event_wiped(const struct object *obj) { return obj->kv.wiped_in_txn; }

void kv_event_each_write(const struct object *obj,
			 void (*fn)(void *arg, const char *k, size_t klen, const char *v, size_t vlen,
				    int present),
			 void *arg)
{
	const struct obj_kv *kv = &obj->kv;
	for (uint32_t i = 0; i < kv->ntxn; i++) {
		const struct kv_entry *e = kv->txn[i];
		fn(arg, e->data, e->klen, e->data + e->klen, e->vlen, e->present);
	}
}

void kv_event_commit(struct core *c, struct object *obj, struct store_batch *b, uint64_t seq)
{
	struct obj_kv *kv = &obj->kv;
	struct store *st = OC(c)->rt->store;
	int cf = cf_of(obj);
	char fk[KEYS_ID_BYTES + DURO_MAX_KEY];
	kv->nsavepoints = 0;
	if (kv->wiped_in_txn) {
		uint8_t hi[KEYS_ID_BYTES];
		keys_id_successor(obj->id.bytes, hi);
		store_batch_delete_range(st, b, cf, obj->id.bytes, KEYS_ID_BYTES, hi, KEYS_ID_BYTES);
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
		size_t n = keys_data(fk, obj->id.bytes, e->data, e->klen);
		if (e->present)
			store_batch_put(st, b, cf, fk, n, e->data + e->klen, e->vlen);
		else
			store_batch_delete(st, b, cf, fk, n);
	}
	/* The size record changes only when sizes do (an overwrite of the same length, like
	 * every Counter increment, leaves it be). */
	if (memcmp(&kv->stats, &kv->stats_at_event, sizeof(kv->stats)) != 0) {
		char sk[KEYS_META_ID_LEN];
		keys_tagged_id(sk, KEYS_META_STATS, obj->id.bytes);
		if (kv->stats.keys == 0)
			store_batch_delete(st, b, STORE_CF_META, sk, sizeof(sk));
		else
			store_batch_put(st, b, STORE_CF_META, sk, sizeof(sk), &kv->stats, sizeof(kv->stats));
		/* The name goes with the first data and leaves with the last. */
		keys_tagged_id(sk, KEYS_META_NAME, obj->id.bytes);
		if (kv->stats.keys == 0)
			store_batch_delete(st, b, STORE_CF_META, sk, sizeof(sk));
		else if (kv->stats_at_event.keys == 0 && obj->name)
			store_batch_put(st, b, STORE_CF_META, sk, sizeof(sk), obj->name, obj->name_len);
	}
	kv->ntxn = 0;
	kv->wiped_in_txn = 0;
	kv->pending_seq = seq;
}

int kv_dirty(struct core *c, const struct object *obj)
{
	return obj->kv.pending_seq > commit_applied_seq(c) || obj->kv.ntxn > 0;
}

void kv_free_all(struct core *c, struct object *obj)
{
	struct obj_kv *kv = &obj->kv;
	DURO_ASSERT(kv->ntxn == 0);
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
	size_t budget = oc->rt->cfg->limits.cache_bytes_per_core;
	for (struct list_node *n = oc->lru.next; n != &oc->lru && oc->cache_bytes > budget; n = n->next) {
		struct object *obj = LIST_CONTAINER(n, struct object, lru);
		if (!obj->running)
			drop_clean(c, obj);
	}
}
