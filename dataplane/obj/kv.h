/* An object's key-value storage (kv.c, kv_list.c): the calls of duro.h, plus what the rest
 * of the runtime needs around an event: begin, roll back, or write the event's writes into
 * the core's open batch. kv knows the commit layer and nothing above it. */
#ifndef DURO_OBJ_KV_H
#define DURO_OBJ_KV_H

#include "object-t.h"

struct store_batch;

/* Reads and writes that may touch duro's reserved keys (alarms, imports). kv_read returns
 * 1 found (value valid until the event ends), 0 absent, or a negative errno; kv_write 0
 * or a negative errno (-ENOSPC over the object's size limit, -ENOMEM, -EIO). */
int kv_read(struct object *obj, const void *k, size_t klen, struct duro_str *value);
int kv_write(struct object *obj, const void *k, size_t klen, const void *v, size_t vlen, int present);
/* list(); reserved keys are passed to fn only when `reserved` is set. */
int kv_list(struct object *obj, const struct duro_list_options *opt, duro_list_fn *fn, void *arg,
	    int reserved);

/* delete_all and savepoints of the key-value pairs (txn.c adds SQL's): duro.h's contracts. */
int kv_delete_all(struct object *obj);
int kv_txn_begin(struct object *obj);
int kv_txn_commit(struct object *obj);
int kv_txn_rollback(struct object *obj);
/* Savepoints open in the running event. */
unsigned kv_txn_depth(const struct object *obj);

/* Events: begin marks where a rollback returns to. */
void kv_event_begin(struct object *obj);
/* Undoes every write of the running event. */
void kv_event_rollback(struct core *c, struct object *obj);
/* 1 when the running event wrote (or deleted everything). */
int kv_event_wrote(const struct object *obj);
/* 1 when the running event deleted every key (delete_all). */
int kv_event_wiped(const struct object *obj);
/* Calls fn for each write of the running event, in the order made (a key written twice
 * comes twice; the last one holds). */
void kv_event_each_write(const struct object *obj,
			 void (*fn)(void *arg, const char *k, size_t klen, const char *v, size_t vlen,
				    int present),
			 void *arg);
/* Writes the running event's writes into batch b, numbered seq, and ends the event's
 * transaction: the entries stay cached as unapplied writes of seq. */
void kv_event_commit(struct core *c, struct object *obj, struct store_batch *b, uint64_t seq);

/* 1 while the object has writes RocksDB does not hold yet (or an event's, uncommitted). */
int kv_dirty(struct core *c, const struct object *obj);
/* Frees the object's cache (it is being unloaded). */
void kv_free_all(struct core *c, struct object *obj);
/* Drops clean cached entries of objects, oldest first, until under the core's budget. */
void kv_trim_cache(struct core *c);

#endif
