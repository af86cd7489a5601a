/* TestWsOut: an object with outbound WebSockets (duro_ws_connect), driven over HTTP by
 * tests/integration/test_ws_outbound.py. Every socket event is appended to the object's
 * storage (key "log", one line each), so the tests read what the object saw, evicted or not:
 *   POST <obj>/connect?url=U[&reconnect=1&tag=T&write=1]  "ok" or "err=E" (write=1 writes
 *        key "w" first: the dial then waits for that write to be durable)
 *   POST <obj>/send?tag=T     the body as a text message to the outbound sockets (tag T,
 *        default "up"); answered with how many
 *   POST <obj>/close?tag=T    closes them with 1000
 *   POST <obj>/auto?req=Q&res=A   setWebSocketAutoResponse
 *   GET  <obj>/log, <obj>/count, <obj>/loads (when this instance was loaded)
 *   GET  <obj>/att?tag=T      the attachment of the first socket with tag T ("none")
 * Every opened outbound socket gets the attachment "opened <count>" (count of opens).
 *   GET  <obj> with an upgrade: joins as a client socket (tag "client")
 * A message from an outbound socket is logged as "msg <data>"; "echo <x>" is answered on
 * the same socket with "re <x>"; "fan <x>" is broadcast to the client sockets. */
#include "duro.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wsout {
	int64_t loaded_at_ms;
};

static int wo_load(struct duro_object *obj)
{
	struct wsout *st = duro_state(obj);
	st->loaded_at_ms = duro_now_ms();
	/* Counts activations in storage would be a write outside an event: keep it in memory. */
	return 0;
}

static void log_line(struct duro_object *obj, const char *fmt, const void *data, size_t len, ...)
{
	struct duro_str old = { "", 0 };
	duro_get(obj, "log", 3, &old);
	char head[128];
	va_list ap;
	va_start(ap, len);
	int hl = vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	if (hl < 0)
		return;
	if ((size_t)hl >= sizeof(head))
		hl = sizeof(head) - 1;
	if (len > 200)
		len = 200;
	size_t n = old.len + (size_t)hl + len + 1;
	if (n > 256 * 1024)
		return; /* enough for any test */
	char *buf = malloc(n);
	if (!buf)
		return;
	memcpy(buf, old.ptr, old.len);
	memcpy(buf + old.len, head, (size_t)hl);
	if (len)
		memcpy(buf + old.len + hl, data, len);
	buf[n - 1] = '\n';
	duro_put(obj, "log", 3, buf, n);
	free(buf);
}

static int sub_is(const struct duro_request *req, const char *want)
{
	struct duro_str sp = duro_req_subpath(req);
	return sp.len == strlen(want) && memcmp(sp.ptr, want, sp.len) == 0;
}

struct each_ctx {
	struct duro_object *obj;
	const void *data;
	size_t len;
	int close, n;
};

static int each_one(void *arg, duro_ws ws)
{
	struct each_ctx *e = arg;
	if (e->close ? duro_ws_close(e->obj, ws, 1000, "bye") == 0
		     : duro_ws_send(e->obj, ws, 0, e->data, e->len) == 0)
		e->n++;
	return 0;
}

struct att_ctx {
	struct duro_object *obj;
	struct duro_str a;
	int found;
};

static int att_one(void *arg, duro_ws ws)
{
	struct att_ctx *a = arg;
	a->found = duro_ws_attachment(a->obj, ws, &a->a) == 1;
	return 1;
}

static int wo_request(struct duro_object *obj, const struct duro_request *req,
		      struct duro_response *res)
{
	char buf[256];
	char tag[64] = "up";
	struct duro_str v;
	if (duro_req_query_param(req, "tag", &v) && v.len && v.len < sizeof(tag)) {
		memcpy(tag, v.ptr, v.len);
		tag[v.len] = 0;
	}
	if ((sub_is(req, "") || sub_is(req, "/")) && duro_req_wants_ws(req)) {
		struct duro_str t = { "client", 6 };
		duro_ws ws;
		duro_ws_accept(obj, req, res, &t, 1, &ws);
		return 0;
	}
	if (sub_is(req, "/connect") && duro_req_is(req, "POST")) {
		char url[DURO_WS_MAX_URL + 1];
		if (!duro_req_query_param(req, "url", &v) || v.len > DURO_WS_MAX_URL)
			return duro_res_text(res, 400, "want ?url=");
		size_t ul = 0;
		for (size_t i = 0; i < v.len; i++) { /* query values arrive percent-encoded */
			if (v.ptr[i] == '%' && i + 2 < v.len) {
				char hx[3] = { v.ptr[i + 1], v.ptr[i + 2], 0 };
				url[ul++] = (char)strtol(hx, NULL, 16);
				i += 2;
			} else {
				url[ul++] = v.ptr[i] == '+' ? ' ' : v.ptr[i];
			}
		}
		url[ul] = 0;
		int64_t rc = 0, wr = 0;
		duro_req_query_int(req, "reconnect", 0, 1, &rc);
		duro_req_query_int(req, "write", 0, 1, &wr);
		if (wr && duro_put(obj, "w", 1, "1", 1) < 0)
			return duro_res_text(res, 500, "write failed");
		struct duro_ws_connect_opts o = { rc ? DURO_WS_RECONNECT : 0, 0 };
		struct duro_str t = { tag, strlen(tag) };
		duro_ws ws;
		int r = duro_ws_connect(obj, url, &t, 1, &o, &ws);
		if (r < 0)
			snprintf(buf, sizeof(buf), "err=%d", r);
		else
			snprintf(buf, sizeof(buf), "ok %llu", (unsigned long long)ws);
		return duro_res_text(res, 200, buf);
	}
	if ((sub_is(req, "/send") || sub_is(req, "/close")) && duro_req_is(req, "POST")) {
		struct duro_str body = duro_req_body(req);
		struct each_ctx e = { obj, body.ptr, body.len, sub_is(req, "/close"), 0 };
		duro_ws_each(obj, tag, each_one, &e);
		snprintf(buf, sizeof(buf), "%d", e.n);
		return duro_res_text(res, 200, buf);
	}
	if (sub_is(req, "/auto") && duro_req_is(req, "POST")) {
		struct duro_str q, a = { "", 0 };
		int has = duro_req_query_param(req, "req", &q);
		duro_req_query_param(req, "res", &a);
		int r = duro_ws_set_auto_response(obj, has ? q.ptr : NULL, has ? q.len : 0, a.ptr, a.len);
		return duro_res_text(res, r == 0 ? 200 : 400, r == 0 ? "ok" : "bad");
	}
	if (sub_is(req, "/log")) {
		struct duro_str l = { "", 0 };
		duro_get(obj, "log", 3, &l);
		duro_res_status(res, 200);
		return duro_res_body(res, l.ptr, l.len);
	}
	if (sub_is(req, "/count")) {
		snprintf(buf, sizeof(buf), "%zu", duro_ws_count(obj));
		return duro_res_text(res, 200, buf);
	}
	if (sub_is(req, "/att")) {
		struct att_ctx a = { obj, { "", 0 }, 0 };
		duro_ws_each(obj, tag, att_one, &a);
		duro_res_status(res, 200);
		return a.found ? duro_res_body(res, a.a.ptr, a.a.len) : duro_res_body(res, "none", 4);
	}
	if (sub_is(req, "/loads")) {
		struct wsout *st = duro_state(obj);
		snprintf(buf, sizeof(buf), "%lld", (long long)st->loaded_at_ms);
		return duro_res_text(res, 200, buf);
	}
	return duro_res_text(res, 404, "no such op");
}

static void wo_open(struct duro_object *obj, duro_ws ws, int err, int reconnect)
{
	log_line(obj, "open err=%d reconnect=%d outbound=%d", NULL, 0, err, reconnect,
		 err ? 1 : duro_ws_is_outbound(obj, ws));
	if (err == 0) {
		/* Kept by the runtime: through hibernation and reconnects alike. */
		struct duro_str old;
		unsigned n = 0;
		char buf[32];
		if (duro_ws_attachment(obj, ws, &old) == 1 && old.len > 7 && old.len < 20) {
			memcpy(buf, old.ptr, old.len);
			buf[old.len] = 0;
			n = (unsigned)strtoul(buf + 7, NULL, 10);
		}
		int l = snprintf(buf, sizeof(buf), "opened %u", n + 1);
		duro_ws_set_attachment(obj, ws, buf, (size_t)l);
	}
}

static int wo_message(struct duro_object *obj, duro_ws ws, int binary, const void *data,
		      size_t len)
{
	if (duro_ws_is_outbound(obj, ws) != 1)
		return 0; /* clients only listen */
	log_line(obj, "msg %s", data, len, binary ? "bin " : "");
	if (len > 5 && !memcmp(data, "echo ", 5)) {
		char out[256];
		size_t n = len - 5 < sizeof(out) - 3 ? len - 5 : sizeof(out) - 3;
		memcpy(out, "re ", 3);
		memcpy(out + 3, (const char *)data + 5, n);
		duro_ws_send(obj, ws, 0, out, n + 3);
	}
	if (len > 4 && !memcmp(data, "fan ", 4))
		duro_ws_broadcast(obj, "client", 0, binary, (const char *)data + 4, len - 4);
	return 0;
}

static void wo_close(struct duro_object *obj, duro_ws ws, int code, const char *reason,
		     size_t len, int clean)
{
	if (duro_ws_is_outbound(obj, ws) == 0)
		return;
	log_line(obj, "close code=%d clean=%d", NULL, 0, code, clean);
}

static void wo_error(struct duro_object *obj, duro_ws ws, int code)
{
	log_line(obj, "error code=%d", NULL, 0, code);
}

static const struct duro_class test_wsout_class = {
	.name = "TestWsOut",
	.state_size = sizeof(struct wsout),
	.on_load = wo_load,
	.on_request = wo_request,
	.on_ws_message = wo_message,
	.on_ws_close = wo_close,
	.on_ws_error = wo_error,
	.on_ws_open = wo_open,
};

DURO_CLASS(test_wsout_class)
