/* Unit tests for the HTTP request parser and chunked decoder: good shapes, partial input at
 * every byte, and every bad-input case the server must answer with its status. */
#include "check.h"
#include "http_parse.h"

#include <string.h>

static struct http_request req;

static long parse(const char *s) { return http_parse_request(s, strlen(s), 16384, &req); }

static void test_simple_get(void)
{
	const char *s = "GET /counter/a?x=1 HTTP/1.1\r\nHost: h\r\nX-A:  v v \r\n\r\n";
	CHECK_EQ(parse(s), (long)strlen(s));
	CHECK(req.method_len == 3 && memcmp(req.method, "GET", 3) == 0);
	CHECK(req.path_len == 10 && memcmp(req.path, "/counter/a", 10) == 0);
	CHECK(req.query_len == 3 && memcmp(req.query, "x=1", 3) == 0);
	CHECK_EQ(req.nheaders, 2);
	size_t len;
	const char *v = http_find_header(&req, "x-a", &len);
	CHECK(v && len == 3 && memcmp(v, "v v", 3) == 0);
	CHECK_EQ(req.keep_alive, 1);
	CHECK_EQ(req.content_length, -1);
}

static void test_partial_every_byte(void)
{
	const char *s = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
	size_t n = strlen(s);
	for (size_t i = 0; i < n; i++)
		CHECK_EQ(http_parse_request(s, i, 16384, &req), 0);
	CHECK_EQ(http_parse_request(s, n, 16384, &req), (long)n);
	CHECK_EQ(req.content_length, 5);
}

static void test_pipelined_heads(void)
{
	const char *s = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
	long r = parse(s);
	CHECK_EQ(r, (long)strlen(s) / 2);
	CHECK_EQ(http_parse_request(s + r, strlen(s) - (size_t)r, 16384, &req), r);
	CHECK(req.path[1] == 'b');
}

static void test_http10_and_connection(void)
{
	CHECK(parse("GET / HTTP/1.0\r\n\r\n") > 0);
	CHECK_EQ(req.keep_alive, 0);
	CHECK(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") > 0);
	CHECK_EQ(req.keep_alive, 1);
	CHECK(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n") > 0);
	CHECK_EQ(req.keep_alive, 0);
	CHECK(parse("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n") > 0); /* leading CRLF ignored */
}

static void test_bad_request_lines(void)
{
	CHECK_EQ(parse("GET\r\n\r\n"), -400);
	CHECK_EQ(parse("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ(parse("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ(parse("G(T / HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ(parse("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ(parse("GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ(parse("GET / FOO/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ(parse("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), -505);
	CHECK_EQ(parse("GET / HTTP/1.2\r\nHost: h\r\n\r\n"), -505);
	CHECK_EQ(parse("\x16\x03\x01\x02\x00\x01\x00"), -400); /* TLS on a plain port */
}

static void test_bad_fields(void)
{
	CHECK_EQ(parse("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), -400);    /* space before colon */
	CHECK_EQ(parse("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n"), -400); /* obs-fold */
	CHECK_EQ(parse("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n"), -400); /* bare CR */
	CHECK_EQ(parse("GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n"), -400); /* bare LF */
	CHECK_EQ(parse("GET / HTTP/1.1\nHost: h\r\n\r\n"), -400);
	static const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
	CHECK_EQ(http_parse_request(nul, sizeof(nul) - 1, 16384, &req), -400);
	CHECK_EQ(parse("GET / HTTP/1.1\r\n: v\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ(parse("GET / HTTP/1.1\r\n\r\n"), -400);                    /* no Host */
	CHECK_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), -400); /* two Hosts */
	CHECK_EQ(parse("GET / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n"), -417);
}

static void test_lengths_and_smuggling(void)
{
	CHECK(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n") > 0);
	CHECK_EQ(req.content_length, 3);
	CHECK_EQ(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"), -400);
	CHECK_EQ(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\n"), -400);
	CHECK_EQ(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"), -400);
	CHECK_EQ(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n"), -400);
	CHECK_EQ(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n"), -400);
	CHECK_EQ(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), -400);
	CHECK_EQ(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"), -501);
	CHECK_EQ(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), -501);
	CHECK_EQ(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), -400);
	CHECK_EQ(parse("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), -400);
	CHECK_EQ(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n"), -501);
	CHECK(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n") > 0);
	CHECK_EQ(req.chunked, 1);
}

static void test_head_limits(void)
{
	static char big[20000];
	int n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: h\r\nX: ");
	memset(big + n, 'a', 17000);
	/* Not complete and already past the limit: 431 without waiting for the rest. */
	CHECK_EQ(http_parse_request(big, (size_t)n + 17000, 16384, &req), -431);
	/* Under the limit and incomplete: wait. */
	CHECK_EQ(http_parse_request(big, 16000, 16384, &req), 0);
	char many[8000];
	int m = snprintf(many, sizeof(many), "GET / HTTP/1.1\r\nHost: h\r\n");
	for (int i = 0; i < DURO_MAX_HEADERS + 1; i++)
		m += snprintf(many + m, sizeof(many) - (size_t)m, "X%d: y\r\n", i);
	m += snprintf(many + m, sizeof(many) - (size_t)m, "\r\n");
	CHECK_EQ(http_parse_request(many, (size_t)m, 16384, &req), -431);
}

/* RFC 9110 section 7.2, RFC 3986 section 3.2.2: uri-host [ ":" port ]. */
static void test_host_values(void)
{
	static const char *const good[] = {
		"h", "example.com", "example.com:8080", "127.0.0.1", "127.0.0.1:80", "[::1]",
		"[::1]:8787", "[2001:db8::7]", "[::ffff:10.0.0.1]", "[1:2:3:4:5:6:7:8]", "[v7.a:b]",
		"a%20b", "sub-delims!$&'()*+,;=", "a:", "", "xn--bcher-kva.example",
	};
	static const char *const bad[] = {
		"a b", "a/b@c", "a@b", "a/b", "a?b", "a#b", "a:b", "a:80:81", "[::1", "::1",
		"[::1]x", "[:::1]", "[1:2:3:4:5:6:7:8:9]", "[g::1]", "[1::2::3]", "[::1]:8a",
		"[v.a]", "[vx.a]", "[v7.]", "a%2", "a%zz", "a\"b", "a\\b", "a\x80", "a{b}",
		"[::256.0.0.1]", "[::1.2.3]",
	};
	char buf[256];
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", good[i]);
		if (parse(buf) <= 0)
			fprintf(stderr, "  good host refused: \"%s\"\n", good[i]);
		CHECK(parse(buf) > 0);
		size_t len;
		const char *v = http_find_header(&req, "host", &len);
		CHECK(v && len == strlen(good[i]) && memcmp(v, good[i], len) == 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", bad[i]);
		if (parse(buf) != -400)
			fprintf(stderr, "  bad host taken: \"%s\"\n", bad[i]);
		CHECK_EQ(parse(buf), -400);
		/* HTTP/1.0 needs no Host, but one that is there must be valid too. */
		snprintf(buf, sizeof(buf), "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", bad[i]);
		CHECK_EQ(parse(buf), -400);
	}
	CHECK_EQ(parse("GET / HTTP/1.1\r\nX: y\r\n\r\n"), -400); /* 1.1 without Host */
	CHECK(parse("GET / HTTP/1.0\r\n\r\n") > 0);
	size_t len;
	CHECK(http_find_header(&req, "host", &len) == NULL);
}

/* RFC 9112 section 3.2: the four forms of request-target. */
static void test_absolute_form(void)
{
	size_t len;
	const char *v;
	CHECK(parse("GET http://Other.example:8080/counter/x?q=1 HTTP/1.1\r\nHost: h\r\n\r\n") > 0);
	CHECK(req.path_len == 10 && memcmp(req.path, "/counter/x", 10) == 0);
	CHECK(req.query_len == 3 && memcmp(req.query, "q=1", 3) == 0);
	CHECK(req.target_len == 39);
	/* The target's authority replaces Host. */
	v = http_find_header(&req, "Host", &len);
	CHECK(v && len == 18 && memcmp(v, "Other.example:8080", 18) == 0);
	CHECK(parse("GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n") > 0);
	CHECK(req.path_len == 1 && req.path[0] == '/' && req.query == NULL);
	CHECK(parse("GET http://h?a=b HTTP/1.1\r\nHost: h\r\n\r\n") > 0);
	CHECK(req.path_len == 1 && req.path[0] == '/' && req.query_len == 3);
	CHECK(parse("GET http://[::1]:80/a HTTP/1.0\r\n\r\n") > 0); /* 1.0: Host not needed */
	CHECK(req.path_len == 2 && memcmp(req.path, "/a", 2) == 0);
	v = http_find_header(&req, "host", &len);
	CHECK(v && len == 8 && memcmp(v, "[::1]:80", 8) == 0);
	/* Host is still required in 1.1 and must still be valid. */
	CHECK_EQ(parse("GET http://h/a HTTP/1.1\r\n\r\n"), -400);
	CHECK_EQ(parse("GET http://h/a HTTP/1.1\r\nHost: a b\r\n\r\n"), -400);
	CHECK_EQ(parse("GET ftp://h/a HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ(parse("GET http://u@h/a HTTP/1.1\r\nHost: h\r\n\r\n"), -400); /* userinfo */
	CHECK_EQ(parse("GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n"), -400);    /* no host */
	CHECK_EQ(parse("GET http://h:8x/a HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ(parse("GET http:/h/a HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ(parse("GET http://h#f HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	/* Neither origin- nor absolute-form. */
	CHECK_EQ(parse("GET counter/x HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK_EQ(parse("GET * HTTP/1.1\r\nHost: h\r\n\r\n"), -400);
	CHECK(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n") > 0);
	/* authority-form is CONNECT's, a proxy's business. */
	CHECK_EQ(parse("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"), -501);
	/* The same views are found again when a head is parsed a second time in place. */
	const char *s = "GET http://h HTTP/1.1\r\nHost: h\r\n\r\n";
	CHECK_EQ(parse(s), (long)strlen(s));
	CHECK_EQ(parse(s), (long)strlen(s));
	CHECK(req.path_len == 1 && req.path[0] == '/');
}

static int decode_all(const char *in, size_t step, char *out, size_t *outlen, uint64_t max)
{
	static char buf[4096];
	size_t n = strlen(in), have = 0, src = 0, dst = 0;
	struct http_chunked d = { 0 };
	int r = 0;
	while (have < n) {
		size_t add = n - have < step ? n - have : step;
		memcpy(buf + have, in + have, add);
		have += add;
		r = http_chunked_decode(&d, buf, have, &src, &dst, max, 1024);
		if (r != 0)
			break;
	}
	memcpy(out, buf, dst);
	*outlen = dst;
	return r;
}

static void test_chunked(void)
{
	const char *body = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n";
	char out[256];
	size_t len;
	for (size_t step = 1; step <= strlen(body); step++) {
		CHECK_EQ(decode_all(body, step, out, &len, 1 << 20), 1);
		CHECK(len == 12 && memcmp(out, "hello, world", 12) == 0);
	}
	CHECK_EQ(decode_all("A\r\n0123456789\r\n0\r\n\r\n", 100, out, &len, 1 << 20), 1);
	CHECK_EQ(len, 10);
	CHECK_EQ(decode_all("g\r\n", 100, out, &len, 1 << 20), -400);
	CHECK_EQ(decode_all("5\r\nhelloX\r\n", 100, out, &len, 1 << 20), -400);
	CHECK_EQ(decode_all("5\nhello\r\n", 100, out, &len, 1 << 20), -400);
	CHECK_EQ(decode_all("ffffffffffffffffff\r\n", 100, out, &len, 1 << 20), -400);
	CHECK_EQ(decode_all("400\r\n", 100, out, &len, 1000), -413);
	CHECK_EQ(decode_all("\r\n", 100, out, &len, 1000), -400);
}

/* RFC 9112 section 7.1.1: after the size only BWS ";" extensions; trailers are fields. */
static void test_chunk_extensions_and_trailers(void)
{
	char out[256];
	size_t len;
	static const char *const good[] = {
		"5;a\r\nhello\r\n0\r\n\r\n",
		"5 ;a\r\nhello\r\n0\r\n\r\n",
		"5\t; a = b ;c\r\nhello\r\n0\r\n\r\n",
		"5;a=\"q \\\" ;x\"\r\nhello\r\n0\r\n\r\n",
		"5;a=b;c=\"\"\r\nhello\r\n0;z\r\n\r\n",
		"5\r\nhello\r\n0\r\nA: b\r\nC:\r\n\r\n",
	};
	static const char *const bad[] = {
		"5 garbage\r\nhello\r\n0\r\n\r\n",
		"5 \r\nhello\r\n0\r\n\r\n",
		"5;\r\nhello\r\n0\r\n\r\n",
		"5;a=\r\nhello\r\n0\r\n\r\n",
		"5;a b\r\nhello\r\n0\r\n\r\n",
		"5;a=\"x\r\nhello\r\n0\r\n\r\n",
		"5;a=\"x\"y\r\nhello\r\n0\r\n\r\n",
		"5;a=b c\r\nhello\r\n0\r\n\r\n",
		"5;a=(b)\r\nhello\r\n0\r\n\r\n",
		"5;a\nhello\r\n0\r\n\r\n",
		"5\r\nhello\r\n0\r\nno-colon\r\n\r\n",
		"5\r\nhello\r\n0\r\n: v\r\n\r\n",
		"5\r\nhello\r\n0\r\nA : v\r\n\r\n",
		"5\r\nhello\r\n0\r\n folded\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		for (size_t step = 1; step <= strlen(good[i]); step++) {
			int r = decode_all(good[i], step, out, &len, 1 << 20);
			if (r != 1)
				fprintf(stderr, "  good chunked refused: %zu step %zu: %d\n", i, step, r);
			CHECK(r == 1 && len == 5 && memcmp(out, "hello", 5) == 0);
		}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		for (size_t step = 1; step <= strlen(bad[i]); step++) {
			int r = decode_all(bad[i], step, out, &len, 1 << 20);
			if (r != -400)
				fprintf(stderr, "  bad chunked taken: %zu step %zu: %d\n", i, step, r);
			CHECK_EQ(r, -400);
		}
}

/* Response heads: what duro_fetch reads back from origins. */
static void test_responses(void)
{
	static struct http_response rs;
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  v  \r\n\r\nhello";
	long n = http_parse_response(ok, strlen(ok), 16384, &rs);
	CHECK_EQ(n, (long)strlen(ok) - 5);
	CHECK(rs.status == 200 && rs.minor_version == 1 && rs.keep_alive && !rs.chunked);
	CHECK(rs.content_length == 5 && rs.nheaders == 2);
	CHECK(rs.headers[1].value_len == 1 && rs.headers[1].value[0] == 'v');
	/* Every prefix is partial, never an error. */
	for (size_t k = 0; k < (size_t)n; k++)
		CHECK_EQ(http_parse_response(ok, k, 16384, &rs), 0);
	const char *ch = "HTTP/1.0 201 \r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n";
	CHECK_EQ(http_parse_response(ch, strlen(ch), 16384, &rs), (long)strlen(ch));
	CHECK(rs.status == 201 && rs.chunked && rs.keep_alive && rs.content_length == -1);
	const char *cl = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
	CHECK(http_parse_response(cl, strlen(cl), 16384, &rs) > 0 && !rs.keep_alive);
	const char *bad[] = {
		"HTTP/2 200 OK\r\n\r\n",                   /* not 1.x */
		"HTTP/1.1 20 OK\r\n\r\n",                  /* two digits */
		"HTTP/1.1 099 X\r\n\r\n",                  /* first digit 0 */
		"HTTP/1.1 200 OK\nX: y\r\n\r\n",           /* bare LF */
		"HTTP/1.1 200 OK\r\n folded\r\n\r\n",      /* obs-fold */
		"HTTP/1.1 200 OK\r\nX : y\r\n\r\n",        /* space before the colon */
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",     /* bare CR in a value */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long r = http_parse_response(bad[i], strlen(bad[i]), 16384, &rs);
		if (r != -1)
			fprintf(stderr, "  bad response taken: %zu: %ld\n", i, r);
		CHECK_EQ(r, -1);
	}
	/* Over the head limit: -2, as soon as the limit is passed without an end. */
	char big[300];
	memset(big, 'a', sizeof(big));
	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
	CHECK_EQ(http_parse_response(big, sizeof(big), 128, &rs), -2);
}

int main(void)
{
	RUN(test_simple_get);
	RUN(test_partial_every_byte);
	RUN(test_pipelined_heads);
	RUN(test_http10_and_connection);
	RUN(test_bad_request_lines);
	RUN(test_bad_fields);
	RUN(test_lengths_and_smuggling);
	RUN(test_head_limits);
	RUN(test_chunked);
	RUN(test_host_values);
	RUN(test_absolute_form);
	RUN(test_chunk_extensions_and_trailers);
	RUN(test_responses);
	return CHECK_DONE();
}
