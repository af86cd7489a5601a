/* Counter: the built-in example class and the benchmark's object.
 * POST increments and returns the new count; GET returns it. Both as decimal text.
 * The count is stored under the key "count" and survives eviction and restarts. */
#include "duro.h"

#include <stdio.h>
#include <string.h>

static int read_count(struct duro_object *obj, uint64_t *out)
{
	struct duro_str v;
	int r = duro_get(obj, "count", 5, &v);
	if (r < 0)
		return r;
	*out = 0;
	if (r == 1 && v.len == sizeof(*out))
		memcpy(out, v.ptr, sizeof(*out));
	return 0;
}

static int counter_request(struct duro_object *obj, const struct duro_request *req,
			   struct duro_response *res)
{
	if (duro_req_subpath(req).len > 1)
		return duro_res_text(res, 404, "no such counter operation");
	uint64_t value;
	int r = read_count(obj, &value);
	if (r < 0)
		return r;
	if (duro_req_is(req, "POST")) {
		value++;
		if ((r = duro_put(obj, "count", 5, &value, sizeof(value))) < 0)
			return r;
	} else if (!duro_req_is(req, "GET") && !duro_req_is(req, "HEAD")) {
		return duro_res_header(res, "Allow", "GET, HEAD, POST") ||
		       duro_res_text(res, 405, "use GET or POST");
	}
	char text[24];
	int n = snprintf(text, sizeof(text), "%llu", (unsigned long long)value);
	duro_res_status(res, 200);
	return duro_res_header(res, "Content-Type", "text/plain") || duro_res_body(res, text, (size_t)n);
}

static const struct duro_class counter_class = {
	.name = "Counter",
	.state_size = 0,
	.on_request = counter_request,
};
DURO_CLASS(counter_class)
