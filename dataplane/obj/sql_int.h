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
/* Bytes of pages held in memory on a core. */
size_t sql_pages_bytes(const struct obj_sql *sq);

#endif
