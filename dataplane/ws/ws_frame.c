/* WebSocket frame headers, masking, UTF-8 and close payloads (RFC 6455 sections 5 and 7).
 * Nothing here allocates or keeps state beyond what the caller passes in. */
#include "ws_frame.h"

#include <string.h>

/* Both directions: a client's frames must be masked, a server's must not be. */
static int parse_header(const uint8_t *p, size_t avail, struct ws_frame_hdr *h, int from_client)
{
	if (avail < 2)
		return 0;
	uint8_t b0 = p[0], b1 = p[1];
	if (b0 & 0x70)
		return -WS_CLOSE_PROTOCOL; /* RSV1-3: no extension was negotiated */
	h->fin = b0 >> 7;
	h->opcode = b0 & 0x0f;
	switch (h->opcode) {
	case WS_OP_CONT:
	case WS_OP_TEXT:
	case WS_OP_BINARY:
		break;
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		if (!h->fin)
			return -WS_CLOSE_PROTOCOL;
		break;
	default:
		return -WS_CLOSE_PROTOCOL;
	}
	h->masked = b1 >> 7;
	if (h->masked != from_client)
		return -WS_CLOSE_PROTOCOL; /* section 5.1: each side closes on the other masking */
	uint64_t len = b1 & 0x7f;
	size_t need = 2;
	if (len == 126)
		need += 2;
	else if (len == 127)
		need += 8;
	if (h->opcode >= WS_OP_CLOSE && len > WS_MAX_CONTROL)
		return -WS_CLOSE_PROTOCOL;
	if (from_client)
		need += 4;
	if (avail < need)
		return 0;
	const uint8_t *q = p + 2;
	if (len == 126) {
		len = (uint64_t)q[0] << 8 | q[1];
		q += 2;
	} else if (len == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | q[i];
		if (len >> 63)
			return -WS_CLOSE_PROTOCOL;
		q += 8;
	}
	h->len = len;
	if (from_client)
		memcpy(h->mask, q, 4);
	else
		memset(h->mask, 0, 4); /* unmasking is then a copy */
	return (int)need;
}

int ws_parse_header(const uint8_t *p, size_t avail, struct ws_frame_hdr *h)
{
	return parse_header(p, avail, h, 1);
}

int ws_parse_server_header(const uint8_t *p, size_t avail, struct ws_frame_hdr *h)
{
	return parse_header(p, avail, h, 0);
}

void ws_unmask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4], uint64_t offset)
{
	size_t i = 0;
	unsigned phase = (unsigned)(offset & 3);
	/* Word at a time once the phase is folded into a rotated mask. */
	uint8_t m[8];
	for (int k = 0; k < 8; k++)
		m[k] = mask[(phase + (unsigned)k) & 3];
	uint64_t mw;
	memcpy(&mw, m, 8);
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, src + i, 8);
		w ^= mw;
		memcpy(dst + i, &w, 8);
	}
	for (; i < n; i++)
		dst[i] = src[i] ^ m[i & 7];
}

size_t ws_write_header(uint8_t out[WS_MAX_SERVER_HDR], enum ws_opcode op, uint64_t len)
{
	out[0] = (uint8_t)(0x80 | op);
	if (len < 126) {
		out[1] = (uint8_t)len;
		return 2;
	}
	if (len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
	return 10;
}

size_t ws_write_client_header(uint8_t out[WS_MAX_CLIENT_HDR], enum ws_opcode op, uint64_t len,
			      const uint8_t mask[4])
{
	size_t n = ws_write_header(out, op, len);
	out[1] |= 0x80;
	memcpy(out + n, mask, 4);
	return n + 4;
}

/* The state packs what the next continuation byte may be and how many are still due:
 * bits 0-7 the lowest allowed byte, 8-15 the highest, 16-23 continuation bytes left. The
 * narrowed ranges after E0, ED, F0 and F4 rule out overlong forms, surrogates and code
 * points above U+10FFFF (RFC 3629 section 4). */
static uint32_t utf8_state(unsigned left, unsigned lo, unsigned hi)
{
	return (uint32_t)(left << 16 | hi << 8 | lo);
}

uint32_t ws_utf8_feed(uint32_t state, const uint8_t *p, size_t n)
{
	if (state == WS_UTF8_BAD)
		return state;
	size_t i = 0;
	for (;;) {
		if (state == 0) {
			/* ASCII runs are the common case: skip them eight at a time. */
			while (i + 8 <= n) {
				uint64_t w;
				memcpy(&w, p + i, 8);
				if (w & 0x8080808080808080ull)
					break;
				i += 8;
			}
			while (i < n && p[i] < 0x80)
				i++;
			if (i == n)
				return 0;
			uint8_t b = p[i++];
			if (b >= 0xC2 && b <= 0xDF)
				state = utf8_state(1, 0x80, 0xBF);
			else if (b == 0xE0)
				state = utf8_state(2, 0xA0, 0xBF);
			else if (b == 0xED)
				state = utf8_state(2, 0x80, 0x9F);
			else if (b >= 0xE1 && b <= 0xEF)
				state = utf8_state(2, 0x80, 0xBF);
			else if (b == 0xF0)
				state = utf8_state(3, 0x90, 0xBF);
			else if (b >= 0xF1 && b <= 0xF3)
				state = utf8_state(3, 0x80, 0xBF);
			else if (b == 0xF4)
				state = utf8_state(3, 0x80, 0x8F);
			else
				return WS_UTF8_BAD;
			continue;
		}
		if (i == n)
			return state;
		uint8_t b = p[i++];
		unsigned lo = state & 0xff, hi = (state >> 8) & 0xff, left = state >> 16;
		if (b < lo || b > hi)
			return WS_UTF8_BAD;
		left--;
		state = left ? utf8_state(left, 0x80, 0xBF) : 0;
	}
}

int ws_close_code_valid(unsigned code)
{
	if (code >= 3000 && code <= 4999)
		return 1; /* registered (3xxx) and private (4xxx) */
	switch (code) {
	case 1000: case 1001: case 1002: case 1003: case 1007: case 1008:
	case 1009: case 1010: case 1011: case 1012: case 1013: case 1014:
		return 1;
	default:
		return 0; /* 1004-1006 and 1015 are reserved; the rest unassigned */
	}
}

int ws_check_close(const uint8_t *payload, size_t len, uint16_t *code)
{
	if (len == 0) {
		*code = WS_CLOSE_NO_STATUS;
		return 0;
	}
	if (len == 1)
		return -WS_CLOSE_PROTOCOL;
	unsigned c = (unsigned)payload[0] << 8 | payload[1];
	if (!ws_close_code_valid(c))
		return -WS_CLOSE_PROTOCOL;
	if (ws_utf8_feed(0, payload + 2, len - 2) != 0)
		return -WS_CLOSE_BAD_DATA;
	*code = (uint16_t)c;
	return 0;
}
