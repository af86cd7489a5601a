/* The fault injector: a splitmix64 sequence per direction and core decides each frame's
 * fate, so a failing run replays with its seed when the traffic is the same. */
#include "fault.h"

#include <rte_mbuf.h>
#include <string.h>

static uint64_t next_rand(struct fault *f)
{
	uint64_t z = (f->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int roll(struct fault *f, unsigned pct) { return pct && next_rand(f) % 100 < pct; }

void fault_init(struct fault *f, const struct fault_config *cfg, unsigned stream,
		struct rte_mempool *pool)
{
	memset(f, 0, sizeof(*f));
	f->cfg = *cfg;
	f->rng = cfg->seed * 0x2545f4914f6cdd1dull + stream;
	f->pool = pool;
}

static int delay_push(struct fault *f, struct rte_mbuf *m, uint64_t due)
{
	if (f->dcount == FAULT_DELAY_SLOTS)
		return -1;
	unsigned i = (f->dhead + f->dcount++) % FAULT_DELAY_SLOTS;
	f->delayed[i].m = m;
	f->delayed[i].due_ms = due;
	return 0;
}

unsigned fault_apply(struct fault *f, uint64_t now_ms, struct rte_mbuf **pkts, unsigned n,
		     unsigned cap)
{
	struct rte_mbuf *in[n ? n : 1];
	memcpy(in, pkts, n * sizeof(*pkts));
	unsigned out = 0;
	/* Delays are uniform, so frames leave the queue in the order they entered it. Room is
	 * left for this call's frames and their duplicates, so none is lost for want of it. */
	while (f->dcount && f->delayed[f->dhead].due_ms <= now_ms && out + 2 * n + 1 < cap) {
		pkts[out++] = f->delayed[f->dhead].m;
		f->dhead = (f->dhead + 1) % FAULT_DELAY_SLOTS;
		f->dcount--;
	}
	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = in[i];
		if (roll(f, f->cfg.drop_pct)) {
			f->dropped++;
			rte_pktmbuf_free(m);
			continue;
		}
		if (roll(f, f->cfg.delay_pct) && delay_push(f, m, now_ms + f->cfg.delay_ms) == 0) {
			f->delayed_n++;
			continue;
		}
		if (!f->held && roll(f, f->cfg.reorder_pct)) {
			f->held = m; /* goes out behind the next frame */
			f->held_until_ms = now_ms + 2;
			f->reordered++;
			continue;
		}
		if (out < cap)
			pkts[out++] = m;
		else
			rte_pktmbuf_free(m);
		if (f->held && out < cap) {
			pkts[out++] = f->held;
			f->held = NULL;
		}
		if (roll(f, f->cfg.duplicate_pct) && out < cap) {
			struct rte_mbuf *d = rte_pktmbuf_copy(m, f->pool, 0, UINT32_MAX);
			if (d) {
				pkts[out++] = d;
				f->duplicated++;
			}
		}
	}
	/* A frame held for reordering does not wait for ever on a quiet link. */
	if (f->held && now_ms >= f->held_until_ms && out < cap) {
		pkts[out++] = f->held;
		f->held = NULL;
	}
	return out;
}

void fault_fini(struct fault *f)
{
	if (f->held)
		rte_pktmbuf_free(f->held);
	f->held = NULL;
	while (f->dcount) {
		rte_pktmbuf_free(f->delayed[f->dhead].m);
		f->dhead = (f->dhead + 1) % FAULT_DELAY_SLOTS;
		f->dcount--;
	}
}
