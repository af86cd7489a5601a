/* ChatRoom: GET /room/<name> with a WebSocket upgrade joins the room (hibernatable); every
 * message a member sends goes, unchanged, to every member, the sender included. Also an
 * event stream of the same messages (/events) and a few operator views for tests. With the
 * binding var "limiter" naming a RateLimiter binding, each message first takes a token
 * from its sender's bucket there (a call, duro_call_name; the sender is its ?name=, else
 * its socket): over the limit, the sender gets an error message and nobody the message. */
#include "builtin.h"
#include "duro.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct room {
	int64_t loaded_at_ms; /* when this instance was activated: changes after hibernation */
};

static int room_load(struct duro_object *obj)
{
	struct room *st = duro_state(obj);
	st->loaded_at_ms = duro_now_ms();
	return 0;
}

static int subpath_is(const struct duro_request *req, const char *want)
{
	struct duro_str sp = duro_req_subpath(req);
	return sp.len == strlen(want) && memcmp(sp.ptr, want, sp.len) == 0;
}

/* ?tags=a,b: the socket's tags (up to 10). */
static size_t parse_tags(const struct duro_request *req, struct duro_str *tags)
{
	struct duro_str v;
	size_t n = 0;
	if (!duro_req_query_param(req, "tags", &v))
		return 0;
	const char *p = v.ptr, *end = v.ptr + v.len;
	while (p < end && n < DURO_WS_MAX_TAGS + 1) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *e = comma ? comma : end;
		if (e > p)
			tags[n++] = (struct duro_str){ p, (size_t)(e - p) };
		p = e + 1;
	}
	return n;
}

static int join(struct duro_object *obj, const struct duro_request *req,
		struct duro_response *res, int stream)
{
	struct duro_str tags[DURO_WS_MAX_TAGS + 1], name;
	size_t ntags = parse_tags(req, tags);
	duro_ws ws;
	int r = stream ? duro_sse_accept(obj, req, res, tags, ntags, &ws)
		       : duro_ws_accept(obj, req, res, tags, ntags, &ws);
	if (r < 0)
		return 0; /* res holds the refusal */
	/* ?name=: kept as the socket's attachment, through hibernation. */
	if (duro_req_query_param(req, "name", &name) && name.len)
		duro_ws_set_attachment(obj, ws, name.ptr, name.len);
	return 0;
}

/* Appends s as a JSON string. */
static int json_str(struct duro_response *res, const char *s, size_t n)
{
	char buf[8];
	if (duro_res_body(res, "\"", 1) < 0)
		return -ENOMEM;
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		if (duro_res_body(res, s + run, i - run) < 0)
			return -ENOMEM;
		snprintf(buf, sizeof(buf), "\\u%04x", ch);
		if (duro_res_body(res, buf, 6) < 0)
			return -ENOMEM;
		run = i + 1;
	}
	if (duro_res_body(res, s + run, n - run) < 0 || duro_res_body(res, "\"", 1) < 0)
		return -ENOMEM;
	return 0;
}

struct list_ctx {
	struct duro_object *obj;
	struct duro_response *res;
	int first, err;
};

static int list_one(void *arg, duro_ws ws)
{
	struct list_ctx *lc = arg;
	struct duro_str tags[DURO_WS_MAX_TAGS], att;
	char buf[128];
	int n = duro_ws_tags(lc->obj, ws, tags, DURO_WS_MAX_TAGS);
	int has_att = duro_ws_attachment(lc->obj, ws, &att);
	int len = snprintf(buf, sizeof(buf), "%s{\"socket\":\"%llu\",\"stream\":%s,\"auto_response_ms\":%lld,\"tags\":[",
			   lc->first ? "" : ",", (unsigned long long)ws,
			   duro_ws_is_stream(lc->obj, ws) == 1 ? "true" : "false",
			   (long long)duro_ws_auto_response_time(lc->obj, ws));
	lc->first = 0;
	int r = duro_res_body(lc->res, buf, (size_t)len);
	for (int i = 0; r == 0 && i < n; i++) {
		if (i)
			r = duro_res_body(lc->res, ",", 1);
		if (r == 0)
			r = json_str(lc->res, tags[i].ptr, tags[i].len);
	}
	if (r == 0)
		r = duro_res_body(lc->res, "],\"attachment\":", 15);
	if (r == 0)
		r = has_att == 1 ? json_str(lc->res, att.ptr, att.len) : duro_res_body(lc->res, "null", 4);
	if (r == 0)
		r = duro_res_body(lc->res, "}", 1);
	lc->err = r;
	return r != 0;
}

static int list_sockets(struct duro_object *obj, struct duro_response *res)
{
	struct room *st = duro_state(obj);
	char buf[128];
	int len = snprintf(buf, sizeof(buf), "{\"loaded_at_ms\":%lld,\"count\":%zu,\"sockets\":[",
			   (long long)st->loaded_at_ms, duro_ws_count(obj));
	duro_res_status(res, 200);
	if (duro_res_header(res, "Content-Type", "application/json") < 0 ||
	    duro_res_body(res, buf, (size_t)len) < 0)
		return -ENOMEM;
	struct list_ctx lc = { obj, res, 1, 0 };
	duro_ws_each(obj, NULL, list_one, &lc);
	if (lc.err || duro_res_body(res, "]}\n", 3) < 0)
		return -ENOMEM;
	return 0;
}

struct close_ctx {
	struct duro_object *obj;
	int code;
	duro_ws ws[64];
	int n;
};

static int collect(void *arg, duro_ws ws)
{
	struct close_ctx *cc = arg;
	cc->ws[cc->n++] = ws;
	return cc->n == 64;
}

static int room_request(struct duro_object *obj, const struct duro_request *req,
			struct duro_response *res)
{
	char buf[64];
	struct duro_str tag;
	char tagz[DURO_WS_MAX_TAG + 1];
	const char *tagp = NULL;
	if (duro_req_query_param(req, "tag", &tag) && tag.len <= DURO_WS_MAX_TAG) {
		memcpy(tagz, tag.ptr, tag.len);
		tagz[tag.len] = 0;
		tagp = tagz;
	}
	if (subpath_is(req, "") || subpath_is(req, "/"))
		return duro_req_wants_ws(req) ? join(obj, req, res, 0)
					      : duro_res_text(res, 426, "join with a WebSocket upgrade");
	if (subpath_is(req, "/events"))
		return join(obj, req, res, 1);
	if (subpath_is(req, "/sockets"))
		return list_sockets(obj, res);
	if (subpath_is(req, "/broadcast") && duro_req_is(req, "POST")) {
		struct duro_str body = duro_req_body(req);
		int n = duro_ws_broadcast(obj, tagp, 0, 0, body.ptr, body.len);
		if (n < 0)
			return duro_res_text(res, 500, "broadcast failed");
		snprintf(buf, sizeof(buf), "%d", n);
		return duro_res_text(res, 200, buf);
	}
	if (subpath_is(req, "/auto") && duro_req_is(req, "POST")) {
		struct duro_str q, a = { "", 0 };
		int has = duro_req_query_param(req, "req", &q);
		duro_req_query_param(req, "res", &a);
		int r = duro_ws_set_auto_response(obj, has ? q.ptr : NULL, has ? q.len : 0, a.ptr, a.len);
		return duro_res_text(res, r == 0 ? 200 : 400, r == 0 ? "ok" : "bad auto-response");
	}
	if (subpath_is(req, "/close") && duro_req_is(req, "POST")) {
		int64_t code = 1000;
		if (duro_req_query_int(req, "code", 1000, 4999, &code) < 0)
			return duro_res_text(res, 400, "bad code");
		struct close_ctx cc = { obj, (int)code, { 0 }, 0 };
		int total = 0;
		do {
			cc.n = 0;
			duro_ws_each(obj, tagp, collect, &cc);
			for (int i = 0; i < cc.n; i++)
				if (duro_ws_close(obj, cc.ws[i], cc.code, "closed by the room") == 0)
					total++;
		} while (cc.n == 64);
		snprintf(buf, sizeof(buf), "%d", total);
		return duro_res_text(res, 200, buf);
	}
	if (subpath_is(req, "/attach") && duro_req_is(req, "POST")) {
		/* ?socket=S (as /sockets names it): the body becomes its attachment. */
		struct duro_str s, body = duro_req_body(req);
		if (!duro_req_query_param(req, "socket", &s) || s.len == 0 || s.len > 20)
			return duro_res_text(res, 400, "bad socket");
		char sz[21];
		memcpy(sz, s.ptr, s.len);
		sz[s.len] = 0;
		char *end;
		unsigned long long ws = strtoull(sz, &end, 10);
		if (*end)
			return duro_res_text(res, 400, "bad socket");
		int r = duro_ws_set_attachment(obj, (duro_ws)ws, body.ptr, body.len);
		return r == 0 ? duro_res_text(res, 200, "ok")
		       : duro_res_text(res, r == -ENOENT ? 404 : 400, r == -ENOENT ? "no such socket"
								      : "bad attachment");
	}
	if (subpath_is(req, "/timeout") && duro_req_is(req, "POST")) {
		int64_t ms = 0;
		if (duro_req_query_int(req, "ms", 0, 3600000, &ms) < 0)
			return duro_res_text(res, 400, "bad ms");
		duro_ws_set_event_timeout(obj, (unsigned)ms);
		return duro_res_text(res, 200, "ok");
	}
	return duro_res_text(res, 404, "no such room resource");
}

/* A message waiting for its sender's token. */
struct held_msg {
	duro_ws from;
	int binary;
	size_t len;
	char data[];
};

static const char limited[] = "{\"error\":\"rate limited: message not sent\"}";
static const char no_limiter[] = "{\"error\":\"rate limiter unavailable: message not sent\"}";

static void token_done(struct duro_object *obj, int err, const struct duro_reply *rep, void *arg)
{
	struct held_msg *m = arg;
	if (err == 0 && rep->status == 200)
		duro_ws_broadcast(obj, NULL, 0, m->binary, m->data, m->len);
	else if (err == 0 && rep->status == 429)
		duro_ws_send(obj, m->from, 0, limited, sizeof(limited) - 1);
	else
		duro_ws_send(obj, m->from, 0, no_limiter, sizeof(no_limiter) - 1);
	free(m);
}

static int room_message(struct duro_object *obj, duro_ws ws, int binary, const void *data,
			size_t len)
{
	struct duro_str limiter;
	if (!duro_var(obj, "limiter", &limiter) || !limiter.len) {
		int n = duro_ws_broadcast(obj, NULL, 0, binary, data, len);
		return n == -ENOMEM ? n : 0;
	}
	/* The bucket: this room's ID and the sender's name (or socket), so rooms and senders
	 * do not share. Messages of one sender take their tokens in order (calls to one object
	 * arrive in order, and are answered so), and go out in that order. */
	char key[DURO_ID_HEX + 1 + 64 + 1], id[DURO_ID_HEX + 1];
	struct duro_str name;
	duro_id_to_string(duro_object_id(obj), id);
	int kl = duro_ws_attachment(obj, ws, &name) == 1 && name.len <= 64
			 ? snprintf(key, sizeof(key), "%.16s:%.*s", id, (int)name.len, name.ptr)
			 : snprintf(key, sizeof(key), "%.16s:#%llu", id, (unsigned long long)ws);
	struct held_msg *m = malloc(sizeof(*m) + len);
	if (!m)
		return -ENOMEM;
	m->from = ws;
	m->binary = binary;
	m->len = len;
	memcpy(m->data, data, len);
	int r = duro_call_name(obj, limiter.ptr, key, (size_t)kl, "POST", "/", NULL, 0, NULL, 0,
			       NULL, token_done, m);
	if (r < 0) {
		free(m);
		duro_ws_send(obj, ws, 0, no_limiter, sizeof(no_limiter) - 1);
	}
	return 0;
}

const struct duro_class chatroom_class = {
	.name = "ChatRoom",
	.state_size = sizeof(struct room),
	.on_load = room_load,
	.on_request = room_request,
	.on_ws_message = room_message,
};
DURO_CLASS(chatroom_class)
