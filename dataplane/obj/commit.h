/* Per-core group commit and the output gate (commit.c): what the rest of the runtime asks
 * of it. It knows batches, sequence numbers and held messages, never objects: outcomes go
 * back through notes and the events given at init. */
#ifndef DURO_OBJ_COMMIT_H
#define DURO_OBJ_COMMIT_H

#include "obj-t.h"

#include <stdint.h>

struct core;
struct core_msg;
struct http_exchange;
struct store_batch;

/* Status a note hears when the core stops before its batch's outcome is known: free it,
 * act on nothing. */
#define COMMIT_NOTE_DISCARD (-ESHUTDOWN)

/* Something that waits for a batch's outcome. fn runs in the commit hook of the turn the
 * outcome is known: 0 once the batch is durable, the negative errno that failed it, or
 * COMMIT_NOTE_DISCARD. fn owns n from then on. */
struct commit_note {
	struct commit_note *next;
	void (*fn)(struct core *c, struct commit_note *n, int status);
	int status; /* commit.c's: the outcome until fn hears it */
};

struct commit_events {
	/* A commit failed: every object whose writes are in batch `from` or later lost them
	 * and must be reset from storage. Runs after the failed batches' waiters were
	 * answered. */
	void (*on_failed)(struct core *c, uint64_t from);
	/* A held message of another layer (an object's call) is released: its batch is
	 * durable (err 0: send it) or failed (a negative errno: it must never be sent). */
	void (*release_msg)(struct core *c, struct core_msg *m, int err);
};

/* Opens this core's commit log and registers the commit hook. Returns 0 or a negative
 * errno. `ev` must outlive the core. */
int commit_core_init(struct core *c, const struct commit_events *ev);
void commit_core_fini(struct core *c);

/* The open batch (created on demand) that one transaction joins, and its sequence number;
 * NULL when out of memory. */
struct store_batch *commit_open_batch(struct core *c, uint64_t *seq);
/* 0 while the data directory's free space is under storage.min_free_bytes (counted). */
int commit_space_ok(struct core *c);
uint64_t commit_durable_seq(struct core *c);
uint64_t commit_applied_seq(struct core *c);
/* The newest batch whose gate is open: durable, and with cluster.replication durable on
 * a majority of its slots' copies (cluster_ship.h); at most commit_durable_seq. A message
 * for a batch after it goes through commit_gate_msg. */
uint64_t commit_gate_seq(struct core *c);

/* Sends the response now, or holds it until batch `seq` is durable. */
void commit_gate(struct core *c, struct http_exchange *ex, uint64_t seq);
/* Holds any message (an HTTP exchange or a WebSocket batch) until batch `seq` is durable;
 * it is sent then, or answered/freed as failed. seq must be after commit_gate_seq. */
void commit_gate_msg(struct core *c, struct core_msg *m, uint64_t seq);
/* n hears batch seq's outcome; a seq already durable is heard at the next commit hook. */
void commit_note(struct core *c, uint64_t seq, struct commit_note *n);

/* No commit open, in flight, unapplied or with outcomes still to deliver. */
int commit_idle(struct core *c);
const struct obj_commit_counters *commit_counters(struct core *c);

#endif
