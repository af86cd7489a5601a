/* AppendList: the workload of the cluster fault harness (tests/jepsen), Jepsen's list append.
 * POST appends the body, one token, to the object's list and answers the whole list; GET reads it. */
#include "duro.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A token is 1 to 64 visible ASCII bytes (no space, no newline), so the list can be kept
 * and answered as lines. The list is one value, rewritten whole by each append: bounded at
 * 64 KiB (about 7,000 tokens of the harness's size), past which an append is refused with
 * 413 and changes nothing, so the answer of every append stays exact. */
#define APPEND_MAX_TOKEN 64
#define APPEND_MAX_LIST (64 * 1024)

static int valid_token(struct duro_str t)
{
	if (t.len == 0 || t.len > APPEND_MAX_TOKEN)
		return 0;
	for (size_t i = 0; i < t.len; i++)
		if ((unsigned char)t.ptr[i] < 0x21 || (unsigned char)t.ptr[i] > 0x7e)
			return 0;
	return 1;
}

/* Counts the lines of the list (each token ends with '\n'). */
static size_t count_lines(const char *p, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += p[i] == '\n';
	return n;
}

static int answer(struct duro_response *res, const char *list, size_t len)
{
	char n[24];
	snprintf(n, sizeof(n), "%zu", count_lines(list, len));
	duro_res_status(res, 200);
	return duro_res_header(res, "Content-Type", "text/plain") ||
	       duro_res_header(res, "X-List-Length", n) || duro_res_body(res, list, len);
}

static int appendlist_request(struct duro_object *obj, const struct duro_request *req,
			      struct duro_response *res)
{
	if (duro_req_subpath(req).len > 1)
		return duro_res_text(res, 404, "no such list operation");
	struct duro_str cur = { "", 0 };
	int r = duro_get(obj, "list", 4, &cur);
	if (r < 0)
		return r;
	if (r == 0)
		cur = (struct duro_str){ "", 0 };
	if (duro_req_is(req, "GET") || duro_req_is(req, "HEAD"))
		return answer(res, cur.ptr, cur.len);
	if (!duro_req_is(req, "POST"))
		return duro_res_header(res, "Allow", "GET, HEAD, POST") ||
		       duro_res_text(res, 405, "use GET or POST");
	struct duro_str tok = duro_req_body(req);
	if (!valid_token(tok))
		return duro_res_text(res, 400, "the body must be one token: 1 to 64 visible ASCII bytes");
	if (cur.len + tok.len + 1 > APPEND_MAX_LIST)
		return duro_res_text(res, 413, "the list is full (65536 bytes): nothing appended");
	size_t len = cur.len + tok.len + 1;
	char *list = malloc(len); /* up to 64 KiB: not on a reactor's stack */
	if (!list)
		return -ENOMEM;
	memcpy(list, cur.ptr, cur.len);
	memcpy(list + cur.len, tok.ptr, tok.len);
	list[len - 1] = '\n';
	r = duro_put(obj, "list", 4, list, len);
	if (r == 0)
		r = answer(res, list, len);
	free(list);
	return r;
}

static const struct duro_class appendlist_class = {
	.name = "AppendList",
	.state_size = 0,
	.on_request = appendlist_request,
};
DURO_CLASS(appendlist_class)
