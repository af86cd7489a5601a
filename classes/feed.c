/* Feed: one upstream WebSocket feed fanned out to many local clients, the edge use case.
 * GET /feed/<name> with a WebSocket upgrade joins the feed's room (tag "client"); the
 * object subscribes to the URL in its binding's var "upstream" (which outbound.allow must
 * name) with a durable outbound socket (tag "upstream"), and every message the upstream
 * sends goes, unchanged, to every client. Both sides hibernate: while nothing arrives the
 * object is out of memory with all its sockets open, and the next upstream message wakes
 * it. The subscription survives upstream drops and durod restarts (DURO_WS_RECONNECT);
 * on every open the text in the var "subscribe", when set, is sent upstream first (the
 * re-subscription). With the var "publish" set to "1", what clients send goes upstream
 * (a feed that clients also publish to, and how bench/feed.py drives it through an echoing
 * upstream); else it is dropped. Also POST /subscribe (subscribe without a client) and
 * GET /status. */
#include "duro.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct feed {
	int64_t loaded_at_ms; /* changes after hibernation */
	uint64_t forwarded;   /* messages of this instance, since it was loaded */
};

static int feed_load(struct duro_object *obj)
{
	struct feed *st = duro_state(obj);
	st->loaded_at_ms = duro_now_ms();
	st->forwarded = 0;
	return 0;
}

static int subpath_is(const struct duro_request *req, const char *want)
{
	struct duro_str sp = duro_req_subpath(req);
	return sp.len == strlen(want) && memcmp(sp.ptr, want, sp.len) == 0;
}

static int stop_at_first(void *arg, duro_ws ws)
{
	(void)arg;
	(void)ws;
	return 1;
}

/* Subscribes unless it is already (or still trying to be). Returns 0, or an HTTP status
 * with why in `why`. */
static int subscribe(struct duro_object *obj, char *why, size_t n)
{
	if (duro_ws_each(obj, "upstream", stop_at_first, NULL) > 0)
		return 0;
	struct duro_str up;
	char url[DURO_WS_MAX_URL + 1];
	if (!duro_var(obj, "upstream", &up) || up.len == 0 || up.len > DURO_WS_MAX_URL) {
		snprintf(why, n, "Feed: the binding's var \"upstream\" (a ws:// or wss:// URL) is not set");
		return 500;
	}
	memcpy(url, up.ptr, up.len);
	url[up.len] = 0;
	struct duro_str tag = { "upstream", 8 };
	struct duro_ws_connect_opts opts = { DURO_WS_RECONNECT, 0 };
	duro_ws ws;
	int r = duro_ws_connect(obj, url, &tag, 1, &opts, &ws);
	if (r == -EACCES)
		snprintf(why, n, "Feed: upstream %s is not within outbound.allow", url);
	else if (r == -EINVAL)
		snprintf(why, n, "Feed: upstream %s is not a ws:// or wss:// URL", url);
	else if (r < 0)
		snprintf(why, n, "Feed: cannot subscribe to %s (%s)", url, strerror(-r));
	return r == -EACCES || r == -EINVAL ? 500 : r < 0 ? 503 : 0;
}

static int feed_request(struct duro_object *obj, const struct duro_request *req,
			struct duro_response *res)
{
	char why[DURO_WS_MAX_URL + 128];
	if (subpath_is(req, "") || subpath_is(req, "/")) {
		if (!duro_req_wants_ws(req))
			return duro_res_text(res, 426, "join the feed with a WebSocket upgrade");
		int st = subscribe(obj, why, sizeof(why));
		if (st)
			return duro_res_text(res, st, why);
		struct duro_str tag = { "client", 6 };
		duro_ws ws;
		duro_ws_accept(obj, req, res, &tag, 1, &ws);
		return 0; /* res holds the 101, or the refusal */
	}
	if (subpath_is(req, "/subscribe") && duro_req_is(req, "POST")) {
		int st = subscribe(obj, why, sizeof(why));
		return duro_res_text(res, st ? st : 200, st ? why : "subscribed");
	}
	if (subpath_is(req, "/status")) {
		struct feed *st = duro_state(obj);
		char buf[192];
		int up = duro_ws_each(obj, "upstream", stop_at_first, NULL) > 0;
		snprintf(buf, sizeof(buf),
			 "{\"subscribed\":%s,\"sockets\":%zu,\"loaded_at_ms\":%lld,\"forwarded\":%llu}\n",
			 up ? "true" : "false", duro_ws_count(obj), (long long)st->loaded_at_ms,
			 (unsigned long long)st->forwarded);
		duro_res_status(res, 200);
		if (duro_res_header(res, "Content-Type", "application/json") < 0)
			return -ENOMEM;
		return duro_res_body(res, buf, strlen(buf));
	}
	return duro_res_text(res, 404, "Feed: join with a WebSocket upgrade; or /subscribe, /status");
}

static void feed_open(struct duro_object *obj, duro_ws ws, int err, int reconnect)
{
	(void)reconnect;
	struct duro_str sub;
	if (err == 0 && duro_var(obj, "subscribe", &sub) && sub.len)
		duro_ws_send(obj, ws, 0, sub.ptr, sub.len);
}

static int send_one(void *arg, duro_ws ws)
{
	const struct duro_str *m = arg;
	duro_ws_send((struct duro_object *)m[1].ptr, ws, (int)m[1].len, m->ptr, m->len);
	return 1;
}

static int feed_message(struct duro_object *obj, duro_ws ws, int binary, const void *data,
			size_t len)
{
	if (duro_ws_is_outbound(obj, ws) != 1) {
		struct duro_str pub;
		if (duro_var(obj, "publish", &pub) && pub.len == 1 && pub.ptr[0] == '1') {
			/* [0] the message, [1] the object and the binary flag, for the callback. */
			struct duro_str m[2] = { { data, len }, { (const char *)obj, (size_t)binary } };
			duro_ws_each(obj, "upstream", send_one, m);
		}
		return 0; /* else clients listen; what they send is dropped */
	}
	struct feed *st = duro_state(obj);
	st->forwarded++;
	int n = duro_ws_broadcast(obj, "client", 0, binary, data, len);
	return n < 0 ? n : 0;
}

const struct duro_class feed_class = {
	.name = "Feed",
	.state_size = sizeof(struct feed),
	.on_load = feed_load,
	.on_request = feed_request,
	.on_ws_message = feed_message,
	.on_ws_open = feed_open,
};

DURO_CLASS(feed_class)
