/* struct core: everything one reactor owns, in one cache-aligned struct passed explicitly.
 * Upper layers hang their per-core state off the typed pointers below; core never looks in. */
#ifndef DURO_CORE_CORE_T_H
#define DURO_CORE_CORE_T_H

#include "buf.h"
#include "base_limits.h"
#include "list.h"

#include <liburing.h>
#include <stdatomic.h>
#include <stdint.h>

struct core;
struct core_msg;
struct timer_wheel;
struct rte_ring;
struct io_uring_cqe;

/* Completion handlers, chosen by the low 3 bits of a CQE's user_data. */
enum core_cqe_kind {
	CQE_CORE = 0, /* the core's own: wake-ups, signals */
	CQE_NET = 1,
	CQE_STORE = 2,
	CQE_CTL = 3, /* control: signals, control socket */
	CQE_KINDS = 8,
};
typedef void core_cqe_fn(struct core *c, void *ptr, struct io_uring_cqe *cqe);

/* Cross-core message types; each names the layer that handles it. */
enum core_msg_type {
	MSG_OBJ_REQUEST = 1,  /* connection core -> object core */
	MSG_HTTP_RESPONSE = 2, /* object core -> connection core */
	MSG_WS_BATCH = 3,      /* sends: object core -> sockets' core */
	MSG_WS_BATCH_DONE = 4, /* the batch back to the core that made it */
	MSG_OBJ_WS_EVENT = 5,  /* a socket's message or close: sockets' core -> object core */
	MSG_OBJ_WS_EVENT_DONE = 6, /* back to the sockets' core */
	MSG_OBJ_WS_SITE = 7,   /* an object's auto-response: object core -> sockets' core */
	MSG_OBJ_VIEW = 8,      /* a new runtime view: publisher (any thread) -> every core */
	MSG_OBJ_CALL = 9,      /* an object's call: caller's core -> callee's core */
	MSG_OBJ_CALL_DONE = 10, /* the call back (answered or refused): -> caller's core */
	MSG_OBJ_RESTORE = 11,  /* a restore's state rebuilt: its thread -> the object's core */
	MSG_SQL_OPENED = 12,   /* a connection opened ahead: its opener thread -> the object's core */
	MSG_TYPES = 16,
};
typedef void core_msg_fn(struct core *c, struct core_msg *m);

/* End-of-iteration hooks: flush sends, commit batches. */
typedef void core_hook_fn(struct core *c);
#define CORE_MAX_HOOKS 8
/* Polled every turn (a NIC's receive queues); returns how much work it found. */
typedef unsigned core_poll_fn(struct core *c);
#define CORE_MAX_POLLERS 2

/* A message travels by pointer; the sender owns its memory and gets it back by reply. */
struct core_msg {
	uint16_t type;
	uint16_t src_core;
	uint32_t pad;
	struct core_msg *next; /* overflow queue link while the ring is full */
};

/* Per-destination staging: messages leave in bursts at the end of a loop turn. */
#define CORE_MSG_BURST 64
struct core_outbox {
	struct core_msg *staged[CORE_MSG_BURST];
	unsigned nstaged;
	struct core_msg *overflow_head, *overflow_tail; /* ring was full */
	uint64_t ring_full; /* times the ring refused part of a burst */
};

struct core_stats {
	uint64_t loops, sleeps, wakes_sent, msgs_in, msgs_out, cqes;
	uint64_t busy_ns; /* time in turns that did work */
};

struct core_group;
struct http_client_core;

struct core {
	unsigned index;          /* 0..ncores-1, also the slot map's core number */
	unsigned lcore;          /* DPDK lcore id */
	struct core_group *group; /* shared, read-mostly */
	struct io_uring ring;
	int ring_ready;
	uint64_t now_ms; /* clock at the top of this loop turn */
	uint64_t now_ns;

	struct rte_ring *inbox[DURO_MAX_CORES]; /* from core i to me; NULL for i == me */
	struct rte_ring *posts; /* from threads that are not cores (many producers) */
	struct core_outbox outbox[DURO_MAX_CORES];
	struct core_msg *local_head, *local_tail; /* messages to myself, run next turn */
	_Atomic int sleeping;

	struct timer_wheel *timers;
	struct buf_pool bufs;

	core_cqe_fn *cqe_handler[CQE_KINDS];
	core_msg_fn *msg_handler[MSG_TYPES];
	core_hook_fn *hooks[CORE_MAX_HOOKS];
	unsigned nhooks;
	core_poll_fn *pollers[CORE_MAX_POLLERS];
	unsigned npollers;
	/* Longest sleep when idle; 0 for the default. A poller that nothing wakes (a NIC
	 * without receive interrupts) shortens it: its latency after idle is this long. */
	unsigned max_sleep_us;

	/* Upper layers' per-core state, opaque here. */
	struct net_core *net;
	struct tls_core *tls;
	struct http_core *http;
	struct ws_core *ws;
	struct obj_core *obj;
	struct http_client_core *hclient; /* duro's own outbound HTTP requests */

	unsigned work; /* events handled this turn; 0 for a few turns means idle */
	/* Operations the kernel runs in io-wq worker threads (buffered file writes and syncs):
	 * while any is pending an idle core sleeps at once instead of polling, so the worker,
	 * which shares this core's CPU, runs without waiting for the spin to end. Direct I/O
	 * needs no worker: an idle core polls on for its completion as for any other. */
	unsigned offloaded;
	unsigned file_ops; /* file operations of either kind in flight: waited for at exit */
	struct core_stats stats;
} __attribute__((aligned(64)));

/* Shared by all cores; written only before launch, except the flags. */
struct core_group {
	unsigned ncores;
	struct core *cores[DURO_MAX_CORES];
	_Atomic int stopping;  /* SIGTERM seen: stop accepting, drain */
	_Atomic int stop_now;  /* drained or out of time: leave the loop */
	unsigned idle_spin_us; /* busy-poll this long before sleeping */
	unsigned ring_size;
	/* Called on each core before its loop and after it ends. */
	int (*core_start)(struct core *c, void *arg);
	void (*core_stop)(struct core *c, void *arg);
	/* Called on each core once every core has started, just before its loop: where
	 * connections begin to come in (a connection taken must be answered, so not before
	 * all can serve). Optional; 0 or a negative errno. */
	int (*core_serve)(struct core *c, void *arg);
	void *arg;
	_Atomic int start_failed;
	_Atomic unsigned started;
	_Atomic unsigned serving; /* cores past core_serve, in or about to enter their loops */
	_Atomic unsigned exited; /* cores out of their loops, outboxes sent */
	_Atomic unsigned read_last; /* cores that took their last messages */
	_Atomic unsigned finished;  /* cores done tearing down (see core_group_run) */
};

#endif
