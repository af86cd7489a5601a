/* Sql: an object as a small SQL database over HTTP. POST /sql/<name> with the JSON body
 * {"sql": "...", "params": [...]} runs the statements (the parameters bound to the last)
 * as one event and answers 200
 *   {"columns": [...], "rows": [[...], ...], "rows_read": N, "rows_written": N,
 *    "database_size": BYTES}
 * (the rows of the last statement; blobs as {"blob": "<base64>"}); bad JSON is 400, an
 * error of the SQL is 400 {"error": "<SQLite's message>"}, a refusal (a transaction
 * statement, ATTACH, a PRAGMA not allowed) 403, a limit 413 (an answer of more than 16 MiB
 * too), an interrupted statement 500.
 * A failed call changes nothing. */
#include "duro.h"
#include "sql_json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The most JSON one answer may hold: a query that returns more (without a LIMIT) is
 * answered 413 rather than building an answer the size of the database in memory. */
#define SQL_MAX_ANSWER (16u << 20)

struct rows {
	struct sqlj_out *o;
	unsigned n;
	int too_big;
};

static int row(void *arg, unsigned ncols, const struct duro_str *names,
	       const struct duro_sql_value *values)
{
	struct rows *rs = arg;
	struct sqlj_out *o = rs->o;
	if (rs->n == 0) {
		sqlj_raw(o, "{\"columns\":[", 12);
		for (unsigned i = 0; i < ncols; i++) {
			if (i)
				sqlj_raw(o, ",", 1);
			sqlj_string(o, names[i].ptr, names[i].len);
		}
		sqlj_raw(o, "],\"rows\":[", 10);
	}
	sqlj_raw(o, rs->n ? ",[" : "[", rs->n ? 2 : 1);
	for (unsigned i = 0; i < ncols; i++) {
		if (i)
			sqlj_raw(o, ",", 1);
		sqlj_value(o, &values[i]);
	}
	sqlj_raw(o, "]", 1);
	rs->n++;
	if (o->len > SQL_MAX_ANSWER) {
		rs->too_big = 1;
		return 1; /* no more rows */
	}
	return o->err != 0;
}

static int answer(struct duro_response *res, int status, struct sqlj_out *o)
{
	if (o->err)
		return o->err;
	duro_res_status(res, status);
	return duro_res_header(res, "Content-Type", "application/json") ||
	       duro_res_body(res, o->buf, o->len);
}

static int error_answer(struct duro_response *res, int status, const char *msg)
{
	struct sqlj_out o = { 0 };
	sqlj_raw(&o, "{\"error\":", 9);
	sqlj_string(&o, msg, strlen(msg));
	sqlj_raw(&o, "}\n", 2);
	int r = answer(res, status, &o);
	free(o.buf);
	return r;
}

static int sql_request(struct duro_object *obj, const struct duro_request *req,
		       struct duro_response *res)
{
	if (duro_req_subpath(req).len > 1)
		return duro_res_text(res, 404, "POST the statements to the object itself");
	if (!duro_req_is(req, "POST"))
		return duro_res_header(res, "Allow", "POST") ||
		       duro_res_text(res, 405, "POST {\"sql\": \"...\", \"params\": [...]}");
	struct duro_str body = duro_req_body(req);
	struct sqlj_request *q = malloc(sizeof(*q));
	char *scratch = malloc(body.len ? body.len : 1);
	char err[160];
	int r = 0;
	if (!q || !scratch) {
		r = -ENOMEM;
		goto out;
	}
	if (sqlj_parse(body.ptr, body.len, scratch, q, err, sizeof(err)) < 0) {
		r = error_answer(res, 400, err);
		goto out;
	}
	struct sqlj_out o = { 0 };
	struct rows rs = { &o, 0, 0 };
	struct duro_sql_result result;
	r = duro_sql_exec(obj, q->sql, q->sql_len, q->params, q->nparams, row, &rs, &result);
	if (r == -ETIMEDOUT || r == -EIO || r == -ENOMEM) {
		free(o.buf);
		goto out; /* the event fails as a whole: 500 */
	}
	if (r < 0) {
		free(o.buf);
		/* -ENOSPC from the database's limit: SQLite rolled the event back; it fails. */
		r = error_answer(res, r == -EPERM ? 403 : r == -E2BIG ? 413 : r == -ENOSPC ? 507 : 400,
				 duro_sql_error(obj));
		goto out;
	}
	if (rs.too_big) {
		/* The statement ran to its end (its writes stand, like any other's); only the
		 * rows are not answered. */
		free(o.buf);
		r = error_answer(res, 413, "the answer passed 16 MiB of JSON: ask for fewer rows (LIMIT, OFFSET)");
		goto out;
	}
	if (rs.n == 0)
		sqlj_raw(&o, "{\"columns\":[],\"rows\":[", 22);
	int64_t size = duro_sql_database_size(obj);
	sqlj_raw(&o, "],\"rows_read\":", 14);
	sqlj_uint(&o, result.rows_read);
	sqlj_raw(&o, ",\"rows_written\":", 16);
	sqlj_uint(&o, result.rows_written);
	sqlj_raw(&o, ",\"database_size\":", 17);
	sqlj_uint(&o, size > 0 ? (unsigned long long)size : 0);
	sqlj_raw(&o, "}\n", 2);
	r = answer(res, 200, &o);
	free(o.buf);
out:
	free(q);
	free(scratch);
	return r;
}

const struct duro_class sql_class = {
	.name = "Sql",
	.on_request = sql_request,
};
DURO_CLASS(sql_class)
