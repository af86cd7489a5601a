/* Ticker: alarms over HTTP, for trying them and for the tests.
 *   POST   <obj>?in=MS[&alarm=NAME][&every=MS]  set the alarm (or a named one) MS from now
 *                                              (or ?at=EPOCH_MS); with every, each firing
 *                                              sets it again
 *   DELETE <obj>[?alarm=NAME]                  delete the alarm: "1" if there was one
 *   DELETE <obj>/all                           deleteAll (storage and alarms)
 *   GET    <obj>                               "fired N", "retry R", "late MS" (how late
 *                                              the last firing was), "name X", "alarm T",
 *                                              "named a,b" lines
 * on_alarm counts firings in storage and records the last retry count and name. */
#include "builtin.h"
#include "duro.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t get_num(struct duro_object *obj, const char *key)
{
	struct duro_str v;
	char buf[24];
	if (duro_get(obj, key, strlen(key), &v) != 1 || v.len >= sizeof(buf))
		return 0;
	memcpy(buf, v.ptr, v.len);
	buf[v.len] = 0;
	return strtoll(buf, NULL, 10);
}

static int put_num(struct duro_object *obj, const char *key, int64_t n)
{
	char buf[24];
	int len = snprintf(buf, sizeof(buf), "%lld", (long long)n);
	return duro_put(obj, key, strlen(key), buf, (size_t)len);
}

static int ticker_alarm(struct duro_object *obj, const struct duro_alarm_info *info)
{
	int r = put_num(obj, "fired", get_num(obj, "fired") + 1);
	if (!r)
		r = put_num(obj, "retry", info->retry_count);
	if (!r)
		r = duro_put(obj, "name", 4, info->name ? info->name : "-", info->name ? info->name_len : 1);
	if (!r && !info->name && get_num(obj, "due"))
		r = put_num(obj, "late", duro_now_ms() - get_num(obj, "due"));
	int64_t every = get_num(obj, "every");
	if (!r && every > 0 && !info->name)
		r = duro_set_alarm(obj, duro_now_ms() + every);
	return r;
}

static int add_name(void *arg, struct duro_str name, int64_t t)
{
	(void)t;
	struct duro_response *res = arg;
	return duro_res_body(res, name.ptr, name.len) || duro_res_body(res, ",", 1);
}

static int ticker_request(struct duro_object *obj, const struct duro_request *req,
			  struct duro_response *res)
{
	struct duro_str sub = duro_req_subpath(req), name = { NULL, 0 };
	duro_req_query_param(req, "alarm", &name);
	int64_t n;
	int r;
	char text[200];
	if (sub.len == 4 && !memcmp(sub.ptr, "/all", 4) && duro_req_is(req, "DELETE")) {
		r = duro_delete_all(obj);
		return r ? r : duro_res_text(res, 200, "ok");
	}
	if (sub.len > 1)
		return duro_res_text(res, 404, "no such ticker operation");
	if (duro_req_is(req, "POST")) {
		int64_t at;
		if (duro_req_query_int(req, "at", 0, INT64_MAX, &at) == 1)
			n = at - duro_now_ms(); /* an absolute time, ms since the epoch */
		else if (duro_req_query_int(req, "in", -86400000, 86400000000, &n) != 1)
			return duro_res_text(res, 400, "want ?in=MS or ?at=EPOCH_MS");
		int64_t every;
		if (duro_req_query_int(req, "every", 1, 86400000, &every) == 1 && (r = put_num(obj, "every", every)) < 0)
			return r;
		int64_t due = duro_now_ms() + n;
		if (!name.ptr && (r = put_num(obj, "due", due)) < 0)
			return r;
		r = name.ptr ? duro_set_alarm_named(obj, name.ptr, name.len, due) : duro_set_alarm(obj, due);
		if (r == -ENOSPC)
			return duro_res_text(res, 409, "too many named alarms");
		if (r == -EINVAL)
			return duro_res_text(res, 400, "bad alarm name");
		return r ? r : duro_res_text(res, 200, "ok");
	}
	if (duro_req_is(req, "DELETE")) {
		r = name.ptr ? duro_delete_alarm_named(obj, name.ptr, name.len) : duro_delete_alarm(obj);
		return r < 0 ? r : duro_res_text(res, 200, r ? "1" : "0");
	}
	int64_t t = -1;
	duro_get_alarm(obj, &t);
	struct duro_str nm;
	int has_name = duro_get(obj, "name", 4, &nm) == 1;
	int len = snprintf(text, sizeof(text),
			   "fired %lld\nretry %lld\nlate %lld\nname %.*s\nalarm %lld\nnamed ",
			   (long long)get_num(obj, "fired"), (long long)get_num(obj, "retry"),
			   (long long)get_num(obj, "late"), has_name ? (int)nm.len : 1,
			   has_name ? nm.ptr : "-", (long long)t);
	if ((r = duro_res_body(res, text, (size_t)len)) < 0)
		return r;
	if ((r = duro_list_alarms(obj, add_name, res)) < 0)
		return r;
	return duro_res_body(res, "\n", 1);
}

const struct duro_class ticker_class = {
	.name = "Ticker",
	.on_request = ticker_request,
	.on_alarm = ticker_alarm,
};
DURO_CLASS(ticker_class)
