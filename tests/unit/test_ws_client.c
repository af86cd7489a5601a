/* The client side of the WebSocket opening handshake (ws_handshake.c): the key and its
 * Accept, and the check of the server's answer in every way it can be wrong. */
#include "check.h"
#include "ws.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* RFC 6455 section 1.3's example key and its Accept. */
static const char accept_ok[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

static long check(const char *resp, int *status, const char **why)
{
	return ws_client_check_response(resp, strlen(resp), accept_ok, status, why);
}

static void test_key(void)
{
	char key[25], acc[29], key2[25], acc2[29];
	CHECK(ws_client_key(key, acc) == 0 && strlen(key) == 24 && strlen(acc) == 28);
	CHECK(ws_client_key(key2, acc2) == 0 && strcmp(key, key2) != 0 && strcmp(acc, acc2) != 0);
}

static void test_answers(void)
{
	int st;
	const char *why;
	const char *good = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			   "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
	CHECK(check(good, &st, &why) == (long)strlen(good) && st == 101);
	/* In pieces: partial until the blank line. */
	for (size_t n = 0; n < strlen(good); n++)
		CHECK(ws_client_check_response(good, n, accept_ok, &st, &why) == 0);
	CHECK(check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		    "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n", &st, &why) == -EPROTO);
	CHECK(why && strstr(why, "Accept"));
	CHECK(check("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", &st, &why) == -ECONNREFUSED &&
	      st == 404);
	CHECK(check("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
		    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", &st, &why) == -EPROTO);
	CHECK(check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", &st, &why) == -EPROTO);
	CHECK(check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
		    "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n", &st, &why) == -EPROTO);
	CHECK(check("SSH-2.0-OpenSSH_9.2\r\n\r\n", &st, &why) == -EPROTO && why);
	/* Frames right behind the head are not part of it. */
	char both[512];
	snprintf(both, sizeof(both), "%s\x81\x02hi", good);
	CHECK(check(both, &st, &why) == (long)strlen(good));
}

int main(void)
{
	RUN(test_key);
	RUN(test_answers);
	return CHECK_DONE();
}
