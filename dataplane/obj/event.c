/* Events: the one place a class's code runs. An event activates its object if needed, runs
 * one callback with the object marked running (events never nest), and ends by committing
 * or rolling back. Committing asks the commit layer for the core's open batch and has each
 * kind of storage write its part: SQLite commits first (it may still refuse: a deferred
 * constraint), then alarms mirror theirs, the SQL pages and the key-value writes follow.
 * Everything the event sent waits for that batch (the output gate), sync() callbacks
 * included, which come back as events of their own.
 *
 *   request/alarm/socket/sync --> activate --> begin --> class callback --> end
 *                                                         |- sql_event_finish
 *                                                         |- alarm_event_commit
 *                                                         |- history_event_begin
 *                                                         |- sql_event_commit
 *                                                         |- history_event_end
 *                                                         |- kv_event_commit   --> batch
 *                                                         `- sends, syncs      --> gated */
#include "event.h"
#include "cluster_gate.h"
#include "cluster_wsstate.h"
#include "pitr.h"
#include "alarm.h"
#include "base_assert.h"
#include "call.h"
#include "clock.h"
#include "commit.h"
#include "core.h"
#include "http.h"
#include "kv.h"
#include "log.h"
#include "obj_ws.h"
#include "obj_ws_int.h"
#include "object.h"
#include "request.h"
#include "route.h"
#include "version.h"
#include "sql.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Over twice the cache budget an event trims at once, but at most this often (ms), since
 * unapplied writes (which cannot go) may alone be over it. */
#define TRIM_MIN_INTERVAL_MS 5

/* A sync() call: heard when the batch holding the event's writes is durable or failed,
 * then run as an event of its object (activated again if it was evicted meanwhile, on the
 * version that made the call: fn is that version's code). Until then it is a
 * continuation in the object's conts, which keeps the object from switching versions; a
 * forced switch runs it early with -ECANCELED (event_cancel_conts). */
struct obj_sync {
	struct commit_note note; /* first */
	struct obj_sync *next;   /* in the object's list while its event runs */
	struct list_node cont;   /* in the object's conts once its event ended */
	struct duro_id id;
	unsigned ns;
	struct obj_version *ver;
	uint8_t cancelled;       /* already run with -ECANCELED: only to be freed */
	duro_sync_fn *fn;
	void *arg;
};

static void sync_heard(struct core *c, struct commit_note *n, int status)
{
	struct obj_sync *s = (struct obj_sync *)n;
	if (list_linked(&s->cont))
		list_del(&s->cont);
	if (status == COMMIT_NOTE_DISCARD || s->cancelled) {
		free(s);
		return;
	}
	int err = 0;
	struct object *obj = event_activate_version(c, s->ns, &s->id, s->ver, &err);
	if (!obj) {
		log_warn("class %s: a sync() outcome was lost: the object failed to load (%d)",
			 c->obj->view.ns[s->ns].cls->name, err);
		free(s);
		return;
	}
	if (obj->ver != s->ver) {
		/* Reset (a failed commit) and activated again on a newer version meanwhile: the
		 * callback's code does not know this state. */
		log_warn("class %s: a sync() outcome of version %s was dropped: the object runs %s now",
			 obj->cls->name, s->ver->label, obj->ver->label);
		free(s);
		return;
	}
	event_begin(c, obj);
	s->fn((struct duro_object *)obj, status, s->arg);
	if (event_end(c, obj, 1) < 0)
		log_warn("class %s: writes of a sync() callback refused (storage full or out of memory)",
			 obj->cls->name);
	free(s);
}

int duro_sync(struct duro_object *o, duro_sync_fn *done, void *arg)
{
	struct object *obj = (struct object *)o;
	DURO_ASSERT(obj->running);
	struct obj_sync *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->note.fn = sync_heard;
	s->id = obj->id;
	s->ns = obj->ns->index;
	s->ver = obj->ver;
	s->fn = done;
	s->arg = arg;
	if (obj->syncs_tail)
		obj->syncs_tail->next = s;
	else
		obj->syncs = s;
	obj->syncs_tail = s;
	return 0;
}

/* The event's sync() calls wait for the newest batch holding the object's writes. */
static void attach_syncs(struct core *c, struct object *obj)
{
	struct obj_sync *s = obj->syncs;
	obj->syncs = obj->syncs_tail = NULL;
	while (s) {
		struct obj_sync *next = s->next;
		list_add_tail(&obj->conts, &s->cont);
		commit_note(c, obj->kv.pending_seq, &s->note);
		s = next;
	}
}

void event_cancel_conts(struct core *c, struct object *obj)
{
	unsigned n = 0, dropped = 0;
	for (struct list_node *p = obj->conts.next; p != &obj->conts; p = p->next)
		n++;
	/* The ones pending now run; those their callbacks ask for in turn (appended behind
	 * them) would call the old code again: they are dropped. */
	while (!list_empty(&obj->conts)) {
		struct obj_sync *s = LIST_CONTAINER(obj->conts.next, struct obj_sync, cont);
		list_del(&s->cont);
		s->cancelled = 1; /* its note frees it when its batch's outcome comes */
		if (!n) {
			dropped++;
			continue;
		}
		n--;
		event_begin(c, obj);
		s->fn((struct duro_object *)obj, -ECANCELED, s->arg);
		if (event_end(c, obj, 1) < 0)
			log_warn("class %s: writes of a cancelled sync() callback refused (storage full or out of memory)",
				 obj->cls->name);
	}
	if (dropped)
		log_warn("class %s: %u sync() calls made by cancelled callbacks were dropped (a forced switch of version %s)",
			 obj->cls->name, dropped, obj->ver->label);
}

/* ---- activation, begin, end ---- */

/* on_load: 0, or non-zero when it failed. */
static int run_load(struct core *c, struct object *obj)
{
	if (!obj->cls->on_load)
		return 0;
	/* on_load may read storage but its writes are not kept: it runs outside events. */
	obj->running = 1;
	obj_version_enter(c, obj, ATTRIB_LOAD);
	kv_event_begin(obj);
	sql_event_begin(c, obj);
	int r = obj->cls->on_load((struct duro_object *)obj);
	sql_event_rollback(c, obj);
	kv_event_rollback(c, obj);
	obj_version_leave(c, obj, r != 0);
	obj->running = 0;
	attach_syncs(c, obj);
	obj_ws_flush(c, obj);
	return r;
}

struct object *event_activate_version(struct core *c, unsigned ns, const struct duro_id *id,
				      struct obj_version *ver, int *err)
{
	struct object *obj = object_find(c, id);
	if (obj && !ver && obj->ver != c->obj->view.ns[ns].ver && object_quiescent(obj)) {
		/* A deploy reached this core and the object's switch is due: its next event is
		 * a quiescent point, so the new version runs it (switch.c does the idle ones). */
		struct obj_version *to = obj_version_target(&c->obj->view.ns[ns], id);
		if (to != obj->ver && object_switch(c, obj, to) == 0)
			c->obj->ctr.switches++;
	}
	if (obj && obj->needs_load) {
		/* Switched to another version since its last event: that version loads now. */
		obj->needs_load = 0;
		if (run_load(c, obj) != 0) {
			object_unload(c, obj);
			*err = -EIO;
			return NULL;
		}
	}
	if (obj)
		return obj;
	if (!(obj = object_new(c, ns, id, ver, err)))
		return NULL;
	if (run_load(c, obj) != 0) {
		object_discard(c, obj);
		*err = -EIO;
		return NULL;
	}
	object_insert(c, obj);
	return obj;
}

struct object *event_activate(struct core *c, unsigned ns, const struct duro_id *id, int *err)
{
	return event_activate_version(c, ns, id, NULL, err);
}

/* The held responses the event answered go out behind its writes, as its own response
 * does: once the batch holding them is durable, an error if it fails. When the event
 * failed or its writes were refused they describe state that was rolled back, so they
 * are answered as its own response is. */
static void release_answered(struct core *c, struct object *obj, int ok, int wrote)
{
	struct http_exchange *ex = obj->answered;
	obj->answered = obj->answered_tail = NULL;
	while (ex) {
		struct http_exchange *next = (struct http_exchange *)ex->msg.next;
		if (wrote == -ENOSPC)
			http_resp_error(ex, 507, "storage full: the write was not saved");
		else if (!ok || wrote < 0)
			http_resp_error(ex, 500, "the object's handler failed");
		commit_gate(c, ex, obj->kv.pending_seq);
		ex = next;
	}
}

void event_begin(struct core *c, struct object *obj)
{
	DURO_ASSERT(!obj->running); /* events never nest */
	object_touch(c, obj);
	obj->running = 1;
	obj_version_enter(c, obj, ATTRIB_EVENT);
	kv_event_begin(obj);
	sql_event_begin(c, obj);
}

static void rollback(struct core *c, struct object *obj)
{
	sql_event_rollback(c, obj);
	kv_event_rollback(c, obj);
}

int event_end(struct core *c, struct object *obj, int ok)
{
	int wrote = 0, sql = ok ? sql_event_finish(c, obj) : 0;
	if (sql < 0) {
		rollback(c, obj); /* SQLite could not commit (or was interrupted): the event fails */
		wrote = sql;
	} else if (!ok || (!kv_event_wrote(obj) && !sql)) {
		rollback(c, obj);
	} else if (!commit_space_ok(c)) {
		rollback(c, obj); /* the disk is under its reserve: refused as a whole */
		wrote = -ENOSPC;
	} else {
		uint64_t seq;
		struct store_batch *b = commit_open_batch(c, &seq);
		if (!b) {
			rollback(c, obj); /* out of memory for the batch */
			wrote = -ENOMEM;
		} else {
			struct hist_rec hist;
			int h = history_event_begin(c, obj, b, &hist);
			alarm_event_commit(c, obj, b, seq);
			obj_ws_out_event_commit(c, obj, b);
			sql_event_commit(c, obj, b, seq, h ? &hist : NULL);
			if (h)
				history_event_end(c, obj, b, &hist);
			kv_event_commit(c, obj, b, seq);
			wrote = 1;
		}
	}
	obj_version_leave(c, obj, !ok);
	obj->running = 0;
	attach_syncs(c, obj);
	call_event_end(c, obj, ok && wrote >= 0); /* its calls: behind its writes, or never */
	obj_ws_flush(c, obj);
	release_answered(c, obj, ok, wrote);
	return wrote;
}

/* ---- requests ---- */

/* Keeps the name an object was reached by, so its first write can record it: the control
 * plane lists objects by name, which Cloudflare cannot. */
static void remember_name(struct object *obj, const char *seg, size_t len)
{
	char name[DURO_MAX_NAME];
	long n = route_decode_segment(seg, len, name, sizeof(name));
	if (n <= 0 || !(obj->name = malloc((size_t)n)))
		return;
	memcpy(obj->name, name, (size_t)n);
	obj->name_len = (uint16_t)n;
}

/* Runs request ex on its object (activated again: a parked request's object may have
 * switched versions meanwhile). parked: it waited for its connection (sql_ahead.c), so it
 * does not wait again behind itself. */
static void run_request(struct core *c, struct http_exchange *ex, int parked)
{
	struct obj_core *oc = c->obj;
	struct route_result *rr = route_result_of(ex);
	int err = 0;
	struct object *obj = event_activate(c, rr->ns, &rr->id, &err);
	if (!obj) {
		http_respond_error(c, ex, 500, err == -ENOMEM ? "out of memory activating the object"
							      : "the object failed to load");
		return;
	}
	/* Its SQL connection is being opened on the core's opener thread: the request waits
	 * and the core runs other objects meanwhile. */
	if (!parked && sql_ahead_park(c, obj, ex))
		return;
	http_resp_status(ex, 200);
	rr->obj = obj;
	if (rr->name_len && !obj->name)
		remember_name(obj, ex->req.path + rr->name_off, rr->name_len);
	obj->defer_current = 0;
	event_begin(c, obj);
	int r = obj->cls->on_request((struct duro_object *)obj, (const struct duro_request *)ex,
				     (struct duro_response *)ex);
	if (rr->accepted && r == 0)
		obj_cluster_ws_restore(obj, obj_ws_member(obj, rr->member)); /* moved here */
	int wrote = event_end(c, obj, r == 0);
	if (obj->defer_current) {
		obj->defer_current = 0;
		if (r == 0 && wrote >= 0) {
			http_resp_reset(ex);
			ex->msg.next = obj->deferred ? &obj->deferred->msg : NULL;
			obj->deferred = ex;
			obj->ndeferred++;
			return; /* answered later, by duro_deferred_respond */
		}
	}
	if (wrote == -ENOSPC) {
		http_resp_error(ex, 507, "storage full: the write was not saved");
	} else if (r != 0 || wrote < 0) {
		oc->ctr.handler_failures++;
		/* At most a line a second per core: a client that makes a handler fail on purpose
		 * must not fill the log. */
		if (r != 0 && c->now_ms >= oc->failure_logged_ms + 1000) {
			oc->failure_logged_ms = c->now_ms;
			log_warn("class %s: on_request failed (%d): its writes are rolled back "
				 "(%llu handler failures on core %u so far)", obj->cls->name, r,
				 (unsigned long long)oc->ctr.handler_failures, c->index);
		}
		http_resp_error(ex, 500, "the object's handler failed");
	}
	if (oc->cache_bytes > 2 * oc->rt->cfg->limits.cache_bytes_per_core &&
	    c->now_ms >= oc->last_trim_ms + TRIM_MIN_INTERVAL_MS) {
		oc->last_trim_ms = c->now_ms;
		kv_trim_cache(c);
	}
	/* The output gate: nothing leaves before the object's writes so far are durable. */
	commit_gate(c, ex, obj->kv.pending_seq);
}

void event_run_request(struct core *c, struct http_exchange *ex)
{
	struct obj_core *oc = c->obj;
	DURO_ASSERT(slotmap_owner(&oc->view.map, route_result_of(ex)->id.bytes) == c->index);
	oc->ctr.requests++;
	run_request(c, ex, 0);
}

void event_run_parked(struct core *c, struct object *obj)
{
	/* Taken whole first: a request may unload the object, or close its connection again
	 * (then the rest wait for the next open, in their order). */
	struct http_exchange *ex = sql_ahead_take_parked(obj);
	while (ex) {
		struct http_exchange *next = (struct http_exchange *)ex->msg.next;
		ex->msg.next = NULL;
		struct object *o = object_find(c, &route_result_of(ex)->id);
		int waits = o && o->sql && (o->sql->ahead_job || o->sql->parked);
		run_request(c, ex, !waits);
		ex = next;
	}
}

struct duro_deferred *duro_res_defer(struct duro_response *res)
{
	struct http_exchange *ex = (struct http_exchange *)res;
	struct object *obj = route_result_of(ex)->obj;
	/* Only the response of the on_request running now can be deferred. */
	DURO_ASSERT(obj && obj->running);
	if (obj->ndeferred >= OBJ_MAX_DEFERRED || obj->defer_current)
		return NULL;
	obj->defer_current = 1;
	return (struct duro_deferred *)ex;
}

int duro_deferred_respond(struct duro_object *o, struct duro_deferred *d, int status,
			  const char *content_type, const void *body, size_t len)
{
	struct object *obj = (struct object *)o;
	struct http_exchange *ex = (struct http_exchange *)d;
	DURO_ASSERT(obj->running && obj->ndeferred > 0);
	struct http_exchange **pp = &obj->deferred;
	while (*pp && *pp != ex)
		pp = (struct http_exchange **)&(*pp)->msg.next;
	DURO_ASSERT(*pp == ex); /* a handle of this object, answered once */
	*pp = (struct http_exchange *)ex->msg.next;
	obj->ndeferred--;
	http_resp_reset(ex);
	http_resp_status(ex, status);
	int r = 0;
	if (content_type)
		r = http_resp_header(ex, "Content-Type", 12, content_type, strlen(content_type));
	if (r == 0)
		r = http_resp_body(ex, body, len);
	if (r < 0)
		http_resp_error(ex, 500, "out of memory answering a deferred response");
	/* Not sent yet: the answer may rest on writes of this event (a lease granted, a
	 * token counted), which are not even in a batch before it ends. */
	ex->msg.next = NULL;
	if (obj->answered_tail)
		obj->answered_tail->msg.next = &ex->msg;
	else
		obj->answered = ex;
	obj->answered_tail = ex;
	return r;
}

/* ---- alarms ---- */

int event_run_alarm(struct core *c, const struct duro_id *id, unsigned ns, const char *name,
		    size_t namelen, int64_t time_ms, unsigned retries, int drop)
{
	int err = 0;
	struct object *obj = event_activate(c, ns, id, &err);
	if (!obj)
		return err ? err : -EIO;
	event_begin(c, obj);
	int r = 0;
	if (!drop && obj->cls->on_alarm) {
		struct duro_alarm_info info = { .retry_count = retries, .is_retry = retries > 0,
						.name = namelen ? name : NULL, .name_len = namelen };
		r = obj->cls->on_alarm((struct duro_object *)obj, &info);
	}
	if (r == 0) {
		/* Done: clear the alarm, unless the handler set it again for another time. */
		char key[KEYS_ALARM_PREFIX_LEN + DURO_MAX_ALARM_NAME];
		size_t kl = keys_alarm_user_key(key, name, namelen);
		struct duro_str v;
		if (kv_read(obj, key, kl, &v) == 1 && v.len == sizeof(time_ms) &&
		    !memcmp(v.ptr, &time_ms, sizeof(time_ms)))
			r = kv_write(obj, key, kl, NULL, 0, 0) < 0 ? -EIO : 0;
	}
	int wrote = event_end(c, obj, r == 0);
	return r != 0 ? r : (wrote < 0 ? wrote : 0);
}

/* ---- sockets ---- */

int event_run_socket(struct core *c, const struct obj_ws_event *ev)
{
	/* Cluster mode: a socket accepted while this box owned the object's slot, whose slot
	 * is now another box's (or this box is fenced): running the object here would make a
	 * second instance. The event is lost (counted) until forwarding to the owner exists. */
	if (!obj_cluster_owns(c, &ev->id)) {
		c->obj->ctr.cluster_not_owner++;
		return -ENOENT;
	}
	/* A class without the handler is not woken for nothing. */
	struct object *live = object_find(c, &ev->id);
	const struct duro_class *cls = live ? live->cls : c->obj->view.ns[ev->ns].cls;
	if (ev->open ? !cls->on_ws_open
		     : ev->close ? !cls->on_ws_close && !cls->on_ws_error && !ev->state_id
				 : !cls->on_ws_message)
		return 0;
	int err = 0;
	struct object *obj = event_activate(c, ev->ns, &ev->id, &err);
	if (!obj) {
		log_warn("class %s: a WebSocket event was lost: the object failed to load (%d)",
			 cls->name, err);
		return -ENOENT;
	}
	cls = obj->cls;
	uint64_t t0 = ev->timeout_ms ? clock_now_ns() : 0;
	event_begin(c, obj);
	int r = 0;
	struct duro_object *o = (struct duro_object *)obj;
	if (ev->open) {
		if (cls->on_ws_open)
			cls->on_ws_open(o, ev->ws, ev->err, ev->reconnect);
	} else if (!ev->close) {
		if (cls->on_ws_message)
			r = cls->on_ws_message(o, ev->ws, ev->binary, ev->data, ev->len);
	} else {
		if (ev->error && cls->on_ws_error)
			cls->on_ws_error(o, ev->ws, ev->code);
		if (cls->on_ws_close)
			cls->on_ws_close(o, ev->ws, ev->code, ev->rlen ? ev->reason : "", ev->rlen,
					 ev->clean);
		if (ev->state_id)
			obj_cluster_ws_forget(obj, ev->state_id);
	}
	if (ev->timeout_ms && clock_now_ns() - t0 > (uint64_t)ev->timeout_ms * 1000000) {
		log_warn("class %s: a WebSocket event ran past its %u ms timeout: its writes are rolled back",
			 cls->name, ev->timeout_ms);
		r = -ETIMEDOUT;
	} else if (r != 0) {
		r = -ECANCELED; /* the handler failed */
	}
	event_end(c, obj, r == 0);
	return r;
}

/* ---- failed commits ---- */

void event_commit_failed(struct core *c, uint64_t from)
{
	struct obj_core *oc = c->obj;
	for (struct list_node *n = oc->lru.next, *next; n != &oc->lru; n = next) {
		next = n->next;
		struct object *obj = LIST_CONTAINER(n, struct object, lru);
		if (obj->kv.pending_seq < from)
			continue;
		log_warn("class %s: object reset after a failed commit", obj->cls->name);
		obj->kv.pending_seq = 0;
		object_unload(c, obj);
	}
}
