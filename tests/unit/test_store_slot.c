/* A slot's ranges (storage/store_slot.c): every family's records of a slot's objects and
 * none of its neighbours' are exported, imported into another store, and dropped; the
 * first and last slots included; a record outside the slot is refused on import. */
#include "check.h"
#include "keys.h"
#include "store_slot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PER_SLOT 5
#define RECS_PER_ID 8 /* two class keys, sql, history, meta s and n, alarms o and w */

static const unsigned slots[] = { 0, 1, 0x122, 0x123, 0x124, 4094, 4095 };
#define NSLOTS (sizeof(slots) / sizeof(slots[0]))

static uint64_t rng = 88172645463325252ull;
static uint8_t rnd8(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint8_t)rng;
}

static struct store *open_store(const char *dir, int *cf)
{
	struct store_config cfg;
	store_config_defaults(&cfg, dir);
	cfg.min_free_bytes = 0;
	struct store *st = NULL;
	if (store_open(&cfg, &st) < 0)
		return NULL;
	struct store_migration m = { .tag = "v1", .new_classes = { "C" }, .nnew = 1 };
	char err[256];
	uint8_t secret[32];
	if (store_migrate(st, &m, 1, err, sizeof(err)) < 0 || store_class(st, "C", cf, secret, NULL) < 0) {
		store_close(st);
		return NULL;
	}
	return st;
}

static void id_in(unsigned slot, uint8_t id[32], int extreme)
{
	for (int i = 0; i < 32; i++)
		id[i] = extreme < 0 ? 0 : extreme > 0 ? 0xff : rnd8();
	id[0] = (uint8_t)(slot >> 4);
	id[1] = (uint8_t)(slot << 4 | (extreme < 0 ? 0 : extreme > 0 ? 15 : (rnd8() & 15)));
}

static void fill(struct store *st, int cf)
{
	struct store_batch *b = store_batch_new();
	for (unsigned s = 0; s < NSLOTS; s++)
		for (int k = 0; k < PER_SLOT; k++) {
			uint8_t id[32];
			id_in(slots[s], id, k == 0 ? -1 : k == 1 ? 1 : 0);
			char key[64], val[8] = "v";
			size_t n = keys_data(key, id, "a", 1);
			store_batch_put(st, b, cf, key, n, val, 1);
			n = keys_alarm_user_key(key + 32, "x", 1) + 32; /* a reserved key */
			store_batch_put(st, b, cf, key, n, val, 1);
			n = keys_sql_page(key, id, 0xfffffffeu);
			store_batch_put(st, b, STORE_CF_SQL, key, n, val, 1);
			n = keys_history(key, id, ~0ull - 1);
			store_batch_put(st, b, STORE_CF_HISTORY, key, n, val, 1);
			n = keys_tagged_id(key, KEYS_META_STATS, id);
			store_batch_put(st, b, STORE_CF_META, key, n, val, 1);
			n = keys_tagged_id(key, KEYS_META_NAME, id);
			store_batch_put(st, b, STORE_CF_META, key, n, val, 1);
			n = keys_alarm(key, id, "al", 2);
			store_batch_put(st, b, STORE_CF_ALARMS, key, n, val, 1);
			n = keys_tagged_id(key, KEYS_WSOUT_OBJECT, id);
			memset(key + n, 1, 8);
			store_batch_put(st, b, STORE_CF_ALARMS, key, n + 8, val, 1);
		}
	/* Meta keys of the box, which no slot holds. */
	store_batch_put(st, b, STORE_CF_META, "zzz", 3, "v", 1);
	store_batch_put(st, b, STORE_CF_META, "t", 1, "v", 1);
	CHECK_EQ(store_write_durable(st, b), 0);
	store_batch_free(b);
}

struct sink {
	unsigned slot;
	long bad;
	struct store_slot_import *im; /* copies into it when set */
};

static int sink_fn(void *arg, int cf, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct sink *s = arg;
	const uint8_t *id = (const uint8_t *)key + ((cf == STORE_CF_META || cf == STORE_CF_ALARMS) ? 1 : 0);
	if (klen < 33 || ((unsigned)id[0] << 4 | id[1] >> 4) != s->slot)
		s->bad++;
	if (s->im && store_slot_import_record(s->im, cf, key, klen, val, vlen) < 0)
		s->bad++;
	return 0;
}

static long export_count(struct store *st, int cf, unsigned slot, struct store_slot_import *im)
{
	int cfs[] = { cf, STORE_CF_META, STORE_CF_ALARMS, STORE_CF_SQL, STORE_CF_HISTORY };
	struct sink s = { .slot = slot, .im = im };
	struct store_snapshot *snap = store_snapshot_take(st);
	long n = store_slot_export(st, snap, slot, cfs, 5, sink_fn, &s);
	store_snapshot_release(st, snap);
	CHECK_EQ(s.bad, 0);
	return n;
}

static void test_export_import_drop(void)
{
	char d1[] = "/tmp/duro-slot-XXXXXX", d2[] = "/tmp/duro-slot-XXXXXX";
	CHECK(mkdtemp(d1) && mkdtemp(d2));
	int cf1, cf2;
	struct store *a = open_store(d1, &cf1), *b = open_store(d2, &cf2);
	CHECK(a && b);
	if (!a || !b)
		return;
	fill(a, cf1);
	for (unsigned s = 0; s < NSLOTS; s++)
		CHECK_EQ(export_count(a, cf1, slots[s], NULL), PER_SLOT * RECS_PER_ID);
	CHECK_EQ(export_count(a, cf1, 2, NULL), 0);

	/* b holds stale keys of 0x123 (an earlier owner's): the import replaces them. */
	fill(b, cf2);
	struct store_slot_import *im = store_slot_import_begin(b, 0x123, 1);
	CHECK_EQ(export_count(a, cf1, 0x123, im), PER_SLOT * RECS_PER_ID);
	CHECK_EQ(store_slot_import_records(im), PER_SLOT * RECS_PER_ID);
	/* A key of another slot, or of no slot, is refused. */
	uint8_t other[32];
	id_in(0x124, other, 0);
	char key[64];
	size_t n = keys_data(key, other, "a", 1);
	CHECK_EQ(store_slot_import_record(im, cf2, key, n, "v", 1), -EINVAL);
	CHECK_EQ(store_slot_import_record(im, STORE_CF_META, "zzz", 3, "v", 1), -EINVAL);
	CHECK_EQ(store_slot_import_record(im, 70, key, n, "v", 1), -EINVAL);
	CHECK_EQ(store_slot_import_flush(im), 0);
	store_slot_import_end(im);
	CHECK_EQ(export_count(b, cf2, 0x123, NULL), PER_SLOT * RECS_PER_ID);
	/* The same keys as a's: a's export into a fresh import of b's copy finds no others. */
	im = store_slot_import_begin(a, 0x123, 1);
	CHECK_EQ(export_count(b, cf2, 0x123, im), PER_SLOT * RECS_PER_ID);
	store_slot_import_end(im); /* not flushed: nothing written */
	CHECK_EQ(export_count(a, cf1, 0x123, NULL), PER_SLOT * RECS_PER_ID);

	/* Dropping a slot leaves its neighbours and the box's own keys. */
	CHECK_EQ(store_slot_drop(a, 0x123), 0);
	CHECK_EQ(store_slot_drop(a, 4095), 0);
	CHECK_EQ(store_slot_drop(a, 0), 0);
	CHECK_EQ(export_count(a, cf1, 0x123, NULL), 0);
	CHECK_EQ(export_count(a, cf1, 4095, NULL), 0);
	CHECK_EQ(export_count(a, cf1, 0, NULL), 0);
	CHECK_EQ(export_count(a, cf1, 0x122, NULL), PER_SLOT * RECS_PER_ID);
	CHECK_EQ(export_count(a, cf1, 0x124, NULL), PER_SLOT * RECS_PER_ID);
	CHECK_EQ(export_count(a, cf1, 4094, NULL), PER_SLOT * RECS_PER_ID);
	CHECK_EQ(export_count(a, cf1, 1, NULL), PER_SLOT * RECS_PER_ID);
	struct store_value v;
	CHECK_EQ(store_get(a, STORE_CF_META, "zzz", 3, &v), 1);
	store_value_release(&v);
	CHECK_EQ(store_get(a, STORE_CF_META, "t", 1, &v), 1);
	store_value_release(&v);
	store_close(a);
	store_close(b);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", d1, d2);
	CHECK_EQ(system(cmd), 0);
}

struct seen {
	int n;
	char ops[8];
	int cfs[8];
	char keys[8][8];
};

static void each_fn(void *arg, enum store_op op, int cf, const char *key, size_t klen,
		    const char *val, size_t vlen)
{
	struct seen *s = arg;
	(void)val;
	(void)vlen;
	if (s->n < 8) {
		s->ops[s->n] = (char)op;
		s->cfs[s->n] = cf;
		snprintf(s->keys[s->n], 8, "%.*s", (int)klen, key);
	}
	s->n++;
}

/* A batch's writes read back in order, each with its family: what a move's live tail
 * captures from a core's commits. */
static void test_batch_each(void)
{
	char d[] = "/tmp/duro-slot-XXXXXX";
	CHECK(mkdtemp(d) != NULL);
	int cf;
	struct store *st = open_store(d, &cf);
	CHECK(st != NULL);
	if (!st)
		return;
	struct store_batch *b = store_batch_new();
	store_batch_put(st, b, cf, "k1", 2, "v", 1);
	store_batch_delete(st, b, STORE_CF_META, "k2", 2);
	store_batch_delete_range(st, b, STORE_CF_ALARMS, "k3", 2, "k4", 2);
	store_batch_put(st, b, STORE_CF_SQL, "k5", 2, "", 0);
	struct seen s = { 0 };
	CHECK_EQ(store_batch_each(st, b, each_fn, &s), 4);
	CHECK_EQ(s.n, 4);
	CHECK(s.ops[0] == 'R' && s.cfs[0] == cf && !strcmp(s.keys[0], "k1"));
	CHECK(s.ops[1] == 'D' && s.cfs[1] == STORE_CF_META && !strcmp(s.keys[1], "k2"));
	CHECK(s.ops[2] == 'X' && s.cfs[2] == STORE_CF_ALARMS && !strcmp(s.keys[2], "k3"));
	CHECK(s.ops[3] == 'R' && s.cfs[3] == STORE_CF_SQL && !strcmp(s.keys[3], "k5"));
	store_batch_free(b);
	store_close(st);
	char cmd[100];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", d);
	CHECK_EQ(system(cmd), 0);
}

/* A key's slot: the ID's first 12 bits, after the tag in meta and alarms; keys of no
 * object (a secret in meta, an alarm by time) have none. */
static void test_slot_of(void)
{
	uint8_t id[KEYS_ID_BYTES] = { 0xab, 0xcd };
	unsigned want = 0xab << 4 | 0xc;
	char k[1 + KEYS_ID_BYTES + 4];
	memcpy(k, id, sizeof(id));
	memcpy(k + KEYS_ID_BYTES, "user", 4);
	CHECK_EQ(store_slot_of(STORE_CF_SQL, k, KEYS_ID_BYTES + 4), (int)want);
	CHECK_EQ(store_slot_of(STORE_CF_META, k, KEYS_ID_BYTES + 4), -1);
	k[0] = KEYS_META_STATS;
	memcpy(k + 1, id, sizeof(id));
	CHECK_EQ(store_slot_of(STORE_CF_META, k, 1 + KEYS_ID_BYTES), (int)want);
	k[0] = KEYS_ALARMS_OBJECT;
	CHECK_EQ(store_slot_of(STORE_CF_ALARMS, k, 1 + KEYS_ID_BYTES), (int)want);
	k[0] = 'x';
	CHECK_EQ(store_slot_of(STORE_CF_ALARMS, k, 1 + KEYS_ID_BYTES), -1);
	CHECK_EQ(store_slot_of(STORE_CF_SQL, k, 1), -1);
	uint8_t last[2] = { 0xff, 0xf0 };
	CHECK_EQ(store_slot_of(STORE_CF_SQL, last, 2), 4095);
}

int main(void)
{
	RUN(test_export_import_drop);
	RUN(test_batch_each);
	RUN(test_slot_of);
	return CHECK_DONE();
}
