/* MyClass: a template for a duro class module. POST increments a durable counter, GET
 * reads it; both answer "MyClass <version>: <count>". Rename the class, change VERSION,
 * build (meson setup build && ninja -C build) and deploy build/myclass.so. */
#include "duro.h"

#include <stdio.h>
#include <string.h>

#ifndef VERSION
#define VERSION "v1"
#endif

static int on_request(struct duro_object *obj, const struct duro_request *req,
		      struct duro_response *res)
{
	uint64_t n = 0;
	struct duro_str v;
	int r = duro_get(obj, "n", 1, &v); /* 1 found, 0 absent, <0 error */
	if (r < 0)
		return r;
	if (r == 1 && v.len == sizeof(n))
		memcpy(&n, v.ptr, sizeof(n));
	if (duro_req_is(req, "POST")) {
		n++;
		if ((r = duro_put(obj, "n", 1, &n, sizeof(n))) < 0)
			return r;
	}
	char text[64];
	snprintf(text, sizeof(text), "MyClass %s: %llu", VERSION, (unsigned long long)n);
	return duro_res_text(res, 200, text); /* sent once the put is durable */
}

static const struct duro_class my_class = {
	.name = "MyClass",
	.on_request = on_request,
};
DURO_CLASS(my_class)
