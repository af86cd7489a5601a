/* Shared by sql.c and sql_vfs.c only: the database file's pages (sql_vfs.c) as sql.c
 * drives them through an event. */
#ifndef DURO_OBJ_SQL_INT_H
#define DURO_OBJ_SQL_INT_H

#include "sql-t.h"
#include "core-t.h"
#include "duro.h"

#include <stdatomic.h>

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

/* For the opener thread (sql_ahead.c). sql_state: the object's database state, made at
 * first use (its size read from the object's keys: in an event, or with the object marked
 * running); 0 or a negative errno. sql_conn_setup: opens and sets up sq's connection
 * without touching the core's state; SQLITE_OK with *out, or an SQLite code with the
 * message in err. sql_prepare_ahead: on the opener thread, one statement prepared under
 * the authorizer, or NULL (refused, failed, not one whole statement).
 * sql_prepare_internal: duro's own statement `which` prepared (SQLite's result code). */
int sql_state(struct object *obj, struct obj_sql **out);
/* 1 when text (a statement, blanks skipped) changes the schema: CREATE, DROP or ALTER. */
int sql_stmt_is_ddl(const char *text, size_t len);
int sql_conn_setup(struct obj_sql *sq, struct sqlite3 **out, char *err, size_t errlen);
struct sqlite3_stmt *sql_prepare_ahead(struct obj_sql *sq, struct sqlite3 *db, const char *text, size_t len);
int sql_prepare_internal(struct obj_sql *sq, struct sqlite3 *db, enum sql_internal which);

/* One connection being opened ahead (sql_ahead.c). The opener thread owns it from its
 * queueing until `done`; then the core: sql_ahead_attach (sql.c) makes its connection sq's,
 * when the core's event of the object needs it first (claim() in sql.c) or when its
 * answer arrives. */
struct sql_ahead_job {
	struct core_msg msg; /* first */
	struct sql_ahead_job *next, **pprev; /* the core's jobs not yet heard back */
	struct obj_sql *sq;  /* NULL once attached */
	struct duro_id id;
	unsigned ns;
	struct sqlite3 *db;  /* the opener's result, or NULL */
	_Atomic int done;
	int rc;
	unsigned n;
	const char *text[SQL_AHEAD_STMTS];
	uint32_t len[SQL_AHEAD_STMTS];
	struct sqlite3_stmt *st[SQL_AHEAD_STMTS];
	char err[SQL_ERR_MAX];
};

/* sql.c, for sql_ahead.c. attach: the finished job's connection becomes its database's (or
 * the database stays closed when the open failed: its next statement opens it on the core
 * and says why). ns_of: what the core learned of namespace ns (made when `make`), or NULL. */
void sql_ahead_attach(struct sql_ahead_job *j);
struct sql_ns *sql_ns_of(struct sql_core *sc, unsigned ns, int make);

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
