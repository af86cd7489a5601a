/* A minimal unit-test harness: CHECK records a failure and goes on; every test binary
 * prints "ok NAME" or "FAIL NAME" per test and exits non-zero on any failure. */
#ifndef DURO_TEST_CHECK_H
#define DURO_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

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

#endif
