/* Calls between objects: duro_call makes an HTTP exchange from the caller core's pool; it
 * waits with the caller's event until that ends, then leaves behind the event's writes
 * (the output gate) on the ring to the callee's core, where call_event.c runs it as a
 * request; the answer comes back on the reverse ring and runs done() as an event of the
 * caller. Every call goes back to the core that made it, exactly once, to be freed there.
 *
 *   caller event --duro_call--> [made] --event end--> [gated behind its batch] --durable-->
 *     ring --> callee core: on_request (may defer) --answer--> ring --> caller: done()
 *
 * E-order: calls of one object to one callee travel one FIFO (the local queue, or one
 * SPSC ring), and a call never overtakes an earlier call of the same object still behind
 * the gate (an unconfirmed call waits for the same batch as the last gated one). */
#include "call.h"
#include "cluster_gate.h"
#include "base_assert.h"
#include "commit.h"
#include "core.h"
#include "http.h"
#include "log.h"
#include "obj.h"
#include "pool.h"
#include "request.h"
#include "runtime.h" /* the view (types) */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CALL_POOL_SLAB 256
#define CALL_MAX_METHOD 32
#define CALL_MAX_PATH 4096

struct call_core {
	const struct call_events *ev;
	const struct obj_call_config *cfg;
	struct pool pool;
	struct list_node all; /* live calls made on this core */
	unsigned depth;       /* of the event running now */
	struct obj_call_counters ctr[DURO_MAX_BINDINGS];
};

/* Kept past each core's stop: calls may still be in another core's hands then. */
static struct call_core *call_cores[DURO_MAX_CORES];

static struct call_core *CC(struct core *c) { return c->obj->calls; }

struct obj_call_counters *call_counters_ns(struct core *c, unsigned ns)
{
	DURO_ASSERT(ns < DURO_MAX_BINDINGS);
	return &CC(c)->ctr[ns];
}
const struct obj_call_counters *call_counters(struct core *c) { return CC(c)->ctr; }
void call_set_depth(struct core *c, unsigned depth) { CC(c)->depth = depth; }
unsigned call_max_queue(struct core *c) { return CC(c)->cfg->max_queue; }

static void call_free(struct call_core *cc, struct obj_call *call)
{
	list_del(&call->all);
	http_exchange_internal_free(&call->ex);
	if (call->mem != call->inl)
		free(call->mem);
	pool_put(&cc->pool, call);
}

/* ---- making a call ---- */

static int bad_token(const char *s, size_t n, size_t max)
{
	if (n == 0 || n > max)
		return 1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == ':' || (unsigned char)s[i] == 0x7f)
			return 1;
	return 0;
}

static int bad_value(const char *s, size_t n)
{
	return memchr(s, '\r', n) || memchr(s, '\n', n) || memchr(s, 0, n);
}

/* Fills the exchange's request with views into call->mem: method, path (split at '?'),
 * headers, body, laid out in that order. */
static int fill_request(struct obj_call *call, const char *method, size_t mlen, const char *path,
			size_t plen, const struct duro_kv *hdrs, size_t nh, const void *body,
			size_t len)
{
	size_t total = mlen + plen + len;
	for (size_t i = 0; i < nh; i++)
		total += hdrs[i].key.len + hdrs[i].value.len;
	call->mem = total <= sizeof(call->inl) ? call->inl : malloc(total);
	if (!call->mem)
		return -ENOMEM;
	struct http_request *rq = &call->ex.req;
	char *p = call->mem;
	memcpy(p, method, mlen);
	rq->method = p;
	rq->method_len = (uint32_t)mlen;
	p += mlen;
	memcpy(p, path, plen);
	rq->target = rq->path = p;
	rq->target_len = (uint32_t)plen;
	const char *q = memchr(p, '?', plen);
	rq->path_len = (uint32_t)(q ? (size_t)(q - p) : plen);
	rq->query = q ? q + 1 : NULL;
	rq->query_len = q ? (uint32_t)(plen - rq->path_len - 1) : 0;
	p += plen;
	rq->authority = NULL;
	rq->authority_len = 0;
	rq->absolute_form = rq->chunked = rq->expect_continue = 0;
	rq->minor_version = 1;
	rq->keep_alive = 1;
	rq->nheaders = (unsigned)nh;
	for (size_t i = 0; i < nh; i++) {
		struct http_header *h = &rq->headers[i];
		memcpy(p, hdrs[i].key.ptr, hdrs[i].key.len);
		h->name = p;
		h->name_len = (uint32_t)hdrs[i].key.len;
		p += hdrs[i].key.len;
		if (hdrs[i].value.len)
			memcpy(p, hdrs[i].value.ptr, hdrs[i].value.len);
		h->value = p;
		h->value_len = (uint32_t)hdrs[i].value.len;
		p += hdrs[i].value.len;
	}
	if (len)
		memcpy(p, body, len);
	rq->body = len ? p : NULL;
	rq->body_len = len;
	rq->content_length = (int64_t)len;
	return 0;
}

static void call_timeout(struct core *c, struct timer *t);

struct obj_call *call_make(struct object *obj, const char *method, const char *path,
			   const struct duro_kv *hdrs, size_t nh, const void *body, size_t len,
			   const struct duro_call_opts *opt, duro_call_fn *done, void *arg,
			   unsigned timeout_ms, int *err)
{
	struct core *c = obj->core;
	struct call_core *cc = CC(c);
	DURO_ASSERT(obj->running);
	struct obj_call_counters *ctr = &cc->ctr[obj->ns->index];
	size_t mlen = method ? strlen(method) : 0, plen = path ? strlen(path) : 0;
	int r = 0;
	if (obj->unloading || !path || bad_token(method, mlen, CALL_MAX_METHOD) || plen == 0 ||
	    path[0] != '/' || plen > CALL_MAX_PATH || bad_value(path, plen) ||
	    memchr(path, ' ', plen) || nh > DURO_MAX_HEADERS || (nh && !hdrs) || (len && !body))
		r = -EINVAL;
	for (size_t i = 0; r == 0 && i < nh; i++)
		if (bad_token(hdrs[i].key.ptr, hdrs[i].key.len, 256) ||
		    bad_value(hdrs[i].value.ptr, hdrs[i].value.len))
			r = -EINVAL;
	if (r == 0 && len > DURO_CALL_MAX_BODY)
		r = -EMSGSIZE;
	if (r == 0 && cc->depth + 1 > cc->cfg->max_depth)
		r = -ELOOP;
	if (r == 0 && done && obj->ncalls >= cc->cfg->max_pending)
		r = -ENOSPC;
	if (r < 0) {
		ctr->refused++;
		*err = r;
		return NULL;
	}
	struct obj_call *call = pool_get(&cc->pool);
	if (!call) {
		ctr->overloaded++; /* calls.max_per_core: this core has too many out */
		*err = -EBUSY;
		return NULL;
	}
	http_exchange_internal_init(&call->ex, c->index, cc->ev->answered);
	if ((r = fill_request(call, method, mlen, path, plen, hdrs, nh, body, len)) < 0) {
		pool_put(&cc->pool, call);
		*err = r;
		return NULL;
	}
	memset(route_result_of(&call->ex), 0, sizeof(struct route_result));
	call->is_fetch = 0;
	call->caller_id = obj->id;
	call->caller_ns = obj->ns;
	call->caller_core = (uint16_t)c->index;
	call->depth = (uint8_t)(cc->depth + 1);
	call->held = 0;
	call->err = 0;
	call->state = CALL_MADE;
	call->unconfirmed = opt && (opt->flags & DURO_CALL_UNCONFIRMED);
	call->caller = obj;
	call->fn = done;
	call->arg = arg;
	call->t0_ns = c->now_ns;
	call->timeout_ms = opt && opt->timeout_ms ? opt->timeout_ms : timeout_ms;
	memset(&call->timer, 0, sizeof(call->timer));
	list_add_tail(&cc->all, &call->all);
	list_add_tail(&obj->calls_made, &call->node);
	if (done)
		obj->ncalls++; /* pins the caller in memory until done() has run */
	return call;
}

void call_arm_timeout(struct core *c, struct obj_call *call)
{
	if (call->fn)
		timer_arm(c, &call->timer, c->now_ms + call->timeout_ms, call_timeout);
}

int duro_call(struct duro_object *o, const struct duro_namespace *ns, const struct duro_id *id,
	      const char *method, const char *path, const struct duro_kv *hdrs, size_t nh,
	      const void *body, size_t len, const struct duro_call_opts *opt, duro_call_fn *done,
	      void *arg)
{
	struct object *obj = (struct object *)o;
	struct core *c = obj->core;
	struct call_core *cc = CC(c);
	DURO_ASSERT(obj->running);
	if (!ns || !id || ns->index >= c->obj->view.nns) {
		cc->ctr[obj->ns->index].refused++;
		return -EINVAL;
	}
	if (obj_id_check(ns, id) < 0) {
		cc->ctr[obj->ns->index].refused++;
		return -ENOENT;
	}
	/* Cluster mode: the callee lives on the box owning its slot; running it here would
	 * make a second instance. Forwarding calls to that box is later work. */
	if (!obj_cluster_owns(c, id)) {
		cc->ctr[obj->ns->index].refused++;
		return -EREMOTE;
	}
	int err = 0;
	struct obj_call *call = call_make(obj, method, path, hdrs, nh, body, len, opt, done, arg,
					  cc->cfg->timeout_ms, &err);
	if (!call)
		return err;
	struct route_result *rr = route_result_of(&call->ex);
	rr->id = *id;
	rr->ns = (uint16_t)ns->index;
	rr->is_call = 1;
	call->callee_id = *id;
	call->callee_ns = (uint16_t)ns->index;
	call_arm_timeout(c, call);
	cc->ctr[obj->ns->index].made++;
	return 0;
}

/* ---- leaving ---- */

static void send_now(struct core *c, struct obj_call *call)
{
	call->state = CALL_SENT;
	if (call->is_fetch) {
		CC(c)->ev->fetch(c, call); /* to the outside, from this core */
		return;
	}
	call->ex.msg.type = MSG_OBJ_CALL;
	core_send(c, slotmap_owner(&c->obj->view.map, call->callee_id.bytes), &call->ex.msg);
}

/* A call that never left comes back to this core, as a later turn's event. */
static void return_here(struct core *c, struct obj_call *call, int err)
{
	timer_cancel(&call->timer);
	call->state = CALL_RETURNED;
	call->err = err;
	call->ex.msg.type = MSG_OBJ_CALL_DONE;
	core_send(c, c->index, &call->ex.msg);
}

/* A fetch of obj left its lists: it no longer counts against outbound.max_per_object. */
static void fetch_left(struct object *obj)
{
	DURO_ASSERT(obj->nfetches > 0);
	obj->nfetches--;
}

void call_event_end(struct core *c, struct object *obj, int ok)
{
	struct call_core *cc = CC(c);
	while (!list_empty(&obj->calls_made)) {
		struct obj_call *call = LIST_CONTAINER(obj->calls_made.next, struct obj_call, node);
		list_del(&call->node);
		if (call->fn)
			list_add_tail(&obj->calls_pending, &call->node);
		else if (call->is_fetch)
			fetch_left(obj);
		if (!ok) {
			/* The event failed: it never happened, nor did its calls. */
			cc->ctr[obj->ns->index].not_delivered++;
			return_here(c, call, -ECANCELED);
			continue;
		}
		uint64_t seq = obj->call_gate_seq;
		if (!call->unconfirmed && obj->kv.pending_seq > seq)
			seq = obj->kv.pending_seq;
		if (seq > commit_gate_seq(c)) {
			call->state = CALL_GATED;
			obj->call_gate_seq = seq;
			call->ex.msg.type = MSG_OBJ_CALL;
			commit_gate_msg(c, &call->ex.msg, seq);
		} else {
			send_now(c, call);
		}
	}
}

void call_released(struct core *c, struct core_msg *m, int err)
{
	struct obj_call *call = call_of((struct http_exchange *)m);
	DURO_ASSERT(call->state == CALL_GATED || call->state == CALL_TIMED_OUT);
	if (call->state == CALL_TIMED_OUT) {
		call_free(CC(c), call); /* done() heard the timeout: it never leaves */
		return;
	}
	if (err == 0) {
		send_now(c, call);
		return;
	}
	/* The writes before it were lost: it is never delivered. */
	CC(c)->ctr[call->caller_ns->index].not_delivered++;
	return_here(c, call, -EIO);
}

/* ---- coming back ---- */

void call_return(struct core *c, struct obj_call *call, int err)
{
	call->err = err;
	call->ex.msg.type = MSG_OBJ_CALL_DONE;
	core_send(c, call->caller_core, &call->ex.msg);
}

static void unpin(struct obj_call *call)
{
	if (call->caller && list_linked(&call->node)) {
		list_del(&call->node);
		call->caller->ncalls--;
		if (call->is_fetch)
			fetch_left(call->caller);
	}
	call->caller = NULL;
}

static void call_timeout(struct core *c, struct timer *t)
{
	struct obj_call *call = LIST_CONTAINER(t, struct obj_call, timer);
	struct call_core *cc = CC(c);
	DURO_ASSERT(call->state == CALL_GATED || call->state == CALL_SENT);
	cc->ctr[call->caller_ns->index].timeouts++;
	unpin(call);
	call->state = CALL_TIMED_OUT;
	cc->ev->complete(c, call, -ETIMEDOUT);
}

static unsigned lat_bucket(uint64_t ns)
{
	uint64_t us = ns / 1000;
	unsigned b = us ? 64u - (unsigned)__builtin_clzll(us) : 0;
	return b < OBJ_CALL_LAT_BUCKETS ? b : OBJ_CALL_LAT_BUCKETS - 1;
}

static void on_done(struct core *c, struct core_msg *m)
{
	struct call_core *cc = CC(c);
	struct obj_call *call = call_of((struct http_exchange *)m);
	struct obj_call_counters *ctr = &cc->ctr[call->caller_ns->index];
	timer_cancel(&call->timer);
	if (call->state == CALL_TIMED_OUT) {
		ctr->late++;
		call_free(cc, call);
		return;
	}
	int err = call->err;
	int came_back = call->state == CALL_SENT;
	call->state = CALL_RETURNED;
	if (came_back) {
		if (err == 0) {
			ctr->replies++;
			uint64_t dt = c->now_ns > call->t0_ns ? c->now_ns - call->t0_ns : 0;
			ctr->latency_sum_ns += dt;
			ctr->latency[lat_bucket(dt)]++;
		} else if (err == -EBUSY) {
			ctr->overloaded++;
		} else {
			ctr->errors++;
		}
	}
	unpin(call);
	/* After the loops ended (a stop) no class code runs any more. */
	if (call->fn && !atomic_load_explicit(&c->group->stop_now, memory_order_relaxed))
		cc->ev->complete(c, call, err);
	call_free(cc, call);
}

void call_done_here(struct core *c, struct obj_call *call, int err)
{
	DURO_ASSERT(call->caller_core == c->index);
	call->err = err;
	on_done(c, &call->ex.msg);
}

static void on_call(struct core *c, struct core_msg *m)
{
	CC(c)->ev->deliver(c, call_of((struct http_exchange *)m));
}

void call_object_unload(struct core *c, struct object *obj)
{
	(void)c;
	/* Calls made by on_unload are refused (obj->unloading), and events have ended. */
	DURO_ASSERT(list_empty(&obj->calls_made));
	while (!list_empty(&obj->calls_pending)) {
		struct obj_call *call = LIST_CONTAINER(obj->calls_pending.next, struct obj_call, node);
		list_del(&call->node);
		call->caller = NULL; /* done() runs on whichever instance is live then */
	}
	obj->ncalls = 0;
	obj->nfetches = 0;
}

void call_cancel_pending(struct core *c, struct object *obj)
{
	struct call_core *cc = CC(c);
	while (!list_empty(&obj->calls_pending)) {
		struct obj_call *call = LIST_CONTAINER(obj->calls_pending.next, struct obj_call, node);
		timer_cancel(&call->timer);
		unpin(call);
		cc->ctr[call->caller_ns->index].errors++;
		if (call->state == CALL_RETURNED)
			continue; /* already on its way back here: on_done runs it */
		call->state = CALL_TIMED_OUT; /* done() heard; freed when it comes back */
		cc->ev->complete(c, call, -ECANCELED);
	}
}

/* ---- replies and callee's view ---- */

int duro_reply_header(const struct duro_reply *rep, const char *name, struct duro_str *out)
{
	const struct obj_call *call = rep->priv;
	if (!call)
		return 0;
	size_t n = strlen(name);
	/* The callee's duro_res_header lines: "Name: value\r\n", checked when added. */
	const char *p = call->ex.extra.p, *end = p + call->ex.extra.len;
	while (p < end) {
		const char *eol = memchr(p, '\r', (size_t)(end - p));
		if (!eol)
			break;
		const char *colon = memchr(p, ':', (size_t)(eol - p));
		if (colon && (size_t)(colon - p) == n && strncasecmp(p, name, n) == 0) {
			const char *v = colon + 1;
			while (v < eol && *v == ' ')
				v++;
			out->ptr = v;
			out->len = (size_t)(eol - v);
			return 1;
		}
		p = eol + 2;
	}
	return 0;
}

int duro_req_caller(const struct duro_request *req, const char **binding, struct duro_id *id)
{
	struct http_exchange *ex = (struct http_exchange *)req;
	if (!route_result_of(ex)->is_call)
		return 0;
	const struct obj_call *call = call_of(ex);
	if (binding)
		*binding = call->caller_ns->binding->name;
	if (id)
		*id = call->caller_id;
	return 1;
}

/* ---- set-up ---- */

int call_core_init(struct core *c, const struct call_events *ev)
{
	DURO_ASSERT(c->index < DURO_MAX_CORES);
	struct call_core *cc = calloc(1, sizeof(*cc));
	if (!cc)
		return -ENOMEM;
	cc->ev = ev;
	cc->cfg = &c->obj->rt->cfg->calls;
	pool_init(&cc->pool, "calls", sizeof(struct obj_call), CALL_POOL_SLAB, cc->cfg->max_per_core);
	list_init(&cc->all);
	call_cores[c->index] = cc;
	c->obj->calls = cc;
	core_set_msg_handler(c, MSG_OBJ_CALL, on_call);
	core_set_msg_handler(c, MSG_OBJ_CALL_DONE, on_done);
	return 0;
}

void call_core_fini(struct core *c)
{
	struct call_core *cc = c->obj ? c->obj->calls : NULL;
	if (!cc)
		return;
	for (struct list_node *n = cc->all.next; n != &cc->all; n = n->next)
		timer_cancel(&LIST_CONTAINER(n, struct obj_call, all)->timer);
	c->obj->calls = NULL;
	if (list_empty(&cc->all)) {
		/* None out on another core: nothing to wait for. */
		pool_destroy(&cc->pool);
		free(cc);
		call_cores[c->index] = NULL;
	}
}

void call_runtime_fini(void)
{
	for (unsigned i = 0; i < DURO_MAX_CORES; i++) {
		struct call_core *cc = call_cores[i];
		if (!cc)
			continue;
		while (!list_empty(&cc->all))
			call_free(cc, LIST_CONTAINER(cc->all.next, struct obj_call, all));
		pool_destroy(&cc->pool);
		free(cc);
		call_cores[i] = NULL;
	}
}
