/* The per-core reactor: a run-to-completion poll loop over io_uring completions, inbound
 * rings and timers, plus the cross-core message rings between every pair of cores. */
#ifndef DURO_CORE_CORE_H
#define DURO_CORE_CORE_H

#include "base_assert.h"
#include "core-t.h"

/* Creates the cores (struct core for each, rte_rings between every pair) after
 * rte_eal_init. Returns 0 or a negative errno. The group owns the cores. */
int core_group_init(struct core_group *g, unsigned ncores, unsigned ring_size);
void core_group_destroy(struct core_group *g);

/* Runs every core's loop, one per lcore (the calling main lcore runs core 0), and returns
 * when all have left their loops: 0, or a negative errno when a core failed to start. */
int core_group_run(struct core_group *g);

/* Next free SQE, submitting what is queued when the SQ is full; never NULL. */
struct io_uring_sqe *core_sqe(struct core *c);
/* Makes room for n SQEs in a row, so a linked chain is never split across submissions. */
void core_sqe_reserve(struct core *c, unsigned n);

static inline uint64_t core_tag(void *ptr, enum core_cqe_kind kind)
{
	DURO_ASSERT(((uintptr_t)ptr & 7) == 0);
	return (uint64_t)(uintptr_t)ptr | (uint64_t)kind;
}

void core_set_cqe_handler(struct core *c, enum core_cqe_kind kind, core_cqe_fn *fn);
void core_set_msg_handler(struct core *c, enum core_msg_type type, core_msg_fn *fn);
/* Registers a hook run at the end of every loop turn, in registration order. */
void core_add_hook(struct core *c, core_hook_fn *fn);

/* Registers a poller run every turn after the inbound rings. */
void core_add_poller(struct core *c, core_poll_fn *fn);

/* Queues m for core `dst` (may be this core: then it runs next turn). The message stays
 * owned by whoever allocated it; the receiver must not free it. Never fails: a full ring
 * keeps messages in order in an overflow queue until it drains. */
void core_send(struct core *c, unsigned dst, struct core_msg *m);

/* From any thread that is not a core (the control plane's): queues m for core `dst`, run
 * in its next turn like a message from another core, in the order posted. A sleeping
 * core is not woken: it sees the post within its longest sleep (5 ms, or max_sleep_us).
 * Returns 0, or -ENOBUFS when the core's post ring is full (the post is still the
 * caller's). */
int core_post(struct core_group *g, unsigned dst, struct core_msg *m);
/* core_post, then wakes core `dst` if it sleeps, through `own`: the posting thread's own
 * io_uring (a message on the core's ring ends its wait, as between cores). For a thread
 * whose answers the core waits for, where core_post's sleep of up to 5 ms would show.
 * Returns 0 or -ENOBUFS, as core_post. */
int core_post_wake(struct core_group *g, unsigned dst, struct core_msg *m, struct io_uring *own);

/* Messages from core `from` waiting in this core's inbox (0 for itself): a snapshot, for
 * any thread. */
unsigned core_inbox_count(const struct core *c, unsigned from);

/* Marks that this turn did work, so the loop does not go to sleep. */
static inline void core_did_work(struct core *c) { c->work++; }

#endif
