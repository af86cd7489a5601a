/* Host names against certificate names for SNI: the wildcard rules of RFC 6125 6.4.3 in
 * the strict form browsers use (a whole leftmost label, never part of one). */
#include "tls_names.h"

#include <string.h>

static unsigned char lower(unsigned char ch) { return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch; }

/* ASCII case-insensitive equality of n bytes: no locale, and a NUL byte is a byte like any
 * other (strncasecmp would stop at it). */
static int same_ignoring_case(const unsigned char *a, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lower(a[i]) != lower(b[i]))
			return 0;
	return 1;
}

int tls_name_matches(const unsigned char *pattern, size_t plen, const unsigned char *name,
		     size_t nlen)
{
	if (plen > 2 && pattern[0] == '*' && pattern[1] == '.') {
		/* A wildcard stands for exactly one leftmost label. */
		const unsigned char *dot = memchr(name, '.', nlen);
		if (!dot || dot == name)
			return 0;
		size_t rest = nlen - (size_t)(dot - name);
		return rest == plen - 1 && same_ignoring_case(dot, pattern + 1, rest);
	}
	return plen == nlen && same_ignoring_case(pattern, name, nlen);
}
