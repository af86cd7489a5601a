/* Echo: returns what it was sent, so tests and users can see the request API at work.
 * The body comes back as is; method, subpath, query, host and a per-instance event count
 * (reset when the object is evicted and reloaded) come back as headers. With a WebSocket
 * upgrade, every message comes back to its sender unchanged (the conformance target). */
#include "builtin.h"
#include "duro.h"

#include <errno.h>
#include <stdio.h>

struct echo {
	uint64_t events; /* since this instance was loaded */
	uint64_t loads;
};

static int echo_load(struct duro_object *obj)
{
	struct echo *st = duro_state(obj);
	st->loads = 1;
	return 0;
}

static int header_str(struct duro_response *res, const char *name, struct duro_str v)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "%.*s", (int)(v.len < 1000 ? v.len : 1000), v.ptr);
	return n < 0 ? -1 : duro_res_header(res, name, buf);
}

static int echo_request(struct duro_object *obj, const struct duro_request *req,
			struct duro_response *res)
{
	struct echo *st = duro_state(obj);
	st->events++;
	if (duro_req_wants_ws(req)) {
		duro_ws ws;
		duro_ws_accept(obj, req, res, NULL, 0, &ws); /* on failure res holds the error */
		return 0;
	}
	char id[DURO_ID_HEX + 1], n[24];
	duro_id_to_string(duro_object_id(obj), id);
	snprintf(n, sizeof(n), "%llu", (unsigned long long)st->events);
	struct duro_str ct, host;
	struct duro_str body = duro_req_body(req);
	duro_res_status(res, 200);
	int r = header_str(res, "X-Method", duro_req_method(req)) ||
		header_str(res, "X-Subpath", duro_req_subpath(req)) ||
		header_str(res, "X-Query", duro_req_query(req)) ||
		duro_res_header(res, "X-Object-Id", id) || duro_res_header(res, "X-Events", n) ||
		duro_res_header(res, "X-Class", duro_object_class(obj));
	if (!r && duro_req_header(req, "content-type", &ct))
		r = header_str(res, "Content-Type", ct);
	if (!r && duro_req_header(req, "host", &host))
		r = header_str(res, "X-Host", host);
	return r || duro_res_body(res, body.ptr, body.len);
}

static int echo_ws_message(struct duro_object *obj, duro_ws ws, int binary, const void *data,
			   size_t len)
{
	/* A socket already gone (-ENOENT) is not the handler's failure. */
	int r = duro_ws_send(obj, ws, binary, data, len);
	return r == -ENOMEM ? r : 0;
}

const struct duro_class echo_class = {
	.name = "Echo",
	.state_size = sizeof(struct echo),
	.on_load = echo_load,
	.on_request = echo_request,
	.on_ws_message = echo_ws_message,
};
DURO_CLASS(echo_class)
