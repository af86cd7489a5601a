/* The server side of the WebSocket opening handshake (RFC 6455 section 4.2): which requests
 * ask for an upgrade, whether they are well formed, and the Sec-WebSocket-Accept value. */
#include "ws.h"
#include "http_parse.h"

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>
#include <string.h>
#include <strings.h>

/* 1 when the comma-separated list v[0..n) holds `token` (case-insensitive). */
static int list_has_token(const char *v, size_t n, const char *token)
{
	size_t tl = strlen(token);
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t start = i;
		while (i < n && v[i] != ',')
			i++;
		size_t end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end - start == tl && strncasecmp(v + start, token, tl) == 0)
			return 1;
	}
	return 0;
}

int ws_is_upgrade(const struct http_request *req)
{
	size_t n;
	const char *v = http_find_header(req, "Upgrade", &n);
	return v && list_has_token(v, n, "websocket");
}

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int ws_handshake_check(const struct http_request *req, char accept[29])
{
	size_t n;
	const char *v;
	if (req->method_len != 3 || memcmp(req->method, "GET", 3) != 0 || req->minor_version < 1)
		return -400;
	if (!ws_is_upgrade(req))
		return -400;
	v = http_find_header(req, "Connection", &n);
	if (!v || !list_has_token(v, n, "upgrade"))
		return -400;
	v = http_find_header(req, "Sec-WebSocket-Version", &n);
	if (!v || n != 2 || memcmp(v, "13", 2) != 0)
		return -426;
	const char *key = http_find_header(req, "Sec-WebSocket-Key", &n);
	if (!key || n != 24)
		return -400;
	/* The key must be the base64 of 16 bytes. */
	unsigned char raw[18];
	size_t rawlen = 0;
	if (mbedtls_base64_decode(raw, sizeof(raw), &rawlen, (const unsigned char *)key, n) != 0 ||
	    rawlen != 16)
		return -400;
	unsigned char in[24 + sizeof(ws_guid) - 1];
	memcpy(in, key, 24);
	memcpy(in + 24, ws_guid, sizeof(ws_guid) - 1);
	unsigned char digest[20];
	if (mbedtls_sha1_ret(in, sizeof(in), digest) != 0)
		return -400;
	size_t olen = 0;
	if (mbedtls_base64_encode((unsigned char *)accept, 29, &olen, digest, sizeof(digest)) != 0 ||
	    olen != 28)
		return -400;
	accept[28] = 0;
	return 0;
}
