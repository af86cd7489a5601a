/* SipHash against the reference vectors (key 00..0f, message 00..len-1). */
#include "check.h"
#include "siphash.h"

#include <string.h>

static void test_vectors64(void)
{
	uint8_t key[16], msg[64];
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	CHECK(siphash64(key, msg, 0) == 0x726fdb47dd0e0e31ull);
	CHECK(siphash64(key, msg, 15) == 0xa129ca6149be45e5ull); /* the paper's example */
}

static void test_vectors128(void)
{
	uint8_t key[16], msg[64], out[16];
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	static const uint8_t empty[16] = { 0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6,
					   0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93 };
	siphash128(key, msg, 0, out);
	CHECK(memcmp(out, empty, 16) == 0);
}

int main(void)
{
	RUN(test_vectors64);
	RUN(test_vectors128);
	return CHECK_DONE();
}
