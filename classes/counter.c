/* Counter: the built-in example class and the benchmark's object.
 * POST increments and returns the new count; GET returns it. Both as decimal text. */
#include "duro.h"

#include <stdio.h>

struct counter {
	uint64_t value;
};

static int counter_request(struct duro_object *obj, const struct duro_request *req,
			   struct duro_response *res)
{
	struct counter *st = duro_state(obj);
	if (duro_req_subpath(req).len > 1)
		return duro_res_text(res, 404, "no such counter operation");
	if (duro_req_is(req, "POST"))
		st->value++;
	else if (!duro_req_is(req, "GET") && !duro_req_is(req, "HEAD"))
		return duro_res_header(res, "Allow", "GET, HEAD, POST") ||
		       duro_res_text(res, 405, "use GET or POST");
	char text[24];
	int n = snprintf(text, sizeof(text), "%llu", (unsigned long long)st->value);
	duro_res_status(res, 200);
	return duro_res_header(res, "Content-Type", "text/plain") || duro_res_body(res, text, (size_t)n);
}

static const struct duro_class counter_class = {
	.name = "Counter",
	.state_size = sizeof(struct counter),
	.on_request = counter_request,
};
DURO_CLASS(counter_class)
