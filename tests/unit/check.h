/* A minimal unit-test harness: CHECK records a failure and goes on; every test binary
 * prints "ok NAME" or "FAIL NAME" per test and exits non-zero on any failure. */
#ifndef DURO_TEST_CHECK_H
#define DURO_TEST_CHECK_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* UBSan only prints by default and the test goes on with its "ok" intact: every report is
 * fatal instead (the binary exits non-zero, which scripts/test.sh reports), with a stack.
 * The sanitizer runtime calls this hook, when it exists, for its defaults. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void) { return "halt_on_error=1:print_stacktrace=1"; }

static int check_failed_in_test;
static int check_total_failed, check_total_passed;

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__,      \
				__LINE__, #cond);                                     \
			check_failed_in_test = 1;                                     \
		}                                                                     \
	} while (0)

#define CHECK_EQ(a, b)                                                                \
	do {                                                                          \
		long long a_ = (long long)(a), b_ = (long long)(b);                   \
		if (a_ != b_) {                                                       \
			fprintf(stderr, "  %s:%d: %s == %lld, want %s == %lld\n",     \
				__FILE__, __LINE__, #a, a_, #b, b_);                  \
			check_failed_in_test = 1;                                     \
		}                                                                     \
	} while (0)

#define RUN(test)                                                                     \
	do {                                                                          \
		check_failed_in_test = 0;                                             \
		test();                                                               \
		printf("%s %s\n", check_failed_in_test ? "FAIL" : "ok", #test);       \
		if (check_failed_in_test)                                             \
			check_total_failed++;                                         \
		else                                                                  \
			check_total_passed++;                                         \
	} while (0)

#define CHECK_DONE() (check_total_failed ? EXIT_FAILURE : EXIT_SUCCESS)

/* The seed of a randomized test: DURO_TEST_SEED when set (to replay a failure), else one
 * from the clock. Printed, so a failing run's output names it. */
static inline uint64_t check_seed(const char *test)
{
	const char *env = getenv("DURO_TEST_SEED");
	uint64_t seed;
	if (env && *env) {
		seed = strtoull(env, NULL, 0);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec;
	}
	printf("# %s: seed %" PRIu64 " (replay with DURO_TEST_SEED=%" PRIu64 ")\n", test, seed, seed);
	fflush(stdout);
	return seed;
}

/* splitmix64: a small, good generator for seeded tests. */
static inline uint64_t check_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static inline uint64_t check_below(uint64_t *state, uint64_t n) { return check_rand(state) % n; }

#endif
