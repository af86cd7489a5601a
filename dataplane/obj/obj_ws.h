/* The object side of WebSockets and event streams: groups (obj_ws_group.c: an object's
 * sockets, on the object's core, kept while it hibernates) and sites (obj_ws_site.c: what
 * each socket's core keeps per object). What the rest of the runtime calls. */
#ifndef DURO_OBJ_OBJ_WS_H
#define DURO_OBJ_OBJ_WS_H

#include "object-t.h"

struct http_exchange;

/* A socket's message or close, for the event layer to run as an event of the object. */
struct obj_ws_event {
	unsigned ns;
	struct duro_id id;
	duro_ws ws;
	int close; /* 0: a message; 1: the socket closed */
	int open;  /* an outbound socket opened (err 0) or failed to (err < 0) */
	int err, reconnect;
	int binary;
	const void *data;
	size_t len;
	int code, clean, error; /* close */
	const char *reason;
	size_t rlen;
	unsigned timeout_ms; /* the object's event timeout, 0 for none */
	uint64_t state_id;   /* close: the socket's stored record to delete (cluster_wsstate.h) */
};
/* Runs ev; returns 0, -ENOENT (the object failed to load: the event is lost), -ETIMEDOUT
 * (the handler ran past timeout_ms) or another negative errno (the handler failed). */
typedef int obj_ws_run_fn(struct core *c, const struct obj_ws_event *ev);

int obj_ws_core_init(struct core *c, obj_ws_run_fn *run);
void obj_ws_core_fini(struct core *c);
/* The socket layer's events (ws_core_init's), for durod. */
const struct ws_events *obj_ws_events(void);

/* On the connection's core: reserves a socket for an upgrade or event-stream request.
 * Returns 0 (nothing to do, or reserved), or -1 when it already answered 503. */
int obj_ws_route(struct core *c, struct http_exchange *ex);

/* The object's group on activation and unloading (hibernation keeps the group). */
void obj_ws_attach(struct core *c, struct object *obj);
void obj_ws_detach(struct core *c, struct object *obj);
/* At the end of an event that wrote: mirrors the durable outbound WebSockets it opened
 * or closed (their intents) into the alarms family in batch b, which start-up reads. */
struct store_batch;
void obj_ws_out_event_commit(struct core *c, struct object *obj, struct store_batch *b);
/* Per core, after obj_ws_core_init: loads this core's durable outbound sockets (their
 * objects asleep) and dials them soon. Fini before obj_ws_core_fini. */
void obj_ws_out_init(struct core *c);
void obj_ws_out_fini(struct core *c);
/* After an event: its sends go out, behind the output gate. */
void obj_ws_flush(struct core *c, struct object *obj);
/* Sockets of an object on this (its owner) core, live or hibernated. */
size_t obj_ws_count(struct core *c, unsigned ns, const struct duro_id *id);
const struct obj_ws_counters *obj_ws_core_counters(struct core *c);

#endif
