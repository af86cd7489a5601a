/* SNI name matching (RFC 6125 6.4.3, as browsers apply it): exact names ignoring ASCII
 * case, and a wildcard that covers exactly one whole, non-empty leftmost label. */
#include "check.h"
#include "tls_names.h"

#include <string.h>

static int m(const char *pattern, const char *name)
{
	return tls_name_matches((const unsigned char *)pattern, strlen(pattern),
				(const unsigned char *)name, strlen(name));
}

static void test_exact_names(void)
{
	CHECK(m("example.com", "example.com"));
	CHECK(m("Example.COM", "eXample.com")); /* DNS names ignore case */
	CHECK(!m("example.com", "example.co"));
	CHECK(!m("example.com", "example.comm"));
	CHECK(!m("example.com", "www.example.com"));
	CHECK(!m("example.com", ""));
	CHECK(!m("", "example.com"));
	CHECK(m("localhost", "LOCALHOST"));
	/* Only ASCII letters fold: bytes that differ by 32 elsewhere are different names. */
	CHECK(!m("a[b", "a{b"));
	CHECK(!m("a@b", "a`b"));
}

static void test_wildcard_one_label(void)
{
	CHECK(m("*.wild.test", "a.wild.test"));
	CHECK(m("*.wild.test", "A-long-label.WILD.test"));
	CHECK(!m("*.wild.test", "wild.test"));      /* the label may not be empty or absent */
	CHECK(!m("*.wild.test", ".wild.test"));
	CHECK(!m("*.wild.test", "a.b.wild.test"));  /* one label, not several */
	CHECK(!m("*.wild.test", "a.wild.test.evil"));
	CHECK(!m("*.wild.test", "awild.test"));
	CHECK(!m("*.wild.test", "a.xwild.test"));
	CHECK(!m("*.wild.test", "a"));
	CHECK(!m("*.wild.test", ""));
}

static void test_wildcard_only_as_whole_first_label(void)
{
	/* A star anywhere else is taken literally, so no real host name matches it. */
	CHECK(!m("f*.wild.test", "foo.wild.test"));
	CHECK(!m("*oo.wild.test", "foo.wild.test"));
	CHECK(!m("a.*.test", "a.b.test"));
	CHECK(!m("*", "anything"));
	CHECK(!m("*.", "a."));
	/* A name that contains a star is no wildcard on the client's side. */
	CHECK(!m("a.wild.test", "*.wild.test"));
}

static void test_bytes_not_strings(void)
{
	/* Lengths rule, not NUL terminators: a NUL inside either side is a byte that differs. */
	static const unsigned char pat[] = { 'a', 0, 'c', '.', 't' };
	static const unsigned char same[] = { 'a', 0, 'c', '.', 't' };
	static const unsigned char other[] = { 'a', 0, 'x', '.', 't' };
	CHECK(tls_name_matches(pat, sizeof(pat), same, sizeof(same)));
	CHECK(!tls_name_matches(pat, sizeof(pat), other, sizeof(other)));
	static const unsigned char wild[] = { '*', '.', 'a', 0, 'b' };
	static const unsigned char host[] = { 'h', '.', 'a', 0, 'c' };
	CHECK(!tls_name_matches(wild, sizeof(wild), host, sizeof(host)));
	/* Only the first nlen bytes of the name count. */
	CHECK(tls_name_matches((const unsigned char *)"a.b", 3, (const unsigned char *)"a.bc", 3));
}

int main(void)
{
	RUN(test_exact_names);
	RUN(test_wildcard_one_label);
	RUN(test_wildcard_only_as_whole_first_label);
	RUN(test_bytes_not_strings);
	return CHECK_DONE();
}
