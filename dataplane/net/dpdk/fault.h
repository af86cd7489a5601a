/* A seeded fault injector on the DPDK backend's RX and TX paths: drops, duplicates,
 * reorders and delays frames, replayable by seed. Off unless configured. */
#ifndef DURO_NET_DPDK_FAULT_H
#define DURO_NET_DPDK_FAULT_H

#include "dpdk.h" /* struct fault_config */

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;

static inline int fault_enabled(const struct fault_config *f)
{
	return f->drop_pct || f->duplicate_pct || f->reorder_pct || f->delay_pct;
}

#define FAULT_DELAY_SLOTS 4096

/* One direction of one core. */
struct fault {
	struct fault_config cfg;
	uint64_t rng;
	struct rte_mempool *pool; /* for duplicates */
	struct rte_mbuf *held;    /* waiting to go out after the next frame (reordering) */
	uint64_t held_until_ms;
	struct {
		struct rte_mbuf *m;
		uint64_t due_ms;
	} delayed[FAULT_DELAY_SLOTS];
	unsigned dhead, dcount;
	uint64_t dropped, duplicated, reordered, delayed_n;
};

/* `stream` tells directions and cores apart so each has its own sequence from the seed. */
void fault_init(struct fault *f, const struct fault_config *cfg, unsigned stream,
		struct rte_mempool *pool);

/* Filters pkts[0..n) in place (takes ownership of what it holds or drops) and adds
 * frames whose delay is over, up to `cap` in all (with cap > 2n + 1, every frame given
 * comes out unless the injector drops, delays or holds it); returns the new count. */
unsigned fault_apply(struct fault *f, uint64_t now_ms, struct rte_mbuf **pkts, unsigned n,
		     unsigned cap);

void fault_fini(struct fault *f);

#endif
