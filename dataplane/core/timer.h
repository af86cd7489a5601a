/* Per-core timer wheel with 1 ms ticks: O(1) arm and cancel, idle timeouts, eviction.
 * A timer further away than one lap stays in its slot and is skipped until its lap comes. */
#ifndef DURO_CORE_TIMER_H
#define DURO_CORE_TIMER_H

#include "core-t.h"

struct timer;
typedef void timer_fn(struct core *c, struct timer *t);

/* Embedded in its owner; zero-initialised is a valid unarmed timer. */
struct timer {
	struct list_node node;
	uint64_t expires_ms;
	timer_fn *fn;
};

/* Returns 0 or -ENOMEM. */
int timer_wheel_create(struct core *c, uint64_t now_ms);
void timer_wheel_destroy(struct core *c);

/* Arms (or re-arms) t to call fn at expires_ms on this core. */
void timer_arm(struct core *c, struct timer *t, uint64_t expires_ms, timer_fn *fn);
void timer_cancel(struct timer *t);
static inline int timer_armed(const struct timer *t) { return list_linked(&t->node); }

/* Fires every timer due at or before now_ms; returns how many fired. */
unsigned timer_run(struct core *c, uint64_t now_ms);
/* Timers armed on this core. */
uint64_t timer_count(const struct core *c);

#endif
