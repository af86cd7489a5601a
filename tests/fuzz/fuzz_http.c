/* libFuzzer target: untrusted bytes into the request-head parser and, when the head says
 * chunked, the rest into the chunked decoder in pieces whose sizes the input chooses. */
#include "http_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_request req;
	if (size < 1)
		return 0;
	size_t step = (size_t)(data[0] % 64) + 1;
	data++;
	size--;
	char *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	/* Parse prefixes as the bytes would arrive: 0 (partial) until complete or refused. */
	long r = 0;
	for (size_t have = step < size ? step : size;; have += step) {
		if (have > size)
			have = size;
		r = http_parse_request(buf, have, 16384, &req);
		if (r != 0 || have == size)
			break;
	}
	if (r > 0) {
		if ((size_t)r > size)
			abort();
		for (unsigned i = 0; i < req.nheaders; i++) {
			const struct http_header *h = &req.headers[i];
			if (h->name < buf || h->value + h->value_len > buf + r)
				abort(); /* views must stay inside the head */
		}
		/* The path is inside the target, or the "/" an absolute-form target implies. */
		int in_target = req.path >= req.target &&
				req.path + req.path_len <= req.target + req.target_len;
		if (!in_target && !(req.absolute_form && req.path_len == 1 && req.path[0] == '/'))
			abort();
		if (req.path_len == 0 || (req.query && (req.query < req.target ||
				req.query + req.query_len > req.target + req.target_len)))
			abort();
		if (req.authority && (req.authority < buf || req.authority + req.authority_len > buf + r))
			abort();
		if (req.minor_version == 1 && !req.authority)
			abort(); /* HTTP/1.1 always says where it is going */
		if (req.chunked) {
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
