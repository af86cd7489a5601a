/* Calls as events: on the callee's core a call runs as an ordinary request of its object
 * (on_request, which may defer it like any response), refused as overloaded when the
 * object already holds calls.max_queue unanswered; on the caller's core its outcome runs
 * done() as an event of the caller, on an instance activated again if the caller was
 * reset meanwhile (as a sync() callback does). */
#include "call_event.h"
#include "fetch.h"
#include "core.h"
#include "event.h"
#include "http.h"
#include "log.h"
#include "object.h"
#include "request.h"
#include "runtime.h"

#include <errno.h>

static void deliver(struct core *c, struct obj_call *call)
{
	struct http_exchange *ex = &call->ex;
	struct obj_call_counters *ctr = call_counters_ns(c, call->callee_ns);
	struct object *obj = object_find(c, &call->callee_id);
	if (obj && obj->calls_held >= call_max_queue(c)) {
		ctr->queue_full++;
		call_return(c, call, -EBUSY);
		return;
	}
	ctr->received++;
	call_set_depth(c, call->depth);
	event_run_request(c, ex);
	call_set_depth(c, 0);
	/* Still held (duro_res_defer): it counts against the callee's queue until answered. The
	 * exchange is ours until the turn ends even when answered already: messages leave then. */
	obj = route_result_of(ex)->obj;
	if (obj && obj->deferred == ex) {
		obj->calls_held++;
		call->held = 1;
	}
}

static void answered(struct core *c, struct http_exchange *ex)
{
	struct obj_call *call = call_of(ex);
	int err = 0;
	if (call->held) {
		/* A held call is answered by an event of its object, or when the object is
		 * unloaded (then while it is still in the table): either way it is found. */
		struct object *obj = object_find(c, &call->callee_id);
		if (obj) {
			if (obj->calls_held)
				obj->calls_held--;
			if (obj->unloading)
				err = -ECONNRESET; /* reset after delivery: it may have acted */
		}
	}
	call_return(c, call, err);
}

static void complete(struct core *c, struct obj_call *call, int err)
{
	struct object *obj = call->caller;
	if (!obj) {
		int e = 0;
		obj = event_activate(c, call->caller_ns->index, &call->caller_id, &e);
		if (!obj) {
			log_warn("class %s: a call's outcome was lost: the object failed to load (%d)",
				 call->caller_ns->cls->name, e);
			return;
		}
	}
	struct duro_reply rep = { 0, { "", 0 }, NULL };
	if (err == 0) {
		rep.status = call->ex.status;
		rep.body.ptr = call->ex.body.len ? call->ex.body.p : "";
		rep.body.len = call->ex.body.len;
		rep.priv = call;
	}
	call_set_depth(c, call->depth ? call->depth - 1u : 0);
	event_begin(c, obj);
	call->fn((struct duro_object *)obj, err, err == 0 ? &rep : NULL, call->arg);
	if (event_end(c, obj, 1) < 0)
		log_warn("class %s: writes of a call's done() refused (storage full or out of memory)",
			 obj->cls->name);
	call_set_depth(c, 0);
}

int duro_call_name(struct duro_object *obj, const char *binding, const char *name,
		   size_t name_len, const char *method, const char *path,
		   const struct duro_kv *hdrs, size_t nh, const void *body, size_t len,
		   const struct duro_call_opts *opt, duro_call_fn *done, void *arg)
{
	const struct duro_namespace *ns = binding ? duro_namespace(binding) : NULL;
	struct duro_id id;
	if (!ns)
		return -ENOENT;
	int r = duro_id_from_name(ns, name, name_len, &id);
	if (r < 0)
		return r;
	return duro_call(obj, ns, &id, method, path, hdrs, nh, body, len, opt, done, arg);
}

const struct call_events call_events = {
	.deliver = deliver,
	.complete = complete,
	.answered = answered,
	.fetch = fetch_start,
};
