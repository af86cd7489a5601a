/* Hex encoding for IDs: lowercase out, either case in, anything else refused. */
#include "hex.h"

#include <errno.h>

void hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
}

int hex_decode(const char *in, size_t len, uint8_t *out)
{
	for (size_t i = 0; i < len; i++) {
		int hi = hex_digit(in[2 * i]), lo = hex_digit(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
