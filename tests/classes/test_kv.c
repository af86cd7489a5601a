/* TestKV: the KV class plus batch lines only tests need, so that the shipped KV has none:
 *   fail        the event fails: 500, every write of the batch rolled back
 *   sync        calls duro_sync(); GET <obj>/synced then shows the last outcome this
 *               instance heard ("0" durable, or -errno; 404 before any)
 *   spin MS     runs for MS ms (a slow handler, for event timeouts)
 *   timeout MS  sets the WebSocket event timeout (duro_ws_set_event_timeout) */
#include "builtin.h"
#include "duro.h"
#include "test_class.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hooks {
	int synced; /* 0 none yet, 1 durable, else the negative errno */
};

static struct duro_class test_kv_class;

static struct hooks *hooks_of(struct duro_object *obj)
{
	return test_class_hooks(obj, &kv_class);
}

static void record_sync(struct duro_object *obj, int status, void *arg)
{
	(void)arg;
	hooks_of(obj)->synced = status == 0 ? 1 : status;
}

static int hook_line(struct duro_object *obj, const char *op, const char *arg)
{
	if (!strcmp(op, "fail"))
		return -ECANCELED;
	if (!strcmp(op, "sync"))
		return duro_sync(obj, record_sync, NULL);
	if (!strcmp(op, "spin") && arg) {
		int64_t until = duro_now_ms() + strtol(arg, NULL, 10);
		while (duro_now_ms() < until)
			;
		return 0;
	}
	if (!strcmp(op, "timeout") && arg) {
		duro_ws_set_event_timeout(obj, (unsigned)strtoul(arg, NULL, 10));
		return 0;
	}
	return -EINVAL;
}

static int test_kv_request(struct duro_object *obj, const struct duro_request *req,
			   struct duro_response *res)
{
	struct duro_str sp = duro_req_subpath(req);
	if (sp.len == 7 && !memcmp(sp.ptr, "/synced", 7) && duro_req_is(req, "GET")) {
		int synced = hooks_of(obj)->synced;
		char text[16];
		if (!synced)
			return duro_res_text(res, 404, "no sync outcome yet");
		snprintf(text, sizeof(text), "%d", synced == 1 ? 0 : synced);
		return duro_res_body(res, text, strlen(text));
	}
	return kv_on_request(obj, req, res, hook_line);
}

static int test_kv_ws_message(struct duro_object *obj, duro_ws ws, int binary, const void *data,
			      size_t len)
{
	return kv_on_ws_message(obj, ws, binary, data, len, hook_line);
}

static void __attribute__((constructor)) register_test_kv(void)
{
	test_class_derive(&test_kv_class, &kv_class, "TestKV", sizeof(struct hooks));
	test_kv_class.on_request = test_kv_request;
	test_kv_class.on_ws_message = test_kv_ws_message;
	duro_register_class(&test_kv_class);
}
