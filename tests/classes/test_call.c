/* TestCall: objects that call each other (duro_call), driven over HTTP by the tests and the
 * calls benchmark (bench/calls.py). One object plays caller and callee at once:
 *   POST <obj>/call?to=N[&op=echo&binding=CALL&timeout=MS&unconfirmed=1&ff=1]  one call of
 *        `to`'s /op with the request's body; answered "err=E status=S\n" + the reply's body
 *   POST <obj>/wcall?to=N&v=V     writes v:V, then calls N's /rec?v=V (fire-and-forget)
 *   POST <obj>/storm?targets=a,b&n=N&window=W&op=seq&run=R[&ff_every=K&unconfirmed=1]
 *        N calls round-robin over the targets, W at once, each /op?seq=S&run=R with S
 *        counting per target; answered with JSON counts, elapsed time and latencies
 *        (with a URL as body: N fetches of it instead, W at once)
 *   POST <obj>/loop?to=N&me=M     calls N's /loop?to=M&me=N: a cycle, ended by -ELOOP (508)
 *   POST <obj>/mutual?to=N&me=M   calls N's /pingback?to=M, which calls M's /echo meanwhile
 *   POST <obj>/release            answers every call held by /hold
 *   POST <obj>/fetch?method=M[&timeout=MS&n=K&unconfirmed=1]  with the URL as body:
 *        duro_fetch, answered as /call is; n=K makes K at once (the answers joined)
 *   POST <obj>/wfetch?v=V         with a URL as body: writes v:V, then fetches URL?v=V
 *        (fire-and-forget: the output gate decides whether it leaves)
 *   GET  <obj>/id, <obj>/keys?prefix=P, <obj>/check?caller=HEX&run=R
 * and as callee: /echo (body back, X-Is-Call, X-Caller, X-Caller-Binding), /nop, /seq
 * (checks and stores the per-caller sequence: gaps and repeats counted in key "bad"),
 * /rec?v=V (writes got:V), /hold (deferred until /release), /loop, /pingback.
 * A held response is answered in done() only while the instance that deferred it lives. */
#include "duro.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TC_MAX_TARGETS 16
#define TC_MAX_HELD 4096
#define TC_NAME 64

struct storm {
	struct duro_deferred *d;
	char binding[TC_NAME];
	char targets[TC_MAX_TARGETS][TC_NAME];
	unsigned ntargets;
	uint64_t seq[TC_MAX_TARGETS];
	uint64_t n, sent, done, ok, failed, non200;
	int first_err;
	unsigned window, ff_every;
	int unconfirmed;
	char op[16];
	char run[32];
	char url[512]; /* not empty: the storm fetches this URL instead of calling */
	uint64_t t0;
	uint64_t *start; /* per call: when it was made, then its latency */
};

struct tc_state {
	struct storm *storm;
	unsigned nheld;
	struct duro_deferred *held[TC_MAX_HELD];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Query parameter `name` copied as a NUL-terminated string; 1 when present. */
static int param(const struct duro_request *req, const char *name, char *out, size_t cap)
{
	struct duro_str v;
	if (!duro_req_query_param(req, name, &v) || v.len >= cap)
		return 0;
	memcpy(out, v.ptr, v.len);
	out[v.len] = 0;
	return 1;
}

static int sub_is(struct duro_str sp, const char *s)
{
	size_t n = strlen(s);
	return sp.len == n && memcmp(sp.ptr, s, n) == 0;
}

static int respond_text(struct duro_response *res, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int respond_text(struct duro_response *res, int status, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	duro_res_status(res, status);
	return duro_res_body(res, buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* The deferred response of this instance, still held: answered. */
static void answer(struct duro_object *obj, struct duro_deferred *d, int status, const void *body,
		   size_t len)
{
	(void)duro_deferred_respond(obj, d, status, "text/plain", body, len);
}

/* ---- one call, answered with its outcome ---- */

struct one {
	struct duro_deferred *d;
	const void *instance; /* the state of the instance that deferred d */
};

static void one_done(struct duro_object *obj, int err, const struct duro_reply *rep, void *arg)
{
	struct one *o = arg;
	if (o->d && o->instance == duro_state(obj)) {
		char head[256];
		struct duro_str ic = { "-", 1 }, cr = { "-", 1 }, cbd = { "-", 1 }, st = { "-", 1 };
		if (rep) {
			duro_reply_header(rep, "X-Is-Call", &ic);
			duro_reply_header(rep, "X-Caller", &cr);
			duro_reply_header(rep, "x-caller-binding", &cbd);
			duro_reply_header(rep, "X-Saw-Test", &st);
		}
		int n = snprintf(head, sizeof(head),
				 "err=%d status=%d is_call=%.*s caller=%.*s binding=%.*s saw_test=%.*s\n",
				 err, rep ? rep->status : 0, (int)ic.len, ic.ptr, (int)cr.len, cr.ptr,
				 (int)cbd.len, cbd.ptr, (int)st.len, st.ptr);
		size_t blen = rep ? rep->body.len : 0;
		char *buf = malloc((size_t)n + blen);
		if (buf) {
			memcpy(buf, head, (size_t)n);
			if (blen)
				memcpy(buf + n, rep->body.ptr, blen);
			answer(obj, o->d, 200, buf, (size_t)n + blen);
			free(buf);
		}
	}
	free(o);
}

static int do_call(struct duro_object *obj, const struct duro_request *req, struct duro_response *res)
{
	char to[TC_NAME] = "", op[64] = "echo", binding[TC_NAME] = "CALL", path[80], tmp[16];
	struct duro_call_opts opts = { 0, 0 };
	if (!param(req, "to", to, sizeof(to)) && !duro_req_query_param(req, "toid", &(struct duro_str){ 0 }))
		return respond_text(res, 400, "to= missing\n");
	param(req, "op", op, sizeof(op));
	param(req, "binding", binding, sizeof(binding));
	if (param(req, "timeout", tmp, sizeof(tmp)))
		opts.timeout_ms = (uint32_t)atoi(tmp);
	if (param(req, "unconfirmed", tmp, sizeof(tmp)))
		opts.flags |= DURO_CALL_UNCONFIRMED;
	snprintf(path, sizeof(path), "/%s", op);
	struct duro_str body = duro_req_body(req);
	struct duro_kv hdr = { { "X-Test", 6 }, { "1", 1 } };
	char *big = NULL;
	const struct duro_namespace *ns = duro_namespace(binding);
	struct duro_id id;
	char hexid[DURO_ID_HEX + 1];
	int byid = param(req, "toid", hexid, sizeof(hexid));
	/* idbinding: the ID is parsed in that namespace (then called in `binding`'s). */
	char idb[TC_NAME];
	const struct duro_namespace *idns = param(req, "idbinding", idb, sizeof(idb)) ? duro_namespace(idb) : ns;
	if (byid && (!ns || !idns || duro_id_from_string(idns, hexid, strlen(hexid), &id) < 0))
		return respond_text(res, 400, "bad toid\n");
	if (param(req, "big", tmp, sizeof(tmp))) {
		/* A generated body: larger than an HTTP request may bring. */
		body.len = strtoull(tmp, NULL, 10);
		if (!(big = malloc(body.len ? body.len : 1)))
			return -ENOMEM;
		for (size_t i = 0; i < body.len; i++)
			big[i] = (char)('a' + i % 26);
		body.ptr = big;
	}
	int ff = param(req, "ff", tmp, sizeof(tmp));
	struct one *o = ff ? NULL : calloc(1, sizeof(*o));
	if (!ff && !o) {
		free(big);
		return -ENOMEM;
	}
	int r = byid ? duro_call(obj, ns, &id, "POST", path, &hdr, 1, body.ptr, body.len, &opts,
				 ff ? NULL : one_done, o)
		     : duro_call_name(obj, binding, to, strlen(to), "POST", path, &hdr, 1, body.ptr,
				      body.len, &opts, ff ? NULL : one_done, o);
	free(big);
	if (ff)
		return respond_text(res, 200, "err=%d sent\n", r);
	if (r < 0) {
		free(o);
		return respond_text(res, 200, "err=%d status=0\n", r);
	}
	o->d = duro_res_defer(res);
	o->instance = duro_state(obj);
	return 0;
}

/* ---- fetch ---- */

struct many {
	struct duro_deferred *d;
	const void *instance;
	unsigned left;
	char *out;
	size_t len, cap;
};

static void many_done(struct duro_object *obj, int err, const struct duro_reply *rep, void *arg)
{
	struct many *m = arg;
	char line[128];
	int n = snprintf(line, sizeof(line), "err=%d status=%d len=%zu\n", err, rep ? rep->status : 0,
			 rep ? rep->body.len : 0);
	if (m->len + (size_t)n + (rep ? rep->body.len : 0) + 1 > m->cap) {
		size_t cap = (m->len + (size_t)n + (rep ? rep->body.len : 0) + 1) * 2;
		char *p = realloc(m->out, cap);
		if (p) {
			m->out = p;
			m->cap = cap;
		}
	}
	if (m->len + (size_t)n + (rep ? rep->body.len : 0) <= m->cap) {
		memcpy(m->out + m->len, line, (size_t)n);
		m->len += (size_t)n;
		if (rep && m->left == 1 && rep->body.len) { /* the last one's body, for checks */
			memcpy(m->out + m->len, rep->body.ptr, rep->body.len);
			m->len += rep->body.len;
		}
	}
	if (--m->left == 0) {
		if (m->instance == duro_state(obj))
			answer(obj, m->d, 200, m->out, m->len);
		free(m->out);
		free(m);
	}
}

static int do_fetch(struct duro_object *obj, const struct duro_request *req, struct duro_response *res)
{
	char method[16] = "GET", tmp[16], url[1024];
	struct duro_call_opts opts = { 0, 0 };
	struct duro_str b = duro_req_body(req);
	if (b.len == 0 || b.len >= sizeof(url))
		return respond_text(res, 400, "the URL is the body\n");
	memcpy(url, b.ptr, b.len);
	url[b.len] = 0;
	param(req, "method", method, sizeof(method));
	if (param(req, "timeout", tmp, sizeof(tmp)))
		opts.timeout_ms = (uint32_t)atoi(tmp);
	if (param(req, "unconfirmed", tmp, sizeof(tmp)))
		opts.flags |= DURO_CALL_UNCONFIRMED;
	unsigned n = param(req, "n", tmp, sizeof(tmp)) ? (unsigned)atoi(tmp) : 1;
	struct many *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	struct duro_kv hdr = { { "X-From", 6 }, { "duro", 4 } };
	char head[256];
	int hl = 0;
	for (unsigned i = 0; i < n; i++) {
		int r = duro_fetch(obj, url, method, &hdr, 1, NULL, 0, &opts, many_done, m);
		if (r < 0) {
			hl += snprintf(head + hl, sizeof(head) - (size_t)hl, "refused=%d\n", r);
			if (hl >= (int)sizeof(head) - 32)
				hl = (int)sizeof(head) - 32;
			continue;
		}
		m->left++;
	}
	if (!m->left) {
		free(m);
		duro_res_status(res, 200);
		return duro_res_body(res, head, (size_t)hl);
	}
	if (hl && (m->out = malloc((size_t)hl))) {
		memcpy(m->out, head, (size_t)hl);
		m->len = m->cap = (size_t)hl;
	}
	m->d = duro_res_defer(res);
	m->instance = duro_state(obj);
	return 0;
}

/* ---- storms ---- */

/* The storm's outcome as JSON into buf; frees the storm. */
static int storm_summary(struct tc_state *st, char *buf, size_t cap)
{
	struct storm *s = st->storm;
	st->storm = NULL;
	uint64_t elapsed = now_ns() - s->t0;
	uint64_t nlat = 0;
	for (uint64_t i = 0; i < s->n; i++)
		if (s->start[i] != UINT64_MAX)
			s->start[nlat++] = s->start[i];
	/* Sorted latencies of the calls that were answered: percentiles. */
	for (uint64_t gap = nlat / 2; gap > 0; gap /= 2)
		for (uint64_t i = gap; i < nlat; i++)
			for (uint64_t j = i; j >= gap && s->start[j - gap] > s->start[j]; j -= gap) {
				uint64_t t = s->start[j];
				s->start[j] = s->start[j - gap];
				s->start[j - gap] = t;
			}
	double p50 = nlat ? (double)s->start[nlat / 2] / 1e3 : 0;
	double p99 = nlat ? (double)s->start[nlat * 99 / 100] / 1e3 : 0;
	int n = snprintf(buf, cap,
			 "{\"n\":%llu,\"ok\":%llu,\"failed\":%llu,\"non200\":%llu,\"first_err\":%d,"
			 "\"elapsed_ns\":%llu,\"p50_us\":%.1f,\"p99_us\":%.1f}\n",
			 (unsigned long long)s->n, (unsigned long long)s->ok,
			 (unsigned long long)s->failed, (unsigned long long)s->non200, s->first_err,
			 (unsigned long long)elapsed, p50, p99);
	free(s->start);
	free(s);
	return n;
}

static void storm_finish(struct duro_object *obj, struct tc_state *st)
{
	struct duro_deferred *d = st->storm->d;
	char buf[512];
	int n = storm_summary(st, buf, sizeof(buf));
	answer(obj, d, 200, buf, (size_t)n);
}

static void storm_pump(struct duro_object *obj, struct tc_state *st);

static void storm_done(struct duro_object *obj, int err, const struct duro_reply *rep, void *arg)
{
	struct tc_state *st = duro_state(obj);
	struct storm *s = st->storm;
	uint64_t i = (uint64_t)(uintptr_t)arg;
	if (!s)
		return; /* another instance (the caller was reset): its storm is gone */
	s->done++;
	if (err == 0) {
		s->ok++;
		if (rep->status != 200)
			s->non200++;
		s->start[i] = now_ns() - s->start[i];
	} else {
		s->failed++;
		if (!s->first_err)
			s->first_err = err;
		s->start[i] = UINT64_MAX;
	}
	storm_pump(obj, st);
}

static void storm_pump(struct duro_object *obj, struct tc_state *st)
{
	struct storm *s = st->storm;
	struct duro_call_opts opts = { 0, s->unconfirmed ? DURO_CALL_UNCONFIRMED : 0 };
	while (s->sent < s->n && s->sent - s->done < s->window) {
		uint64_t i = s->sent++;
		unsigned t = (unsigned)(i % s->ntargets);
		char path[96];
		snprintf(path, sizeof(path), "/%s?seq=%llu&run=%s", s->op,
			 (unsigned long long)++s->seq[t], s->run);
		int ff = s->ff_every && i % s->ff_every == s->ff_every - 1;
		s->start[i] = now_ns();
		int r = s->url[0] ? duro_fetch(obj, s->url, "GET", NULL, 0, NULL, 0, &opts,
					       ff ? NULL : storm_done, (void *)(uintptr_t)i)
				  : duro_call_name(obj, s->binding, s->targets[t], strlen(s->targets[t]),
						   "POST", path, NULL, 0, NULL, 0, &opts,
						   ff ? NULL : storm_done, (void *)(uintptr_t)i);
		if (r < 0 || ff) {
			s->done++;
			s->start[i] = UINT64_MAX;
			if (r < 0) {
				s->failed++;
				if (!s->first_err)
					s->first_err = r;
			} else {
				s->ok++;
			}
		}
	}
	if (s->done == s->n && s->d) /* not while do_storm, which answers itself */
		storm_finish(obj, st);
}

static int do_storm(struct duro_object *obj, const struct duro_request *req, struct duro_response *res)
{
	struct tc_state *st = duro_state(obj);
	char targets[TC_MAX_TARGETS * TC_NAME], tmp[32];
	if (st->storm)
		return respond_text(res, 409, "a storm is running\n");
	struct duro_str ub = duro_req_body(req);
	if (!param(req, "targets", targets, sizeof(targets))) {
		if (!ub.len) /* a fetch storm names no targets */
			return respond_text(res, 400, "targets= missing\n");
		snprintf(targets, sizeof(targets), "-");
	}
	struct storm *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	snprintf(s->binding, sizeof(s->binding), "CALL");
	snprintf(s->op, sizeof(s->op), "seq");
	snprintf(s->run, sizeof(s->run), "0");
	if (ub.len && ub.len < sizeof(s->url)) {
		memcpy(s->url, ub.ptr, ub.len);
		s->url[ub.len] = 0;
	}
	param(req, "binding", s->binding, sizeof(s->binding));
	param(req, "op", s->op, sizeof(s->op));
	param(req, "run", s->run, sizeof(s->run));
	s->n = param(req, "n", tmp, sizeof(tmp)) ? strtoull(tmp, NULL, 10) : 100;
	s->window = param(req, "window", tmp, sizeof(tmp)) ? (unsigned)atoi(tmp) : 64;
	s->ff_every = param(req, "ff_every", tmp, sizeof(tmp)) ? (unsigned)atoi(tmp) : 0;
	s->unconfirmed = param(req, "unconfirmed", tmp, sizeof(tmp));
	for (char *p = targets, *comma; *p && s->ntargets < TC_MAX_TARGETS; p = comma + 1) {
		comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len && len < TC_NAME) {
			memcpy(s->targets[s->ntargets], p, len);
			s->targets[s->ntargets++][len] = 0;
		}
		if (!comma)
			break;
	}
	if (!s->ntargets || !s->n || !s->window || !(s->start = calloc(s->n, sizeof(uint64_t)))) {
		free(s);
		return respond_text(res, 400, "bad storm\n");
	}
	s->t0 = now_ns();
	st->storm = s;
	storm_pump(obj, st);
	if (s->done == s->n) {
		char buf[512];
		int n = storm_summary(st, buf, sizeof(buf));
		return duro_res_body(res, buf, (size_t)n);
	}
	s->d = duro_res_defer(res);
	return 0;
}

/* ---- chains ---- */

static void relay_done(struct duro_object *obj, int err, const struct duro_reply *rep, void *arg)
{
	struct one *o = arg;
	if (o->instance == duro_state(obj)) {
		if (err == -ELOOP || (err == 0 && rep->status == 508))
			answer(obj, o->d, 508, "loop\n", 5);
		else if (err)
			answer(obj, o->d, 502, "call failed\n", 12);
		else
			answer(obj, o->d, rep->status, rep->body.ptr, rep->body.len);
	}
	free(o);
}

/* Calls `to`'s `path` and answers this request with the reply (508 on -ELOOP). */
static int relay(struct duro_object *obj, struct duro_response *res, const char *to,
		 const char *path)
{
	struct one *o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	int r = duro_call_name(obj, "CALL", to, strlen(to), "POST", path, NULL, 0, NULL, 0, NULL,
			       relay_done, o);
	if (r == -ELOOP) {
		free(o);
		return respond_text(res, 508, "loop\n");
	}
	if (r < 0) {
		free(o);
		return respond_text(res, 502, "call refused %d\n", r);
	}
	o->d = duro_res_defer(res);
	o->instance = duro_state(obj);
	return 0;
}

/* ---- storage views ---- */

static int list_key(void *arg, struct duro_str key, struct duro_str value)
{
	(void)value;
	struct duro_response *res = arg;
	duro_res_body(res, key.ptr, key.len);
	duro_res_body(res, "\n", 1);
	return 0;
}

static int get_u64(struct duro_object *obj, const char *key, uint64_t *v)
{
	struct duro_str s;
	int r = duro_get(obj, key, strlen(key), &s);
	*v = 0;
	if (r == 1 && s.len == sizeof(*v))
		memcpy(v, s.ptr, sizeof(*v));
	return r < 0 ? r : 0;
}

static int on_request(struct duro_object *obj, const struct duro_request *req,
		      struct duro_response *res)
{
	struct tc_state *st = duro_state(obj);
	struct duro_str sp = duro_req_subpath(req);
	char tmp[TC_NAME], me[TC_NAME], key[160], hex[DURO_ID_HEX + 1];
	const char *cb = NULL;
	struct duro_id cid;
	int is_call = duro_req_caller(req, &cb, &cid);
	if (sub_is(sp, "/call"))
		return do_call(obj, req, res);
	if (sub_is(sp, "/storm"))
		return do_storm(obj, req, res);
	if (sub_is(sp, "/fetch"))
		return do_fetch(obj, req, res);
	if (sub_is(sp, "/wfetch")) {
		char url[1024];
		struct duro_str b = duro_req_body(req);
		if (!param(req, "v", tmp, sizeof(tmp)) || !b.len || b.len + 32 >= sizeof(url))
			return respond_text(res, 400, "v= and a URL body wanted\n");
		snprintf(key, sizeof(key), "v:%s", tmp);
		int r = duro_put(obj, key, strlen(key), "1", 1);
		if (r < 0)
			return r;
		snprintf(url, sizeof(url), "%.*s?v=%s", (int)b.len, b.ptr, tmp);
		r = duro_fetch(obj, url, "POST", NULL, 0, NULL, 0, NULL, NULL, NULL);
		return r < 0 ? r : respond_text(res, 200, "ok");
	}
	if (sub_is(sp, "/id")) {
		duro_id_to_string(duro_object_id(obj), hex);
		return respond_text(res, 200, "%s", hex);
	}
	if (sub_is(sp, "/nop"))
		return respond_text(res, 200, "ok");
	if (sub_is(sp, "/echo")) {
		struct duro_str b = duro_req_body(req);
		duro_res_header(res, "X-Is-Call", is_call ? "1" : "0");
		if (is_call) {
			duro_id_to_string(&cid, hex);
			duro_res_header(res, "X-Caller", hex);
			duro_res_header(res, "X-Caller-Binding", cb);
		}
		struct duro_str h;
		duro_res_header(res, "X-Saw-Test", duro_req_header(req, "X-Test", &h) ? "1" : "0");
		return duro_res_body(res, b.ptr, b.len);
	}
	if (sub_is(sp, "/seq")) {
		char run[32] = "0";
		uint64_t seq = 0, last, bad;
		if (param(req, "seq", tmp, sizeof(tmp)))
			seq = strtoull(tmp, NULL, 10);
		param(req, "run", run, sizeof(run));
		if (!is_call)
			return respond_text(res, 400, "not a call\n");
		duro_id_to_string(&cid, hex);
		snprintf(key, sizeof(key), "q:%s:%s", hex, run);
		int r = get_u64(obj, key, &last);
		if (r == 0 && seq != last + 1 && (r = get_u64(obj, "bad", &bad)) == 0) {
			bad++;
			r = duro_put(obj, "bad", 3, &bad, sizeof(bad));
		}
		if (r == 0)
			r = duro_put(obj, key, strlen(key), &seq, sizeof(seq));
		return r < 0 ? r : respond_text(res, 200, "ok");
	}
	if (sub_is(sp, "/check")) {
		char caller[DURO_ID_HEX + 1] = "", run[32] = "0";
		uint64_t last, bad;
		param(req, "caller", caller, sizeof(caller));
		param(req, "run", run, sizeof(run));
		snprintf(key, sizeof(key), "q:%s:%s", caller, run);
		int r = get_u64(obj, key, &last);
		if (r == 0)
			r = get_u64(obj, "bad", &bad);
		return r < 0 ? r : respond_text(res, 200, "last=%llu bad=%llu", (unsigned long long)last,
					      (unsigned long long)bad);
	}
	if (sub_is(sp, "/wcall") || sub_is(sp, "/rec")) {
		if (!param(req, "v", tmp, sizeof(tmp)))
			return respond_text(res, 400, "v= missing\n");
		if (sub_is(sp, "/rec")) {
			snprintf(key, sizeof(key), "got:%s", tmp);
			int r = duro_put(obj, key, strlen(key), "1", 1);
			return r < 0 ? r : respond_text(res, 200, "ok");
		}
		snprintf(key, sizeof(key), "v:%s", tmp);
		int r = duro_put(obj, key, strlen(key), "1", 1);
		if (r < 0)
			return r;
		if (!param(req, "to", me, sizeof(me)))
			return respond_text(res, 400, "to= missing\n");
		char path[96];
		snprintf(path, sizeof(path), "/rec?v=%s", tmp);
		r = duro_call_name(obj, "CALL", me, strlen(me), "POST", path, NULL, 0, NULL, 0, NULL,
				   NULL, NULL);
		return r < 0 ? r : respond_text(res, 200, "ok");
	}
	if (sub_is(sp, "/keys")) {
		char prefix[64] = "";
		param(req, "prefix", prefix, sizeof(prefix));
		struct duro_list_options lo;
		memset(&lo, 0, sizeof(lo));
		lo.prefix.ptr = prefix;
		lo.prefix.len = strlen(prefix);
		int r = duro_list(obj, &lo, list_key, res);
		return r < 0 ? r : 0;
	}
	if (sub_is(sp, "/hold")) {
		if (st->nheld == TC_MAX_HELD)
			return respond_text(res, 503, "full\n");
		struct duro_deferred *d = duro_res_defer(res);
		if (d)
			st->held[st->nheld++] = d;
		return 0;
	}
	if (sub_is(sp, "/release")) {
		unsigned n = st->nheld;
		for (unsigned i = 0; i < n; i++)
			answer(obj, st->held[i], 200, "released\n", 9);
		st->nheld = 0;
		return respond_text(res, 200, "%u", n);
	}
	if (sub_is(sp, "/loop") || sub_is(sp, "/mutual") || sub_is(sp, "/pingback")) {
		char path[160];
		if (!param(req, "to", tmp, sizeof(tmp)))
			return respond_text(res, 400, "to= missing\n");
		if (sub_is(sp, "/pingback"))
			return relay(obj, res, tmp, "/echo");
		if (!param(req, "me", me, sizeof(me)))
			return respond_text(res, 400, "me= missing\n");
		if (sub_is(sp, "/loop"))
			snprintf(path, sizeof(path), "/loop?to=%s&me=%s", me, tmp);
		else
			snprintf(path, sizeof(path), "/pingback?to=%s", me);
		return relay(obj, res, tmp, path);
	}
	return respond_text(res, 404, "no such operation\n");
}

static void on_unload(struct duro_object *obj)
{
	struct tc_state *st = duro_state(obj);
	if (st->storm) {
		free(st->storm->start);
		free(st->storm);
		st->storm = NULL;
	}
}

static const struct duro_class test_call_class = {
	.name = "TestCall",
	.state_size = sizeof(struct tc_state),
	.on_request = on_request,
	.on_unload = on_unload,
};
DURO_CLASS(test_call_class)
