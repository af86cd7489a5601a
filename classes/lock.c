/* Lock: a lease with fencing tokens, one per object (/lock/<name>).
 *   POST /lock/<name>/acquire?ttl=MS&owner=ID[&wait=MS]
 *        200 {"token":N,"owner":..,"expires":T} when free (tokens strictly increase per
 *        lock); 409 {"owner":..,"expires":T} when held, or with wait: the caller queues and
 *        is answered 200 the moment the lease is released or expires, else 409 when its
 *        wait ends.
 *   POST /lock/<name>/release?token=N   200, or 409 for a stale token
 *   GET  /lock/<name>                   {"holder":..,"token":N,"expires":T}
 * The lease ends by alarm after ttl, so a crashed holder never blocks the others for long.
 * Holder, token and expiry are stored; waiters are held responses (in memory). */
#include "duro.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WAITERS 64
#define MAX_OWNER 64

struct waiter {
	struct duro_deferred *d;
	char owner[MAX_OWNER + 1];
	int64_t ttl, deadline;
};

struct lock {
	struct waiter w[MAX_WAITERS]; /* FIFO */
	unsigned n;
};

struct lease {
	int held;
	char owner[MAX_OWNER + 1];
	uint64_t token;
	int64_t expires;
};

static int load(struct duro_object *obj, struct lease *l)
{
	struct duro_str v;
	memset(l, 0, sizeof(*l));
	int r = duro_get(obj, "token", 5, &v);
	if (r < 0)
		return r;
	if (r == 1 && v.len == sizeof(l->token))
		memcpy(&l->token, v.ptr, sizeof(l->token));
	if ((r = duro_get(obj, "holder", 6, &v)) < 0)
		return r;
	if (r == 1 && v.len <= MAX_OWNER) {
		l->held = 1;
		memcpy(l->owner, v.ptr, v.len);
		if ((r = duro_get(obj, "expires", 7, &v)) < 0)
			return r;
		if (r == 1 && v.len == sizeof(l->expires))
			memcpy(&l->expires, v.ptr, sizeof(l->expires));
	}
	return 0;
}

static int grant(struct duro_object *obj, struct lease *l, const char *owner, int64_t ttl)
{
	l->held = 1;
	l->token++;
	l->expires = duro_now_ms() + ttl;
	snprintf(l->owner, sizeof(l->owner), "%s", owner);
	int r = duro_put(obj, "token", 5, &l->token, sizeof(l->token));
	if (!r)
		r = duro_put(obj, "holder", 6, l->owner, strlen(l->owner));
	if (!r)
		r = duro_put(obj, "expires", 7, &l->expires, sizeof(l->expires));
	if (!r)
		r = duro_set_alarm(obj, l->expires);
	return r;
}

static int granted_json(char *buf, size_t cap, const struct lease *l)
{
	return snprintf(buf, cap, "{\"token\":%llu,\"owner\":\"%s\",\"expires\":%lld}\n",
			(unsigned long long)l->token, l->owner, (long long)l->expires);
}

/* Arms the "wait" alarm for the earliest waiter deadline, or deletes it. */
static int rearm_wait(struct duro_object *obj, struct lock *st)
{
	int64_t first = -1;
	for (unsigned i = 0; i < st->n; i++)
		if (first < 0 || st->w[i].deadline < first)
			first = st->w[i].deadline;
	if (first < 0) {
		int r = duro_delete_alarm_named(obj, "wait", 4);
		return r < 0 ? r : 0;
	}
	return duro_set_alarm_named(obj, "wait", 4, first);
}

/* The lease is free: give it to the first waiter, or leave it free. */
static int hand_over(struct duro_object *obj, struct lock *st, struct lease *l)
{
	if (st->n == 0) {
		l->held = 0;
		int r = duro_delete(obj, "holder", 6);
		if (r >= 0)
			r = duro_delete(obj, "expires", 7);
		if (r >= 0)
			r = duro_delete_alarm(obj);
		return r < 0 ? r : 0;
	}
	struct waiter w = st->w[0];
	memmove(st->w, st->w + 1, (st->n - 1) * sizeof(st->w[0]));
	st->n--;
	int r = grant(obj, l, w.owner, w.ttl);
	if (r)
		return r;
	char body[256];
	int n = granted_json(body, sizeof(body), l);
	duro_deferred_respond(obj, w.d, 200, "application/json", body, (size_t)n);
	return rearm_wait(obj, st);
}

static int json(struct duro_response *res, int status, const char *body, int len)
{
	duro_res_status(res, status);
	return duro_res_header(res, "Content-Type", "application/json") ||
	       duro_res_body(res, body, (size_t)len);
}

static int acquire(struct duro_object *obj, const struct duro_request *req, struct duro_response *res)
{
	struct lock *st = duro_state(obj);
	struct duro_str ow;
	int64_t ttl, wait = 0;
	if (duro_req_query_int(req, "ttl", 1, 86400000, &ttl) != 1 || !duro_req_query_param(req, "owner", &ow) ||
	    ow.len == 0 || ow.len > MAX_OWNER || duro_req_query_int(req, "wait", 0, 3600000, &wait) < 0)
		return duro_res_text(res, 400, "want ttl=1..86400000 ms, owner=1..64 of [A-Za-z0-9._-], wait=0..3600000 ms");
	char owner[MAX_OWNER + 1];
	for (size_t i = 0; i < ow.len; i++) {
		char ch = ow.ptr[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return duro_res_text(res, 400, "owner: use [A-Za-z0-9._-]");
		owner[i] = ch;
	}
	owner[ow.len] = 0;
	struct lease l;
	int r = load(obj, &l);
	if (r)
		return r;
	char body[256];
	if (l.held && l.expires <= duro_now_ms() && (r = hand_over(obj, st, &l)))
		return r; /* expired and its alarm not yet run: the queue goes first */
	if (!l.held) {
		if ((r = grant(obj, &l, owner, ttl)))
			return r;
		return json(res, 200, body, granted_json(body, sizeof(body), &l));
	}
	if (wait > 0 && st->n < MAX_WAITERS) {
		struct duro_deferred *d = duro_res_defer(res);
		if (d) {
			struct waiter *w = &st->w[st->n++];
			w->d = d;
			snprintf(w->owner, sizeof(w->owner), "%s", owner);
			w->ttl = ttl;
			w->deadline = duro_now_ms() + wait;
			return rearm_wait(obj, st);
		}
	}
	int n = snprintf(body, sizeof(body), "{\"owner\":\"%s\",\"expires\":%lld}\n", l.owner,
			 (long long)l.expires);
	return json(res, 409, body, n);
}

static int lock_request(struct duro_object *obj, const struct duro_request *req, struct duro_response *res)
{
	struct duro_str sp = duro_req_subpath(req);
	char body[256];
	struct lease l;
	int r;
	if (sp.len == 8 && !memcmp(sp.ptr, "/acquire", 8) && duro_req_is(req, "POST"))
		return acquire(obj, req, res);
	if (sp.len == 8 && !memcmp(sp.ptr, "/release", 8) && duro_req_is(req, "POST")) {
		int64_t token;
		if (duro_req_query_int(req, "token", 1, INT64_MAX, &token) != 1)
			return duro_res_text(res, 400, "want token=N");
		if ((r = load(obj, &l)))
			return r;
		if (!l.held || l.token != (uint64_t)token) {
			int n = snprintf(body, sizeof(body), "{\"error\":\"stale token\",\"token\":%llu}\n",
					 (unsigned long long)l.token);
			return json(res, 409, body, n);
		}
		if ((r = hand_over(obj, duro_state(obj), &l)))
			return r;
		return json(res, 200, "{\"released\":true}\n", 18);
	}
	if (sp.len <= 1 && duro_req_is(req, "GET")) {
		if ((r = load(obj, &l)))
			return r;
		int n = l.held && l.expires > duro_now_ms()
				? snprintf(body, sizeof(body), "{\"holder\":\"%s\",\"token\":%llu,\"expires\":%lld}\n",
					   l.owner, (unsigned long long)l.token, (long long)l.expires)
				: snprintf(body, sizeof(body), "{\"holder\":null,\"token\":%llu}\n",
					   (unsigned long long)l.token);
		return json(res, 200, body, n);
	}
	return duro_res_text(res, 404, "use POST /acquire, POST /release or GET");
}

static int lock_alarm(struct duro_object *obj, const struct duro_alarm_info *info)
{
	struct lock *st = duro_state(obj);
	int64_t now = duro_now_ms();
	if (info->name) { /* "wait": answer the waiters whose time is up */
		for (unsigned i = 0; i < st->n;) {
			if (st->w[i].deadline > now) {
				i++;
				continue;
			}
			static const char msg[] = "{\"error\":\"wait timed out\"}\n";
			duro_deferred_respond(obj, st->w[i].d, 409, "application/json", msg, sizeof(msg) - 1);
			memmove(st->w + i, st->w + i + 1, (st->n - i - 1) * sizeof(st->w[0]));
			st->n--;
		}
		return rearm_wait(obj, st);
	}
	struct lease l;
	int r = load(obj, &l);
	if (r || !l.held)
		return r;
	if (l.expires > now) /* re-granted meanwhile: follow the new expiry */
		return duro_set_alarm(obj, l.expires);
	return hand_over(obj, st, &l);
}

static const struct duro_class lock_class = {
	.name = "Lock",
	.state_size = sizeof(struct lock),
	.on_request = lock_request,
	.on_alarm = lock_alarm,
};
DURO_CLASS(lock_class)
