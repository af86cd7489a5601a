/* WebSocket framing: header parsing and its refusals, server headers, masking at any
 * offset, incremental UTF-8 (RFC 3629 boundaries), close payloads, the handshake key. */
#include "check.h"
#include "ws_frame.h"

#include <string.h>

static void test_headers(void)
{
	struct ws_frame_hdr h;
	const uint8_t text[] = { 0x81, 0x85, 1, 2, 3, 4 };
	CHECK(ws_parse_header(text, 1, &h) == 0);
	CHECK(ws_parse_header(text, 5, &h) == 0);
	CHECK(ws_parse_header(text, 6, &h) == 6);
	CHECK(h.fin == 1 && h.opcode == WS_OP_TEXT && h.len == 5 && h.mask[3] == 4);
	const uint8_t mid[] = { 0x02, 0xFE, 0x01, 0x00, 9, 9, 9, 9 };
	CHECK(ws_parse_header(mid, 7, &h) == 0);
	CHECK(ws_parse_header(mid, 8, &h) == 8);
	CHECK(h.fin == 0 && h.opcode == WS_OP_BINARY && h.len == 256);
	const uint8_t big[] = { 0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4 };
	CHECK(ws_parse_header(big, 14, &h) == 14 && h.len == (1ull << 32));
	/* refusals */
	const uint8_t rsv[] = { 0xC1, 0x80, 0, 0, 0, 0 };
	CHECK(ws_parse_header(rsv, 6, &h) == -WS_CLOSE_PROTOCOL);
	const uint8_t op3[] = { 0x83, 0x80, 0, 0, 0, 0 };
	CHECK(ws_parse_header(op3, 6, &h) == -WS_CLOSE_PROTOCOL);
	const uint8_t unmasked[] = { 0x81, 0x05 };
	CHECK(ws_parse_header(unmasked, 2, &h) == -WS_CLOSE_PROTOCOL);
	const uint8_t fragping[] = { 0x09, 0x80, 0, 0, 0, 0 };
	CHECK(ws_parse_header(fragping, 6, &h) == -WS_CLOSE_PROTOCOL);
	const uint8_t bigping[] = { 0x89, 0xFE, 0, 126, 0, 0, 0, 0 };
	CHECK(ws_parse_header(bigping, 2, &h) == -WS_CLOSE_PROTOCOL); /* known at byte 2 */
	const uint8_t topbit[] = { 0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4 };
	CHECK(ws_parse_header(topbit, 14, &h) == -WS_CLOSE_PROTOCOL);
}

static void test_write_header(void)
{
	uint8_t out[WS_MAX_SERVER_HDR];
	CHECK(ws_write_header(out, WS_OP_TEXT, 125) == 2 && out[0] == 0x81 && out[1] == 125);
	CHECK(ws_write_header(out, WS_OP_BINARY, 126) == 4 && out[1] == 126 && out[3] == 126);
	CHECK(ws_write_header(out, WS_OP_BINARY, 65535) == 4 && out[2] == 0xFF);
	CHECK(ws_write_header(out, WS_OP_BINARY, 65536) == 10 && out[1] == 127 && out[7] == 1);
}

static void test_unmask(void)
{
	uint8_t mask[4] = { 0xA1, 0xB2, 0xC3, 0xD4 }, plain[37], wire[37], back[37];
	for (int i = 0; i < 37; i++) {
		plain[i] = (uint8_t)(i * 7);
		wire[i] = plain[i] ^ mask[i & 3];
	}
	/* in pieces at every phase, as bytes arrive */
	for (size_t cut = 0; cut <= 37; cut++) {
		ws_unmask(back, wire, cut, mask, 0);
		ws_unmask(back + cut, wire + cut, 37 - cut, mask, cut);
		CHECK(memcmp(back, plain, 37) == 0);
	}
}

static int valid(const char *s, size_t n)
{
	return ws_utf8_feed(0, (const uint8_t *)s, n) == 0;
}

static void test_utf8(void)
{
	CHECK(valid("", 0));
	CHECK(valid("plain ascii", 11));
	CHECK(valid("\xc2\x80", 2) && valid("\xdf\xbf", 2));
	CHECK(valid("\xe0\xa0\x80", 3) && valid("\xef\xbf\xbf", 3));
	CHECK(valid("\xed\x9f\xbf", 3));                           /* U+D7FF */
	CHECK(valid("\xf0\x90\x80\x80", 4) && valid("\xf4\x8f\xbf\xbf", 4)); /* U+10000, U+10FFFF */
	CHECK(!valid("\xc0\x80", 2) && !valid("\xc1\xbf", 2));     /* overlong */
	CHECK(!valid("\xe0\x9f\xbf", 3));                          /* overlong */
	CHECK(!valid("\xed\xa0\x80", 3));                          /* surrogate */
	CHECK(!valid("\xf0\x8f\xbf\xbf", 4));                      /* overlong */
	CHECK(!valid("\xf4\x90\x80\x80", 4) && !valid("\xf5\x80\x80\x80", 4));
	CHECK(!valid("\x80", 1) && !valid("\xfe", 1) && !valid("\xff", 1));
	CHECK(ws_utf8_feed(0, (const uint8_t *)"\xe2\x82", 2) != 0); /* mid-character */
	CHECK(ws_utf8_feed(0, (const uint8_t *)"\xe2\x82", 2) != WS_UTF8_BAD);
	/* the same verdicts when split anywhere */
	const char *s = "a\xf0\x9f\x8e\x89\xe2\x82\xac\xc3\xa9z";
	size_t n = strlen(s);
	for (size_t cut = 0; cut <= n; cut++) {
		uint32_t st = ws_utf8_feed(0, (const uint8_t *)s, cut);
		CHECK(ws_utf8_feed(st, (const uint8_t *)s + cut, n - cut) == 0);
	}
	uint32_t st = ws_utf8_feed(0, (const uint8_t *)"\xed", 1);
	CHECK(ws_utf8_feed(st, (const uint8_t *)"\xa0", 1) == WS_UTF8_BAD);
}

static void test_close(void)
{
	uint16_t code = 0;
	CHECK(ws_check_close(NULL, 0, &code) == 0 && code == WS_CLOSE_NO_STATUS);
	CHECK(ws_check_close((const uint8_t *)"\x03", 1, &code) == -WS_CLOSE_PROTOCOL);
	CHECK(ws_check_close((const uint8_t *)"\x03\xe8ok", 4, &code) == 0 && code == 1000);
	CHECK(ws_check_close((const uint8_t *)"\x03\xed", 2, &code) == -WS_CLOSE_PROTOCOL); /* 1005 */
	CHECK(ws_check_close((const uint8_t *)"\x0f\xa0", 2, &code) == 0 && code == 4000);
	CHECK(ws_check_close((const uint8_t *)"\x13\x88", 2, &code) == -WS_CLOSE_PROTOCOL); /* 5000 */
	CHECK(ws_check_close((const uint8_t *)"\x03\xe8\xff", 3, &code) == -WS_CLOSE_BAD_DATA);
	CHECK(!ws_close_code_valid(1004) && !ws_close_code_valid(1006) && !ws_close_code_valid(2999));
	CHECK(ws_close_code_valid(1013) && ws_close_code_valid(3000) && ws_close_code_valid(4999));
}

/* Frames a server sends, as duro's client sockets read them: unmasked, or a 1002. */
static void test_server_headers(void)
{
	struct ws_frame_hdr h;
	const uint8_t text[] = { 0x81, 0x05 };
	CHECK(ws_parse_server_header(text, 1, &h) == 0);
	CHECK(ws_parse_server_header(text, 2, &h) == 2 && h.len == 5 && !h.masked);
	CHECK(h.mask[0] == 0 && h.mask[3] == 0);
	const uint8_t mid[] = { 0x02, 0x7e, 0x01, 0x00 };
	CHECK(ws_parse_server_header(mid, 3, &h) == 0);
	CHECK(ws_parse_server_header(mid, 4, &h) == 4 && h.len == 256 && !h.fin);
	const uint8_t big[] = { 0x82, 0x7f, 0, 0, 0, 1, 0, 0, 0, 0 };
	CHECK(ws_parse_server_header(big, 10, &h) == 10 && h.len == (1ull << 32));
	const uint8_t masked[] = { 0x81, 0x82, 1, 2, 3, 4 };
	CHECK(ws_parse_server_header(masked, 6, &h) == -WS_CLOSE_PROTOCOL);
	CHECK(ws_parse_header(text, 2, &h) == -WS_CLOSE_PROTOCOL); /* and the other way round */
	const uint8_t rsv[] = { 0xC1, 0x00 };
	CHECK(ws_parse_server_header(rsv, 2, &h) == -WS_CLOSE_PROTOCOL);
}

static void test_client_header(void)
{
	uint8_t out[WS_MAX_CLIENT_HDR], mask[4] = { 9, 8, 7, 6 };
	struct ws_frame_hdr h;
	size_t n = ws_write_client_header(out, WS_OP_TEXT, 5, mask);
	CHECK(n == 6 && out[0] == 0x81 && out[1] == (0x80 | 5) && out[5] == 6);
	CHECK(ws_parse_header(out, n, &h) == 6 && h.masked && h.len == 5 && h.mask[0] == 9);
	n = ws_write_client_header(out, WS_OP_BINARY, 70000, mask);
	CHECK(n == 14 && out[1] == (0x80 | 127));
	CHECK(ws_parse_header(out, n, &h) == 14 && h.len == 70000 && h.mask[3] == 6);
}

int main(void)
{
	RUN(test_server_headers);
	RUN(test_client_header);
	RUN(test_headers);
	RUN(test_write_header);
	RUN(test_unmask);
	RUN(test_utf8);
	RUN(test_close);
	return CHECK_DONE();
}
