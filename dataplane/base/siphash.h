/* SipHash-2-4 with 128-bit output (Aumasson and Bernstein), a keyed PRF that is fast on
 * short inputs: it derives object IDs from names and MACs IDs to their namespace. */
#ifndef DURO_BASE_SIPHASH_H
#define DURO_BASE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* Writes the 16-byte tag of `in` under the 16-byte `key` to `out`. */
void siphash128(const uint8_t key[16], const void *in, size_t len, uint8_t out[16]);
/* 64-bit output variant, for hash tables and the slot map. */
uint64_t siphash64(const uint8_t key[16], const void *in, size_t len);

#endif
