/* Calls between objects (call.c): a call is an HTTP exchange made inside duro, carried by
 * pointer over the rings to the callee's core and back, like a forwarded request. This
 * layer owns the calls (a pool on the caller's core), their order, gate, timeouts, limits
 * and counters; running them as events is call_event.c's, reached through call_events. */
#ifndef DURO_OBJ_CALL_H
#define DURO_OBJ_CALL_H

#include "http-t.h"
#include "http_client.h"
#include "obj-t.h"
#include "object-t.h"
#include "timer.h"

struct core;

/* Method, path and headers of a call that fit here take no allocation. */
#define CALL_INLINE_BYTES 512

enum call_state {
	CALL_MADE = 0, /* in the caller's event, not yet gated or sent */
	CALL_GATED,    /* behind a commit batch of the caller's core */
	CALL_SENT,     /* with the callee's core */
	CALL_TIMED_OUT, /* done() heard -ETIMEDOUT; the call is freed when it comes back */
	CALL_RETURNED, /* back on the caller's core */
};

/* One call. Allocated from the caller core's pool and freed there; the exchange and the
 * callee part are lent to the callee's core between MSG_OBJ_CALL and MSG_OBJ_CALL_DONE (its
 * response spill, malloc'd there, becomes the caller core's to free, as for HTTP). */
struct obj_call {
	struct http_exchange ex; /* first: the request the callee sees and its answer */
	/* Travels: read by the callee's core. */
	struct duro_id callee_id;
	struct duro_id caller_id;
	const struct duro_namespace *caller_ns;
	uint16_t callee_ns;
	uint16_t caller_core;
	uint8_t depth;  /* hops from the request that started the chain: 1 for a first call */
	uint8_t held;   /* callee's core: deferred by the callee (counted in calls_held) */
	int err;        /* callee's core: 0 answered, or why it was not (-EBUSY, -ECONNRESET) */
	/* The caller's core only. */
	uint8_t state;
	uint8_t unconfirmed;
	uint8_t is_fetch; /* to an origin outside (fetch.c), not to an object */
	struct list_node node; /* the caller object's calls (made this event, then pending) */
	struct list_node all;  /* every live call of the core, for the final free */
	struct timer timer;
	struct object *caller; /* NULL once the caller was unloaded (reset) */
	duro_call_fn *fn;
	void *arg;
	uint64_t t0_ns;
	uint32_t timeout_ms;
	char *mem; /* method, path, headers and body: `inl` or malloc'd */
	char inl[CALL_INLINE_BYTES];
	/* A fetch: the client's request (fetch.c), and the Host field it sends. */
	struct http_fetch fetch;
	char fetch_host[272];
};

/* What call_event.c does for this layer. */
struct call_events {
	/* On the callee's core: run the call as a request of its object (or refuse it). */
	void (*deliver)(struct core *c, struct obj_call *call);
	/* On the caller's core: run done() as an event of the caller with err (0: the reply in
	 * call->ex). The call stays this layer's. */
	void (*complete)(struct core *c, struct obj_call *call, int err);
	/* The callee answered (http_respond of the call's exchange), on the callee's core. */
	void (*answered)(struct core *c, struct http_exchange *ex);
	/* A fetch leaves (its gate opened): start it; it comes back through call_return. */
	void (*fetch)(struct core *c, struct obj_call *call);
};

/* Per-core set-up (pool, message handlers); `ev` must outlive the core. Returns 0 or a
 * negative errno. fini cancels timers; the memory of calls still out on other cores is
 * freed by call_runtime_fini once every core has stopped. */
int call_core_init(struct core *c, const struct call_events *ev);
void call_core_fini(struct core *c);
void call_runtime_fini(void);

/* A new call of obj (in its event) with what every call carries, counted against its
 * limits: NULL with *err (-EINVAL, -EMSGSIZE, -ELOOP, -ENOSPC, -EBUSY, -ENOMEM, counted
 * refused or overloaded). The caller sets where it goes, then call_arm_timeout. */
struct obj_call *call_make(struct object *obj, const char *method, const char *path,
			   const struct duro_kv *hdrs, size_t nh, const void *body, size_t len,
			   const struct duro_call_opts *opt, duro_call_fn *done, void *arg,
			   unsigned timeout_ms, int *err);
void call_arm_timeout(struct core *c, struct obj_call *call);

/* event.c, at the end of an event of obj: its calls leave behind its writes (the output
 * gate) when `ok`, else they are not sent and done() hears -ECANCELED. */
void call_event_end(struct core *c, struct object *obj, int ok);
/* object.c, when obj is unloaded: its pending calls answer whatever instance is live then. */
void call_object_unload(struct core *c, struct object *obj);
/* A forced switch of obj's class version (issue 15's switch.c): done() of each call it
 * waits for runs now, on the old code, with -ECANCELED; their answers are dropped when
 * they come back. obj's pending calls (ncalls) are what keeps it from a quiescent point. */
void call_cancel_pending(struct core *c, struct object *obj);
/* commit.h's release_msg: a gated call's batch is durable (err 0: it leaves) or failed
 * (never delivered: done() hears -EIO). */
void call_released(struct core *c, struct core_msg *m, int err);

/* On the callee's core: the call goes back to its caller's core (err 0: answered). */
void call_return(struct core *c, struct obj_call *call, int err);
/* On the caller's core, for a fetch: its outcome now, done() run as an event at once
 * (from a network callback, as requests are), without a turn of the loop in between. */
void call_done_here(struct core *c, struct obj_call *call, int err);
/* The depth of the event running on this core (0 unless it handles or completes a call). */
void call_set_depth(struct core *c, unsigned depth);
/* calls.max_queue, for the callee side. */
unsigned call_max_queue(struct core *c);
/* Counters of namespace ns on this core. */
struct obj_call_counters *call_counters_ns(struct core *c, unsigned ns);
/* Every namespace's counters on this core (DURO_MAX_BINDINGS of them). */
const struct obj_call_counters *call_counters(struct core *c);

static inline struct obj_call *call_of(struct http_exchange *ex) { return (struct obj_call *)ex; }

#endif
