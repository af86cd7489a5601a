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
	int64_t epoch;  /* the slot's epoch in the core's table when the batch was durable */
	unsigned core;  /* the batch's core and number */
	uint64_t seq;
	uint8_t last;   /* the batch's last item: its outcome can be told after this one */
	uint8_t ok;     /* the replicator's: durable on a majority of the slot's copies */
	size_t len;
	char data[];
};

/* Bytes the box's queue holds at most: past it a batch is not queued (its answers leave
 * as of unknown outcome). */
#define OBJ_SHIP_QUEUE_MAX (64u << 20)

/* From the commit path once batch seq (b) is durable (cluster.replication on): queues b's
 * writes of the slots the core's table says this box owns, one item per slot, all at once,
 * for the replicator thread (control/cluster_repl.c). Returns the items queued (the
 * batch's answers wait for obj_cluster_ship_poll to tell its outcome), 0 when it wrote
 * nothing of an owned slot, or -ENOBUFS when it could not be queued (queue full, memory
 * short, a batch it cannot read; counted). */
int obj_cluster_ship_batch(struct core *c, struct store_batch *b, uint64_t seq);

/* The replicator: takes every queued item (oldest first, whole batches; the caller frees
 * each with free()), waiting up to wait_ms for one. NULL when none came. */
struct obj_ship_item *obj_cluster_ship_take(unsigned wait_ms);

/* The replicator: batch seq of core core is through; ok when each of its slots' records
 * is durable on a majority of the slot's copies. In order per core. */
void obj_cluster_ship_done(unsigned core, uint64_t seq, int ok);

/* On core c: the outcomes told since the last poll, oldest first, at most max of them
 * into seq[] and ok[]; returns how many. */
unsigned obj_cluster_ship_poll(struct core *c, uint64_t *seq, uint8_t *ok, unsigned max);

/* Batches that could not be queued (queue full, memory short). */
uint64_t obj_cluster_ship_dropped(void);

#endif
