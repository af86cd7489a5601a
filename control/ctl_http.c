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
	out->status = out->page == CTL_PAGE_NONE ? 404 : 200;
	return 1;
}

const char *ctl_http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
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
