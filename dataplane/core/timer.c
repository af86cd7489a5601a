/* Timer wheel: 4096 slots of 1 ms. Each run walks the slots from the last tick to now and
 * fires what is due; far-off timers ride around the wheel, checked once per lap (4 s). */
#include "timer.h"
#include "base_assert.h"

#include <stdlib.h>

#define WHEEL_SLOTS 4096u

struct timer_wheel {
	uint64_t last_ms; /* every slot up to and including this tick has been run */
	struct list_node slots[WHEEL_SLOTS];
};

int timer_wheel_create(struct core *c, uint64_t now_ms)
{
	struct timer_wheel *w = malloc(sizeof(*w));
	if (!w)
		return -12; /* ENOMEM */
	w->last_ms = now_ms;
	for (unsigned i = 0; i < WHEEL_SLOTS; i++)
		list_init(&w->slots[i]);
	c->timers = w;
	return 0;
}

void timer_wheel_destroy(struct core *c)
{
	free(c->timers);
	c->timers = NULL;
}

void timer_arm(struct core *c, struct timer *t, uint64_t expires_ms, timer_fn *fn)
{
	struct timer_wheel *w = c->timers;
	if (timer_armed(t))
		list_del(&t->node);
	/* Never place a timer in a slot already passed: it would wait a whole lap. */
	if (expires_ms <= w->last_ms)
		expires_ms = w->last_ms + 1;
	t->expires_ms = expires_ms;
	t->fn = fn;
	list_add_tail(&w->slots[expires_ms % WHEEL_SLOTS], &t->node);
}

void timer_cancel(struct timer *t)
{
	if (timer_armed(t))
		list_del(&t->node);
}

unsigned timer_run(struct core *c, uint64_t now_ms)
{
	struct timer_wheel *w = c->timers;
	unsigned fired = 0;
	if (now_ms <= w->last_ms)
		return 0;
	/* After a stall longer than a lap, one pass over every slot covers all of them. */
	if (now_ms - w->last_ms > WHEEL_SLOTS)
		w->last_ms = now_ms - WHEEL_SLOTS;
	while (w->last_ms < now_ms) {
		/* Advance first, so a callback re-arming "now" lands in the next slot. */
		w->last_ms++;
		struct list_node *head = &w->slots[w->last_ms % WHEEL_SLOTS];
		/* Detach due timers first: a callback may re-arm into this very slot. */
		struct list_node due;
		list_init(&due);
		for (struct list_node *n = head->next, *next; n != head; n = next) {
			next = n->next;
			struct timer *t = LIST_CONTAINER(n, struct timer, node);
			if (t->expires_ms <= now_ms) {
				list_del(n);
				list_add_tail(&due, n);
			}
		}
		while (!list_empty(&due)) {
			struct timer *t = LIST_CONTAINER(due.next, struct timer, node);
			list_del(&t->node);
			timer_fn *fn = t->fn;
			DURO_ASSERT(fn);
			fired++;
			fn(c, t);
		}
	}
	return fired;
}

uint64_t timer_count(const struct core *c)
{
	/* A walk, not a counter: cancel has no wheel at hand, and this is for the control
	 * plane, not the hot path. */
	const struct timer_wheel *w = c->timers;
	uint64_t n = 0;
	for (unsigned i = 0; i < WHEEL_SLOTS; i++)
		for (struct list_node *p = w->slots[i].next; p != &w->slots[i]; p = p->next)
			n++;
	return n;
}
