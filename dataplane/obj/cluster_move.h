/* Cluster mode's slot moves on a core (cluster_move.c): what the control plane's move
 * asks of each core of the box giving a slot away and of the box taking it. The gate
 * (cluster_gate.h) already keeps a moving slot's new events out; these finish the rest. */
#ifndef DURO_OBJ_CLUSTER_MOVE_H
#define DURO_OBJ_CLUSTER_MOVE_H

#include <stddef.h>

struct core;

/* A freeze waits this long for objects holding responses (a lock's waiters, a long poll)
 * to answer them; then they are unloaded, their held responses answered 503 (the client
 * asks again and reaches the new owner). A slot still busy after the second bound (an
 * event or call that does not end) stays where it is: the giver serves it again and the
 * rebalancer rolls the move back. */
#define OBJ_CLUSTER_FREEZE_CUT_MS 1000
#define OBJ_CLUSTER_FREEZE_GIVE_UP_MS 4000

/* Unloads every object of slot on this core that is idle with its writes applied to
 * RocksDB (as an evict would); with cut, also those whose only activity is held responses
 * (answered 503). Returns how many of the slot's objects are still in memory (an event
 * running, writes not applied yet, held responses or calls). 0: this core holds nothing
 * of the slot that the store does not. */
unsigned obj_cluster_quiesce(struct core *c, unsigned slot, int cut);

/* The slot's data left this box: its alarms leave this core's schedule. Returns how many. */
size_t obj_cluster_slot_gone(struct core *c, unsigned slot);
/* The slot's data arrived on this box: this core schedules the slot's stored alarms that
 * are its own. Returns how many. */
size_t obj_cluster_slot_arrived(struct core *c, unsigned slot);

#endif
