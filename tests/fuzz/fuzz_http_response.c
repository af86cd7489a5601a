/* libFuzzer target: untrusted bytes from an origin into the response-head parser (what
 * duro_fetch reads back), as they would arrive in pieces, and, when the head says chunked,
 * the rest into the chunked decoder. */
#include "http_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_response res;
	if (size < 1)
		return 0;
	size_t step = (size_t)(data[0] % 64) + 1;
	data++;
	size--;
	char *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	long r = 0;
	for (size_t have = step < size ? step : size;; have += step) {
		if (have > size)
			have = size;
		r = http_parse_response(buf, have, 16384, &res);
		if (r != 0 || have == size)
			break;
	}
	if (r < -2)
		abort();
	if (r > 0) {
		if ((size_t)r > size || res.status < 100 || res.status > 999)
			abort();
		for (unsigned i = 0; i < res.nheaders; i++) {
			const struct http_header *h = &res.headers[i];
			if (h->name < buf || h->value + h->value_len > buf + r)
				abort(); /* views must stay inside the head */
			for (uint32_t k = 0; k < h->value_len; k++)
				if (h->value[k] == '\r' || h->value[k] == '\n')
					abort(); /* they become the object's reply headers */
		}
		if (res.chunked && res.content_length >= 0)
			abort();
		if (res.chunked) {
			struct http_chunked d = { 0 };
			size_t src = (size_t)r, dst = (size_t)r;
			for (size_t have = (size_t)r; have < size;) {
				have += step;
				if (have > size)
					have = size;
				int c = http_chunked_decode(&d, buf, have, &src, &dst, 1 << 20, 4096);
				if (dst > src || src > have)
					abort();
				if (c != 0)
					break;
			}
		}
	}
	free(buf);
	return 0;
}
