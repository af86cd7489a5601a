/* MemCounter: the Counter protocol with the count in object memory only (lost on eviction
 * and restart). The benchmarks' in-memory baseline beside the durable Counter, and an
 * example of per-object state that needs no storage. */
#include "duro.h"

#include <stdio.h>

struct memcounter {
	uint64_t value;
};

static int memcounter_request(struct duro_object *obj, const struct duro_request *req,
			      struct duro_response *res)
{
	struct memcounter *st = duro_state(obj);
	if (duro_req_is(req, "POST"))
		st->value++;
	else if (!duro_req_is(req, "GET"))
		return duro_res_header(res, "Allow", "GET, POST") || duro_res_text(res, 405, "use GET or POST");
	char text[24];
	int n = snprintf(text, sizeof(text), "%llu", (unsigned long long)st->value);
	return duro_res_header(res, "Content-Type", "text/plain") || duro_res_body(res, text, (size_t)n);
}

static const struct duro_class memcounter_class = {
	.name = "MemCounter",
	.state_size = sizeof(struct memcounter),
	.on_request = memcounter_request,
};
DURO_CLASS(memcounter_class)
