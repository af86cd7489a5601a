/* SQL on one object from the control plane: `duroctl sql` and the dashboard's view. The
 * statements run as an event on the object's owner core (read-only unless the request
 * says "write"); the rows come back as JSON, at most "limit" of them. */
#include "ctl_int.h"
#include "ctl_mailbox.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CTL_SQL_MAX_PARAMS 100
#define CTL_SQL_DEFAULT_LIMIT 1000
#define CTL_SQL_MAX_LIMIT 100000
#define CTL_SQL_MAX_BYTES (4u << 20) /* of values in one reply (duroctl reads 8 MiB): rows past it are cut */

struct sql_job {
	const char *sql; /* in the request, which outlives the job */
	size_t len;
	struct duro_sql_value params[CTL_SQL_MAX_PARAMS];
	size_t nparams;
	int write;
	size_t limit;
	json_t *columns, *rows; /* built on the core */
	int truncated;
	size_t bytes; /* of the values taken so far */
	struct duro_sql_result res;
	char err[512];
};

static void job_free(void *p)
{
	struct sql_job *j = p;
	json_decref(j->columns);
	json_decref(j->rows);
	free(j);
}

static json_t *value_json(const struct duro_sql_value *v)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	switch (v->type) {
	case DURO_SQL_INTEGER:
		return json_integer((json_int_t)v->u.i);
	case DURO_SQL_REAL:
		return json_real(v->u.d);
	case DURO_SQL_TEXT: {
		/* Text that is not UTF-8 (SQLite does not check) is shown with \xNN escapes. */
		json_t *s = json_stringn(v->u.s.ptr, v->u.s.len);
		return s ? s : ctl_bytes_json(v->u.s.ptr, v->u.s.len);
	}
	case DURO_SQL_BLOB: {
		size_t n = v->u.s.len, olen = (n + 2) / 3 * 4;
		char *b = malloc(olen + 1);
		if (!b)
			return json_null();
		const unsigned char *p = (const unsigned char *)v->u.s.ptr;
		size_t o = 0;
		for (size_t i = 0; i < n; i += 3) {
			unsigned x = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
				     (i + 2 < n ? p[i + 2] : 0);
			b[o++] = tbl[x >> 18];
			b[o++] = tbl[(x >> 12) & 63];
			b[o++] = i + 1 < n ? tbl[(x >> 6) & 63] : '=';
			b[o++] = i + 2 < n ? tbl[x & 63] : '=';
		}
		json_t *r = json_pack("{s:s%}", "blob", b, o);
		free(b);
		return r;
	}
	default:
		return json_null();
	}
}

/* On the core, per row of the last statement. */
static int take_row(void *arg, unsigned ncols, const struct duro_str *names,
		    const struct duro_sql_value *values)
{
	struct sql_job *j = arg;
	if (!j->columns) {
		j->columns = json_array();
		for (unsigned i = 0; i < ncols; i++)
			json_array_append_new(j->columns, json_stringn(names[i].ptr, names[i].len));
	}
	if (json_array_size(j->rows) >= j->limit || j->bytes > CTL_SQL_MAX_BYTES) {
		j->truncated = 1;
		return 1;
	}
	json_t *row = json_array();
	for (unsigned i = 0; i < ncols; i++) {
		json_array_append_new(row, value_json(&values[i]));
		j->bytes += 16 + (values[i].type == DURO_SQL_TEXT || values[i].type == DURO_SQL_BLOB
				  ? values[i].u.s.len * 4 / 3 : 0);
	}
	json_array_append_new(j->rows, row);
	return 0;
}

static void sql_done(void *arg, int status)
{
	struct ctl_cmd *cmd = arg;
	cmd->result = status;
	ctl_cmd_finish(cmd);
}

static int do_sql(struct core *c, struct ctl_cmd *cmd)
{
	struct sql_job *j = cmd->payload;
	int r = obj_sql(c, cmd->ns, &cmd->id, j->sql, j->len, j->params, j->nparams, j->write, take_row,
			j, &j->res, j->err, sizeof(j->err), sql_done, cmd);
	if (r == 0)
		return 0; /* a write: finished once durable */
	cmd->result = r < 0 ? r : 0;
	return 1;
}

json_t *ctl_sql(struct ctl *ctl, json_t *req)
{
	unsigned ns;
	struct duro_id id;
	json_t *err;
	if (ctl_object_of(req, &ns, &id, &err) < 0)
		return err;
	json_t *text = json_object_get(req, "sql");
	if (!json_is_string(text))
		return ctl_error_reply("sql wants \"sql\": the statements to run");
	struct sql_job *j = calloc(1, sizeof(*j));
	if (!j)
		return ctl_error_reply("out of memory");
	j->sql = json_string_value(text);
	j->len = json_string_length(text);
	j->write = json_is_true(json_object_get(req, "write"));
	json_int_t limit = json_integer_value(json_object_get(req, "limit"));
	j->limit = limit > 0 && limit <= CTL_SQL_MAX_LIMIT ? (size_t)limit : CTL_SQL_DEFAULT_LIMIT;
	j->rows = json_array();
	json_t *params = json_object_get(req, "params");
	if (params && (!json_is_array(params) || json_array_size(params) > CTL_SQL_MAX_PARAMS)) {
		job_free(j);
		return ctl_error_reply("\"params\": want an array of at most %d values", CTL_SQL_MAX_PARAMS);
	}
	size_t i;
	json_t *v;
	json_array_foreach(params, i, v) {
		struct duro_sql_value *p = &j->params[j->nparams++];
		if (json_is_integer(v))
			*p = DURO_SQL_INT(json_integer_value(v));
		else if (json_is_real(v))
			*p = DURO_SQL_REALV(json_real_value(v));
		else if (json_is_string(v))
			*p = DURO_SQL_TEXTN(json_string_value(v), json_string_length(v));
		else if (json_is_boolean(v))
			*p = DURO_SQL_INT(json_is_true(v));
		else if (json_is_null(v))
			*p = (struct duro_sql_value){ .type = DURO_SQL_NULL };
		else {
			job_free(j);
			return ctl_error_reply("\"params\"[%zu]: want a number, string, boolean or null", i);
		}
	}
	struct ctl_cmd *cmd = ctl_cmd_new(do_sql);
	if (!cmd) {
		job_free(j);
		return ctl_error_reply("out of memory");
	}
	cmd->ns = ns;
	cmd->id = id;
	cmd->payload = j;
	cmd->payload_free = job_free;
	unsigned owner = obj_owner(&id);
	int r = ctl_mailbox_call(&ctl->mb, owner, cmd);
	if (r < 0) {
		/* Abandoned: the core frees the command when it is done with it. */
		return r == -ECANCELED ? ctl_error_reply("sql: durod is stopping")
				       : ctl_error_reply("sql: core %u did not finish in time", owner);
	}
	json_t *reply;
	if (cmd->result == -EBUSY)
		reply = ctl_error_reply("sql: the object is running an event; try again");
	else if (cmd->result < 0)
		reply = ctl_error_reply("%s", j->err[0] ? j->err : strerror(-cmd->result));
	else
		reply = json_pack("{s:b, s:o, s:O, s:b, s:I, s:I, s:I}", "ok", 1, "columns",
				  j->columns ? json_incref(j->columns) : json_array(), "rows", j->rows,
				  "truncated", j->truncated, "rows_read", (json_int_t)j->res.rows_read,
				  "rows_written", (json_int_t)j->res.rows_written, "rows_returned",
				  (json_int_t)json_array_size(j->rows));
	if (reply && cmd->result < 0)
		json_object_set_new(reply, "errno", json_integer(-cmd->result));
	ctl_cmd_free(cmd);
	return reply;
}
