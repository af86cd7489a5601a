/* The DPDK stack's unit tests' common set-up (stack_env.h): one EAL, pool and address per
 * test process, so each test file holds only its cases. */
#include "stack_env.h"
#include "core.h"
#include "timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

int unit_stack_setup(const char *name, unsigned mem_mb, unsigned nmbufs, struct stack_env *env,
		     void (*tx)(struct core *c, struct rte_mbuf *m), struct core **core,
		     struct core_group *group)
{
	char prefix[48], mem[16];
	snprintf(prefix, sizeof(prefix), "%s%d", name, (int)getpid());
	snprintf(mem, sizeof(mem), "%u", mem_mb);
	char *eal[] = { (char *)name, "-l", "0", "--no-huge", "-m", mem, "--no-pci", "--no-shconf",
			"--file-prefix", prefix, "--log-level", "lib.eal:error", "--no-telemetry", NULL };
	if (rte_eal_init(13, eal) < 0) {
		fprintf(stderr, "rte_eal_init failed\n");
		return 2;
	}
	env->pool = rte_pktmbuf_pool_create(name, nmbufs, 0, STACK_MBUF_PRIV, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	if (!env->pool) {
		fprintf(stderr, "rte_pktmbuf_pool_create failed\n");
		return 2;
	}
	memcpy(env->mac, "\x02\x00\x00\x00\x00\x01", 6);
	env->ipv4 = rte_cpu_to_be_32(RTE_IPV4(10, 0, 0, 1));
	env->netmask = rte_cpu_to_be_32(0xffffff00u);
	env->mtu = 1500;
	env->ports[0] = rte_cpu_to_be_16(80);
	env->nports = 1;
	env->ncores = 1;
	memcpy(env->secret, "0123456789abcdef", 16);
	env->tx = tx;
	if (!core)
		return 0;
	*core = aligned_alloc(64, sizeof(**core));
	if (!*core) {
		fprintf(stderr, "out of memory\n");
		return 2;
	}
	memset(*core, 0, sizeof(**core));
	group->ncores = 1;
	group->cores[0] = *core;
	(*core)->group = group;
	(*core)->now_ms = 1000000;
	(*core)->now_ns = (*core)->now_ms * 1000000ull;
	if (timer_wheel_create(*core, (*core)->now_ms) < 0) {
		fprintf(stderr, "timer_wheel_create failed\n");
		return 2;
	}
	return 0;
}

void unit_stack_teardown(struct stack_env *env)
{
	rte_mempool_free(env->pool);
	rte_eal_cleanup();
}
