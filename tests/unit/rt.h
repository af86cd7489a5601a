/* A real object runtime for unit tests: the EAL without hugepages or PCI, RocksDB and
 * commit logs in a fresh directory, and cores whose loops call the test's step function
 * every turn until each says it is done. Nothing is mocked: commits go through io_uring. */
#ifndef DURO_TEST_RT_H
#define DURO_TEST_RT_H

#include "obj.h"
#include "core.h"

enum rt_step { RT_IDLE = 0, RT_BUSY = 1, RT_DONE = 2 };

/* Called on each core at every loop turn (before its completions are reaped) with the
 * core and rt_run's arg. Returns RT_BUSY when it did something, RT_IDLE when it waits
 * (the core may sleep a few ms), RT_DONE when this core has finished; the loops end once
 * every core is done. */
typedef enum rt_step rt_step_fn(struct core *c, void *arg);

struct rt {
	struct obj_config cfg;
	char dir[512];
	unsigned ncores;
};

/* Fills rt with the runtime's defaults, a fresh data directory beside the test binary
 * and one binding per class (binding name = class name), all created by one migration
 * tag. The classes must be registered. Exits the test on failure. */
void rt_init(struct rt *rt, unsigned ncores, const char *const *classes, unsigned nclasses);
/* Starts the runtime on rt's directory (replaying what an earlier run left), runs every
 * core's loop with `step` until all are done, and stops it cleanly. May be called again
 * on the same directory: a restart. Returns 0 or a negative errno. */
int rt_run(struct rt *rt, rt_step_fn *step, void *arg);
/* Removes the data directory. */
void rt_cleanup(struct rt *rt);

#endif
