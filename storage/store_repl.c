/* A follower's replica log of a slot (store_repl.h), in the meta family: 'L' ‖ slot u16 BE
 * ‖ lsn u64 BE -> epoch i64 LE ‖ record, and 'M' ‖ slot u16 BE -> the state (max_epoch,
 * end, end_epoch, trimmed, trimmed_epoch; u64 little-endian each). Every change is one RocksDB write through its
 * own WAL with a sync: the cores' commit logs are for the box's own commits, and a
 * follower's batch is acknowledged only once this write returns. */
#include "store_repl.h"
#include "base_assert.h"
#include "base_limits.h"

#include <errno.h>
#include <string.h>

#define KEY_LOG 'L'
#define KEY_STATE 'M'
#define LOG_KEY_LEN 11
#define STATE_LEN 40

static void log_key(uint8_t k[LOG_KEY_LEN], unsigned slot, uint64_t lsn)
{
	k[0] = KEY_LOG;
	k[1] = (uint8_t)(slot >> 8);
	k[2] = (uint8_t)slot;
	for (int i = 0; i < 8; i++)
		k[3 + i] = (uint8_t)(lsn >> (56 - 8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int store_repl_state(struct store *st, unsigned slot, struct store_repl_state *out)
{
	DURO_ASSERT(slot < DURO_SLOTS);
	memset(out, 0, sizeof(*out));
	uint8_t k[3] = { KEY_STATE, (uint8_t)(slot >> 8), (uint8_t)slot };
	struct store_value v;
	int r = store_get(st, STORE_CF_META, k, sizeof(k), &v);
	if (r <= 0)
		return r;
	if (v.len == STATE_LEN) {
		const uint8_t *p = (const uint8_t *)v.data;
		out->max_epoch = (int64_t)get64(p);
		out->end = get64(p + 8);
		out->end_epoch = (int64_t)get64(p + 16);
		out->trimmed = get64(p + 24);
		out->trimmed_epoch = (int64_t)get64(p + 32);
	} else {
		r = -EIO; /* written by nobody but us: a torn value is a broken disk */
	}
	store_value_release(&v);
	return r < 0 ? r : 0;
}

static void put_state(struct store *st, struct store_batch *b, unsigned slot,
		      const struct store_repl_state *s)
{
	uint8_t k[3] = { KEY_STATE, (uint8_t)(slot >> 8), (uint8_t)slot }, v[STATE_LEN];
	put64(v, (uint64_t)s->max_epoch);
	put64(v + 8, s->end);
	put64(v + 16, (uint64_t)s->end_epoch);
	put64(v + 24, s->trimmed);
	put64(v + 32, (uint64_t)s->trimmed_epoch);
	store_batch_put(st, b, STORE_CF_META, k, sizeof(k), v, sizeof(v));
}

/* Drops the records of slot in lsn [from, to] (to UINT64_MAX: all after from). */
static void drop_range(struct store *st, struct store_batch *b, unsigned slot, uint64_t from,
		       uint64_t to)
{
	uint8_t lo[LOG_KEY_LEN], hi[LOG_KEY_LEN];
	log_key(lo, slot, from);
	if (to == UINT64_MAX) {
		/* The next slot's first key: the range has no end within this slot. */
		hi[0] = KEY_LOG;
		hi[1] = (uint8_t)((slot + 1) >> 8);
		hi[2] = (uint8_t)(slot + 1);
		memset(hi + 3, 0, 8);
	} else {
		log_key(hi, slot, to + 1);
	}
	store_batch_delete_range(st, b, STORE_CF_META, lo, sizeof(lo), hi, sizeof(hi));
}

static int write_free(struct store *st, struct store_batch *b)
{
	int r = store_write_durable(st, b);
	store_batch_free(b);
	return r;
}

int64_t store_repl_epoch_at(struct store *st, unsigned slot, uint64_t lsn)
{
	DURO_ASSERT(slot < DURO_SLOTS);
	uint8_t k[LOG_KEY_LEN];
	log_key(k, slot, lsn);
	struct store_value v;
	int r = store_get(st, STORE_CF_META, k, sizeof(k), &v);
	if (r <= 0)
		return r;
	int64_t e = v.len >= 8 ? (int64_t)get64((const uint8_t *)v.data) : -EIO;
	store_value_release(&v);
	return e;
}

int store_repl_append(struct store *st, unsigned slot, int64_t epoch, uint64_t cut,
		      const struct store_repl_rec *recs, unsigned n)
{
	struct store_repl_state s;
	int r = store_repl_state(st, slot, &s);
	if (r < 0)
		return r;
	if (epoch <= 0 || cut < s.trimmed || cut > s.end)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (recs[i].epoch <= 0 || recs[i].epoch > epoch)
			return -EINVAL;
	int64_t cut_epoch = s.end_epoch;
	if (cut < s.end) {
		/* The record at cut stays: its epoch becomes the end's. */
		cut_epoch = cut == s.trimmed ? s.trimmed_epoch : store_repl_epoch_at(st, slot, cut);
		if (cut_epoch < 0)
			return (int)cut_epoch;
	}
	struct store_batch *b = store_batch_new();
	if (!b)
		return -ENOMEM;
	if (epoch > s.max_epoch)
		s.max_epoch = epoch;
	if (cut < s.end) {
		drop_range(st, b, slot, cut + 1, UINT64_MAX);
		s.end = cut;
		s.end_epoch = cut_epoch;
	}
	uint8_t k[LOG_KEY_LEN], head[8];
	for (unsigned i = 0; i < n; i++) {
		log_key(k, slot, cut + 1 + i);
		/* epoch ‖ record as one value, written from two pieces: no copy to frame it. */
		put64(head, (uint64_t)recs[i].epoch);
		store_batch_put2(st, b, STORE_CF_META, k, sizeof(k), head, sizeof(head), recs[i].data,
				 recs[i].len);
	}
	if (n) {
		s.end = cut + n;
		s.end_epoch = recs[n - 1].epoch;
	}
	put_state(st, b, slot, &s);
	return write_free(st, b);
}

int store_repl_seal(struct store *st, unsigned slot, int64_t epoch)
{
	if (epoch <= 0)
		return -EINVAL;
	struct store_repl_state s;
	int r = store_repl_state(st, slot, &s);
	if (r < 0)
		return r;
	if (epoch <= s.max_epoch)
		return 0; /* durable already */
	s.max_epoch = epoch;
	struct store_batch *b = store_batch_new();
	if (!b)
		return -ENOMEM;
	put_state(st, b, slot, &s);
	return write_free(st, b);
}

int store_repl_trim(struct store *st, unsigned slot, uint64_t upto)
{
	struct store_repl_state s;
	int r = store_repl_state(st, slot, &s);
	if (r < 0)
		return r;
	if (upto > s.end)
		return -EINVAL;
	if (upto <= s.trimmed)
		return 0;
	int64_t e = upto == s.end ? s.end_epoch : store_repl_epoch_at(st, slot, upto);
	if (e < 0)
		return (int)e;
	struct store_batch *b = store_batch_new();
	if (!b)
		return -ENOMEM;
	drop_range(st, b, slot, s.trimmed + 1, upto);
	s.trimmed = upto;
	s.trimmed_epoch = e;
	put_state(st, b, slot, &s);
	return write_free(st, b);
}

int store_repl_read(struct store *st, unsigned slot, uint64_t from, store_repl_fn *fn, void *arg)
{
	DURO_ASSERT(slot < DURO_SLOTS);
	uint8_t lo[LOG_KEY_LEN], hi[3] = { KEY_LOG, (uint8_t)((slot + 1) >> 8), (uint8_t)(slot + 1) };
	log_key(lo, slot, from);
	struct store_iter *it = store_iter_open(st, STORE_CF_META, lo, sizeof(lo), hi, sizeof(hi), 0);
	if (!it)
		return -EIO;
	int r;
	const char *key, *val;
	size_t klen, vlen;
	while ((r = store_iter_next(it, &key, &klen, &val, &vlen)) == 1) {
		if (klen != LOG_KEY_LEN || vlen < 8 || vlen - 8 > UINT32_MAX) {
			r = -EPROTO;
			break;
		}
		uint64_t lsn = 0;
		for (int i = 0; i < 8; i++)
			lsn = lsn << 8 | (uint8_t)key[3 + i];
		r = fn(arg, lsn, (int64_t)get64((const uint8_t *)val), val + 8, (uint32_t)(vlen - 8));
		if (r)
			break;
	}
	store_iter_close(it);
	return r;
}

int store_repl_reset(struct store *st, unsigned slot, uint64_t end, int64_t end_epoch)
{
	struct store_repl_state s;
	int r = store_repl_state(st, slot, &s);
	if (r < 0)
		return r;
	struct store_batch *b = store_batch_new();
	if (!b)
		return -ENOMEM;
	drop_range(st, b, slot, 0, UINT64_MAX);
	s.end = s.trimmed = end;
	s.end_epoch = s.trimmed_epoch = end_epoch;
	put_state(st, b, slot, &s);
	return write_free(st, b);
}
