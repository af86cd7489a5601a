/* Publishing runtime views to running cores: two real cores (DPDK lcores) with the whole
 * object runtime on a real store; another thread publishes new views (slot map, routes)
 * and every core installs its own copy at a turn boundary, in order, each exactly once. */
#include "check.h"
#include "core.h"
#include "obj.h"
#include "object-t.h"
#include "runtime.h"
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>

static int pub_request(struct duro_object *obj, const struct duro_request *req,
		       struct duro_response *res)
{
	(void)obj;
	(void)req;
	return duro_res_text(res, 200, "ok");
}
static const struct duro_class pub_class = { .name = "PubTest", .on_request = pub_request };
DURO_CLASS(pub_class)

#define NCORES 2
static struct core_group group;
static struct obj_config cfg;
/* What each core saw, written by that core only. */
static _Atomic uint64_t seen_gen[NCORES];
static _Atomic unsigned seen_owner0[NCORES], seen_routes[NCORES], installs[NCORES];
static int publisher_failed;

static void watch(struct core *c)
{
	const struct obj_view *v = &c->obj->view;
	if (v->gen != atomic_load(&seen_gen[c->index])) {
		/* Generations arrive one by one, never skipped or repeated. */
		if (v->gen != atomic_load(&seen_gen[c->index]) + 1)
			publisher_failed = 1;
		atomic_fetch_add(&installs[c->index], 1);
	}
	atomic_store(&seen_owner0[c->index], v->map.owner[0]);
	atomic_store(&seen_routes[c->index], v->nroutes);
	atomic_store(&seen_gen[c->index], v->gen);
}

static int start(struct core *c, void *arg)
{
	(void)arg;
	int r = obj_core_init(c);
	if (r == 0)
		core_add_hook(c, watch);
	return r;
}

static void stop(struct core *c, void *arg)
{
	(void)arg;
	obj_core_fini(c);
}

static int wait_gen(uint64_t gen)
{
	for (int i = 0; i < 5000; i++) {
		int all = obj_runtime_installed_gen() >= gen;
		for (unsigned k = 0; k < NCORES; k++)
			all &= atomic_load(&seen_gen[k]) >= gen;
		if (all)
			return 0;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

static int publish_retry(struct obj_view *v)
{
	int r;
	for (int i = 0; i < 5000; i++) {
		struct obj_view *copy = malloc(sizeof(*copy));
		if (!copy)
			return -ENOMEM;
		*copy = *v;
		if ((r = obj_runtime_publish(copy)) != -EBUSY)
			return r;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return -EBUSY;
}

static void *publisher(void *arg)
{
	(void)arg;
	CHECK_EQ(wait_gen(1), 0);
	/* A view with slot 0 on the other core and one route fewer. */
	struct obj_view *v = obj_view_copy();
	CHECK(v != NULL);
	unsigned owner0 = v->map.owner[0];
	v->map.owner[0] = (uint8_t)(1 - owner0);
	v->nroutes--;
	struct obj_view next = *v;
	CHECK_EQ(obj_runtime_publish(v), 0);
	CHECK_EQ(wait_gen(2), 0);
	for (unsigned k = 0; k < NCORES; k++) {
		CHECK_EQ(atomic_load(&seen_owner0[k]), 1 - owner0);
		CHECK_EQ(atomic_load(&seen_routes[k]), next.nroutes);
	}
	CHECK_EQ(obj_owner(&(struct duro_id){ { 0 } }), 1 - owner0); /* the control plane's view */
	/* Many in a row: each reaches every core once, in order. */
	for (int i = 0; i < 50; i++) {
		next.map.owner[0] = (uint8_t)(i & 1);
		CHECK_EQ(publish_retry(&next), 0);
	}
	CHECK_EQ(wait_gen(52), 0);
	for (unsigned k = 0; k < NCORES; k++) {
		CHECK_EQ(atomic_load(&installs[k]), 52); /* the first view, then 51 published */
		CHECK_EQ(atomic_load(&seen_owner0[k]), 1);
	}
	atomic_store(&group.stop_now, 1);
	return NULL;
}

static void test_publish_reaches_every_core(void)
{
	pthread_t t;
	CHECK_EQ(pthread_create(&t, NULL, publisher, NULL), 0);
	CHECK_EQ(core_group_run(&group), 0);
	pthread_join(t, NULL);
	CHECK(!publisher_failed);
}

int main(void)
{
	char prefix[64], dir[] = "/tmp/duro-test-runtime-XXXXXX";
	snprintf(prefix, sizeof(prefix), "test_runtime%d", (int)getpid());
	char *eal[] = { "test_runtime", "-l", "0-1", "--no-huge", "-m", "128", "--no-pci",
			"--no-shconf", "--file-prefix", prefix, "--log-level", "lib.eal:error" };
	if (rte_eal_init(sizeof(eal) / sizeof(eal[0]), eal) < 0 || !mkdtemp(dir)) {
		fprintf(stderr, "test_runtime: EAL or temporary directory refused\n");
		return EXIT_FAILURE;
	}
	store_config_defaults(&cfg.store, dir);
	cfg.store.log_rotate_bytes = 1 << 20;
	snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
	snprintf(cfg.bindings[0].name, sizeof(cfg.bindings[0].name), "PUB");
	snprintf(cfg.bindings[0].class_name, sizeof(cfg.bindings[0].class_name), "PubTest");
	cfg.nbindings = 1;
	snprintf(cfg.routes[0].prefix, sizeof(cfg.routes[0].prefix), "/pub/");
	cfg.routes[1] = (struct obj_route){ .prefix = "/obj/", .kind = ROUTE_GENERIC, .binding = -1 };
	cfg.nroutes = 2;
	snprintf(cfg.migrations[0].tag, sizeof(cfg.migrations[0].tag), "v1");
	snprintf(cfg.migrations[0].new_classes[0], STORE_NAME_MAX, "PubTest");
	cfg.migrations[0].nnew = 1;
	cfg.nmigrations = 1;
	cfg.evict_idle_ms = 30000;
	cfg.alarms = (struct obj_alarm_config){ 2000, 6, 0 };
	cfg.websockets = (struct obj_ws_config){ 100, 10000 };
	cfg.limits = (struct obj_storage_limits){ 2048, 1 << 20, 1 << 30, 1 << 20 };
	int r = obj_runtime_init(&cfg, NCORES);
	if (r == 0)
		r = core_group_init(&group, NCORES, 4096);
	if (r < 0) {
		fprintf(stderr, "test_runtime: set-up: %s\n", strerror(-r));
		return EXIT_FAILURE;
	}
	obj_runtime_attach(&group);
	group.core_start = start;
	group.core_stop = stop;
	RUN(test_publish_reaches_every_core);
	core_group_destroy(&group);
	obj_runtime_fini();
	rte_eal_cleanup();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_runtime: could not remove %s\n", dir);
	return CHECK_DONE();
}
