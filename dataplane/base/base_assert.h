/* Project assert that stays on in release builds.
 * Programmer errors crash here with file and line; bad input is never asserted. */
#ifndef DURO_BASE_ASSERT_H
#define DURO_BASE_ASSERT_H

/* <stdnoreturn.h> would turn DPDK's __attribute__((noreturn)) into nonsense: spell it out. */
__attribute__((noreturn)) void base_assert_fail(const char *expr, const char *file, int line);

#define DURO_ASSERT(expr)                                                     \
	do {                                                                  \
		if (__builtin_expect(!(expr), 0))                             \
			base_assert_fail(#expr, __FILE__, __LINE__);          \
	} while (0)

#define DURO_UNREACHABLE() base_assert_fail("unreachable", __FILE__, __LINE__)

#endif
