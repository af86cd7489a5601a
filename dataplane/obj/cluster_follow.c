/* A follower's side of replication (cluster_follow.h): obj_repl_judge over the replica log
 * as it is on disk, then store_repl's one synced write, then the answer. Everything it
 * acknowledges is durable before the answer is built; a failed write acknowledges nothing
 * (fsyncgate: point 10 of tests/model/README.md). */
#include "cluster_follow.h"
#include "base_assert.h"
#include "store_repl.h"

#include <errno.h>
#include <stdlib.h>

/* The epoch at lsn for obj_repl_judge: from the state for the trimmed prefix's end. */
struct judge_ctx {
	struct store *st;
	unsigned slot;
	const struct store_repl_state *s;
	int failed;
};

static int64_t epoch_at(void *arg, uint64_t lsn)
{
	struct judge_ctx *j = arg;
	if (lsn <= j->s->trimmed) {
		/* Trimmed records were committed, so they match any owner's: only the last
		 * one's epoch is kept, and an earlier one is never asked for by a correct
		 * owner (it resends from the commit point at least). */
		return lsn == j->s->trimmed ? j->s->trimmed_epoch : -1;
	}
	int64_t e = store_repl_epoch_at(j->st, j->slot, lsn);
	if (e < 0)
		j->failed = 1;
	return e;
}

static void answer(struct obj_repl_hdr *ans, uint8_t type, uint8_t status, uint16_t slot,
		   int64_t epoch, uint64_t lsn, int64_t last_epoch)
{
	*ans = (struct obj_repl_hdr){ .type = type, .status = status, .slot = slot,
				      .epoch = epoch, .lsn = lsn, .last_epoch = last_epoch };
}

int obj_repl_follow(struct store *st, const struct obj_repl_hdr *h, const void *body,
		    struct obj_repl_hdr *ans)
{
	struct store_repl_state s;
	int r = store_repl_state(st, h->slot, &s);
	if (r < 0)
		return r;
	if (h->type == OBJ_REPL_SEAL) {
		if (h->epoch < s.max_epoch) {
			answer(ans, OBJ_REPL_SEALED, OBJ_REPL_STALE, h->slot, s.max_epoch, s.end,
			       s.end_epoch);
			return 0;
		}
		r = store_repl_seal(st, h->slot, h->epoch);
		if (r < 0)
			return r;
		answer(ans, OBJ_REPL_SEALED, OBJ_REPL_OK, h->slot, h->epoch, s.end, s.end_epoch);
		return 0;
	}
	if (h->type != OBJ_REPL_APPEND)
		return -EPROTO;
	if (h->count > OBJ_REPL_MAX_RECS)
		return -E2BIG;
	/* The records: views into body, their epochs apart for the verdict. */
	struct store_repl_rec *recs = h->count ? calloc(h->count, sizeof(*recs)) : NULL;
	int64_t *epochs = h->count ? calloc(h->count, sizeof(*epochs)) : NULL;
	if (h->count && (!recs || !epochs)) {
		free(recs);
		free(epochs);
		return -ENOMEM;
	}
	size_t at = 0;
	for (uint32_t i = 0; i < h->count; i++) {
		struct obj_repl_rec rec;
		long next = obj_repl_next_rec(body, h->body_len, at, h->epoch, &rec);
		if (next < 0) {
			r = -EPROTO;
			goto out;
		}
		recs[i] = (struct store_repl_rec){ .epoch = rec.epoch, .data = rec.data,
						   .len = rec.len };
		epochs[i] = rec.epoch;
		at = (size_t)next;
	}
	if (at != h->body_len) {
		r = -EPROTO; /* bytes after the records: not a frame of ours */
		goto out;
	}
	if (h->epoch >= s.max_epoch && h->prev_lsn < s.trimmed) {
		/* Resent from before what this box applied and dropped (committed, so the same
		 * on every copy): the owner goes on from the end of that prefix. */
		answer(ans, OBJ_REPL_ACK, OBJ_REPL_MISMATCH, h->slot, h->epoch, s.trimmed, 0);
		r = 0;
		goto out;
	}
	struct judge_ctx j = { .st = st, .slot = h->slot, .s = &s };
	struct obj_repl_log lg = { .max_epoch = s.max_epoch, .end = s.end, .epoch_at = epoch_at,
				   .arg = &j };
	struct obj_repl_verdict v = obj_repl_judge(&lg, h, epochs);
	if (j.failed) {
		r = -EIO;
		goto out;
	}
	if (v.status == OBJ_REPL_STALE) {
		answer(ans, OBJ_REPL_ACK, OBJ_REPL_STALE, h->slot, s.max_epoch, 0, 0);
		r = 0;
		goto out;
	}
	if (v.status == OBJ_REPL_MISMATCH) {
		answer(ans, OBJ_REPL_ACK, OBJ_REPL_MISMATCH, h->slot, s.max_epoch > h->epoch ? s.max_epoch : h->epoch,
		       v.reply, 0);
		r = 0;
		goto out;
	}
	/* A prefix below what was trimmed cannot be cut: the owner resends from further on. */
	uint64_t cut = v.cut;
	uint32_t skip = v.skip;
	if (cut < s.trimmed) {
		answer(ans, OBJ_REPL_ACK, OBJ_REPL_MISMATCH, h->slot, h->epoch, s.trimmed, 0);
		r = 0;
		goto out;
	}
	DURO_ASSERT(skip <= h->count && cut == (skip < h->count ? h->prev_lsn + skip : s.end));
	r = store_repl_append(st, h->slot, h->epoch, cut, recs + skip, h->count - skip);
	if (r < 0)
		goto out;
	/* Durable up to the append's last record (records past it, from a longer log of the
	 * same owner, are not acknowledged by this answer). */
	answer(ans, OBJ_REPL_ACK, OBJ_REPL_OK, h->slot, h->epoch, h->lsn, 0);
out:
	free(recs);
	free(epochs);
	return r;
}
