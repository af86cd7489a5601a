/* A follower's replica log (storage/store_repl.c) over a real RocksDB: appends, a divergent
 * suffix cut by a newer epoch, max_epoch and the log surviving a reopen (they are written
 * durably), trims after apply, a reset for a snapshot that keeps the fence, and slots kept
 * apart (the first and last included). */
#include "check.h"
#include "store_repl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct store *open_store(const char *dir)
{
	struct store_config cfg;
	store_config_defaults(&cfg, dir);
	cfg.min_free_bytes = 0;
	struct store *st = NULL;
	return store_open(&cfg, &st) < 0 ? NULL : st;
}

struct seen {
	uint64_t lsn[16];
	int64_t epoch[16];
	char data[16][32];
	unsigned n;
};

static int collect(void *arg, uint64_t lsn, int64_t epoch, const void *data, uint32_t len)
{
	struct seen *s = arg;
	if (s->n >= 16 || len >= 32)
		return -E2BIG;
	s->lsn[s->n] = lsn;
	s->epoch[s->n] = epoch;
	memcpy(s->data[s->n], data, len);
	s->data[s->n][len] = 0;
	s->n++;
	return 0;
}

static void recs_of(struct store_repl_rec *r, const char *const *text, const int64_t *epochs,
		    unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		r[i] = (struct store_repl_rec){ .epoch = epochs[i], .data = text[i],
						.len = (uint32_t)strlen(text[i]) };
}

static void test_replica_log(void)
{
	char d[] = "/tmp/duro-test-repl-XXXXXX";
	CHECK(mkdtemp(d) != NULL);
	struct store *st = open_store(d);
	CHECK(st != NULL);
	if (!st)
		return;
	struct store_repl_state s;
	CHECK_EQ(store_repl_state(st, 7, &s), 0);
	CHECK(s.max_epoch == 0 && s.end == 0 && s.end_epoch == 0);
	/* Four records at epoch 3 and 5. */
	struct store_repl_rec r[4];
	const char *t1[] = { "a", "b", "c", "d" };
	const int64_t e1[] = { 3, 3, 5, 5 };
	recs_of(r, t1, e1, 4);
	CHECK_EQ(store_repl_append(st, 7, 5, 0, r, 4), 0);
	CHECK_EQ(store_repl_state(st, 7, &s), 0);
	CHECK(s.max_epoch == 5 && s.end == 4 && s.end_epoch == 5);
	CHECK_EQ(store_repl_epoch_at(st, 7, 2), 3);
	CHECK_EQ(store_repl_epoch_at(st, 7, 4), 5);
	CHECK_EQ(store_repl_epoch_at(st, 7, 5), 0);
	/* Another slot's log is apart, the first and last slots too. */
	CHECK_EQ(store_repl_append(st, 0, 2, 0, r, 1), -EINVAL); /* record newer than its append */
	CHECK_EQ(store_repl_append(st, 0, 3, 0, r, 1), 0);
	CHECK_EQ(store_repl_append(st, 4095, 9, 0, r, 2), 0);
	CHECK_EQ(store_repl_epoch_at(st, 0, 2), 0);
	CHECK_EQ(store_repl_epoch_at(st, 4095, 2), 3);
	/* A newer epoch's records replace the divergent suffix after lsn 2. */
	const char *t2[] = { "C7", "D7", "E7" };
	const int64_t e2[] = { 7, 7, 7 };
	recs_of(r, t2, e2, 3);
	CHECK_EQ(store_repl_append(st, 7, 7, 5, r, 3), -EINVAL); /* cut past the end */
	CHECK_EQ(store_repl_append(st, 7, 7, 2, r, 3), 0);
	CHECK_EQ(store_repl_state(st, 7, &s), 0);
	CHECK(s.max_epoch == 7 && s.end == 5 && s.end_epoch == 7);
	struct seen seen = { 0 };
	CHECK_EQ(store_repl_read(st, 7, 1, collect, &seen), 0);
	CHECK_EQ(seen.n, 5);
	CHECK(!strcmp(seen.data[1], "b") && !strcmp(seen.data[2], "C7") && seen.lsn[4] == 5 &&
	      seen.epoch[1] == 3 && seen.epoch[4] == 7);
	/* A cut with nothing after it (an empty append at an older point): the end moves back
	 * and takes the kept record's epoch. */
	CHECK_EQ(store_repl_append(st, 7, 7, 3, NULL, 0), 0);
	CHECK_EQ(store_repl_state(st, 7, &s), 0);
	CHECK(s.end == 3 && s.end_epoch == 7);
	/* A seal raises max_epoch durably and never lowers it. */
	CHECK_EQ(store_repl_seal(st, 7, 12), 0);
	CHECK_EQ(store_repl_seal(st, 7, 8), 0);
	/* Trimmed after apply: the records go, the end and the trimmed record's epoch stay. */
	CHECK_EQ(store_repl_trim(st, 7, 4), -EINVAL);
	CHECK_EQ(store_repl_trim(st, 7, 2), 0);
	CHECK_EQ(store_repl_append(st, 7, 12, 1, NULL, 0), -EINVAL); /* below the trimmed prefix */
	store_close(st);

	st = open_store(d);
	CHECK(st != NULL);
	if (!st)
		return;
	CHECK_EQ(store_repl_state(st, 7, &s), 0);
	CHECK(s.max_epoch == 12 && s.end == 3 && s.end_epoch == 7 && s.trimmed == 2 &&
	      s.trimmed_epoch == 3);
	seen.n = 0;
	CHECK_EQ(store_repl_read(st, 7, 0, collect, &seen), 0);
	CHECK(seen.n == 1 && seen.lsn[0] == 3 && !strcmp(seen.data[0], "C7"));
	/* Cutting back to the trimmed prefix takes its epoch. */
	CHECK_EQ(store_repl_append(st, 7, 12, 2, NULL, 0), 0);
	CHECK_EQ(store_repl_state(st, 7, &s), 0);
	CHECK(s.end == 2 && s.end_epoch == 3);
	/* A learner rebuilt from a snapshot up to lsn 40 at epoch 11: the fence stays. */
	CHECK_EQ(store_repl_reset(st, 7, 40, 11), 0);
	CHECK_EQ(store_repl_state(st, 7, &s), 0);
	CHECK(s.max_epoch == 12 && s.end == 40 && s.end_epoch == 11 && s.trimmed == 40);
	seen.n = 0;
	CHECK_EQ(store_repl_read(st, 7, 0, collect, &seen), 0);
	CHECK_EQ(seen.n, 0);
	CHECK_EQ(store_repl_epoch_at(st, 4095, 1), 3); /* the others untouched */
	store_close(st);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", d);
	CHECK_EQ(system(cmd), 0);
}

int main(void)
{
	RUN(test_replica_log);
	return CHECK_DONE();
}
