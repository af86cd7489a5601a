/* The unit tests' real runtime (see rt.h): one EAL per process, started on first use with
 * two lcores, and a core group per run whose pollers drive the test. */
#include "rt.h"
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>

#define RT_MAX_LCORES 2

struct rt_run_state {
	rt_step_fn *step;
	void *arg;
	_Atomic unsigned done;
	unsigned char core_done[RT_MAX_LCORES];
};

static void eal_start(void)
{
	static int started;
	if (started)
		return;
	char prefix[32];
	snprintf(prefix, sizeof(prefix), "duro-unit%d", (int)getpid());
	char *argv[] = { "unit", "-l", "0-1", "--file-prefix", prefix, "--no-huge", "-m", "64",
			 "--no-pci", "--no-shconf", "--no-telemetry", "--log-level", "lib.eal:error",
			 NULL };
	if (rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])) - 1, argv) < 0) {
		fprintf(stderr, "rte_eal_init failed\n");
		exit(2);
	}
	started = 1;
}

void rt_init(struct rt *rt, unsigned ncores, const char *const *classes, unsigned nclasses)
{
	memset(rt, 0, sizeof(*rt));
	if (ncores < 1 || ncores > RT_MAX_LCORES || nclasses > STORE_MIGRATION_MAX_CLASSES) {
		fprintf(stderr, "rt_init: %u cores, %u classes\n", ncores, nclasses);
		exit(2);
	}
	rt->ncores = ncores;
	/* Beside the test binary, in the build tree: a disk file system (so the commit logs
	 * use direct I/O as in production, where /tmp may be a tmpfs), and never in the
	 * source tree whatever the working directory. */
	char exe[sizeof(rt->dir) - 24];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = 0;
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = 0;
	snprintf(rt->dir, sizeof(rt->dir), "%s/duro-unit-rt-XXXXXX", slash ? exe : ".");
	if (!mkdtemp(rt->dir)) {
		perror("mkdtemp");
		exit(2);
	}
	struct obj_config *cfg = &rt->cfg;
	snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", rt->dir);
	store_config_defaults(&cfg->store, rt->dir);
	cfg->store.log_rotate_bytes = 1 << 20; /* rotation happens in the tests too */
	cfg->store.min_free_bytes = 0;         /* a full build disk is not what they test */
	cfg->store.block_cache_bytes = 8 << 20;
	cfg->store.write_buffer_bytes = 4 << 20;
	cfg->evict_idle_ms = 30000;
	cfg->alarms.retry_initial_ms = 2000;
	cfg->alarms.max_retries = 6;
	cfg->alarms.min_interval_ms = 100;
	cfg->websockets.max_per_object = 32768;
	cfg->websockets.hibernate_idle_ms = 10000;
	cfg->limits.max_key = 2048;
	cfg->limits.max_value = 128u << 20;
	cfg->limits.max_object_bytes = 50000000000ull;
	cfg->limits.cache_bytes_per_core = 64u << 20;
	cfg->sql.cache_bytes_per_core = 64u << 20;
	cfg->sql.connection_bytes_per_core = 256u << 20;
	cfg->sql.max_event_write_bytes = 256u << 20;
	cfg->sql.max_statement_bytes = 100000;
	cfg->sql.max_params = 100;
	cfg->sql.max_row_bytes = 2000000;
	cfg->sql.max_columns = 100;
	cfg->sql.max_expr_depth = 100;
	cfg->sql.time_budget_ms = 30000;
	struct store_migration *m = &cfg->migrations[0];
	snprintf(m->tag, sizeof(m->tag), "unit-v1");
	for (unsigned i = 0; i < nclasses; i++) {
		snprintf(m->new_classes[i], sizeof(m->new_classes[i]), "%s", classes[i]);
		snprintf(cfg->bindings[i].name, OBJ_NAME_MAX, "%s", classes[i]);
		snprintf(cfg->bindings[i].class_name, OBJ_NAME_MAX, "%s", classes[i]);
	}
	m->nnew = nclasses;
	cfg->nmigrations = 1;
	cfg->nbindings = nclasses;
}

static unsigned rt_poll(struct core *c)
{
	struct rt_run_state *s = c->group->arg;
	if (!s->core_done[c->index]) {
		enum rt_step r = s->step(c, s->arg);
		if (r != RT_DONE)
			return r == RT_BUSY;
		s->core_done[c->index] = 1;
		atomic_fetch_add(&s->done, 1);
	}
	if (atomic_load(&s->done) == c->group->ncores)
		atomic_store(&c->group->stop_now, 1);
	return 0;
}

static int rt_core_start(struct core *c, void *arg)
{
	(void)arg;
	int r = obj_core_init(c);
	if (r < 0)
		return r;
	core_add_poller(c, rt_poll);
	return 0;
}

static void rt_core_stop(struct core *c, void *arg)
{
	(void)arg;
	obj_core_fini(c);
}

int rt_run(struct rt *rt, rt_step_fn *step, void *arg)
{
	eal_start();
	int r = obj_runtime_init(&rt->cfg, rt->ncores);
	if (r < 0) {
		obj_runtime_fini();
		return r;
	}
	struct rt_run_state s = { .step = step, .arg = arg };
	struct core_group g;
	memset(&g, 0, sizeof(g));
	r = core_group_init(&g, rt->ncores, 1024);
	if (r == 0) {
		g.idle_spin_us = 100;
		g.core_start = rt_core_start;
		g.core_stop = rt_core_stop;
		g.arg = &s;
		r = core_group_run(&g);
	}
	core_group_destroy(&g);
	obj_runtime_fini();
	return r;
}

void rt_cleanup(struct rt *rt)
{
	char cmd[sizeof(rt->dir) + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", rt->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", rt->dir);
}
