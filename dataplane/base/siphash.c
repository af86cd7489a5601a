/* SipHash-2-4, written from the paper's description; 64- and 128-bit outputs.
 * Checked against the reference test vectors in tests/unit/test_siphash.c. */
#include "siphash.h"

#include <string.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline void store_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

struct sip {
	uint64_t v0, v1, v2, v3;
};

static inline void sip_round(struct sip *s)
{
	s->v0 += s->v1; s->v1 = ROTL(s->v1, 13); s->v1 ^= s->v0; s->v0 = ROTL(s->v0, 32);
	s->v2 += s->v3; s->v3 = ROTL(s->v3, 16); s->v3 ^= s->v2;
	s->v0 += s->v3; s->v3 = ROTL(s->v3, 21); s->v3 ^= s->v0;
	s->v2 += s->v1; s->v1 = ROTL(s->v1, 17); s->v1 ^= s->v2; s->v2 = ROTL(s->v2, 32);
}

static void sip_absorb(struct sip *s, const uint8_t key[16], const uint8_t *in, size_t len,
		       int wide)
{
	uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
	s->v0 = 0x736f6d6570736575ull ^ k0;
	s->v1 = 0x646f72616e646f6dull ^ k1;
	s->v2 = 0x6c7967656e657261ull ^ k0;
	s->v3 = 0x7465646279746573ull ^ k1;
	if (wide)
		s->v1 ^= 0xee;
	size_t full = len & ~(size_t)7;
	for (size_t i = 0; i < full; i += 8) {
		uint64_t m = load_le64(in + i);
		s->v3 ^= m;
		sip_round(s);
		sip_round(s);
		s->v0 ^= m;
	}
	uint8_t tail[8] = { 0 };
	memcpy(tail, in + full, len - full);
	uint64_t b = ((uint64_t)len << 56) | load_le64(tail);
	s->v3 ^= b;
	sip_round(s);
	sip_round(s);
	s->v0 ^= b;
}

static uint64_t sip_finish(struct sip *s, uint8_t xor_v2)
{
	s->v2 ^= xor_v2;
	for (int i = 0; i < 4; i++)
		sip_round(s);
	return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

uint64_t siphash64(const uint8_t key[16], const void *in, size_t len)
{
	struct sip s;
	sip_absorb(&s, key, in, len, 0);
	return sip_finish(&s, 0xff);
}

void siphash128(const uint8_t key[16], const void *in, size_t len, uint8_t out[16])
{
	struct sip s;
	sip_absorb(&s, key, in, len, 1);
	store_le64(out, sip_finish(&s, 0xee));
	s.v1 ^= 0xdd;
	store_le64(out + 8, sip_finish(&s, 0));
}
