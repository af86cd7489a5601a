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

struct store_slot_import *store_slot_import_begin(struct store *st, unsigned slot)
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
	store_slot_drop_into(st, im->b, slot);
	return im;
}

/* 1 when key lies in one of the slot's ranges of cf. */
static int in_slot(int cf, unsigned slot, const void *key, size_t klen)
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

int store_slot_import_record(struct store_slot_import *im, int cf, const void *key, size_t klen,
			     const void *val, size_t vlen)
{
	unsigned ncf = atomic_load_explicit(&im->st->ncf, memory_order_acquire);
	if (cf < 0 || (unsigned)cf >= ncf || !in_slot(cf, im->slot, key, klen))
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
