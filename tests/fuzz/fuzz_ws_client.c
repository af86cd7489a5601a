/* libFuzzer target: untrusted bytes from an upstream server into the client side of the
 * WebSocket opening handshake (what duro_ws_connect reads back before any frame), as they
 * would arrive in pieces, checked against the Accept of a fixed key; plus the server-frame
 * header parser the socket then reads with. */
#include "ws.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* base64(SHA-1("dGhlIHNhbXBsZSBub25jZQ==" + GUID)), RFC 6455 section 1.3's example. */
static const char expected_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = (size_t)(data[0] % 64) + 1;
	data++;
	size--;
	char *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	long r = 0;
	int status = 0;
	const char *why = NULL;
	for (size_t have = step < size ? step : size;; have += step) {
		if (have > size)
			have = size;
		r = ws_client_check_response(buf, have, expected_accept, &status, &why);
		if (r != 0 || have == size)
			break;
	}
	if (r > 0 && ((size_t)r > size || status != 101))
		abort();
	if (r < 0 && !why)
		abort(); /* every refusal says why, for the log */
	if (r > 0) {
		/* The frames after the head, as a client reads them. */
		size_t off = (size_t)r;
		struct ws_frame_hdr h;
		while (off < size) {
			int n = ws_parse_server_header((const uint8_t *)buf + off, size - off, &h);
			if (n <= 0)
				break;
			if (h.masked || n > 10)
				abort();
			if (h.len > size - off - (size_t)n)
				break;
			off += (size_t)n + (size_t)h.len;
		}
	}
	free(buf);
	return 0;
}
