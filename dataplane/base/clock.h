/* Clocks: monotonic nanoseconds for timers and latency, wall milliseconds for users.
 * Inline because the poll loop reads the clock every turn. */
#ifndef DURO_BASE_CLOCK_H
#define DURO_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_now_ms(void) { return clock_now_ns() / 1000000ull; }

static inline uint64_t clock_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

#endif
