/* Alarms on a real runtime: a failing on_alarm is retried after retry_initial_ms, then
 * twice as long each time (never earlier), with its retry count, and dropped after
 * max_retries; one that recovers is cleared; an alarm re-armed from its own handler is
 * throttled to min_interval_ms; an alarm set by a failed event never exists. The retry
 * delays themselves are checked exactly.
 *
 * The runtime's own calls: alarm_retry_delay_ms (alarm.h), and event_activate, event_begin
 * and event_end (event.h) to run an event without an HTTP request. */
#include "check.h"
#include "rt.h"
#include "clock.h"
#include "alarm.h"
#include "event.h"
#include "object-t.h"

#include <errno.h>
#include <string.h>

#define MAX_FIRINGS 32
#define SCENARIO_MS 8000 /* a scenario not finished by then has failed */
#define SLACK_MS 1       /* the throttle converts a wall-clock time to the core's clock */

static struct {
	uint64_t at[MAX_FIRINGS];
	unsigned retry[MAX_FIRINGS];
	int is_retry[MAX_FIRINGS];
	unsigned n;
	unsigned fail_first; /* firings that fail */
	unsigned rearm;      /* firings that set the alarm again, to now */
} fl;

static int flaky_alarm(struct duro_object *o, const struct duro_alarm_info *info)
{
	if (fl.n < MAX_FIRINGS) {
		/* The core's clock for this turn: what its timers fire by and retries are
		 * armed from (a reading here would be later by however long the turn took). */
		fl.at[fl.n] = ((struct object *)o)->core->now_ms;
		fl.retry[fl.n] = info->retry_count;
		fl.is_retry[fl.n] = info->is_retry;
	}
	fl.n++;
	if (fl.n <= fl.rearm && duro_set_alarm(o, duro_now_ms()) < 0)
		return -1;
	return fl.n <= fl.fail_first ? -1 : 0;
}

static int flaky_request(struct duro_object *o, const struct duro_request *req, struct duro_response *res)
{
	(void)o;
	(void)req;
	(void)res;
	return 0;
}

static const struct duro_class flaky = { .name = "Flaky", .on_request = flaky_request,
					 .on_alarm = flaky_alarm };

static struct rt rt;

/* ---- one scenario: set an alarm in an event, wait for `done`, check ---- */

struct scenario {
	const char *name;   /* the object's name */
	int64_t in_ms;      /* the alarm, from now */
	int event_ok;       /* the event that sets it commits */
	int (*done)(struct core *c);
	void (*check)(struct core *c);
};

static const struct scenario *sc;
static int sc_state;
static uint64_t sc_deadline;
static unsigned ns_index;
static struct duro_id sc_id;

static struct object *activate(struct core *c)
{
	int err = 0;
	struct object *obj = event_activate(c, ns_index, &sc_id, &err);
	CHECK(obj != NULL);
	return obj;
}

/* The object's stored alarm: 1 with *t, 0 none. */
static int stored_alarm(struct core *c, int64_t *t)
{
	struct object *obj = activate(c);
	if (!obj)
		return -1;
	event_begin(c, obj);
	int r = duro_get_alarm((struct duro_object *)obj, t);
	event_end(c, obj, 1);
	return r;
}

static enum rt_step scenario_step(struct core *c, void *arg)
{
	(void)arg;
	if (sc_state == 0) {
		const struct duro_namespace *ns = duro_namespace("Flaky");
		ns_index = ns->index;
		CHECK_EQ(duro_id_from_name(ns, sc->name, strlen(sc->name), &sc_id), 0);
		struct object *obj = activate(c);
		if (!obj)
			return RT_DONE;
		event_begin(c, obj);
		CHECK_EQ(duro_set_alarm((struct duro_object *)obj, duro_now_ms() + sc->in_ms), 0);
		CHECK(event_end(c, obj, sc->event_ok) >= 0);
		sc_deadline = clock_now_ms() + SCENARIO_MS;
		sc_state = 1;
		return RT_BUSY;
	}
	if (!sc->done(c)) {
		if (clock_now_ms() < sc_deadline)
			return RT_IDLE;
		fprintf(stderr, "  %s: not done after %d ms (%u firings)\n", sc->name, SCENARIO_MS, fl.n);
		check_failed_in_test = 1;
		return RT_DONE;
	}
	sc->check(c);
	return RT_DONE;
}

static void run_scenario(const struct scenario *s, unsigned retry_initial_ms, unsigned max_retries,
			 unsigned min_interval_ms)
{
	memset(&fl, 0, sizeof(fl));
	rt.cfg.alarms.retry_initial_ms = retry_initial_ms;
	rt.cfg.alarms.max_retries = max_retries;
	rt.cfg.alarms.min_interval_ms = min_interval_ms;
	sc = s;
	sc_state = 0;
}

static void check_gaps(unsigned retry_initial_ms, unsigned n)
{
	for (unsigned i = 1; i < n && i < MAX_FIRINGS; i++) {
		uint64_t want = (uint64_t)retry_initial_ms << (i - 1), gap = fl.at[i] - fl.at[i - 1];
		if (gap + SLACK_MS < want) {
			fprintf(stderr, "  retry %u came %llu ms after the firing before, want >= %llu\n", i,
				(unsigned long long)gap, (unsigned long long)want);
			check_failed_in_test = 1;
		}
	}
}

/* ---- the delays ---- */

static void test_retry_delays(void)
{
	struct obj_alarm_config cfg = { .retry_initial_ms = 2000, .max_retries = 6 };
	CHECK_EQ(alarm_retry_delay_ms(&cfg, 0), 2000);
	CHECK_EQ(alarm_retry_delay_ms(&cfg, 1), 4000);
	CHECK_EQ(alarm_retry_delay_ms(&cfg, 5), 64000);
	CHECK_EQ(alarm_retry_delay_ms(&cfg, 20), 2000ull << 20);
	CHECK_EQ(alarm_retry_delay_ms(&cfg, 21), 2000ull << 20); /* capped, no overflow */
	CHECK_EQ(alarm_retry_delay_ms(&cfg, 255), 2000ull << 20);
	cfg.retry_initial_ms = 3600000; /* the largest the config takes */
	CHECK_EQ(alarm_retry_delay_ms(&cfg, 20), 3600000ull << 20);
	cfg.retry_initial_ms = 10;
	CHECK_EQ(alarm_retry_delay_ms(&cfg, 3), 80);
}

/* ---- dropped after max_retries ---- */

static int dropped_done(struct core *c)
{
	const struct obj_alarm_counters *a = obj_alarm_counters(c);
	return a->dropped == 1 && a->pending == 0 && obj_idle(c);
}

static void dropped_check(struct core *c)
{
	const struct obj_alarm_counters *a = obj_alarm_counters(c);
	CHECK_EQ(fl.n, 4); /* the first firing and 3 retries; the drop runs no handler */
	for (unsigned i = 0; i < 4; i++) {
		CHECK_EQ(fl.retry[i], i);
		CHECK_EQ(fl.is_retry[i], i > 0);
	}
	check_gaps(20, fl.n);
	CHECK_EQ(a->fired, 4);
	CHECK_EQ(a->retries, 3);
	int64_t t;
	CHECK_EQ(stored_alarm(c, &t), 0); /* cleared in storage too */
}

static const struct scenario dropped = { "dropped", 5, 1, dropped_done, dropped_check };

static void test_failing_alarm_backs_off_then_is_dropped(void)
{
	run_scenario(&dropped, 20, 3, 0);
	fl.fail_first = 1000;
	CHECK_EQ(rt_run(&rt, scenario_step, NULL), 0);
}

/* ---- recovers after two failures ---- */

static int recovered_done(struct core *c)
{
	return fl.n >= 3 && obj_alarm_counters(c)->pending == 0 && obj_idle(c);
}

static void recovered_check(struct core *c)
{
	const struct obj_alarm_counters *a = obj_alarm_counters(c);
	CHECK_EQ(fl.n, 3);
	CHECK(fl.retry[0] == 0 && fl.retry[1] == 1 && fl.retry[2] == 2);
	check_gaps(25, fl.n);
	CHECK_EQ(a->dropped, 0);
	CHECK_EQ(a->retries, 2);
	int64_t t;
	CHECK_EQ(stored_alarm(c, &t), 0);
}

static const struct scenario recovered = { "recovered", 5, 1, recovered_done, recovered_check };

static void test_alarm_that_recovers_is_cleared(void)
{
	run_scenario(&recovered, 25, 6, 0);
	fl.fail_first = 2;
	CHECK_EQ(rt_run(&rt, scenario_step, NULL), 0);
}

/* ---- re-armed from its own handler: throttled ---- */

static int throttled_done(struct core *c)
{
	return fl.n >= 6 && obj_alarm_counters(c)->pending == 0 && obj_idle(c);
}

static void throttled_check(struct core *c)
{
	const struct obj_alarm_counters *a = obj_alarm_counters(c);
	CHECK_EQ(fl.n, 6); /* 5 that re-armed, then one that let it clear */
	for (unsigned i = 1; i < fl.n; i++) {
		CHECK_EQ(fl.retry[i], 0);
		if (fl.at[i] - fl.at[i - 1] + SLACK_MS < 30) {
			fprintf(stderr, "  firing %u came %llu ms after the one before, want >= 30\n", i,
				(unsigned long long)(fl.at[i] - fl.at[i - 1]));
			check_failed_in_test = 1;
		}
	}
	CHECK(a->throttled >= 5);
	int64_t t;
	CHECK_EQ(stored_alarm(c, &t), 0);
}

static const struct scenario throttled = { "throttled", 1, 1, throttled_done, throttled_check };

static void test_runaway_rearming_is_throttled(void)
{
	run_scenario(&throttled, 2000, 6, 30);
	fl.rearm = 5;
	CHECK_EQ(rt_run(&rt, scenario_step, NULL), 0);
}

/* ---- set by an event that failed: never exists ---- */

static int never_done(struct core *c) { return obj_idle(c); }

static void never_check(struct core *c)
{
	const struct obj_alarm_counters *a = obj_alarm_counters(c);
	CHECK_EQ(a->pending, 0); /* nothing scheduled, so nothing can fire */
	int64_t t;
	CHECK_EQ(stored_alarm(c, &t), 0);
	CHECK_EQ(fl.n, 0);
}

static const struct scenario never = { "never", 1, 0, never_done, never_check };

static void test_alarm_of_a_failed_event_never_exists(void)
{
	run_scenario(&never, 2000, 6, 0);
	CHECK_EQ(rt_run(&rt, scenario_step, NULL), 0);
}

int main(void)
{
	duro_register_class(&flaky);
	static const char *const classes[] = { "Flaky" };
	rt_init(&rt, 1, classes, 1);
	RUN(test_retry_delays);
	RUN(test_failing_alarm_backs_off_then_is_dropped);
	RUN(test_alarm_that_recovers_is_cleared);
	RUN(test_runaway_rearming_is_throttled);
	RUN(test_alarm_of_a_failed_event_never_exists);
	rt_cleanup(&rt);
	return CHECK_DONE();
}
