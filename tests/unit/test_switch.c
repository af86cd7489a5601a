/* Switching live objects to a deployed version, on a real runtime (rt.h): a resident
 * object switches in place at its next quiescent point (the old on_unload, then the new
 * on_load before its next event, its storage kept); an object with a sync() callback
 * pending waits for it; a forced switch runs that callback on the old code with
 * -ECANCELED and loses no write; a gradual deploy's share is deterministic, keyed by the
 * seed, and splits objects as asked. */
#include "check.h"
#include "rt.h"
#include "event.h"
#include "kv.h"
#include "object.h"
#include "runtime.h"
#include "version.h"

#include <errno.h>
#include <string.h>

/* Two versions of class "Sw": v2's state is larger, so a switch must grow it. */
struct st1 {
	uint32_t magic;
};
struct st2 {
	uint64_t words[64];
};

static unsigned loads[3], unloads[3];
static struct {
	int status, version;
	unsigned calls;
} heard[4]; /* the sync() callbacks, per object */

static int request(struct duro_object *o, const struct duro_request *req, struct duro_response *res)
{
	(void)o;
	(void)req;
	(void)res;
	return 0;
}

static int load1(struct duro_object *o)
{
	((struct st1 *)duro_state(o))->magic = 0x11111111;
	loads[1]++;
	return 0;
}
static void unload1(struct duro_object *o)
{
	CHECK_EQ(((struct st1 *)duro_state(o))->magic, 0x11111111); /* its own state, intact */
	unloads[1]++;
}
static int load2(struct duro_object *o)
{
	struct st2 *st = duro_state(o);
	for (unsigned i = 0; i < 64; i++)
		CHECK_EQ(st->words[i], 0); /* zeroed for the new version */
	st->words[63] = 2;
	loads[2]++;
	return 0;
}
static void unload2(struct duro_object *o)
{
	CHECK_EQ(((struct st2 *)duro_state(o))->words[63], 2);
	unloads[2]++;
}

static void synced1(struct duro_object *o, int status, void *arg)
{
	unsigned k = (unsigned)(uintptr_t)arg;
	CHECK_EQ(((struct st1 *)duro_state(o))->magic, 0x11111111); /* old code on old state */
	heard[k].status = status;
	heard[k].version = 1;
	heard[k].calls++;
	CHECK_EQ(duro_put(o, "heard", 5, &status, sizeof(status)), 0);
}

static const struct duro_class sw1 = { .name = "Sw", .state_size = sizeof(struct st1),
				       .on_load = load1, .on_request = request,
				       .on_unload = unload1 };
static const struct duro_class sw2 = { .name = "Sw", .state_size = sizeof(struct st2),
				       .on_load = load2, .on_request = request,
				       .on_unload = unload2 };
DURO_CLASS(sw1)

static struct rt rt;
static struct duro_id ids[4];
static struct obj_version *v1, *v2;

/* An event on object k writing "n" = val, optionally asking for a sync() callback. */
static void write_event(struct core *c, unsigned k, uint32_t val, int sync)
{
	int err = 0;
	struct object *obj = event_activate(c, 0, &ids[k], &err);
	CHECK(obj != NULL);
	if (!obj)
		return;
	event_begin(c, obj);
	CHECK_EQ(duro_put((struct duro_object *)obj, "n", 1, &val, sizeof(val)), 0);
	if (sync)
		CHECK_EQ(duro_sync((struct duro_object *)obj, synced1, (void *)(uintptr_t)k), 0);
	CHECK(event_end(c, obj, 1) >= 0);
}

static uint32_t read_n(struct core *c, unsigned k)
{
	int err = 0;
	struct object *obj = event_activate(c, 0, &ids[k], &err);
	uint32_t v = 0;
	if (!obj)
		return 0;
	event_begin(c, obj);
	struct duro_str s;
	if (duro_get((struct duro_object *)obj, "n", 1, &s) == 1 && s.len == sizeof(v))
		memcpy(&v, s.ptr, sizeof(v));
	event_end(c, obj, 1);
	return v;
}

/* A deploy of v2 to this core's view, as a publication installs it. */
static void deploy(struct core *c, uint64_t force_at_ms)
{
	struct obj_view *v = &c->obj->view;
	v->gen++;
	v->ns[0].old = v->ns[0].ver;
	v->ns[0].ver = v2;
	v->ns[0].cls = v2->cls;
	v->ns[0].split = OBJ_SPLIT_ALL;
	v->ns[0].force_at_ms = force_at_ms;
	v->ns[0].deploy_gen++;
}

static int phase;
static uint64_t until;

static enum rt_step quiescent_step(struct core *c, void *arg)
{
	(void)arg;
	const struct obj_counters *ctr = obj_counters(c);
	switch (phase) {
	case 0:
		/* Objects 0 and 1 idle; object 2 with a sync() callback pending; a deploy that
		 * forces nothing for a minute. */
		write_event(c, 0, 10, 0);
		write_event(c, 1, 11, 0);
		write_event(c, 2, 12, 1);
		CHECK_EQ(loads[1], 3);
		deploy(c, c->now_ms + 60000);
		phase = 1;
		until = c->now_ms + 5000;
		return RT_BUSY;
	case 1:
		/* The callback comes (status 0, on v1), then object 2 switches too. */
		if (ctr->switches < 3 && c->now_ms < until)
			return RT_IDLE;
		CHECK_EQ(ctr->switches, 3);
		CHECK_EQ(ctr->switches_forced, 0);
		CHECK_EQ(heard[2].calls, 1);
		CHECK_EQ(heard[2].status, 0);
		CHECK_EQ(heard[2].version, 1);
		CHECK_EQ(unloads[1], 3);
		CHECK_EQ(loads[2], 0); /* lazily: at each object's next event */
		for (unsigned k = 0; k < 3; k++) {
			struct object *o = object_find(c, &ids[k]);
			CHECK(o && o->ver == v2 && o->needs_load);
		}
		/* Storage kept: the new version reads what the old one wrote. */
		CHECK_EQ(read_n(c, 0), 10);
		CHECK_EQ(read_n(c, 1), 11);
		CHECK_EQ(read_n(c, 2), 12);
		CHECK_EQ(loads[2], 3);
		/* New activations take v2 at once. */
		write_event(c, 3, 13, 0);
		CHECK(object_find(c, &ids[3]) && object_find(c, &ids[3])->ver == v2);
		CHECK_EQ(loads[2], 4);
		CHECK_EQ(loads[1], 3);
		phase = 2;
		return RT_DONE;
	}
	return RT_DONE;
}

static void test_resident_objects_switch_when_quiescent(void)
{
	phase = 0;
	memset(loads, 0, sizeof(loads));
	memset(unloads, 0, sizeof(unloads));
	memset(heard, 0, sizeof(heard));
	CHECK_EQ(rt_run(&rt, quiescent_step, NULL), 0);
	CHECK_EQ(phase, 2);
	CHECK_EQ(unloads[2], 4); /* every object unloaded at the end, each on v2 */
}

static enum rt_step forced_step(struct core *c, void *arg)
{
	(void)arg;
	const struct obj_counters *ctr = obj_counters(c);
	switch (phase) {
	case 0:
		/* A write and its sync() still on its way to disk when an immediate deploy
		 * comes: in this very turn, before the commit hook has even written it. */
		write_event(c, 1, 21, 1);
		deploy(c, c->now_ms);
		phase = 1;
		until = c->now_ms + 5000;
		return RT_BUSY;
	case 1:
		if (ctr->switches < 1 && c->now_ms < until)
			return RT_IDLE;
		CHECK_EQ(ctr->switches_forced, 1);
		CHECK_EQ(ctr->switch_cancelled, 1);
		CHECK_EQ(heard[1].calls, 1); /* run once, with -ECANCELED, on the old code */
		CHECK_EQ(heard[1].status, -ECANCELED);
		CHECK_EQ(heard[1].version, 1);
		phase = 2;
		until = c->now_ms + 200;
		return RT_BUSY;
	case 2:
		/* Its batch's outcome comes later and is ignored: the callback is not run again. */
		if (c->now_ms < until)
			return RT_IDLE;
		CHECK_EQ(heard[1].calls, 1);
		CHECK_EQ(read_n(c, 1), 21);
		phase = 3;
		return RT_DONE;
	}
	return RT_DONE;
}

static uint32_t stored_n;
static int stored_heard;
static enum rt_step reread_step(struct core *c, void *arg)
{
	(void)arg;
	stored_n = read_n(c, 1);
	int err = 0;
	struct object *obj = event_activate(c, 0, &ids[1], &err);
	if (obj) {
		event_begin(c, obj);
		struct duro_str s;
		if (duro_get((struct duro_object *)obj, "heard", 5, &s) == 1 && s.len == sizeof(int))
			memcpy(&stored_heard, s.ptr, sizeof(int));
		event_end(c, obj, 1);
	}
	return RT_DONE;
}

static void test_forced_switch_cancels_pending_syncs_and_loses_nothing(void)
{
	phase = 0;
	memset(heard, 0, sizeof(heard));
	CHECK_EQ(rt_run(&rt, forced_step, NULL), 0);
	CHECK_EQ(phase, 3);
	/* After a restart: the write and what the cancelled callback wrote are both there. */
	CHECK_EQ(rt_run(&rt, reread_step, NULL), 0);
	CHECK_EQ(stored_n, 21);
	CHECK_EQ(stored_heard, -ECANCELED);
}

static void test_gradual_share(void)
{
	uint8_t seed[16] = { 1, 2, 3 }, other[16] = { 9 };
	unsigned under30 = 0, differ = 0;
	struct obj_ns_entry e = { .ver = v2, .old = v1, .split = 3000 };
	memcpy(e.seed, seed, 16);
	for (unsigned i = 0; i < 10000; i++) {
		struct duro_id id;
		memset(&id, 0, sizeof(id));
		memcpy(id.bytes, &i, sizeof(i));
		unsigned s = obj_version_share(seed, &id);
		CHECK(s < OBJ_SPLIT_ALL);
		CHECK_EQ(s, obj_version_share(seed, &id)); /* deterministic */
		differ += s != obj_version_share(other, &id);
		under30 += s < 3000;
		e.split = 3000;
		struct obj_version *at30 = obj_version_target(&e, &id);
		e.split = 6000;
		struct obj_version *at60 = obj_version_target(&e, &id);
		CHECK(at30 == v1 || at60 == v2); /* raising the split never moves one back */
		CHECK((at30 == v2) == (s < 3000));
	}
	CHECK(under30 > 2700 && under30 < 3300);
	CHECK(differ > 9900); /* keyed by the seed */
	e.old = NULL;
	CHECK(obj_version_target(&e, &ids[0]) == v2);
}

int main(void)
{
	static const char *const classes[] = { "Sw" };
	rt_init(&rt, 1, classes, 1);
	v1 = obj_version_of(&sw1, NULL, NULL);
	v2 = obj_version_of(&sw2, "2222222222222222222222222222222222222222222222222222222222222222", NULL);
	for (unsigned k = 0; k < 4; k++) {
		memset(&ids[k], 0, sizeof(ids[k]));
		ids[k].bytes[0] = (uint8_t)(k + 1);
		ids[k].bytes[9] = (uint8_t)(0x40 + k);
	}
	RUN(test_gradual_share);
	RUN(test_resident_objects_switch_when_quiescent);
	RUN(test_forced_switch_cancels_pending_syncs_and_loses_nothing);
	rt_cleanup(&rt);
	return CHECK_DONE();
}
