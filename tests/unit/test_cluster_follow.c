/* A follower's side of replication (dataplane/obj/cluster_follow.c) over a real RocksDB:
 * appends acknowledged once durable, a resend and a gap, a seal that outlives a restart and
 * fences the old owner, the new owner's records replacing a divergent suffix, a resend
 * from before the trimmed prefix, and broken frames refused. */
#include "check.h"
#include "cluster_follow.h"
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

/* An append of slot 9 at epoch whose records have epochs e[0..n), text "r<lsn>". */
static struct obj_repl_hdr append(unsigned char *body, int64_t epoch, int64_t prev_epoch,
				  uint64_t prev_lsn, const int64_t *e, unsigned n)
{
	size_t at = 0;
	for (unsigned i = 0; i < n; i++) {
		char t[16];
		int len = snprintf(t, sizeof(t), "r%llu", (unsigned long long)(prev_lsn + 1 + i));
		at += obj_repl_put_rec(body + at, 4096 - at, e[i], t, (uint32_t)len);
	}
	return (struct obj_repl_hdr){ .type = OBJ_REPL_APPEND, .slot = 9, .count = n,
				      .body_len = (uint32_t)at, .epoch = epoch,
				      .prev_epoch = prev_epoch, .prev_lsn = prev_lsn,
				      .lsn = prev_lsn + n };
}

static void test_follower(void)
{
	char d[] = "/tmp/duro-test-follow-XXXXXX";
	CHECK(mkdtemp(d) != NULL);
	struct store *st = open_store(d);
	CHECK(st != NULL);
	if (!st)
		return;
	unsigned char body[4096];
	struct obj_repl_hdr a, ans;
	const int64_t e555[] = { 5, 5, 5 };
	a = append(body, 5, 0, 0, e555, 3);
	CHECK_EQ(obj_repl_follow(st, &a, body, &ans), 0);
	CHECK(ans.type == OBJ_REPL_ACK && ans.status == OBJ_REPL_OK && ans.lsn == 3 && ans.epoch == 5);
	/* The same again (a resend): acknowledged, nothing changes. */
	CHECK_EQ(obj_repl_follow(st, &a, body, &ans), 0);
	CHECK(ans.status == OBJ_REPL_OK && ans.lsn == 3);
	struct store_repl_state s;
	CHECK(store_repl_state(st, 9, &s) == 0 && s.end == 3 && s.end_epoch == 5);
	/* A gap: resend from the end. */
	a = append(body, 5, 5, 6, e555, 1);
	CHECK_EQ(obj_repl_follow(st, &a, body, &ans), 0);
	CHECK(ans.status == OBJ_REPL_MISMATCH && ans.lsn == 3);
	/* A seal at 7: durable before its answer, which carries the log's end. */
	struct obj_repl_hdr seal = { .type = OBJ_REPL_SEAL, .slot = 9, .epoch = 7 };
	CHECK_EQ(obj_repl_follow(st, &seal, NULL, &ans), 0);
	CHECK(ans.type == OBJ_REPL_SEALED && ans.status == OBJ_REPL_OK && ans.lsn == 3 &&
	      ans.last_epoch == 5 && ans.epoch == 7);
	store_close(st);

	/* After a restart the old owner (epoch 5) is refused: the fence outlived it. */
	st = open_store(d);
	CHECK(st != NULL);
	if (!st)
		return;
	a = append(body, 5, 5, 3, e555, 1);
	CHECK_EQ(obj_repl_follow(st, &a, body, &ans), 0);
	CHECK(ans.status == OBJ_REPL_STALE && ans.epoch == 7);
	struct obj_repl_hdr old_seal = { .type = OBJ_REPL_SEAL, .slot = 9, .epoch = 6 };
	CHECK_EQ(obj_repl_follow(st, &old_seal, NULL, &ans), 0);
	CHECK(ans.status == OBJ_REPL_STALE && ans.epoch == 7);
	/* The new owner adopted a log that ends at lsn 2 and writes its barrier at 3: the
	 * follower's lsn 3 of epoch 5 is cut and replaced. */
	const int64_t e7[] = { 7, 7 };
	a = append(body, 7, 5, 2, e7, 2);
	CHECK_EQ(obj_repl_follow(st, &a, body, &ans), 0);
	CHECK(ans.status == OBJ_REPL_OK && ans.lsn == 4);
	CHECK(store_repl_state(st, 9, &s) == 0 && s.end == 4 && s.end_epoch == 7 && s.max_epoch == 7);
	CHECK_EQ(store_repl_epoch_at(st, 9, 3), 7);
	/* Applied and trimmed up to 3: a resend from before it goes on from 3. */
	CHECK_EQ(store_repl_trim(st, 9, 3), 0);
	a = append(body, 7, 5, 1, e7, 2);
	CHECK_EQ(obj_repl_follow(st, &a, body, &ans), 0);
	CHECK(ans.status == OBJ_REPL_MISMATCH && ans.lsn == 3);
	const int64_t e77[] = { 7, 7 };
	a = append(body, 7, 7, 3, e77, 2);
	CHECK_EQ(obj_repl_follow(st, &a, body, &ans), 0);
	CHECK(ans.status == OBJ_REPL_OK && ans.lsn == 5);
	/* Broken frames: records that run past the body, bytes after them, not ours. */
	a = append(body, 7, 7, 5, e7, 1);
	a.body_len += 3;
	CHECK_EQ(obj_repl_follow(st, &a, body, &ans), -EPROTO);
	a = append(body, 7, 7, 5, e7, 1);
	a.count = 2;
	a.lsn = 7;
	CHECK_EQ(obj_repl_follow(st, &a, body, &ans), -EPROTO);
	struct obj_repl_hdr k = { .type = OBJ_REPL_ACK, .slot = 9, .epoch = 7 };
	CHECK_EQ(obj_repl_follow(st, &k, NULL, &ans), -EPROTO);
	CHECK(store_repl_state(st, 9, &s) == 0 && s.end == 5);
	store_close(st);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", d);
	CHECK_EQ(system(cmd), 0);
}

int main(void)
{
	RUN(test_follower);
	return CHECK_DONE();
}
