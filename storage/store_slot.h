/* A slot's data as a whole (store_slot.c): its key ranges in every family (keys.h draws
 * them), read from a snapshot as a stream of (family, key, value), dropped with
 * DeleteRange, and imported durably. What a cluster moves between boxes; storage knows
 * nothing of the network or of who owns a slot. */
#ifndef DURO_STORAGE_STORE_SLOT_H
#define DURO_STORAGE_STORE_SLOT_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>

/* One key range [lo, hi) of a slot in one family. */
#define STORE_SLOT_KEY_MAX 40
struct store_slot_range {
	int cf;
	uint8_t lo[3], hi[STORE_SLOT_KEY_MAX];
	uint8_t lolen, hilen;
};

/* The ranges of slot (below 4096) in family cf: one in families keyed by ID (class
 * families, sql, history), one per tag in meta ('s', 'n') and alarms ('o', 'w'). Fills
 * out[0..2) and returns how many. */
unsigned store_slot_ranges(int cf, unsigned slot, struct store_slot_range out[2]);

/* 1 when key lies in one of slot's ranges of family cf. */
int store_slot_contains(int cf, unsigned slot, const void *key, size_t klen);

/* The slot whose ranges hold key in family cf, or -1 for a key of no slot. */
int store_slot_of(int cf, const void *key, size_t klen);

/* The writes of a batch, in order, for a move's live tail: a put (val non-NULL), a delete
 * (val NULL, vlen 0) or a range deletion [key, end) (STORE_OP_RANGE, end in val). */
enum store_op { STORE_OP_PUT = 'R', STORE_OP_DELETE = 'D', STORE_OP_RANGE = 'X' };
typedef void store_op_fn(void *arg, enum store_op op, int cf, const char *key, size_t klen,
			 const char *val, size_t vlen);
/* Calls fn for every write of b (families by this store's index). Returns the writes seen,
 * or -EPROTO for a batch it cannot read (a merge, an unknown family). */
long store_batch_each(struct store *st, struct store_batch *b, store_op_fn *fn, void *arg);

/* Called for each record of an export; a negative return stops it and is returned. */
typedef int store_slot_fn(void *arg, int cf, const char *key, size_t klen, const char *val,
			  size_t vlen);

/* Reads slot's ranges of the families cfs[0..ncf) from snap (NULL: the latest state),
 * family by family in the order given, keys in order, calling fn for each. Returns the
 * records read, fn's negative return, or -EIO. */
long store_slot_export(struct store *st, const struct store_snapshot *snap, unsigned slot,
		       const int *cfs, unsigned ncf, store_slot_fn *fn, void *arg);

/* Adds the deletion of slot's ranges in every family of the store to b. */
void store_slot_drop_into(struct store *st, struct store_batch *b, unsigned slot);
/* Deletes slot's ranges in every family, durably (RocksDB's own WAL, synced). Returns 0
 * or -EIO. A box that replays older commit logs later may bring some keys back: an
 * import drops the slot first for that reason. */
int store_slot_drop(struct store *st, unsigned slot);

/* Loading a slot from a stream: the slot's old ranges are dropped first (in the first
 * batch written), then records are added and written durably in batches of about
 * STORE_SLOT_IMPORT_BATCH bytes. A record outside the slot's ranges in its family, or in
 * a family the store lacks, is refused (-EINVAL): the stream comes from another box. */
#define STORE_SLOT_IMPORT_BATCH (4u << 20)
struct store_slot_import;
/* NULL when out of memory. fresh: the slot's old ranges are dropped first (a snapshot);
 * else the records add to what is there (a live tail). */
struct store_slot_import *store_slot_import_begin(struct store *st, unsigned slot, int fresh);
/* Adds a put (val non-NULL) or a delete (val NULL). 0, -EINVAL or -EIO. */
int store_slot_import_record(struct store_slot_import *im, int cf, const void *key, size_t klen,
			     const void *val, size_t vlen);
/* Adds a range deletion [lo, hi) that must start in the slot. 0, -EINVAL or -EIO. */
int store_slot_import_range(struct store_slot_import *im, int cf, const void *lo, size_t lolen,
			    const void *hi, size_t hilen);
/* Writes what is left durably: 0 or -EIO. The import stays open for more records. */
int store_slot_import_flush(struct store_slot_import *im);
/* Bytes and records taken so far. */
uint64_t store_slot_import_bytes(const struct store_slot_import *im);
uint64_t store_slot_import_records(const struct store_slot_import *im);
/* Frees it; records not flushed are discarded (an abandoned import is dropped by the
 * caller with store_slot_drop). */
void store_slot_import_end(struct store_slot_import *im);

#endif
