/* A slot move's live tail on the owner's core (cluster_capture.c): the writes of a moving
 * slot's keys, captured in commit order as the core applies its batches. Apart from the
 * rest of a move (cluster_move.h) because the commit path calls it. */
#ifndef DURO_OBJ_CLUSTER_CAPTURE_H
#define DURO_OBJ_CLUSTER_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

struct core;
struct store_batch;

/* A move's live tail: from capture_start on, every write of the slot's keys that this
 * core applies to RocksDB (in commit order) is kept in a buffer, as records of
 * [op u8 ('R' put, 'D' delete, 'X' range deletion), family u8, key length u32, value
 * length u32 (little-endian), key, value (a range's end)]. Bounded: past
 * OBJ_MOVE_CAPTURE_MAX bytes the capture is void (the taker starts over). */
#define OBJ_MOVE_CAPTURES 8               /* slots one core captures at once */
#define OBJ_MOVE_CAPTURE_MAX (64u << 20)  /* bytes one capture holds */

/* Appends one record in the format above to the growing buffer *buf (*len used, *cap
 * allocated; the caller owns and frees it). 0, or -ENOMEM with the buffer as it was.
 * Replication ships the same records (cluster_ship.h). */
int obj_cluster_capture_put(char **buf, size_t *len, size_t *cap, int op, int cf, const char *key,
			    size_t klen, const char *val, size_t vlen);

/* Starts (or restarts, emptied) capturing slot. 0, -EBUSY (too many at once) or -ENOMEM. */
int obj_cluster_capture_start(struct core *c, unsigned slot);
/* Hands over what was captured since the last take: *buf (the caller frees it, NULL when
 * empty) and *len; returns the records, -ENOENT (no capture of slot) or -EOVERFLOW (it
 * was void: over its bound, or a batch could not be read). The capture goes on. */
long obj_cluster_capture_take(struct core *c, unsigned slot, char **buf, size_t *len);
void obj_cluster_capture_stop(struct core *c, unsigned slot);
/* From the commit path, after b was applied to RocksDB: captures its writes of the slots
 * being captured. */
void obj_cluster_capture_batch(struct core *c, struct store_batch *b);
/* Frees what captures a stopping core holds. */
void obj_cluster_move_fini(struct core *c);

#endif
