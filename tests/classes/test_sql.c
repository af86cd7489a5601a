/* TestSql: the Sql class plus mixed events for atomicity tests and the class API of
 * point-in-time recovery (bookmarks below). POST <obj>/mixed?n=N writes
 * in one event a row (n) into table `mixed`, the key "k<N>" and the object's alarm at
 * MIXED_BASE_MS + N; with &fail=1 the handler then fails (everything rolls back). GET
 * <obj>/mixed answers {"sql": [...], "kv": [...], "alarm": N or null}: what survived. */
#include "builtin.h"
#include "duro.h"
#include "test_class.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Far enough ahead that no alarm of a test ever fires. */
#define MIXED_BASE_MS 4000000000000ll

static struct duro_class test_sql_class;

struct text {
	char buf[16384];
	size_t len;
	int n;
};

static void add(struct text *t, long long v)
{
	if (t->len < sizeof(t->buf) - 32)
		t->len += (size_t)snprintf(t->buf + t->len, sizeof(t->buf) - t->len, "%s%lld",
					   t->n++ ? "," : "", v);
}

static int sql_row(void *arg, unsigned ncols, const struct duro_str *names,
		   const struct duro_sql_value *values)
{
	(void)names;
	if (ncols == 1 && values[0].type == DURO_SQL_INTEGER)
		add(arg, (long long)values[0].u.i);
	return 0;
}

static int kv_row(void *arg, struct duro_str key, struct duro_str value)
{
	(void)value;
	if (key.len > 1 && key.len < 24 && ((const char *)key.ptr)[0] == 'k') {
		char num[24];
		memcpy(num, (const char *)key.ptr + 1, key.len - 1);
		num[key.len - 1] = 0;
		add(arg, strtoll(num, NULL, 10));
	}
	return 0;
}

static const char create_sql[] = "CREATE TABLE IF NOT EXISTS mixed (n INTEGER PRIMARY KEY)";

static int mixed_write(struct duro_object *obj, const struct duro_request *req,
		       struct duro_response *res)
{
	int64_t n = 0, fail = 0;
	if (duro_req_query_int(req, "n", 0, 1000000000, &n) != 1)
		return duro_res_text(res, 400, "want ?n=N");
	duro_req_query_int(req, "fail", 0, 1, &fail);
	struct duro_sql_value v = DURO_SQL_INT(n);
	int r = duro_sql_exec(obj, create_sql, sizeof(create_sql) - 1, NULL, 0, NULL, NULL, NULL);
	if (r == 0)
		r = duro_sql_exec(obj, "INSERT INTO mixed (n) VALUES (?)", 32, &v, 1, NULL, NULL, NULL);
	char key[24];
	int kl = snprintf(key, sizeof(key), "k%lld", (long long)n);
	if (r == 0)
		r = duro_put(obj, key, (size_t)kl, key, (size_t)kl);
	if (r == 0)
		r = duro_set_alarm(obj, MIXED_BASE_MS + n);
	if (r < 0)
		return r;
	if (fail)
		return -1;
	return duro_res_text(res, 200, "ok");
}

static int mixed_read(struct duro_object *obj, struct duro_response *res)
{
	struct text *t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->len = 0;
	t->n = 0;
	t->len += (size_t)snprintf(t->buf, sizeof(t->buf), "{\"sql\":[");
	int r = duro_sql_exec(obj, create_sql, sizeof(create_sql) - 1, NULL, 0, NULL, NULL, NULL);
	if (r == 0)
		r = duro_sql_exec(obj, "SELECT n FROM mixed ORDER BY n", 30, NULL, 0, sql_row, t, NULL);
	t->n = 0;
	t->len += (size_t)snprintf(t->buf + t->len, sizeof(t->buf) - t->len, "],\"kv\":[");
	struct duro_list_options all = { 0 };
	if (r == 0)
		r = duro_list(obj, &all, kv_row, t);
	int64_t at = 0;
	int a = r >= 0 ? duro_get_alarm(obj, &at) : r;
	if (a < 0) {
		free(t);
		return a;
	}
	if (a == 1)
		t->len += (size_t)snprintf(t->buf + t->len, sizeof(t->buf) - t->len, "],\"alarm\":%lld}\n",
					   (long long)(at - MIXED_BASE_MS));
	else
		t->len += (size_t)snprintf(t->buf + t->len, sizeof(t->buf) - t->len, "],\"alarm\":null}\n");
	duro_res_status(res, 200);
	r = duro_res_header(res, "Content-Type", "application/json") || duro_res_body(res, t->buf, t->len);
	free(t);
	return r;
}

/* GET <obj>/bookmark[?at=MS]: duro_bookmark_current or _for_time; POST
 * <obj>/restore-next?bookmark=B: duro_restore_on_next_session, answering the undo
 * bookmark. Errors are 400 with the errno. */
static int bookmarks(struct duro_object *obj, const struct duro_request *req,
		     struct duro_response *res, int restore)
{
	char out[DURO_BOOKMARK_LEN + 1], msg[64];
	int64_t at = -1;
	int r;
	if (restore) {
		struct duro_str b;
		char bm[DURO_BOOKMARK_LEN + 1] = "";
		if (duro_req_query_param(req, "bookmark", &b) == 1 && b.len <= DURO_BOOKMARK_LEN) {
			memcpy(bm, b.ptr, b.len);
			bm[b.len] = 0;
		}
		r = duro_restore_on_next_session(obj, bm, out);
	} else if (duro_req_query_int(req, "at", 0, INT64_MAX, &at) == 1) {
		r = duro_bookmark_for_time(obj, at, out);
	} else {
		r = duro_bookmark_current(obj, out);
	}
	if (r < 0) {
		snprintf(msg, sizeof(msg), "error %d", r);
		return duro_res_text(res, 400, msg);
	}
	return duro_res_text(res, 200, out);
}

static int test_sql_request(struct duro_object *obj, const struct duro_request *req,
			    struct duro_response *res)
{
	struct duro_str sp = duro_req_subpath(req);
	if (sp.len == 9 && !memcmp(sp.ptr, "/bookmark", 9))
		return bookmarks(obj, req, res, 0);
	if (sp.len == 13 && !memcmp(sp.ptr, "/restore-next", 13) && duro_req_is(req, "POST"))
		return bookmarks(obj, req, res, 1);
	if (sp.len == 6 && !memcmp(sp.ptr, "/mixed", 6))
		return duro_req_is(req, "POST") ? mixed_write(obj, req, res) : mixed_read(obj, res);
	return sql_class.on_request(obj, req, res);
}

static void __attribute__((constructor)) register_test_sql(void)
{
	test_class_derive(&test_sql_class, &sql_class, "TestSql", 0);
	test_sql_class.on_request = test_sql_request;
	duro_register_class(&test_sql_class);
}
