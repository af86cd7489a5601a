/* The metrics listener's HTTP: routing a parsed request head to a page, and the response
 * head. The parsing itself is the data plane's http_parse_request. */
#include "ctl_http.h"
#include "http_parse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int is(const char *p, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

int ctl_http_route(const char *buf, size_t len, struct ctl_http_route *out)
{
	struct http_request req;
	*out = (struct ctl_http_route){ .status = 400, .page = CTL_PAGE_NONE };
	long r = http_parse_request(buf, len, CTL_HTTP_MAX_HEAD, &req);
	if (r == 0) {
		if (len < CTL_HTTP_MAX_HEAD)
			return 0;
		out->status = 431; /* the parser waits for a head that may not be longer */
		return 1;
	}
	if (r < 0) {
		out->status = (int)-r;
		return 1;
	}
	int get = is(req.method, req.method_len, "GET"), head = is(req.method, req.method_len, "HEAD");
	if (!get && !head) {
		out->status = 405;
		return 1;
	}
	out->head_only = head;
	if (is(req.path, req.path_len, "/metrics"))
		out->page = CTL_PAGE_METRICS;
	else if (is(req.path, req.path_len, "/api/stats"))
		out->page = CTL_PAGE_STATS;
	else if (is(req.path, req.path_len, "/dashboard") || is(req.path, req.path_len, "/"))
		out->page = CTL_PAGE_DASHBOARD;
	else if (is(req.path, req.path_len, "/api/sql")) {
		out->page = CTL_PAGE_SQL;
		out->query = req.query;
		out->query_len = req.query ? req.query_len : 0;
	}
	out->status = out->page == CTL_PAGE_NONE ? 404 : 200;
	return 1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long ctl_http_query(const char *q, size_t len, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key);
	const char *end = q + len;
	for (const char *p = q; p && p < end;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		if ((size_t)(stop - p) > klen && p[klen] == '=' && !memcmp(p, key, klen)) {
			size_t n = 0;
			for (const char *v = p + klen + 1; v < stop; v++) {
				int ch = (unsigned char)*v;
				if (ch == '+') {
					ch = ' ';
				} else if (ch == '%') {
					int hi = v + 2 < stop ? hexval(v[1]) : -1, lo = hi >= 0 ? hexval(v[2]) : -1;
					if (lo < 0)
						return -EINVAL;
					ch = hi << 4 | lo;
					v += 2;
				}
				if (n + 1 >= cap)
					return -ENOSPC;
				out[n++] = (char)ch;
			}
			if (cap == 0)
				return -ENOSPC;
			out[n] = 0;
			return (long)n;
		}
		p = amp ? amp + 1 : NULL;
	}
	return -ENOENT;
}

const char *ctl_http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

int ctl_http_head(char *buf, size_t cap, int status, const char *type, size_t body_len)
{
	int n = snprintf(buf, cap,
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
			 status, ctl_http_reason(status), type, body_len,
			 status == 405 ? "Allow: GET, HEAD\r\n" : "");
	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}
