/* Lowercase hex encoding and strict decoding of byte strings (object IDs, secrets). */
#ifndef DURO_BASE_HEX_H
#define DURO_BASE_HEX_H

#include <stddef.h>
#include <stdint.h>

/* The value of one hex digit (either case), or -1. */
static inline int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Writes 2*len lowercase hex digits to out (no terminator). */
void hex_encode(const uint8_t *in, size_t len, char *out);
/* Decodes exactly 2*len hex digits (either case); returns 0 or -EINVAL. */
int hex_decode(const char *in, size_t len, uint8_t *out);

#endif
