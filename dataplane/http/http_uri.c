/* URI authority checks for the request parser: uri-host [ ":" port ] per RFC 3986
 * section 3.2.2, strict, so that Host and an absolute-form target mean one thing only. */
#include "http_uri.h"
#include "hex.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

/* reg-name bytes besides pct-encoded: unreserved and sub-delims (RFC 3986 section 2). */
static const uint8_t reg_name_char[256] = {
	['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1,
	['!'] = 1, ['$'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1, ['*'] = 1,
	['+'] = 1, [','] = 1, [';'] = 1, ['='] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
	['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
	['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
	['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
	['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
	['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
	['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
	['y'] = 1, ['z'] = 1,
};

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* dec-octet "." dec-octet "." dec-octet "." dec-octet; no leading zeros. */
static int ipv4_ok(const char *p, size_t n)
{
	size_t i = 0;
	for (int k = 0; k < 4; k++) {
		if (k > 0) {
			if (i >= n || p[i] != '.')
				return 0;
			i++;
		}
		size_t s = i;
		unsigned v = 0;
		while (i < n && is_digit(p[i]) && i - s < 3)
			v = v * 10 + (unsigned)(p[i++] - '0');
		if (i == s || v > 255 || (i - s > 1 && p[s] == '0'))
			return 0;
	}
	return i == n;
}

/* IPv6address: eight h16 groups, or fewer around one "::"; the last two may be an IPv4
 * address. */
static int ipv6_ok(const char *p, size_t n)
{
	unsigned groups = 0;
	int dcolon = 0;
	size_t i = 0;
	if (n >= 2 && p[0] == ':' && p[1] == ':') {
		dcolon = 1;
		i = 2;
		if (i == n)
			return 1;
	}
	for (;;) {
		size_t s = i;
		while (i < n && i - s < 5 && hex_digit(p[i]) >= 0)
			i++;
		if (i < n && p[i] == '.') {
			if (!ipv4_ok(p + s, n - s))
				return 0;
			groups += 2;
			break;
		}
		if (i == s || i - s > 4)
			return 0;
		groups++;
		if (i == n)
			break;
		if (p[i] != ':')
			return 0;
		if (++i == n)
			return 0; /* a single trailing colon */
		if (p[i] == ':') {
			if (dcolon)
				return 0;
			dcolon = 1;
			if (++i == n)
				break;
		}
	}
	return dcolon ? groups <= 7 : groups == 8;
}

/* IPvFuture: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ). */
static int ipvfuture_ok(const char *p, size_t n)
{
	size_t i = 1;
	if (n < 4 || (p[0] != 'v' && p[0] != 'V'))
		return 0;
	while (i < n && hex_digit(p[i]) >= 0)
		i++;
	if (i == 1 || i >= n || p[i] != '.' || ++i == n)
		return 0;
	for (; i < n; i++)
		if (!reg_name_char[(uint8_t)p[i]] && p[i] != ':')
			return 0;
	return 1;
}

int http_authority_check(const char *p, size_t n, int need_host)
{
	size_t i = 0;
	if (n && p[0] == '[') {
		const char *close = memchr(p, ']', n);
		if (!close)
			return -EINVAL;
		size_t len = (size_t)(close - p - 1);
		if (!ipv6_ok(p + 1, len) && !ipvfuture_ok(p + 1, len))
			return -EINVAL;
		i = len + 2;
	} else {
		while (i < n && p[i] != ':') {
			if (p[i] == '%') {
				if (i + 2 >= n || hex_digit(p[i + 1]) < 0 || hex_digit(p[i + 2]) < 0)
					return -EINVAL;
				i += 3;
			} else if (reg_name_char[(uint8_t)p[i]]) {
				i++;
			} else {
				return -EINVAL;
			}
		}
		if (need_host && i == 0)
			return -EINVAL;
	}
	if (i == n)
		return 0;
	if (p[i] != ':')
		return -EINVAL;
	for (i++; i < n; i++)
		if (!is_digit(p[i]))
			return -EINVAL;
	return 0;
}
