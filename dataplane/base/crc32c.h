/* CRC-32C (Castagnoli), for checking records in duro's commit logs. */
#ifndef DURO_BASE_CRC32C_H
#define DURO_BASE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends `crc` (0 to start) over data[0..len). */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
/* The same without the SSE4.2 instruction (what crc32c runs on CPUs that lack it), so
 * tests check both ways on any machine. */
uint32_t crc32c_table(uint32_t crc, const void *data, size_t len);

#endif
