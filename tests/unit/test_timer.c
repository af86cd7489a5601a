/* The timer wheel: timers fire once, in deadline order, not early; cancel works; a timer
 * re-armed from its callback fires again; far timers survive laps; stalls catch up. */
#include "check.h"
#include "timer.h"

#include <stdlib.h>
#include <string.h>

static struct core core;
static int fired[16];
static uint64_t fired_at[16];
static int order[16], norder;
static uint64_t now;

struct tt {
	struct timer t;
	int id;
	int rearm;
};

static void cb(struct core *c, struct timer *t)
{
	struct tt *x = (struct tt *)t;
	fired[x->id]++;
	fired_at[x->id] = now;
	order[norder++] = x->id;
	if (x->rearm-- > 0)
		timer_arm(c, t, now + 5, cb);
}

static void run_to(uint64_t t)
{
	while (now < t) {
		now++;
		timer_run(&core, now);
	}
}

static void reset(void)
{
	memset(fired, 0, sizeof(fired));
	norder = 0;
}

static void test_order_and_time(void)
{
	reset();
	struct tt a = { .id = 0 }, b = { .id = 1 }, c = { .id = 2 };
	timer_arm(&core, &a.t, now + 30, cb);
	timer_arm(&core, &b.t, now + 10, cb);
	timer_arm(&core, &c.t, now + 20, cb);
	uint64_t start = now;
	run_to(start + 29);
	CHECK_EQ(fired[0], 0);
	run_to(start + 40);
	CHECK_EQ(fired[0] + fired[1] + fired[2], 3);
	CHECK(order[0] == 1 && order[1] == 2 && order[2] == 0);
	CHECK_EQ(fired_at[1], start + 10);
	CHECK_EQ(timer_count(&core), 0);
}

static void test_cancel_and_rearm(void)
{
	reset();
	struct tt a = { .id = 3 }, b = { .id = 4, .rearm = 2 };
	timer_arm(&core, &a.t, now + 10, cb);
	timer_cancel(&a.t);
	CHECK(!timer_armed(&a.t));
	timer_cancel(&a.t); /* twice is harmless */
	timer_arm(&core, &b.t, now + 1, cb);
	run_to(now + 50);
	CHECK_EQ(fired[3], 0);
	CHECK_EQ(fired[4], 3);
}

static void test_far_and_stall(void)
{
	reset();
	struct tt a = { .id = 5 }, b = { .id = 6 };
	timer_arm(&core, &a.t, now + 10000, cb); /* more than two laps of 4096 */
	run_to(now + 9999);
	CHECK_EQ(fired[5], 0);
	run_to(now + 1);
	CHECK_EQ(fired[5], 1);
	timer_arm(&core, &b.t, now + 100, cb);
	now += 20000; /* the loop stalled: one run catches up */
	timer_run(&core, now);
	CHECK_EQ(fired[6], 1);
}

static void test_arm_in_past(void)
{
	reset();
	struct tt a = { .id = 7 };
	timer_arm(&core, &a.t, now - 5 > now ? 0 : now - 5, cb);
	run_to(now + 1);
	CHECK_EQ(fired[7], 1);
}

int main(void)
{
	now = 1000;
	if (timer_wheel_create(&core, now) < 0)
		return 1;
	RUN(test_order_and_time);
	RUN(test_cancel_and_rearm);
	RUN(test_far_and_stall);
	RUN(test_arm_in_past);
	timer_wheel_destroy(&core);
	return CHECK_DONE();
}
