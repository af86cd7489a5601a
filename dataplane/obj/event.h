/* Running events (event.c): every callback into a class runs here, one at a time per
 * object, on its owner core, inside a transaction that commits when the callback succeeds;
 * and what an event sends waits behind the output gate. The rest of the runtime reports
 * what should run (a request, an alarm, a socket's message, a commit's outcome) and this
 * layer runs it. */
#ifndef DURO_OBJ_EVENT_H
#define DURO_OBJ_EVENT_H

#include "object-t.h"

struct http_exchange;
struct obj_ws_event;

/* The live instance of id, activated (on_load) if it is not in memory. NULL with *err:
 * -ENOMEM, or -EIO when on_load failed. */
struct object *event_activate(struct core *c, unsigned ns, const struct duro_id *id, int *err);
/* The same, activating it on version `ver` if it is not in memory (NULL: the version the
 * core's view gives it). An object switched since its last event runs its new version's
 * on_load here first (-EIO when that fails: the object is unloaded). */
struct object *event_activate_version(struct core *c, unsigned ns, const struct duro_id *id,
				      struct obj_version *ver, int *err);
/* Starts an event of obj (none may be running): most recently used, a fresh transaction. */
void event_begin(struct core *c, struct object *obj);
/* Ends it: with ok its writes join the core's open batch, else they roll back. Its sends
 * and sync() calls then wait for that batch. Returns 1 wrote, 0 nothing to write, or
 * -ENOSPC (the disk is under its reserve) or -ENOMEM: the writes were refused, rolled
 * back; or another negative errno when its SQL failed the event (interrupted past its
 * time budget, a deferred constraint at COMMIT): rolled back too. */
int event_end(struct core *c, struct object *obj, int ok);

/* A routed request on its object's core: the handler runs, the response goes out behind
 * the gate (or is deferred). */
void event_run_request(struct core *c, struct http_exchange *ex);
/* Runs the requests that waited for obj's SQL connection (sql_ahead.c), in their order. */
void event_run_parked(struct core *c, struct object *obj);
/* An alarm came due (alarm.h's alarm_run_fn). */
int event_run_alarm(struct core *c, const struct duro_id *id, unsigned ns, const char *name,
		    size_t namelen, int64_t time_ms, unsigned retries, int drop);
/* A socket's message or close (obj_ws.h's obj_ws_run_fn). */
int event_run_socket(struct core *c, const struct obj_ws_event *ev);
/* A commit failed (commit.h's on_failed): objects with writes in it start over. */
void event_commit_failed(struct core *c, uint64_t from);
/* A forced switch (switch.c): runs the object's pending sync() callbacks now, each as an
 * event on its old code with status -ECANCELED; their batches' outcomes are then ignored. */
void event_cancel_conts(struct core *c, struct object *obj);

#endif
