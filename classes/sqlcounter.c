/* SqlCounter: the Counter protocol (POST increments and answers the new count, GET answers
 * it, as decimal text) with the count in a SQL table of the object's database: the
 * benchmarks' SQL-backed counter beside the key-value Counter. One upsert with RETURNING
 * per increment; the table is made when it is missing. */
#include "duro.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct sqlcounter {
	int ready; /* the table should exist (made, or the database was not empty) */
};

static const char create_sql[] =
	"CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)";
static const char incr_sql[] =
	"INSERT INTO counter (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1 RETURNING n";
static const char read_sql[] = "SELECT n FROM counter WHERE id = 1";

static int take_count(void *arg, unsigned ncols, const struct duro_str *names,
		      const struct duro_sql_value *values)
{
	(void)names;
	if (ncols == 1 && values[0].type == DURO_SQL_INTEGER)
		*(int64_t *)arg = values[0].u.i;
	return 0;
}

static int sqlcounter_request(struct duro_object *obj, const struct duro_request *req,
			      struct duro_response *res)
{
	struct sqlcounter *st = duro_state(obj);
	if (duro_req_subpath(req).len > 1)
		return duro_res_text(res, 404, "no such counter operation");
	int post = duro_req_is(req, "POST");
	if (!post && !duro_req_is(req, "GET") && !duro_req_is(req, "HEAD"))
		return duro_res_header(res, "Allow", "GET, HEAD, POST") ||
		       duro_res_text(res, 405, "use GET or POST");
	int64_t value = 0;
	int r = -EINVAL;
	/* The table is made only when it is missing: at once for a database that does not
	 * exist yet (no statement can find it), else when the count's statement fails (-EINVAL:
	 * no such table; the object's storage was deleted, or an event's CREATE was refused).
	 * An activation of an object whose table exists never runs the CREATE. */
	if (!st->ready && duro_sql_database_size(obj) == 0)
		r = -EINVAL;
	else
		st->ready = 1;
	for (int tries = 0; tries < 2 && r == -EINVAL; tries++) {
		if (!st->ready || tries) {
			if ((r = duro_sql_exec(obj, create_sql, sizeof(create_sql) - 1, NULL, 0, NULL, NULL, NULL)) < 0)
				return r;
			st->ready = 1;
		}
		if (post)
			r = duro_sql_exec(obj, incr_sql, sizeof(incr_sql) - 1, NULL, 0, take_count, &value, NULL);
		else
			r = duro_sql_exec(obj, read_sql, sizeof(read_sql) - 1, NULL, 0, take_count, &value, NULL);
	}
	if (r < 0)
		return r;
	char text[24];
	int n = snprintf(text, sizeof(text), "%lld", (long long)value);
	duro_res_status(res, 200);
	return duro_res_header(res, "Content-Type", "text/plain") || duro_res_body(res, text, (size_t)n);
}

static const struct duro_class sqlcounter_class = {
	.name = "SqlCounter",
	.state_size = sizeof(struct sqlcounter),
	.on_request = sqlcounter_request,
};
DURO_CLASS(sqlcounter_class)
