/* TestTicker: the Ticker class plus POST <obj>/fail?n=K: the next K firings of the object's
 * alarms fail (counted in memory), to see retries and drops; the shipped Ticker has no such
 * hook. */
#include "builtin.h"
#include "duro.h"
#include "test_class.h"

#include <string.h>

struct hooks {
	unsigned fail_remaining;
};

static struct duro_class test_ticker_class;

static struct hooks *hooks_of(struct duro_object *obj)
{
	return test_class_hooks(obj, &ticker_class);
}

static int test_ticker_alarm(struct duro_object *obj, const struct duro_alarm_info *info)
{
	struct hooks *h = hooks_of(obj);
	if (h->fail_remaining) {
		h->fail_remaining--;
		return -1;
	}
	return ticker_class.on_alarm(obj, info);
}

static int test_ticker_request(struct duro_object *obj, const struct duro_request *req,
			       struct duro_response *res)
{
	struct duro_str sp = duro_req_subpath(req);
	if (sp.len == 5 && !memcmp(sp.ptr, "/fail", 5) && duro_req_is(req, "POST")) {
		int64_t n;
		hooks_of(obj)->fail_remaining =
			duro_req_query_int(req, "n", 0, 1000000, &n) == 1 ? (unsigned)n : 1;
		return duro_res_text(res, 200, "ok");
	}
	return ticker_class.on_request(obj, req, res);
}

static void __attribute__((constructor)) register_test_ticker(void)
{
	test_class_derive(&test_ticker_class, &ticker_class, "TestTicker", sizeof(struct hooks));
	test_ticker_class.on_request = test_ticker_request;
	test_ticker_class.on_alarm = test_ticker_alarm;
	duro_register_class(&test_ticker_class);
}
