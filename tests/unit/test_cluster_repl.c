/* Replication's wire and rules (dataplane/obj/cluster_repl_wire.h): frames written and read
 * back, refused when malformed, and the cases tests/model/README.md says the rules must get
 * right (prefix matching, stale epochs, the barrier, the up-to-date rule). */
#include "check.h"
#include "cluster_repl_wire.h"

#include <string.h>

/* A follower's log as the verdict sees it: the epochs of its records, lsn 1 first. */
struct flog {
	int64_t epoch[16];
	uint64_t n;
};
static int64_t flog_epoch_at(void *arg, uint64_t lsn)
{
	struct flog *f = arg;
	CHECK(lsn >= 1 && lsn <= f->n);
	return f->epoch[lsn - 1];
}

static void test_frames_round_trip(void)
{
	unsigned char buf[512];
	struct obj_repl_hdr h = { .type = OBJ_REPL_APPEND, .slot = 4095, .count = 2,
				  .epoch = 90, .prev_epoch = 71, .prev_lsn = 43, .lsn = 45,
				  .commit = 40 };
	size_t at = 0;
	at += obj_repl_put_rec(buf + OBJ_REPL_HDR + at, sizeof(buf) - OBJ_REPL_HDR - at, 71, "ab", 2);
	at += obj_repl_put_rec(buf + OBJ_REPL_HDR + at, sizeof(buf) - OBJ_REPL_HDR - at, 90, "", 0);
	CHECK_EQ(at, 2 * OBJ_REPL_REC_HDR + 2);
	h.body_len = (uint32_t)at;
	obj_repl_put_hdr(buf, &h);
	struct obj_repl_hdr g;
	CHECK_EQ(obj_repl_parse_hdr(buf, OBJ_REPL_HDR - 1, 4096, 1 << 20, &g), 0);
	CHECK_EQ(obj_repl_parse_hdr(buf, OBJ_REPL_HDR + at, 4096, 1 << 20, &g),
		 (long)(OBJ_REPL_HDR + at));
	CHECK(g.type == 'A' && g.slot == 4095 && g.count == 2 && g.epoch == 90 &&
	      g.prev_epoch == 71 && g.prev_lsn == 43 && g.lsn == 45 && g.commit == 40);
	struct obj_repl_rec r;
	long off = obj_repl_next_rec(buf + OBJ_REPL_HDR, g.body_len, 0, g.epoch, &r);
	CHECK(off > 0 && r.epoch == 71 && r.len == 2 && !memcmp(r.data, "ab", 2));
	off = obj_repl_next_rec(buf + OBJ_REPL_HDR, g.body_len, (size_t)off, g.epoch, &r);
	CHECK(off == (long)g.body_len && r.epoch == 90 && r.len == 0);
	CHECK_EQ(obj_repl_next_rec(buf + OBJ_REPL_HDR, g.body_len, (size_t)off, g.epoch, &r), -1);
	/* A record from the future of its own append is not one. */
	CHECK_EQ(obj_repl_next_rec(buf + OBJ_REPL_HDR, g.body_len, 0, 70, &r), -1);
	/* Too small a body for its records, a slot out of range, a body too long. */
	CHECK_EQ(obj_repl_parse_hdr(buf, sizeof(buf), 4095, 1 << 20, &g), -1);
	CHECK_EQ(obj_repl_parse_hdr(buf, sizeof(buf), 4096, 10, &g), -1);
	h.body_len = 2 * OBJ_REPL_REC_HDR - 1;
	obj_repl_put_hdr(buf, &h);
	CHECK_EQ(obj_repl_parse_hdr(buf, sizeof(buf), 4096, 1 << 20, &g), -1);
	/* lsn must be prev_lsn + count; the previous record not newer than the append. */
	h.body_len = (uint32_t)at;
	h.lsn = 46;
	obj_repl_put_hdr(buf, &h);
	CHECK_EQ(obj_repl_parse_hdr(buf, sizeof(buf), 4096, 1 << 20, &g), -1);
	h.lsn = 45;
	h.prev_epoch = 91;
	obj_repl_put_hdr(buf, &h);
	CHECK_EQ(obj_repl_parse_hdr(buf, sizeof(buf), 4096, 1 << 20, &g), -1);
	/* An answer: no body, no append fields. */
	struct obj_repl_hdr k = { .type = OBJ_REPL_ACK, .status = OBJ_REPL_MISMATCH, .slot = 7,
				  .epoch = 90, .lsn = 12 };
	obj_repl_put_hdr(buf, &k);
	CHECK_EQ(obj_repl_parse_hdr(buf, OBJ_REPL_HDR, 4096, 0, &g), OBJ_REPL_HDR);
	CHECK(g.status == OBJ_REPL_MISMATCH && g.lsn == 12);
	k.commit = 1;
	obj_repl_put_hdr(buf, &k);
	CHECK_EQ(obj_repl_parse_hdr(buf, OBJ_REPL_HDR, 4096, 0, &g), -1);
	struct obj_repl_hdr t = { .type = OBJ_REPL_SEALED, .slot = 7, .epoch = 95, .lsn = 44,
				  .last_epoch = 71 };
	obj_repl_put_hdr(buf, &t);
	CHECK_EQ(obj_repl_parse_hdr(buf, OBJ_REPL_HDR, 4096, 0, &g), OBJ_REPL_HDR);
	CHECK(g.type == 'T' && g.last_epoch == 71 && g.lsn == 44);
	buf[0] = 'Z';
	CHECK_EQ(obj_repl_parse_hdr(buf, OBJ_REPL_HDR, 4096, 0, &g), -1);
	obj_repl_put_hdr(buf, &t);
	buf[12] = 1; /* the pad */
	CHECK_EQ(obj_repl_parse_hdr(buf, OBJ_REPL_HDR, 4096, 0, &g), -1);
}

static struct obj_repl_hdr append(int64_t epoch, int64_t prev_epoch, uint64_t prev_lsn,
				  uint32_t count)
{
	return (struct obj_repl_hdr){ .type = OBJ_REPL_APPEND, .epoch = epoch,
				      .prev_epoch = prev_epoch, .prev_lsn = prev_lsn,
				      .lsn = prev_lsn + count, .count = count };
}

static void test_follower_verdicts(void)
{
	struct flog f = { .epoch = { 3, 3, 5, 5 }, .n = 4 };
	struct obj_repl_log lg = { .max_epoch = 5, .end = 4, .epoch_at = flog_epoch_at, .arg = &f };
	/* An older epoch is refused, with the follower's max_epoch (the owner steps down). */
	struct obj_repl_hdr h = append(4, 5, 4, 1);
	int64_t e4[] = { 4 };
	struct obj_repl_verdict v = obj_repl_judge(&lg, &h, e4);
	CHECK(v.status == OBJ_REPL_STALE && v.reply == 5);
	/* Appending at the end. */
	h = append(5, 5, 4, 2);
	int64_t e55[] = { 5, 5 };
	v = obj_repl_judge(&lg, &h, e55);
	CHECK(v.status == OBJ_REPL_OK && v.skip == 0 && v.cut == 4);
	/* A gap: retry from the follower's end. */
	h = append(5, 5, 6, 1);
	v = obj_repl_judge(&lg, &h, e4 /* unused */);
	CHECK(v.status == OBJ_REPL_MISMATCH && v.reply == 4);
	/* The previous record differs (epoch 3 at lsn 3 on the owner, 5 here): back up. */
	h = append(7, 3, 3, 1);
	int64_t e7[] = { 7 };
	v = obj_repl_judge(&lg, &h, e7);
	CHECK(v.status == OBJ_REPL_MISMATCH && v.reply == 2);
	/* A newer epoch's records overwrite a divergent suffix: keep lsn 1-2, cut 3-4. */
	h = append(7, 3, 2, 2);
	int64_t e37[] = { 3, 7 };
	v = obj_repl_judge(&lg, &h, e37);
	CHECK(v.status == OBJ_REPL_OK && v.skip == 0 && v.cut == 2);
	/* Part of it is there already (a resend): skip what matches, cut after. */
	h = append(7, 3, 2, 3);
	int64_t e557[] = { 5, 5, 7 };
	v = obj_repl_judge(&lg, &h, e557);
	CHECK(v.status == OBJ_REPL_OK && v.skip == 2 && v.cut == 4);
	/* A late duplicate of records it has must not cut what follows them. */
	h = append(5, 3, 1, 2);
	int64_t e35[] = { 3, 5 };
	v = obj_repl_judge(&lg, &h, e35);
	CHECK(v.status == OBJ_REPL_OK && v.skip == 2 && v.cut == 4);
	/* From the start of the log. */
	h = append(5, 0, 0, 1);
	int64_t e3[] = { 3 };
	v = obj_repl_judge(&lg, &h, e3);
	CHECK(v.status == OBJ_REPL_OK && v.skip == 1 && v.cut == 4);
}

static void test_commit_point(void)
{
	/* Three voters, quorum two: the second greatest durable lsn. */
	CHECK_EQ(obj_repl_quorum(3), 2);
	CHECK_EQ(obj_repl_quorum(1), 1);
	CHECK_EQ(obj_repl_quorum(5), 3);
	uint64_t d[] = { 10, 7, 3 };
	CHECK_EQ(obj_repl_commit(d, 3, 2, 0, 0), 7);
	/* The owner's own copy alone is not a quorum of three (gate_own_copy). */
	uint64_t own[] = { 10, 0, 0 };
	CHECK_EQ(obj_repl_commit(own, 3, 2, 0, 0), 0);
	/* Figure 8 (commit_old_records): the recovered log is on two copies up to 43, but the
	 * barrier of the new epoch is lsn 44: nothing counts until the barrier does. */
	uint64_t rec[] = { 44, 43, 0 };
	CHECK_EQ(obj_repl_commit(rec, 3, 2, 44, 0), 0);
	uint64_t bar[] = { 44, 44, 0 };
	CHECK_EQ(obj_repl_commit(bar, 3, 2, 44, 0), 44);
	/* Never back (a follower's answer that arrives late). */
	CHECK_EQ(obj_repl_commit(d, 3, 2, 0, 9), 9);
	uint64_t ties[] = { 5, 5, 5 };
	CHECK_EQ(obj_repl_commit(ties, 3, 3, 0, 0), 5);
	CHECK_EQ(obj_repl_commit(ties, 3, 4, 0, 1), 1);
}

static void test_up_to_date_rule(void)
{
	/* longest_by_lsn: b2's stale (52, 40) beats b0's (36, 43) by epoch, as Raft's rule
	 * wants; an old owner's dead branch (epoch 36, lsn 90) loses to the new epoch's log. */
	CHECK(obj_repl_longer(52, 40, 36, 43));
	CHECK(!obj_repl_longer(36, 90, 71, 44));
	CHECK(obj_repl_longer(71, 45, 71, 44));
	CHECK(!obj_repl_longer(71, 44, 71, 44));
}

int main(void)
{
	RUN(test_frames_round_trip);
	RUN(test_follower_verdicts);
	RUN(test_commit_point);
	RUN(test_up_to_date_rule);
	return CHECK_DONE();
}
