/* Shared by sql.c and sql_vfs.c only: the database file's pages (sql_vfs.c) as sql.c
 * drives them through an event. */
#ifndef DURO_OBJ_SQL_INT_H
#define DURO_OBJ_SQL_INT_H

#include "sql-t.h"

struct core;
struct store_batch;
struct hist_rec;

/* Registers the "duro" VFS with SQLite (once per process). Returns 0 or -EIO. */
int sql_vfs_register(void);
/* The name to open an object's database under: the VFS finds sq by it. */
void sql_vfs_name(const struct obj_sql *sq, char *out, size_t cap);
/* The most one temporary (memory) file may hold; each core sets it at start. */
void sql_vfs_set_temp_limit(size_t bytes);
/* 1 once a temporary file on this thread refused a write (fail_rc reads and clears it). */
extern _Thread_local int sql_vfs_temp_full;
/* The VFS's name, for sqlite3_open_v2. */
extern const char sql_vfs_id[];

/* For the opener thread (sql_ahead.c) and sql.c. sql_state: the object's database state,
 * made at first use (its size read from the object's keys: in an event, or with the object
 * marked running); 0 or a negative errno. sql_conn_setup: opens and sets up sq's
 * connection without touching the core's state; SQLITE_OK with *out, or an SQLite code
 * with the message in err. sql_conn_attach: on the core, db becomes sq's connection.
 * sql_prepare_ahead: on the opener thread, one statement prepared under the authorizer, or
 * NULL (refused, failed, not one whole statement). sql_prepare_internal: duro's own
 * statement `which` prepared (SQLite's result code). sql_cache_adopt: on the core, st
 * (prepared from text) joins sq's statement cache, or is finalized. */
int sql_state(struct object *obj, struct obj_sql **out);
/* 1 when text (a statement, blanks skipped) changes the schema: CREATE, DROP or ALTER. */
int sql_stmt_is_ddl(const char *text, size_t len);
int sql_conn_setup(struct obj_sql *sq, struct sqlite3 **out, char *err, size_t errlen);
void sql_conn_attach(struct obj_sql *sq, struct sqlite3 *db);
struct sqlite3_stmt *sql_prepare_ahead(struct obj_sql *sq, struct sqlite3 *db, const char *text, size_t len);
int sql_prepare_internal(struct obj_sql *sq, struct sqlite3 *db, enum sql_internal which);
void sql_cache_adopt(struct obj_sql *sq, struct sqlite3_stmt *st, const char *text, size_t len);

/* sql_ahead.c, for sql.c. learn_ns: objects of obj's namespace use SQL. learn_stmt: a
 * statement sq's connection kept, maybe one to prepare ahead for its namespace. claim:
 * waits for sq's connection being opened ahead, if any, and makes it sq's (0, or the
 * open failed: the caller opens it again). fini: stops the opener thread. */
void sql_ahead_learn_ns(struct object *obj);
void sql_ahead_learn_stmt(struct obj_sql *sq, const char *text, size_t len);
void sql_ahead_claim(struct obj_sql *sq);
void sql_ahead_init(struct core *c);
void sql_ahead_fini(struct core *c);

/* Reads page pgno as the running event sees it into out: 0 or -EIO. */
int sql_page_read(struct obj_sql *sq, uint32_t pgno, uint8_t out[KEYS_SQL_PAGE]);
/* Writes a whole page in the running event (the size grows to hold it): 0, -ENOMEM, or
 * -EFBIG past the event's write allowance. */
int sql_page_write(struct obj_sql *sq, uint32_t pgno, const uint8_t data[KEYS_SQL_PAGE]);
/* The event's pages into batch b as batch seq's: committed pages from now on. */
void sql_pages_commit(struct core *c, struct obj_sql *sq, struct store_batch *b, uint64_t seq,
		      struct hist_rec *hist);
/* Drops the event's pages, bringing back the committed ones they replaced. */
void sql_pages_rollback(struct core *c, struct obj_sql *sq);
/* Drops committed pages RocksDB now holds. */
void sql_pages_sweep(struct core *c, struct obj_sql *sq);
/* Frees every page (the object is going). */
void sql_pages_free(struct core *c, struct obj_sql *sq);
/* Frees the core's pool of freed pages (at the core's end). */
void sql_pages_pool_free(struct sql_core *sc);
/* Bytes of pages held in memory on a core. */
size_t sql_pages_bytes(const struct obj_sql *sq);

#endif
