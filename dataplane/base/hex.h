/* Lowercase hex encoding and strict decoding of byte strings (object IDs, secrets). */
#ifndef DURO_BASE_HEX_H
#define DURO_BASE_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Writes 2*len lowercase hex digits to out (no terminator). */
void hex_encode(const uint8_t *in, size_t len, char *out);
/* Decodes exactly 2*len hex digits (either case); returns 0 or -EINVAL. */
int hex_decode(const char *in, size_t len, uint8_t *out);

#endif
