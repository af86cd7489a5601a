/* A follower's side of replication (cluster_follow.c; issue 19): one frame an owner sent
 * (an append or a seal, cluster_repl_wire.h) taken against this box's replica log of the
 * slot (storage/store_repl.h) and the answer to send back. No transport: whoever reads
 * the peer's bytes calls this, on a thread that may block on a sync. */
#ifndef DURO_OBJ_CLUSTER_FOLLOW_H
#define DURO_OBJ_CLUSTER_FOLLOW_H

#include "cluster_repl_wire.h"
#include "store.h"

#include <stddef.h>

/* Records of one append this module reads at most (a batch is split above it). */
#define OBJ_REPL_MAX_RECS 1024

/* Takes frame h (parsed by obj_repl_parse_hdr; body[0..h->body_len) its body) for this
 * box's log of h->slot and fills ans with the answer: for an append, ACK OK with the lsn
 * now durable (after one synced write), STALE with this box's max_epoch (the sender is an
 * old owner: it steps down), or MISMATCH with the lsn to resend from; for a seal, SEALED
 * with this box's synced log end and its epoch once the seal's epoch is durable (points
 * 4 and 13 of tests/model/README.md), or STALE. Returns 0 with ans filled, -EPROTO for a
 * frame that is not an append or a seal or whose records do not parse (the peer is
 * broken: close its connection), -E2BIG for more than OBJ_REPL_MAX_RECS records, or
 * -EIO (nothing acknowledged: the sender retries, this box's log is as before or cut). */
int obj_repl_follow(struct store *st, const struct obj_repl_hdr *h, const void *body,
		    struct obj_repl_hdr *ans);

#endif
