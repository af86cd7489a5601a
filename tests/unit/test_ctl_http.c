/* Unit tests for the metrics listener's routing (control/ctl_http.c): the pages, HEAD,
 * partial heads, and the status each refusal gets. */
#include "check.h"
#include "ctl_http.h"

#include <stdlib.h>
#include <string.h>

static struct ctl_http_route rt;

static int route(const char *s) { return ctl_http_route(s, strlen(s), &rt); }

static void test_pages(void)
{
	CHECK_EQ(route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), 1);
	CHECK(rt.status == 200 && rt.page == CTL_PAGE_METRICS && !rt.head_only);
	CHECK_EQ(route("GET /metrics?name=x HTTP/1.1\r\nHost: x\r\n\r\n"), 1);
	CHECK(rt.status == 200 && rt.page == CTL_PAGE_METRICS);
	CHECK_EQ(route("HEAD /api/stats HTTP/1.0\r\n\r\n"), 1);
	CHECK(rt.status == 200 && rt.page == CTL_PAGE_STATS && rt.head_only);
	CHECK_EQ(route("GET / HTTP/1.0\r\n\r\n"), 1);
	CHECK(rt.page == CTL_PAGE_DASHBOARD);
	CHECK_EQ(route("GET /dashboard HTTP/1.1\r\nHost: x\r\n\r\n"), 1);
	CHECK(rt.page == CTL_PAGE_DASHBOARD);
	CHECK_EQ(route("GET /metricsx HTTP/1.1\r\nHost: x\r\n\r\n"), 1);
	CHECK(rt.status == 404 && rt.page == CTL_PAGE_NONE);
}

static void test_partial(void)
{
	const char *s = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	for (size_t i = 0; i < strlen(s); i++)
		CHECK_EQ(ctl_http_route(s, i, &rt), 0);
	CHECK_EQ(ctl_http_route(s, strlen(s), &rt), 1);
}

static void test_refusals(void)
{
	CHECK_EQ(route("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"), 1);
	CHECK_EQ(rt.status, 405);
	CHECK_EQ(route("DELETE / HTTP/1.1\r\nHost: x\r\n\r\n"), 1);
	CHECK_EQ(rt.status, 405);
	CHECK_EQ(route("GARBAGE\r\n\r\n"), 1);
	CHECK_EQ(rt.status, 400);
	CHECK_EQ(route("GET /metrics HTTP/1.1\r\n\r\n"), 1); /* no Host */
	CHECK_EQ(rt.status, 400);
	CHECK_EQ(route("GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n"), 1);
	CHECK_EQ(rt.status, 505);
	/* a head that does not end within the limit */
	char *big = malloc(CTL_HTTP_MAX_HEAD + 1);
	memcpy(big, "GET /metrics HTTP/1.1\r\nHost: x\r\nX: ", 35);
	memset(big + 35, 'a', CTL_HTTP_MAX_HEAD - 35);
	CHECK_EQ(ctl_http_route(big, CTL_HTTP_MAX_HEAD, &rt), 1);
	CHECK_EQ(rt.status, 431);
	free(big);
}

static void test_head(void)
{
	char buf[512];
	int n = ctl_http_head(buf, sizeof(buf), 405, "text/plain", 10);
	CHECK(n > 0 && (size_t)n == strlen(buf));
	CHECK(strncmp(buf, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0);
	CHECK(strstr(buf, "Allow: GET, HEAD\r\n") != NULL);
	CHECK(strstr(buf, "Content-Length: 10\r\n") != NULL);
	CHECK(strstr(buf, "\r\n\r\n") == buf + n - 4);
	CHECK_EQ(ctl_http_head(buf, 20, 200, "text/plain", 10), -28); /* -ENOSPC */
}

int main(void)
{
	RUN(test_pages);
	RUN(test_partial);
	RUN(test_refusals);
	RUN(test_head);
	return CHECK_DONE();
}
