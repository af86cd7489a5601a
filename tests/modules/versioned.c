/* Versioned: the class the module tests build in two or more versions (-DMARKER="v2") and
 * deploy over each other. Every answer names the version that produced it; the count
 * lives in storage, so a deploy that lost state shows.
 *   POST /v/<name>            increments; "<MARKER> <count> <loads>"
 *   GET  /v/<name>            the same without incrementing
 *   POST /v/<name>/defer      held (a deferred response) until /release
 *   POST /v/<name>/release    answers every held response "<MARKER> released"
 *   POST /v/<name>/sync       writes, calls duro_sync; its callback stores the status
 *   GET  /v/<name>/syncs      the statuses the callbacks stored, "s1 s2 …"
 *   GET  /v/<name> + upgrade  joins the object's room: each message comes back to every
 *                             member as "<MARKER>:<message>"
 * With -DWITH_TRAPS: POST …/crash writes through NULL, POST …/hang never returns. */
#include "duro.h"

#include <stdio.h>
#include <string.h>

#ifndef MARKER
#define MARKER "v1"
#endif
#ifndef CLASS_NAME
#define CLASS_NAME "Versioned"
#endif

#define MAX_HELD 64

struct state {
	unsigned loads;       /* on_load calls of this instance: 1 unless it was switched */
	unsigned nheld;
	struct duro_deferred *held[MAX_HELD];
};

static unsigned process_loads; /* this version's on_load calls in the process */

static int on_load(struct duro_object *obj)
{
	struct state *st = duro_state(obj);
	st->loads++;
	process_loads++;
	return 0;
}

static int sub_is(const struct duro_request *req, const char *want)
{
	struct duro_str sp = duro_req_subpath(req);
	return sp.len == strlen(want) && memcmp(sp.ptr, want, sp.len) == 0;
}

static int get_u64(struct duro_object *obj, const char *key, uint64_t *out)
{
	struct duro_str v;
	int r = duro_get(obj, key, strlen(key), &v);
	*out = 0;
	if (r == 1 && v.len == sizeof(*out))
		memcpy(out, v.ptr, sizeof(*out));
	return r < 0 ? r : 0;
}

static void synced(struct duro_object *obj, int status, void *arg)
{
	char line[256] = "";
	struct duro_str v;
	(void)arg;
	if (duro_get(obj, "syncs", 5, &v) == 1 && v.len < 200)
		memcpy(line, v.ptr, v.len);
	size_t n = strlen(line);
	snprintf(line + n, sizeof(line) - n, "%s%s:%d", n ? " " : "", MARKER, status);
	duro_put(obj, "syncs", 5, line, strlen(line));
}

static int on_request(struct duro_object *obj, const struct duro_request *req,
		      struct duro_response *res)
{
	struct state *st = duro_state(obj);
	char text[128];
	uint64_t n;
	int r;
	if (duro_req_wants_ws(req)) {
		duro_ws ws;
		duro_ws_accept(obj, req, res, NULL, 0, &ws);
		return 0;
	}
	if (sub_is(req, "/defer")) {
		struct duro_deferred *d = st->nheld < MAX_HELD ? duro_res_defer(res) : NULL;
		if (!d)
			return duro_res_text(res, 503, "too many held");
		st->held[st->nheld++] = d;
		return 0;
	}
	if (sub_is(req, "/release")) {
		unsigned k = st->nheld;
		snprintf(text, sizeof(text), "%s released\n", MARKER);
		while (st->nheld)
			duro_deferred_respond(obj, st->held[--st->nheld], 200, "text/plain", text,
					      strlen(text));
		snprintf(text, sizeof(text), "%s released %u", MARKER, k);
		return duro_res_text(res, 200, text);
	}
	if (sub_is(req, "/syncs")) {
		struct duro_str v;
		r = duro_get(obj, "syncs", 5, &v);
		if (r < 0)
			return r;
		duro_res_status(res, 200);
		return duro_res_body(res, r == 1 ? v.ptr : "", r == 1 ? v.len : 0);
	}
	if ((r = get_u64(obj, "n", &n)) < 0)
		return r;
	if (sub_is(req, "/sync")) {
		n++;
		if ((r = duro_put(obj, "n", 1, &n, sizeof(n))) < 0 ||
		    (r = duro_sync(obj, synced, NULL)) < 0)
			return r;
	}
#ifdef WITH_TRAPS
	if (sub_is(req, "/crash")) {
		volatile int *volatile p = NULL;
		*p = 1;
	}
	if (sub_is(req, "/hang"))
		for (;;)
			__asm__ volatile("" ::: "memory");
#endif
	if (duro_req_is(req, "POST") && duro_req_subpath(req).len <= 1) {
		n++;
		if ((r = duro_put(obj, "n", 1, &n, sizeof(n))) < 0)
			return r;
	}
	snprintf(text, sizeof(text), "%s %llu %u %u", MARKER, (unsigned long long)n, st->loads,
		 process_loads);
	return duro_res_text(res, 200, text);
}

static int on_ws_message(struct duro_object *obj, duro_ws ws, int binary, const void *data,
			 size_t len)
{
	char out[1024];
	size_t ml = strlen(MARKER);
	(void)ws;
	if (len > sizeof(out) - ml - 1)
		len = sizeof(out) - ml - 1;
	memcpy(out, MARKER, ml);
	out[ml] = ':';
	memcpy(out + ml + 1, data, len);
	return duro_ws_broadcast(obj, NULL, 0, binary, out, ml + 1 + len) < 0;
}

static const struct duro_class versioned_class = {
	CLASS_NAME, sizeof(struct state), on_load, on_request, NULL, NULL, on_ws_message, NULL, NULL,
};
DURO_CLASS(versioned_class)
