/* Each core's table of live objects (object.c): lookup, creation, the LRU, idle eviction
 * and unloading. Running events on objects is the event layer's (event.h). */
#ifndef DURO_OBJ_OBJECT_H
#define DURO_OBJ_OBJECT_H

#include "object-t.h"

/* Sets up the table and the eviction scan; returns 0 or -ENOMEM. */
int object_table_init(struct core *c);
/* Unloads every object and frees the table. */
void object_table_fini(struct core *c);

/* The live instance of id on this core, or NULL. */
struct object *object_find(struct core *c, const struct duro_id *id);
/* A new instance of namespace `ns`, its sockets reattached, not yet in the table: the
 * caller runs on_load, then inserts or discards it. It runs `ver`, or when NULL the
 * version the core's view gives the ID (version.h); one on another version than that
 * waits in the core's list of objects to switch. NULL with *err = -ENOMEM. */
struct object *object_new(struct core *c, unsigned ns, const struct duro_id *id,
			  struct obj_version *ver, int *err);
void object_insert(struct core *c, struct object *obj);
/* An instance never inserted (its on_load failed). */
void object_discard(struct core *c, struct object *obj);
/* Used now: most recently used in the LRU. */
void object_touch(struct core *c, struct object *obj);
/* Unloads an object (on_unload, cache freed, sockets kept as hibernated, held responses
 * answered 503). No event may be running on it. */
void object_unload(struct core *c, struct object *obj);
/* Switches a live object to version `ver` in place (a deploy): the old version's
 * on_unload runs, responses it still holds are answered 503, its state is zeroed for the
 * new version, whose on_load runs before the object's next event (event.h). Its storage
 * cache, sockets and place in the table stay. No event may be running, and no sync()
 * callback of the old version may be pending (switch.c cancels them first). Returns 0, or
 * -ENOMEM when the new version's state does not fit and cannot be allocated (the object
 * then stays on its version). */
int object_switch(struct core *c, struct object *obj, struct obj_version *ver);
/* Nothing of its version's code pending: no event running, no held response, no sync()
 * callback and no call's done() waiting. Then it may switch versions. */
static inline int object_quiescent(const struct object *obj)
{
	return !obj->running && !obj->ndeferred && !obj->syncs && list_empty(&obj->conts) &&
	       !obj->ncalls && list_empty(&obj->calls_made);
}

#endif
