/* Replication's owner side on a core (cluster_ship.c; issue 19): after a commit batch is
 * durable and applied, its writes of the slots this box owns, one record per slot. */
#ifndef DURO_OBJ_CLUSTER_SHIP_H
#define DURO_OBJ_CLUSTER_SHIP_H

#include <stddef.h>
#include <stdint.h>

struct core;
struct store_batch;

/* One slot's writes of one commit batch, in cluster_capture.h's record format: one record
 * of the slot's replica log (cluster_repl_wire.h's opaque bytes). */
struct obj_ship_item {
	struct obj_ship_item *next;
	unsigned slot;
	int64_t epoch; /* the slot's epoch in the core's table when the batch was applied */
	size_t len;
	char data[];
};

/* Bytes the box's queue holds at most: past it items are dropped (counted), and the
 * followers' copies miss them (the replication of this stage is not yet a gate). */
#define OBJ_SHIP_QUEUE_MAX (64u << 20)

/* From the commit path after b was applied (cluster.replication on): queues b's writes of
 * the slots the core's table says this box owns, one item per slot, for the replicator
 * thread (control/cluster_repl.c). */
void obj_cluster_ship_batch(struct core *c, struct store_batch *b);

/* The replicator: takes every queued item (oldest first; the caller frees each with
 * free()), waiting up to wait_ms for one. NULL when none came. */
struct obj_ship_item *obj_cluster_ship_take(unsigned wait_ms);

/* Items dropped because the queue was full or memory short. */
uint64_t obj_cluster_ship_dropped(void);

#endif
