/* TestEcho: the Echo class plus POST <obj>/fail, a handler that fails (500, its response
 * discarded) after Echo has counted the event, so that the shipped Echo has no such hook. */
#include "builtin.h"
#include "duro.h"
#include "test_class.h"

#include <string.h>

static struct duro_class test_echo_class;

static int test_echo_request(struct duro_object *obj, const struct duro_request *req,
			     struct duro_response *res)
{
	int r = echo_class.on_request(obj, req, res);
	struct duro_str sp = duro_req_subpath(req);
	if (r == 0 && sp.len == 5 && !memcmp(sp.ptr, "/fail", 5) && duro_req_is(req, "POST"))
		return -1;
	return r;
}

static void __attribute__((constructor)) register_test_echo(void)
{
	test_class_derive(&test_echo_class, &echo_class, "TestEcho", 0);
	test_echo_class.on_request = test_echo_request;
	duro_register_class(&test_echo_class);
}
