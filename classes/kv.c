/* KV: an object as a small key-value store over HTTP, the storage API laid bare.
 *   GET    <obj>/k/<key>            value, or 404
 *   PUT    <obj>/k/<key>            body becomes the value (204)
 *   DELETE <obj>/k/<key>            "1" if it existed, else "0"
 *   GET    <obj>/list?prefix=&start=&start_after=&end=&reverse=1&limit=   "key=value" lines
 *   POST   <obj>/batch              lines "put key value" / "del key" / "get key" in one
 *                                   event: all or nothing; "begin"/"commit"/"rollback"
 *                                   nest explicit transactions; "mget k…", "mput k v…",
 *                                   "mdel k…" use the multi-key calls (128 keys at most)
 *   DELETE <obj>/all                deleteAll
 *   GET    <obj>/ws                 WebSocket: each text message is a batch, run as one event;
 *                                   the answer ("ok" and the batch's output, or "error N") is
 *                                   a message that, like a response, waits for durability
 * Keys and values are raw path bytes and bodies (no decoding): enough for tests and demos.
 * The batch language takes more lines through kv_on_request (builtin.h): the tests' TestKV
 * adds its hooks that way. */
#include "builtin.h"
#include "duro.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct out {
	struct duro_response *res;
	int err;
};

static int emit(void *arg, struct duro_str k, struct duro_str v)
{
	struct out *o = arg;
	if (duro_res_body(o->res, k.ptr, k.len) || duro_res_body(o->res, "=", 1) ||
	    duro_res_body(o->res, v.ptr, v.len) || duro_res_body(o->res, "\n", 1))
		o->err = -ENOMEM;
	return o->err;
}

static int error_status(int r)
{
	switch (r) {
	case -EINVAL: return 400;
	case -E2BIG: return 400;
	case -EFBIG: return 413;
	case -ENOSPC: return 507;
	default: return 500;
	}
}

static int fail_text(struct duro_response *res, int r)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "storage error %d (%s)", r, strerror(-r));
	duro_res_text(res, error_status(r), msg);
	return r == -EINVAL || r == -EFBIG || r == -ENOSPC || r == -E2BIG ? 0 : r;
}

static int do_list(struct duro_object *obj, const struct duro_request *req, struct duro_response *res)
{
	struct duro_list_options opt = { 0 };
	struct duro_str v;
	if (duro_req_query_param(req, "prefix", &v))
		opt.prefix = v;
	if (duro_req_query_param(req, "start", &v))
		opt.start = v;
	if (duro_req_query_param(req, "start_after", &v))
		opt.start_after = v;
	if (duro_req_query_param(req, "end", &v))
		opt.end = v;
	if (duro_req_query_param(req, "reverse", &v))
		opt.reverse = v.len == 1 && v.ptr[0] == '1';
	if (duro_req_query_param(req, "limit", &v))
		opt.limit = (size_t)strtoul(v.ptr, NULL, 10);
	struct out o = { res, 0 };
	duro_res_status(res, 200);
	int r = duro_list(obj, &opt, emit, &o);
	if (r < 0)
		return fail_text(res, r);
	return o.err;
}

#define MULTI_MAX 600 /* more than DURO_MAX_BATCH, so the limit itself can be tried */

/* Where a batch's output goes: the HTTP response, or a buffer sent as one WebSocket
 * message. */
struct sink {
	struct duro_response *res; /* NULL: into buf */
	char *buf;
	size_t len, cap;
};

static int sink_put(struct sink *s, const void *p, size_t n)
{
	if (s->res)
		return duro_res_body(s->res, p, n);
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		while (cap < s->len + n)
			cap *= 2;
		char *b = realloc(s->buf, cap);
		if (!b)
			return -ENOMEM;
		s->buf = b;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return 0;
}

/* "mget k…", "mput k v k v…", "mdel k…": the multi-key calls. */
static int multi(struct duro_object *obj, struct sink *res, const char *op, char *rest)
{
	/* On the stack (about 38 KiB): every core may run this at once. */
	struct duro_str keys[MULTI_MAX], vals[MULTI_MAX];
	struct duro_kv kvs[MULTI_MAX];
	size_t n = 0;
	for (char *t = strtok_r(rest, " ", &rest); t && n < MULTI_MAX; t = strtok_r(NULL, " ", &rest))
		keys[n++] = (struct duro_str){ t, strlen(t) };
	int r;
	char num[16];
	if (!strcmp(op, "mget")) {
		r = duro_get_many(obj, keys, n, vals);
		for (size_t i = 0; r >= 0 && i < n; i++)
			if ((vals[i].ptr ? sink_put(res, vals[i].ptr, vals[i].len) : sink_put(res, "-", 1)) ||
			    sink_put(res, "\n", 1))
				r = -ENOMEM;
		return r < 0 ? r : 0;
	}
	if (!strcmp(op, "mput")) {
		for (size_t i = 0; i + 1 < n; i += 2)
			kvs[i / 2] = (struct duro_kv){ keys[i], keys[i + 1] };
		return duro_put_many(obj, kvs, n / 2);
	}
	r = duro_delete_many(obj, keys, n);
	if (r < 0)
		return r;
	snprintf(num, sizeof(num), "%d\n", r);
	return sink_put(res, num, strlen(num));
}

/* One line of a batch: "put k v", "del k", "get k", "begin", "commit", "rollback", the
 * multi-key lines, or one that `more` knows (may be NULL). */
static int batch_line(struct duro_object *obj, struct sink *res, char *line, kv_line_fn *more,
		      unsigned *depth)
{
	char *op = strtok_r(line, " ", &line);
	if (op && (!strcmp(op, "mget") || !strcmp(op, "mput") || !strcmp(op, "mdel")))
		return multi(obj, res, op, line);
	char *k = op ? strtok_r(NULL, " ", &line) : NULL;
	if (!op)
		return 0;
	if (!strcmp(op, "put") && k)
		return duro_put(obj, k, strlen(k), line ? line : "", line ? strlen(line) : 0);
	if (!strcmp(op, "del") && k) {
		int r = duro_delete(obj, k, strlen(k));
		return r < 0 ? r : sink_put(res, r ? "1\n" : "0\n", 2);
	}
	if (!strcmp(op, "get") && k) {
		struct duro_str v;
		int r = duro_get(obj, k, strlen(k), &v);
		if (r < 0)
			return r;
		if (!r)
			return sink_put(res, "-\n", 2);
		return sink_put(res, v.ptr, v.len) || sink_put(res, "\n", 1);
	}
	/* The batch's own begin/commit/rollback nest inside whatever the caller began. */
	if (!strcmp(op, "begin")) {
		int r = duro_txn_begin(obj);
		*depth += r == 0;
		return r;
	}
	if (!strcmp(op, "commit") || !strcmp(op, "rollback")) {
		if (!*depth)
			return -EINVAL;
		(*depth)--;
		return !strcmp(op, "commit") ? duro_txn_commit(obj) : duro_txn_rollback(obj);
	}
	return more ? more(obj, op, k) : -EINVAL;
}

static int do_batch(struct duro_object *obj, const struct duro_request *req, struct duro_response *res,
		    kv_line_fn *more)
{
	struct duro_str body = duro_req_body(req);
	char *copy = malloc(body.len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, body.ptr, body.len);
	copy[body.len] = 0;
	char *save = NULL;
	struct sink out = { res, NULL, 0, 0 };
	/* All or nothing: a line that fails undoes the lines before it (and any "begin" left
	 * open), while the client is still told why with its status. */
	unsigned depth = 0;
	int r = duro_txn_begin(obj);
	for (char *line = strtok_r(copy, "\n", &save); line && r == 0; line = strtok_r(NULL, "\n", &save))
		r = batch_line(obj, &out, line, more, &depth);
	free(copy);
	if (r < 0) {
		for (unsigned i = 0; i <= depth; i++)
			duro_txn_rollback(obj);
		return fail_text(res, r);
	}
	duro_res_status(res, 200);
	return 0;
}

int kv_on_request(struct duro_object *obj, const struct duro_request *req, struct duro_response *res,
		  kv_line_fn *more)
{
	struct duro_str sp = duro_req_subpath(req);
	if (sp.len >= 3 && !memcmp(sp.ptr, "/k/", 3)) {
		const char *k = sp.ptr + 3;
		size_t klen = sp.len - 3;
		int r;
		if (duro_req_is(req, "GET")) {
			struct duro_str v;
			r = duro_get(obj, k, klen, &v);
			if (r < 0)
				return fail_text(res, r);
			if (!r)
				return duro_res_text(res, 404, "no such key");
			return duro_res_body(res, v.ptr, v.len);
		}
		if (duro_req_is(req, "PUT")) {
			struct duro_str b = duro_req_body(req);
			r = duro_put(obj, k, klen, b.ptr, b.len);
			if (r < 0)
				return fail_text(res, r);
			duro_res_status(res, 204);
			return 0;
		}
		if (duro_req_is(req, "DELETE")) {
			r = duro_delete(obj, k, klen);
			if (r < 0)
				return fail_text(res, r);
			return duro_res_body(res, r ? "1" : "0", 1);
		}
	} else if (sp.len == 5 && !memcmp(sp.ptr, "/list", 5) && duro_req_is(req, "GET")) {
		return do_list(obj, req, res);
	} else if (sp.len == 6 && !memcmp(sp.ptr, "/batch", 6) && duro_req_is(req, "POST")) {
		return do_batch(obj, req, res, more);
	} else if (sp.len == 3 && !memcmp(sp.ptr, "/ws", 3) && duro_req_wants_ws(req)) {
		duro_ws ws;
		duro_ws_accept(obj, req, res, NULL, 0, &ws); /* on failure res holds the refusal */
		return 0;
	} else if (sp.len == 4 && !memcmp(sp.ptr, "/all", 4) && duro_req_is(req, "DELETE")) {
		int r = duro_delete_all(obj);
		if (r < 0)
			return fail_text(res, r);
		duro_res_status(res, 204);
		return 0;
	}
	return duro_res_text(res, 404, "use /k/<key>, /list, /batch or /all");
}

/* A batch over a WebSocket: one message, one event, one answer behind the output gate. */
int kv_on_ws_message(struct duro_object *obj, duro_ws ws, int binary, const void *data, size_t len,
		     kv_line_fn *more)
{
	if (binary)
		return duro_ws_send(obj, ws, 0, "error binary", 12) == -ENOMEM ? -ENOMEM : 0;
	char *copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	copy[len] = 0;
	struct sink out = { NULL, NULL, 0, 0 };
	int r = sink_put(&out, "ok\n", 3);
	char *save = NULL;
	unsigned depth = 0;
	for (char *line = strtok_r(copy, "\n", &save); line && r == 0; line = strtok_r(NULL, "\n", &save))
		r = batch_line(obj, &out, line, more, &depth);
	free(copy);
	if (r < 0) {
		char msg[48];
		int n = snprintf(msg, sizeof(msg), "error %d", r);
		free(out.buf);
		duro_ws_send(obj, ws, 0, msg, (size_t)n);
		return r; /* the event fails: its writes roll back */
	}
	r = duro_ws_send(obj, ws, 0, out.buf, out.len);
	free(out.buf);
	return r == -ENOMEM ? r : 0;
}

static int kv_request(struct duro_object *obj, const struct duro_request *req, struct duro_response *res)
{
	return kv_on_request(obj, req, res, NULL);
}

static int kv_ws_message(struct duro_object *obj, duro_ws ws, int binary, const void *data,
			 size_t len)
{
	return kv_on_ws_message(obj, ws, binary, data, len, NULL);
}

const struct duro_class kv_class = {
	.name = "KV",
	.on_request = kv_request,
	.on_ws_message = kv_ws_message,
};
DURO_CLASS(kv_class)

/* The same code under a second name, so that a migration renaming "KV" can be tried, and
 * is tested, without rebuilding durod (a renamed class is, in C, a class registered under
 * its new name). */
static const struct duro_class kv_store_class = {
	.name = "KVStore",
	.on_request = kv_request,
	.on_ws_message = kv_ws_message,
};
DURO_CLASS(kv_store_class)
