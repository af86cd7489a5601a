/* CRC-32C against the iSCSI test vectors (RFC 3720, B.4) and the catalogue's check value,
 * both the SSE4.2 and the table way; then, seeded, both against a bit-at-a-time reference
 * over random lengths, alignments and split points (a backup or log record is checked in
 * pieces). */
#include "check.h"
#include "crc32c.h"

#include <string.h>

/* The definition, one bit at a time (reflected polynomial 0x82f63b78). */
static uint32_t reference(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
	}
	return ~crc;
}

static void test_rfc3720_vectors(void)
{
	uint8_t b[48];
	memset(b, 0, 32);
	CHECK_EQ(crc32c(0, b, 32), 0x8a9136aau);
	CHECK_EQ(crc32c_table(0, b, 32), 0x8a9136aau);
	memset(b, 0xff, 32);
	CHECK_EQ(crc32c(0, b, 32), 0x62a8ab43u);
	CHECK_EQ(crc32c_table(0, b, 32), 0x62a8ab43u);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	CHECK_EQ(crc32c(0, b, 32), 0x46dd794eu);
	CHECK_EQ(crc32c_table(0, b, 32), 0x46dd794eu);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	CHECK_EQ(crc32c(0, b, 32), 0x113fdb5cu);
	CHECK_EQ(crc32c_table(0, b, 32), 0x113fdb5cu);
	/* An iSCSI read command PDU. */
	static const uint8_t pdu[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	CHECK_EQ(crc32c(0, pdu, sizeof(pdu)), 0xd9963a56u);
	CHECK_EQ(crc32c_table(0, pdu, sizeof(pdu)), 0xd9963a56u);
}

static void test_check_value_and_empty(void)
{
	CHECK_EQ(crc32c(0, "123456789", 9), 0xe3069283u);
	CHECK_EQ(crc32c_table(0, "123456789", 9), 0xe3069283u);
	CHECK_EQ(crc32c(0, "", 0), 0);
	CHECK_EQ(crc32c(0x12345678u, "", 0), 0x12345678u); /* extending by nothing */
	CHECK_EQ(reference(0, (const uint8_t *)"123456789", 9), 0xe3069283u);
}

static void test_random_against_reference(void)
{
	uint64_t rs = check_seed("test_random_against_reference");
	static uint8_t buf[4096 + 16];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)check_rand(&rs);
	int bad = 0;
	for (int round = 0; round < 2000 && bad < 5; round++) {
		size_t off = check_below(&rs, 16), len = check_below(&rs, 4096);
		if (round < 64)
			len = (size_t)round; /* every short length, where the word loop hands over */
		const uint8_t *p = buf + off;
		uint32_t want = reference(0, p, len);
		size_t cut = len ? check_below(&rs, len + 1) : 0;
		uint32_t hw = crc32c(crc32c(0, p, cut), p + cut, len - cut);
		uint32_t sw = crc32c_table(crc32c_table(0, p, cut), p + cut, len - cut);
		if (crc32c(0, p, len) != want || hw != want || sw != want) {
			fprintf(stderr, "  offset %zu length %zu cut %zu: want %08x\n", off, len, cut, want);
			bad++;
		}
	}
	CHECK_EQ(bad, 0);
}

int main(void)
{
	RUN(test_rfc3720_vectors);
	RUN(test_check_value_and_empty);
	RUN(test_random_against_reference);
	return CHECK_DONE();
}
