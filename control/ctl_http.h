/* The metrics listener's HTTP: what a request head asks for (through http_parse_request)
 * and the response head; pure and allocation-free, so its fuzz target is one call. */
#ifndef DURO_CONTROL_CTL_HTTP_H
#define DURO_CONTROL_CTL_HTTP_H

#include <stddef.h>

#define CTL_HTTP_MAX_HEAD 8192 /* a longer head is refused with 431 */

enum ctl_page { CTL_PAGE_NONE, CTL_PAGE_METRICS, CTL_PAGE_STATS, CTL_PAGE_DASHBOARD, CTL_PAGE_SQL };

struct ctl_http_route {
	int status;          /* 200, or the error to answer: 400, 404, 405, 417, 431, 501, 505 */
	enum ctl_page page;  /* with 200 */
	int head_only;       /* HEAD: the head of the response alone */
	const char *query;   /* with CTL_PAGE_SQL: the query string (after '?', in the caller's
			      * buffer), or NULL */
	size_t query_len;
};

/* Decides what the request head at buf[0..len) asks for. Returns 1 when decided (*out
 * filled; a request's body, if any, is never read: the connection closes after the
 * response), 0 while the head is incomplete and still within CTL_HTTP_MAX_HEAD. Only GET
 * and HEAD of /metrics, /api/stats, /api/sql (a read-only query: its parameters in the
 * query string), /dashboard and / are served. */
int ctl_http_route(const char *buf, size_t len, struct ctl_http_route *out);

/* Finds key's value in the query string q[0..len) (form encoding: pairs split by '&', '+'
 * a space, %XX a byte) and writes it decoded to out, NUL-terminated (the value may hold
 * NULs of its own). Returns its length; -ENOENT when key is absent, -EINVAL when the value
 * has a malformed escape, -ENOSPC when it needs more than cap - 1 bytes. The first
 * occurrence wins; keys are compared undecoded. Pure: its fuzz target is one call. */
long ctl_http_query(const char *q, size_t len, const char *key, char *out, size_t cap);

/* The reason phrase of a status this listener answers ("Error" for others). */
const char *ctl_http_reason(int status);

/* Writes a response head (Connection: close, Cache-Control: no-store; Allow with 405) to
 * buf. Returns its length, or -ENOSPC when cap is too small. */
int ctl_http_head(char *buf, size_t cap, int status, const char *type, size_t body_len);

#endif
