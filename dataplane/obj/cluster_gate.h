/* Cluster mode's gate in front of every object (cluster_gate.c): which of the 4,096 slots
 * this box owns, at which epoch, and whether it may serve at all (its etcd lease is fresh).
 * The control plane's cluster thread sends each core a copy through the mailbox; a core
 * reads only its own copy. A request for an object of a slot this box does not own, or any
 * object while the box is fenced, is answered 503 before a handler runs. Single box (no
 * cluster section): no table, and the gate lets everything through. */
#ifndef DURO_OBJ_CLUSTER_GATE_H
#define DURO_OBJ_CLUSTER_GATE_H

#include "base_limits.h"
#include "obj-t.h"

#include <stdint.h>

struct core;
struct http_exchange;

#define OBJ_CLUSTER_MAX_BOXES 64
#define OBJ_CLUSTER_NO_OWNER 0xff

struct obj_cluster_box {
	char name[64];
	char addr[128];
	int64_t incarnation; /* its member key's create_revision; 0 when not a member */
	uint8_t live;        /* its member key exists */
};

/* What a core knows of the cluster. */
struct obj_cluster_table {
	uint64_t gen;          /* the cluster thread's count of tables sent */
	uint8_t serving;       /* 0: joining or fenced, every object request is refused */
	uint64_t deadline_ms;  /* the lease's: past it (core clock, monotonic ms) not serving */
	int64_t incarnation;   /* this box's, 0 before it joined */
	char why[256];         /* why not serving, for the 503's text */
	uint64_t owned[DURO_SLOTS / 64]; /* bit per slot this box owns */
	uint8_t owner[DURO_SLOTS];       /* index into boxes, or OBJ_CLUSTER_NO_OWNER */
	int64_t epoch[DURO_SLOTS];       /* the slot key's mod_revision, 0 when unassigned */
	unsigned nboxes;
	struct obj_cluster_box boxes[OBJ_CLUSTER_MAX_BOXES];
	uint8_t trace; /* DURO_TRACE_ACTIVATIONS: this core logs activations (kept by install) */
};

/* On core c (a mailbox command): installs t (copied). lease_only: only serving,
 * deadline_ms, incarnation and why change; the slots stay as they were. No-op on a single
 * box. */
void obj_cluster_install(struct core *c, const struct obj_cluster_table *t, int lease_only);

/* On the core that routed ex, before anything of the object runs: 0 when this box serves
 * the object's slot now; 1 when another box owns it and ex is to be forwarded there
 * (cluster_forward.h; ex untouched); else ex is answered and -1 returned. A request that
 * carries the forwarding mark is served only at the slot and epoch it names, else refused
 * with Duro-Refused: it is never forwarded again. Refusals are 503 with Retry-After and
 * Duro-Slot, and Duro-Owner, Duro-Owner-Address and Duro-Epoch when another box owns the
 * slot. 2: a WebSocket upgrade another box owns (or no box yet), to be relayed
 * (cluster_wsrelay.h; ex untouched). Event streams are forwarded (passed through as they
 * come, cluster_forward.h). */
int obj_cluster_admit(struct core *c, struct http_exchange *ex, const struct duro_id *id);

/* 1 when this box may run the object now (a single box always may); 0 when it is fenced
 * or another box owns the object's slot. For the ways into an object other than a
 * request: calls between objects and alarms. */
int obj_cluster_owns(const struct core *c, const struct duro_id *id);

/* 1 when an answer may leave this box now: a single box always may; in cluster mode only
 * while it serves and within its lease. Checked when an answer leaves the output gate,
 * not only when its event began (tests/model/README.md point 14): a box paused past its
 * lease (SIGSTOP, a stall) runs what queued up when it wakes, and must neither answer
 * reads from its old memory nor acknowledge writes for slots the others have taken. */
int obj_cluster_may_answer(const struct core *c);

/* Answers ex 503 instead of what it holds (for an answer obj_cluster_may_answer held
 * back), counted: its writes, if any, were made durable here, but whether the slot's next
 * owner has them is not known, so the client must treat the outcome as unknown. No
 * Duro-Refused: a forwarding box passes it on and never sends the request again. */
void obj_cluster_answer_late(struct core *c, struct http_exchange *ex);

/* With the test knob DURO_TRACE_ACTIVATIONS=1 in cluster mode: one log line per object
 * loaded into memory or unloaded (what: "activate" or "unload"), naming the box, its
 * incarnation, the slot's epoch in this core's table and CLOCK_MONOTONIC in microseconds,
 * which every process on the machine shares. The fault harness (tests/jepsen) checks with
 * them that one object is never active on two boxes at once under the same epoch. */
void obj_cluster_trace(const struct core *c, const struct duro_id *id, const char *what);

/* Set up per core (a table only in cluster mode: obj_config.cluster), and freed. */
int obj_cluster_core_init(struct core *c);
void obj_cluster_core_fini(struct core *c);

#endif
