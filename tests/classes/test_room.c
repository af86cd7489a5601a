/* TestRoom: the ChatRoom class plus an on_ws_close that stores how many sockets the object
 * still has (duro_ws_count) when told that one closed, and GET <obj>/closecount to read it
 * back (GET <obj>/lastclose: the last close's code and clean flag, "1006 0"): the shipped
 * ChatRoom has no close handler, so a close never wakes it. */
#include "builtin.h"
#include "duro.h"
#include "test_class.h"

#include <stdio.h>
#include <string.h>

static struct duro_class test_room_class;

#define CLOSE_COUNT_KEY "closecount"
#define LAST_CLOSE_KEY "lastclose"

static void test_room_ws_close(struct duro_object *obj, duro_ws ws, int code, const char *reason,
			       size_t reason_len, int clean)
{
	(void)ws;
	(void)reason;
	(void)reason_len;
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%zu", duro_ws_count(obj));
	duro_put(obj, CLOSE_COUNT_KEY, sizeof(CLOSE_COUNT_KEY) - 1, buf, (size_t)n);
	n = snprintf(buf, sizeof(buf), "%d %d", code, clean ? 1 : 0);
	duro_put(obj, LAST_CLOSE_KEY, sizeof(LAST_CLOSE_KEY) - 1, buf, (size_t)n);
}

static int test_room_request(struct duro_object *obj, const struct duro_request *req,
			     struct duro_response *res)
{
	struct duro_str sp = duro_req_subpath(req);
	int last = sp.len == 10 && !memcmp(sp.ptr, "/lastclose", 10);
	if (((sp.len == 11 && !memcmp(sp.ptr, "/closecount", 11)) || last) && duro_req_is(req, "GET")) {
		struct duro_str v;
		int r = last ? duro_get(obj, LAST_CLOSE_KEY, sizeof(LAST_CLOSE_KEY) - 1, &v)
			     : duro_get(obj, CLOSE_COUNT_KEY, sizeof(CLOSE_COUNT_KEY) - 1, &v);
		if (r < 0)
			return r;
		duro_res_status(res, r ? 200 : 404);
		return r ? duro_res_body(res, v.ptr, v.len) : 0;
	}
	return chatroom_class.on_request(obj, req, res);
}

static void __attribute__((constructor)) register_test_room(void)
{
	test_class_derive(&test_room_class, &chatroom_class, "TestRoom", 0);
	test_room_class.on_request = test_room_request;
	test_room_class.on_ws_close = test_room_ws_close;
	duro_register_class(&test_room_class);
}
