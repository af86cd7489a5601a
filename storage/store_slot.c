/* A slot's ranges in every family (store_slot.h): export from a snapshot, drop, import.
 * The ranges follow from the slot being the ID's top 12 bits (keys.h). */
#include "store_slot.h"
#include "store_int.h"
#include "base_assert.h"
#include "keys.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

unsigned store_slot_ranges(int cf, unsigned slot, struct store_slot_range out[2])
{
	DURO_ASSERT(slot < 4096);
	uint8_t lo[2], hi[2];
	int bounded = keys_slot_bounds(slot, lo, hi);
	char tags[2];
	unsigned ntags = 0;
	if (cf == STORE_CF_META) {
		tags[0] = KEYS_META_STATS;
		tags[1] = KEYS_META_NAME;
		ntags = 2;
	} else if (cf == STORE_CF_ALARMS) {
		tags[0] = KEYS_ALARMS_OBJECT;
		tags[1] = KEYS_WSOUT_OBJECT;
		ntags = 2;
	}
	if (!ntags) {
		struct store_slot_range *r = &out[0];
		memset(r, 0, sizeof(*r));
		r->cf = cf;
		memcpy(r->lo, lo, 2);
		r->lolen = 2;
		if (bounded) {
			memcpy(r->hi, hi, 2);
			r->hilen = 2;
		} else {
			/* Past every key of the last slot: an ID of 0xff bytes, then a user key
			 * (never starting with 0xff 0xff), a reserved key (0xff 0xff and text), a
			 * page number or a sequence number. */
			memset(r->hi, 0xff, STORE_SLOT_KEY_MAX);
			r->hilen = STORE_SLOT_KEY_MAX;
		}
		return 1;
	}
	for (unsigned t = 0; t < ntags; t++) {
		struct store_slot_range *r = &out[t];
		memset(r, 0, sizeof(*r));
		r->cf = cf;
		r->lo[0] = (uint8_t)tags[t];
		memcpy(r->lo + 1, lo, 2);
		r->lolen = 3;
		if (bounded) {
			r->hi[0] = (uint8_t)tags[t];
			memcpy(r->hi + 1, hi, 2);
			r->hilen = 3;
		} else {
			r->hi[0] = (uint8_t)(tags[t] + 1);
			r->hilen = 1;
		}
	}
	return ntags;
}

long store_slot_export(struct store *st, const struct store_snapshot *snap, unsigned slot,
		       const int *cfs, unsigned ncf, store_slot_fn *fn, void *arg)
{
	long n = 0;
	for (unsigned i = 0; i < ncf; i++) {
		struct store_slot_range rg[2];
		unsigned nr = store_slot_ranges(cfs[i], slot, rg);
		for (unsigned k = 0; k < nr; k++) {
			struct store_iter *it = store_iter_open_at(st, snap, cfs[i], rg[k].lo, rg[k].lolen,
								   rg[k].hi, rg[k].hilen, 0);
			if (!it)
				return -EIO;
			const char *key, *val;
			size_t kl, vl;
			int r;
			while ((r = store_iter_next(it, &key, &kl, &val, &vl)) == 1) {
				int e = fn(arg, cfs[i], key, kl, val, vl);
				if (e < 0) {
					store_iter_close(it);
					return e;
				}
				n++;
			}
			store_iter_close(it);
			if (r < 0)
				return r;
		}
	}
	return n;
}

void store_slot_drop_into(struct store *st, struct store_batch *b, unsigned slot)
{
	unsigned ncf = atomic_load_explicit(&st->ncf, memory_order_acquire);
	for (unsigned cf = 0; cf < ncf; cf++) {
		struct store_slot_range rg[2];
		unsigned nr = store_slot_ranges((int)cf, slot, rg);
		for (unsigned k = 0; k < nr; k++)
			store_batch_delete_range(st, b, (int)cf, rg[k].lo, rg[k].lolen, rg[k].hi,
						 rg[k].hilen);
	}
}

int store_slot_drop(struct store *st, unsigned slot)
{
	struct store_batch *b = store_batch_new();
	if (!b)
		return -ENOMEM;
	store_slot_drop_into(st, b, slot);
	int r = store_write_durable(st, b);
	store_batch_free(b);
	return r;
}

struct store_slot_import {
	struct store *st;
	struct store_batch *b;
	unsigned slot;
	uint64_t bytes, records;
};

struct store_slot_import *store_slot_import_begin(struct store *st, unsigned slot, int fresh)
{
	struct store_slot_import *im = calloc(1, sizeof(*im));
	if (!im)
		return NULL;
	im->b = store_batch_new();
	if (!im->b) {
		free(im);
		return NULL;
	}
	im->st = st;
	im->slot = slot;
	if (fresh)
		store_slot_drop_into(st, im->b, slot);
	return im;
}

int store_slot_contains(int cf, unsigned slot, const void *key, size_t klen)
{
	struct store_slot_range rg[2];
	unsigned nr = store_slot_ranges(cf, slot, rg);
	for (unsigned k = 0; k < nr; k++) {
		size_t m = klen < rg[k].lolen ? klen : rg[k].lolen;
		int c = memcmp(key, rg[k].lo, m);
		if (c < 0 || (c == 0 && klen < rg[k].lolen))
			continue;
		m = klen < rg[k].hilen ? klen : rg[k].hilen;
		c = memcmp(key, rg[k].hi, m);
		if (c < 0 || (c == 0 && klen < rg[k].hilen))
			return 1;
	}
	return 0;
}

int store_slot_of(int cf, const void *key, size_t klen)
{
	/* The ID's first 12 bits are the slot: at the key's start, or after the tag byte in
	 * meta and alarms; the range check refuses keys of those families that are no
	 * object's (namespace secrets, alarms by time). */
	const uint8_t *k = key;
	size_t at = cf == STORE_CF_META || cf == STORE_CF_ALARMS;
	if (klen < at + 2)
		return -1;
	unsigned slot = (unsigned)k[at] << 4 | k[at + 1] >> 4;
	return store_slot_contains(cf, slot, key, klen) ? (int)slot : -1;
}

int store_slot_import_record(struct store_slot_import *im, int cf, const void *key, size_t klen,
			     const void *val, size_t vlen)
{
	unsigned ncf = atomic_load_explicit(&im->st->ncf, memory_order_acquire);
	if (cf < 0 || (unsigned)cf >= ncf || !store_slot_contains(cf, im->slot, key, klen))
		return -EINVAL;
	if (val)
		store_batch_put(im->st, im->b, cf, key, klen, val, vlen);
	else
		store_batch_delete(im->st, im->b, cf, key, klen);
	im->records++;
	im->bytes += klen + vlen;
	if (store_batch_bytes(im->b) >= STORE_SLOT_IMPORT_BATCH)
		return store_slot_import_flush(im);
	return 0;
}

int store_slot_import_range(struct store_slot_import *im, int cf, const void *lo, size_t lolen,
			    const void *hi, size_t hilen)
{
	unsigned ncf = atomic_load_explicit(&im->st->ncf, memory_order_acquire);
	/* An object's range (delete_all) or its alarms': within the slot from end to end. */
	if (cf < 0 || (unsigned)cf >= ncf || !store_slot_contains(cf, im->slot, lo, lolen) ||
	    hilen == 0 || memcmp(lo, hi, lolen < hilen ? lolen : hilen) > 0)
		return -EINVAL;
	struct store_slot_range rg[2];
	unsigned nr = store_slot_ranges(cf, im->slot, rg), inside = 0;
	for (unsigned k = 0; k < nr && !inside; k++) {
		size_t m = hilen < rg[k].hilen ? hilen : rg[k].hilen;
		int c = memcmp(hi, rg[k].hi, m);
		inside = c < 0 || (c == 0 && hilen <= rg[k].hilen);
		if (!inside && c == 0 && store_slot_contains(cf, im->slot, lo, lolen)) {
			/* The slot's last object's successor: the next slot's bound followed by
			 * zeros, which starts no key (IDs are whole). Cut at the bound. */
			hi = rg[k].hi;
			hilen = rg[k].hilen;
			inside = 1;
		}
	}
	if (!inside)
		return -EINVAL;
	store_batch_delete_range(im->st, im->b, cf, lo, lolen, hi, hilen);
	im->records++;
	im->bytes += lolen + hilen;
	return 0;
}

/* ---- a batch's writes (RocksDB's WriteBatch representation, write_batch.cc) ---- */

static int varint32(const unsigned char **p, const unsigned char *end, uint32_t *out)
{
	uint32_t v = 0;
	for (int shift = 0; shift <= 28 && *p < end; shift += 7) {
		unsigned char b = *(*p)++;
		v |= (uint32_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -EPROTO;
}

static int slice(const unsigned char **p, const unsigned char *end, const char **s, size_t *n)
{
	uint32_t len;
	if (varint32(p, end, &len) < 0 || (size_t)(end - *p) < len)
		return -EPROTO;
	*s = (const char *)*p;
	*n = len;
	*p += len;
	return 0;
}

long store_batch_each(struct store *st, struct store_batch *b, store_op_fn *fn, void *arg)
{
	unsigned ncf = atomic_load_explicit(&st->ncf, memory_order_acquire);
	uint32_t ids[STORE_MAX_CF];
	for (unsigned i = 0; i < ncf; i++)
		ids[i] = rocksdb_column_family_handle_get_id(st->cf[i]);
	uint32_t default_id = rocksdb_column_family_handle_get_id(st->cf_default);
	size_t size;
	const unsigned char *p = (const unsigned char *)rocksdb_writebatch_data((rocksdb_writebatch_t *)b, &size);
	const unsigned char *end = p + size;
	if (size < 12)
		return -EPROTO;
	p += 12; /* sequence u64, count u32 */
	long n = 0;
	while (p < end) {
		unsigned char tag = *p++;
		uint32_t cfid = default_id;
		const char *k, *v = NULL;
		size_t kl, vl = 0;
		enum store_op op;
		switch (tag) {
		case 0x5: /* kTypeColumnFamilyValue */
		case 0x4: /* kTypeColumnFamilyDeletion */
		case 0x8: /* kTypeColumnFamilySingleDeletion */
		case 0xE: /* kTypeColumnFamilyRangeDeletion */
			if (varint32(&p, end, &cfid) < 0)
				return -EPROTO;
			break;
		case 0x1: case 0x0: case 0x7: case 0xF:
			break;
		case 0x3: /* kTypeLogData: not a write */
			if (slice(&p, end, &k, &kl) < 0)
				return -EPROTO;
			continue;
		default:
			return -EPROTO;
		}
		if (slice(&p, end, &k, &kl) < 0)
			return -EPROTO;
		if (tag == 0x5 || tag == 0x1) {
			op = STORE_OP_PUT;
			if (slice(&p, end, &v, &vl) < 0)
				return -EPROTO;
		} else if (tag == 0xE || tag == 0xF) {
			op = STORE_OP_RANGE;
			if (slice(&p, end, &v, &vl) < 0)
				return -EPROTO;
		} else {
			op = STORE_OP_DELETE;
		}
		int cf = -1;
		for (unsigned i = 0; i < ncf && cf < 0; i++)
			if (ids[i] == cfid)
				cf = (int)i;
		if (cf < 0) {
			if (cfid == default_id)
				continue; /* nothing of ours lives there */
			return -EPROTO;
		}
		fn(arg, op, cf, k, kl, v, vl);
		n++;
	}
	return n;
}

int store_slot_import_flush(struct store_slot_import *im)
{
	if (!store_batch_count(im->b))
		return 0;
	int r = store_write_durable(im->st, im->b);
	store_batch_clear(im->b);
	return r;
}

uint64_t store_slot_import_bytes(const struct store_slot_import *im) { return im->bytes; }
uint64_t store_slot_import_records(const struct store_slot_import *im) { return im->records; }

void store_slot_import_end(struct store_slot_import *im)
{
	if (!im)
		return;
	store_batch_free(im->b);
	free(im);
}
