/* A follower's replica log of a slot (store_repl.c): the records an owner replicated to
 * this box (issue 19), each with the epoch it was first written at, and the slot's
 * max_epoch, kept in the meta family (keys.h: 'L' and 'M') and written durably, one
 * synced write per received batch: the max_epoch a follower acknowledges a seal with
 * and the records it acknowledges are on disk before the answer (tests/model/README.md
 * points 4 and 13). Storage knows nothing of peers or owners: the caller (the replication
 * code, after obj_repl_judge in dataplane/obj/cluster_repl_wire.h) decides what to cut
 * and append. */
#ifndef DURO_STORAGE_STORE_REPL_H
#define DURO_STORAGE_STORE_REPL_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>

/* A slot's replica log as it is on disk. */
struct store_repl_state {
	int64_t max_epoch; /* the greatest epoch seen in an append or a seal, 0 for none */
	uint64_t end;      /* the last record's lsn, 0 for none ever */
	int64_t end_epoch; /* its epoch */
	uint64_t trimmed;  /* records up to this lsn were applied and dropped */
	int64_t trimmed_epoch; /* the epoch of the record at trimmed (for prefix matching) */
};

/* The state of slot (below 4096): 0 (all zero for a slot never replicated here), or -EIO. */
int store_repl_state(struct store *st, unsigned slot, struct store_repl_state *out);

/* The epoch of slot's record at lsn: > 0, 0 when there is none (beyond the end, or
 * trimmed: the state's trimmed_epoch is the epoch at lsn trimmed), or -EIO. */
int64_t store_repl_epoch_at(struct store *st, unsigned slot, uint64_t lsn);

/* One record to append: the bytes are the caller's until the call returns. */
struct store_repl_rec {
	int64_t epoch;
	const void *data;
	uint32_t len;
};

/* Makes one received batch durable in one synced write: max_epoch raised to epoch (never
 * lowered), the records after lsn cut dropped (a divergent suffix; cut >= the trimmed
 * prefix), and recs[0..n) written at lsn cut+1 on. The state's end becomes cut + n when
 * n > 0 or cut < end (else it stays). Returns 0, -EINVAL (cut below the trimmed prefix or
 * beyond the end, an epoch not positive or above epoch), or -EIO (nothing of it counts;
 * the caller acknowledges nothing and tells the owner its last durable end). */
int store_repl_append(struct store *st, unsigned slot, int64_t epoch, uint64_t cut,
		      const struct store_repl_rec *recs, unsigned n);

/* A seal: max_epoch raised to epoch durably before the answer. 0, -EINVAL (epoch not
 * positive) or -EIO. */
int store_repl_seal(struct store *st, unsigned slot, int64_t epoch);

/* Drops the records up to lsn upto (applied to the data families), durably. 0, -EINVAL
 * (upto beyond the end) or -EIO. */
int store_repl_trim(struct store *st, unsigned slot, uint64_t upto);

/* Calls fn for each record of slot from lsn from on, in order, until it returns nonzero
 * (returned) or the log ends (0). -EIO on a read failure, -EPROTO for a record it cannot
 * read. */
typedef int store_repl_fn(void *arg, uint64_t lsn, int64_t epoch, const void *data, uint32_t len);
int store_repl_read(struct store *st, unsigned slot, uint64_t from, store_repl_fn *fn, void *arg);

/* Forgets slot's records for a snapshot that holds everything up to lsn end (whose last
 * record has epoch end_epoch): a box rebuilt as a learner. max_epoch stays (it is the
 * fence: forgetting it would let an older owner's records in). 0 or -EIO. */
int store_repl_reset(struct store *st, unsigned slot, uint64_t end, int64_t end_epoch);

#endif
