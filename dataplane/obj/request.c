/* The duro_req_* and duro_res_* calls of duro.h, and the object's own accessors: a
 * duro_request and a duro_response are the HTTP exchange the handler was given, whose
 * scratch area holds the route's result (request.h). */
#include "request.h"
#include "clock.h"
#include "http.h"
#include "ws.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct http_exchange *EX(const void *p) { return p; }

void *duro_state(struct duro_object *obj)
{
	struct object *o = (struct object *)obj;
	return o->state_mem ? o->state_mem : o->state; /* state_mem: switched to a larger state */
}
const struct duro_id *duro_object_id(const struct duro_object *obj)
{
	return &((const struct object *)obj)->id;
}
const char *duro_object_class(const struct duro_object *obj)
{
	return ((const struct object *)obj)->cls->name;
}

int duro_var(const struct duro_object *obj, const char *name, struct duro_str *value)
{
	const struct obj_binding *b = ((const struct object *)obj)->ns->binding;
	for (unsigned i = 0; i < b->nvars; i++) {
		if (!strcmp(b->vars[i].name, name)) {
			value->ptr = b->vars[i].value;
			value->len = strlen(b->vars[i].value);
			return 1;
		}
	}
	return 0;
}

struct duro_str duro_req_method(const struct duro_request *req)
{
	return (struct duro_str){ EX(req)->req.method, EX(req)->req.method_len };
}
struct duro_str duro_req_path(const struct duro_request *req)
{
	return (struct duro_str){ EX(req)->req.path, EX(req)->req.path_len };
}
struct duro_str duro_req_subpath(const struct duro_request *req)
{
	const struct http_exchange *ex = EX(req);
	const struct route_result *rr = (const struct route_result *)ex->user;
	return (struct duro_str){ ex->req.path + rr->subpath_off, ex->req.path_len - rr->subpath_off };
}
struct duro_str duro_req_query(const struct duro_request *req)
{
	const struct http_exchange *ex = EX(req);
	return (struct duro_str){ ex->req.query ? ex->req.query : "", ex->req.query_len };
}
int duro_req_query_param(const struct duro_request *req, const char *name, struct duro_str *out)
{
	struct duro_str q = duro_req_query(req);
	size_t n = strlen(name);
	const char *p = q.ptr, *end = q.ptr + q.len;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(e - p));
		const char *k_end = eq ? eq : e;
		if ((size_t)(k_end - p) == n && memcmp(p, name, n) == 0) {
			out->ptr = eq ? eq + 1 : e;
			out->len = eq ? (size_t)(e - eq - 1) : 0;
			return 1;
		}
		p = e + 1;
	}
	return 0;
}
int duro_req_query_int(const struct duro_request *req, const char *name, int64_t lo, int64_t hi,
		       int64_t *out)
{
	struct duro_str v;
	char buf[24];
	if (!duro_req_query_param(req, name, &v))
		return 0;
	if (v.len == 0 || v.len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, v.ptr, v.len);
	buf[v.len] = 0;
	char *end;
	errno = 0;
	long long x = strtoll(buf, &end, 10);
	if (*end || errno || x < lo || x > hi)
		return -EINVAL;
	*out = x;
	return 1;
}

int64_t duro_now_ms(void) { return (int64_t)clock_wall_ms(); }

int duro_req_header(const struct duro_request *req, const char *name, struct duro_str *out)
{
	size_t len;
	const char *v = http_find_header(&EX(req)->req, name, &len);
	if (!v)
		return 0;
	out->ptr = v;
	out->len = len;
	return 1;
}
struct duro_str duro_req_body(const struct duro_request *req)
{
	const struct http_exchange *ex = EX(req);
	return (struct duro_str){ ex->req.body ? ex->req.body : "", ex->req.body_len };
}
int duro_req_is(const struct duro_request *req, const char *method)
{
	const struct http_exchange *ex = EX(req);
	size_t n = strlen(method);
	return ex->req.method_len == n && memcmp(ex->req.method, method, n) == 0;
}

void duro_res_status(struct duro_response *res, int status)
{
	http_resp_status((struct http_exchange *)res, status);
}
int duro_res_header(struct duro_response *res, const char *name, const char *value)
{
	return http_resp_header((struct http_exchange *)res, name, strlen(name), value,
				strlen(value));
}
int duro_res_body(struct duro_response *res, const void *data, size_t len)
{
	return http_resp_body((struct http_exchange *)res, data, len);
}
int duro_res_text(struct duro_response *res, int status, const char *text)
{
	duro_res_status(res, status);
	int r = duro_res_header(res, "Content-Type", "text/plain; charset=utf-8");
	if (r == 0)
		r = duro_res_body(res, text, strlen(text));
	if (r == 0)
		r = duro_res_body(res, "\n", 1);
	return r;
}

int duro_req_wants_ws(const struct duro_request *req)
{
	const struct route_result *rr = (const struct route_result *)EX(req)->user;
	return rr->ws_handle && rr->ws_kind == WS_KIND_SOCKET;
}

int duro_req_wants_events(const struct duro_request *req)
{
	const struct route_result *rr = (const struct route_result *)EX(req)->user;
	return rr->ws_handle && rr->ws_kind == WS_KIND_STREAM;
}
