/* libFuzzer target: untrusted bytes into the metrics listener's request handling
 * (control/ctl_http.c over http_parse_request), fed as they would arrive, in pieces whose
 * size the input's first byte chooses; then the response head for what was decided, and
 * for the SQL view (/api/sql) its query string's parameters, as the listener reads them. */
#include "ctl_http.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = (size_t)(data[0] % 64) + 1;
	data++;
	size--;
	if (size > CTL_HTTP_MAX_HEAD)
		size = CTL_HTTP_MAX_HEAD; /* the listener's buffer holds no more */
	char *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	struct ctl_http_route rt = { 0 };
	int decided = 0;
	for (size_t have = step < size ? step : size;; have += step) {
		if (have > size)
			have = size;
		decided = ctl_http_route(buf, have, &rt);
		if (decided || have == size)
			break;
	}
	if (decided) {
		switch (rt.status) {
		case 200:
			if (rt.page == CTL_PAGE_NONE)
				abort();
			break;
		case 400: case 404: case 405: case 417: case 431: case 501: case 505:
			if (rt.page != CTL_PAGE_NONE)
				abort();
			break;
		default:
			abort(); /* a status the listener does not mean to answer */
		}
		if (rt.page == CTL_PAGE_SQL && rt.query) {
			if (rt.query < buf || rt.query + rt.query_len > buf + size)
				abort(); /* the query string lies in the buffer */
			static const char *const keys[] = { "binding", "name", "id", "sql", "limit" };
			char out[64];
			for (unsigned k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
				long r = ctl_http_query(rt.query, rt.query_len, keys[k], out, sizeof(out));
				if (r >= (long)sizeof(out) || (r >= 0 && out[r] != 0) ||
				    (r < 0 && r != -ENOENT && r != -EINVAL && r != -ENOSPC))
					abort();
			}
		}
		char head[512];
		int n = ctl_http_head(head, sizeof(head), rt.status, "text/plain", size);
		if (n <= 4 || memcmp(head + n - 4, "\r\n\r\n", 4) != 0)
			abort();
	} else if (size >= CTL_HTTP_MAX_HEAD) {
		abort(); /* a full buffer must be decided (431 at worst) */
	}
	free(buf);
	return 0;
}
