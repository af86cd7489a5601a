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
/* A new instance of namespace `ns` (running the core's current class version), its
 * sockets reattached, not yet in the table: the caller runs on_load, then inserts or
 * discards it. NULL with *err = -ENOMEM. */
struct object *object_new(struct core *c, unsigned ns, const struct duro_id *id, int *err);
void object_insert(struct core *c, struct object *obj);
/* An instance never inserted (its on_load failed). */
void object_discard(struct core *c, struct object *obj);
/* Used now: most recently used in the LRU. */
void object_touch(struct core *c, struct object *obj);
/* Unloads an object (on_unload, cache freed, sockets kept as hibernated, held responses
 * answered 503). No event may be running on it. */
void object_unload(struct core *c, struct object *obj);

#endif
