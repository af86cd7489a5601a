/* The WebSocket opening handshake (RFC 6455 section 4): on the server side which requests
 * ask for an upgrade, whether they are well formed, and the Sec-WebSocket-Accept value; on
 * the client side (duro's own outbound sockets) the key and the check of the server's 101. */
#include "ws.h"
#include "http_parse.h"

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>
#include <errno.h>
#include <sys/random.h>
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

/* accept = base64(SHA-1(key + GUID)), 28 characters and a NUL. */
static int accept_of(const char key[24], char accept[29])
{
	unsigned char in[24 + sizeof(ws_guid) - 1];
	memcpy(in, key, 24);
	memcpy(in + 24, ws_guid, sizeof(ws_guid) - 1);
	unsigned char digest[20];
	if (mbedtls_sha1_ret(in, sizeof(in), digest) != 0)
		return -EINVAL;
	size_t olen = 0;
	if (mbedtls_base64_encode((unsigned char *)accept, 29, &olen, digest, sizeof(digest)) != 0 ||
	    olen != 28)
		return -EINVAL;
	accept[28] = 0;
	return 0;
}

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
	return accept_of(key, accept) < 0 ? -400 : 0;
}

/* ---- client side ---- */

int ws_client_key(char key[25], char accept[29])
{
	unsigned char raw[16];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -EIO;
	size_t olen = 0;
	if (mbedtls_base64_encode((unsigned char *)key, 25, &olen, raw, sizeof(raw)) != 0 || olen != 24)
		return -EINVAL;
	key[24] = 0;
	return accept_of(key, accept);
}

static const char *resp_header(const struct http_response *res, const char *name, size_t *len)
{
	size_t nl = strlen(name);
	for (unsigned i = 0; i < res->nheaders; i++) {
		const struct http_header *h = &res->headers[i];
		if (h->name_len == nl && strncasecmp(h->name, name, nl) == 0) {
			*len = h->value_len;
			return h->value;
		}
	}
	return NULL;
}

long ws_client_check_response(const char *buf, size_t len, const char accept[28], int *status,
			      const char **why)
{
	struct http_response res;
	*status = 0;
	*why = NULL;
	long r = http_parse_response(buf, len, WS_MAX_RESPONSE_HEAD, &res);
	if (r == 0)
		return 0;
	if (r < 0) {
		*why = r == -2 ? "the answer's head is too large" : "the answer is not HTTP/1.1";
		return -EPROTO;
	}
	*status = res.status;
	if (res.status != 101) {
		*why = "the server did not switch protocols (status other than 101)";
		return -ECONNREFUSED;
	}
	size_t n;
	const char *v = resp_header(&res, "Upgrade", &n);
	if (!v || !list_has_token(v, n, "websocket")) {
		*why = "101 without Upgrade: websocket";
		return -EPROTO;
	}
	v = resp_header(&res, "Connection", &n);
	if (!v || !list_has_token(v, n, "upgrade")) {
		*why = "101 without Connection: upgrade";
		return -EPROTO;
	}
	v = resp_header(&res, "Sec-WebSocket-Accept", &n);
	if (!v || n != 28 || memcmp(v, accept, 28) != 0) {
		*why = "Sec-WebSocket-Accept does not match the key sent";
		return -EPROTO;
	}
	/* None was offered, so any is a failure (RFC 6455 section 4.1, points 5 and 6). */
	if (resp_header(&res, "Sec-WebSocket-Extensions", &n) ||
	    resp_header(&res, "Sec-WebSocket-Protocol", &n)) {
		*why = "an extension or subprotocol the client did not offer";
		return -EPROTO;
	}
	return r;
}
