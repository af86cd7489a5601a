/* SHA-256 against FIPS 180-4's examples and sha256sum, fed whole and in uneven pieces. */
#include "check.h"
#include "sha256.h"

#include <stdlib.h>
#include <string.h>

static void test_vectors(void)
{
	char hex[65];
	sha256_hex("", 0, hex);
	CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	sha256_hex("abc", 3, hex);
	CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes */
	sha256_hex(two, strlen(two), hex);
	CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
}

static void test_pieces(void)
{
	/* A million 'a', in pieces of 1 to 130 bytes: every buffering path. */
	char *m = malloc(1000000);
	CHECK(m != NULL);
	if (!m)
		return;
	memset(m, 'a', 1000000);
	struct sha256 s;
	sha256_init(&s);
	size_t off = 0, step = 1;
	while (off < 1000000) {
		size_t n = step < 1000000 - off ? step : 1000000 - off;
		sha256_update(&s, m + off, n);
		off += n;
		step = step % 130 + 1;
	}
	uint8_t d[32];
	sha256_final(&s, d);
	static const uint8_t want[32] = { 0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92,
					  0x81, 0xa1, 0xc7, 0xe2, 0x84, 0xd7, 0x3e, 0x67,
					  0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97, 0x20, 0x0e,
					  0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0 };
	CHECK(memcmp(d, want, 32) == 0);
	char hex[65];
	sha256_hex(m, 1000000, hex);
	CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
	free(m);
}

int main(void)
{
	RUN(test_vectors);
	RUN(test_pieces);
	return CHECK_DONE();
}
