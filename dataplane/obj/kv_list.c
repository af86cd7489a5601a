/* list() over an object's keys: the writes RocksDB does not hold yet (cached, sorted per
 * call) merged with a RocksDB iterator over the object's range, the cached write winning
 * where both have a key. */
#include "kv.h"
#include "base_assert.h"
#include "commit.h"
#include "core.h"
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
		char lo[KEYS_ID_BYTES + DURO_MAX_KEY + 1], hi[KEYS_ID_BYTES + DURO_MAX_KEY];
		size_t lon = keys_data(lo, obj->id.bytes, r.lo, r.lolen), hin;
		if (r.hi) {
			hin = keys_data(hi, obj->id.bytes, r.hi, r.hilen);
		} else {
			keys_id_successor(obj->id.bytes, (uint8_t *)hi);
			hin = KEYS_ID_BYTES;
		}
		it = store_iter_open(c->obj->rt->store, obj->ns->cf, lo, lon, hi, hin, opt->reverse);
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
					dk += KEYS_ID_BYTES;
					dkn -= KEYS_ID_BYTES;
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
		if (!present || (!reserved && keys_is_reserved(k.ptr, k.len)))
			continue;
		count++;
		if (fn(arg, k, v))
			break;
	}
	store_iter_close(it);
	free(dirty);
	return rc < 0 ? rc : count;
}
