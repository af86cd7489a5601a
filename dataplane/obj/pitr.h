/* Point-in-time recovery on an object's core (pitr.c): each commit of an object also
 * writes a record of what it changed into the history family, in the same batch (so the
 * commit log stays the only synchronous write); bookmarks name a commit; a restore
 * rebuilds the object's keys, alarms and SQL database as of a bookmark and writes them as
 * one ordinary event. */
#ifndef DURO_OBJ_PITR_H
#define DURO_OBJ_PITR_H

#include "object-t.h"
#include "history.h"

struct store_batch;

/* (pitr_rec.c) In event_end, for an event that writes: begin starts obj's record in rec (reading where
 * its history stands, and putting its base into b first when it has none) and returns 1,
 * or 0 when history is off; sql_event_commit then adds the pages; end puts the record
 * into b as commit seq's. */
int history_event_begin(struct core *c, struct object *obj, struct store_batch *b, struct hist_rec *rec);
void history_event_end(struct core *c, struct object *obj, struct store_batch *b, struct hist_rec *rec);

/* (pitr_rec.c) Reads where obj's history stands once per activation: obj->hist_seq and
 * hist_time_ms of its newest record; *none is 1 when it has none yet. 0 or -EIO. */
int pitr_load_head(struct core *c, struct object *obj, int *none);

/* Takes the posts of restores' replay threads (the core starts). */
void pitr_core_init(struct core *c);
/* Ends the restores under way (-ECANCELED) and drops those classes asked for that have
 * not run (the core stops). */
void pitr_core_fini(struct core *c);

#endif
