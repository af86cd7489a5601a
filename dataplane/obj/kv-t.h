/* Types of an object's key-value storage (kv.c), embedded in struct object. */
#ifndef DURO_OBJ_KV_T_H
#define DURO_OBJ_KV_T_H

#include "keys.h"

#include <stddef.h>
#include <stdint.h>

#define KV_TXN_SEQ UINT64_MAX /* written by the event still running */
/* Absent only because a delete_all of the running event hides storage: gone if that
 * delete_all is undone, the batch's once it commits. */
#define KV_WIPED_SEQ (UINT64_MAX - 1)
#define KV_MAX_SAVEPOINTS 16

/* One cached key of an object: a clean copy of what RocksDB holds (seq 0 or already
 * applied), or a write not yet applied (seq of its batch, or KV_TXN_SEQ). */
struct kv_entry {
	struct kv_entry *hnext;
	struct kv_entry *undo; /* during an event: the entry this one replaced */
	uint64_t seq;
	uint32_t klen, vlen;
	uint8_t present; /* 0: deleted or known absent */
	char data[];     /* key, then value */
};

struct obj_kv {
	struct kv_entry **buckets;
	uint32_t nbuckets, count;
	struct kv_entry **txn; /* entries written by the running event, in order */
	uint32_t ntxn, txn_cap;
	uint32_t savepoint[KV_MAX_SAVEPOINTS];
	struct keys_stats savepoint_stats[KV_MAX_SAVEPOINTS];
	uint8_t savepoint_wiped[KV_MAX_SAVEPOINTS];
	unsigned nsavepoints;
	struct keys_stats stats, stats_at_event; /* stored size and key count */
	int stats_loaded;
	uint64_t wiped_seq; /* delete_all not yet applied: RocksDB's keys do not count */
	uint8_t wiped_in_txn, wiped_at_event;
	uint64_t pending_seq; /* newest batch holding this object's writes */
};

#endif
