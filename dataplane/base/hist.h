/* A log-linear latency histogram: 16 buckets per power of two (under 6.25% error), fixed
 * size, written by one core and read by anyone who accepts a slightly stale copy. */
#ifndef DURO_BASE_HIST_H
#define DURO_BASE_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 4
#define HIST_BUCKETS (64 << HIST_SUB_BITS)

struct hist {
	uint64_t count, sum_ns;
	uint64_t bucket[HIST_BUCKETS];
};

static inline unsigned hist_index(uint64_t v)
{
	if (v < (1u << HIST_SUB_BITS))
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - HIST_SUB_BITS;
	unsigned idx = ((shift + 1) << HIST_SUB_BITS) +
		       (unsigned)((v >> shift) & ((1u << HIST_SUB_BITS) - 1));
	return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* The smallest value that falls in bucket idx. */
static inline uint64_t hist_value(unsigned idx)
{
	if (idx < (1u << HIST_SUB_BITS))
		return idx;
	unsigned shift = (idx >> HIST_SUB_BITS) - 1;
	uint64_t sub = idx & ((1u << HIST_SUB_BITS) - 1);
	return ((1ull << HIST_SUB_BITS) | sub) << shift;
}

static inline void hist_add(struct hist *h, uint64_t v)
{
	h->count++;
	h->sum_ns += v;
	h->bucket[hist_index(v)]++;
}

/* The value at percentile p (0..100) of h, or 0 when empty. */
static inline uint64_t hist_percentile(const struct hist *h, double p)
{
	uint64_t total = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		total += h->bucket[i];
	if (!total)
		return 0;
	uint64_t want = (uint64_t)(p / 100.0 * (double)total), acc = 0;
	if (want >= total)
		want = total - 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		acc += h->bucket[i];
		if (acc > want)
			return hist_value(i);
	}
	return 0;
}

#endif
