/* An object's SQL database (sql.c: connections, statements, the event's transaction;
 * sql_vfs.c: the file SQLite sees, its pages in RocksDB's sql family). What the rest of
 * the runtime needs around an event: begin, finish (SQLite's COMMIT), the pages into the
 * core's open batch, rollback; savepoints and delete_all for txn.c; loading pages for
 * imports and restores; closing the connection when the object goes. */
#ifndef DURO_OBJ_SQL_H
#define DURO_OBJ_SQL_H

#include "object-t.h"

struct store_batch;
struct http_exchange;
struct hist_rec;

/* Per-core set-up (registers the VFS once per process) and tear-down. 0 or -ENOMEM. */
int sql_core_init(struct core *c);
void sql_core_fini(struct core *c);

/* Events. begin: the event's time budget starts. finish, for an event that succeeded:
 * SQLite commits the event's statements; returns 1 when the database changed (its pages
 * and size record are then waiting for sql_event_commit), 0 when not, or a negative errno
 * when the event must fail (a statement was interrupted, or the COMMIT failed: a deferred
 * constraint; the message is the object's duro_sql_error): roll everything back then.
 * commit: the pages into batch b (numbered seq); they stay readable from memory until
 * RocksDB holds them. rollback: undoes everything since begin, whatever came between. */
void sql_event_begin(struct core *c, struct object *obj);
int sql_event_finish(struct core *c, struct object *obj);
void sql_event_commit(struct core *c, struct object *obj, struct store_batch *b, uint64_t seq,
		      struct hist_rec *hist);
void sql_event_rollback(struct core *c, struct object *obj);

/* duro_txn_* over SQL (txn.c keeps them in step with the key-value savepoints): begin
 * returns 0 or -ENOMEM. */
int sql_txn_begin(struct object *obj);
void sql_txn_commit(struct object *obj);
void sql_txn_rollback(struct object *obj);
/* delete_all: the database goes with the event (or, inside a savepoint, its tables are
 * dropped so that a rollback brings them back). Returns 0 or a negative errno. */
int sql_delete_all(struct object *obj);

/* The running event may only read SQL: a statement that would write is refused (-EPERM)
 * from now until the event ends. Returns 0 or an error of the database. */
int sql_event_readonly(struct object *obj);

/* For imports and restores, in a running event that wrote no SQL yet: the database's
 * size and one stored page value (sqlpage.h's format; -EBADMSG when it is not one, or
 * -EINVAL for a page number beyond the size). */
int sql_load_size(struct object *obj, uint64_t bytes);
int sql_load_page(struct object *obj, uint32_t pgno, const void *value, size_t len);
/* Calls fn with each page of the committed database as its stored value (pages
 * RocksDB does not hold yet included), in page order; returns 0 or the first non-zero of
 * fn or a negative errno. For restores that compare pages. */
int sql_each_page(struct object *obj, int (*fn)(void *arg, uint32_t pgno, const void *page), void *arg);

/* 1 while the object's database has pages RocksDB does not hold yet. */
int sql_dirty(struct core *c, const struct object *obj);
/* The object is going away: closes its connection and frees its pages. */
void sql_free(struct core *c, struct object *obj);

/* Connections opened ahead (sql_ahead.c). park: 1 when request ex waits for obj's
 * connection, being opened on the core's opener thread (event_run_parked runs it once it
 * is open), 0 to run it now. take_parked: the object's waiting requests, oldest first,
 * linked through msg.next (off its ndeferred); NULL when none. */
int sql_ahead_park(struct core *c, struct object *obj, struct http_exchange *ex);
struct http_exchange *sql_ahead_take_parked(struct object *obj);
/* The opener's per-core set-up, after sql_core_init: run_parked runs an object's parked
 * requests once its connection is open (event_run_parked). fini: stops the opener thread,
 * after the objects are unloaded and before sql_core_fini. */
void sql_ahead_init(struct core *c, void (*run_parked)(struct core *c, struct object *obj));
void sql_ahead_fini(struct core *c);

/* The core's connections, for stats. */
const struct sql_core *sql_core_stats(struct core *c);

#endif
