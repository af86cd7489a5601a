/* The DPDK stack's unit tests share one set-up (stack_env.c): an EAL without hugepages or
 * devices, a packet pool, one stack address (10.0.0.1/24, port 80) and, when asked, a core. */
#ifndef DURO_TEST_STACK_ENV_H
#define DURO_TEST_STACK_ENV_H

#include "stack.h"

struct core;
struct core_group;

/* Starts the EAL under a file prefix of name and the pid, makes env's pool of nmbufs and
 * fills env with the address above, sending through tx. core and group not NULL: a zeroed
 * core (freed by the process's exit) at 1,000,000 ms with a timer wheel, alone in group.
 * Returns 0, or 2 (the tests' exit code for a set-up failure) after a line on stderr. */
int unit_stack_setup(const char *name, unsigned mem_mb, unsigned nmbufs, struct stack_env *env,
		     void (*tx)(struct core *c, struct rte_mbuf *m), struct core **core,
		     struct core_group *group);
/* Frees env's pool and stops the EAL. */
void unit_stack_teardown(struct stack_env *env);

#endif
