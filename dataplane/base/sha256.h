/* SHA-256 (FIPS 180-4): names a deployed class module by its content, so two files that
 * differ are never confused and the same file deployed twice is stored once. */
#ifndef DURO_BASE_SHA256_H
#define DURO_BASE_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint64_t len; /* bytes hashed so far */
	uint8_t buf[64];
	size_t nbuf;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
/* Writes the 32-byte digest; s must be initialized again before reuse. */
void sha256_final(struct sha256 *s, uint8_t out[32]);
/* The digest of data as 64 lowercase hex digits and a NUL. */
void sha256_hex(const void *data, size_t len, char out[65]);

#endif
