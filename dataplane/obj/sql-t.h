/* Types of an object's SQL database (sql.c, sql_vfs.c), hung from struct object once the
 * object first uses SQL, and of each core's share (page-cache accounting). SQLite's own
 * types stay out of headers: struct sqlite3 and sqlite3_stmt are opaque here. */
#ifndef DURO_OBJ_SQL_T_H
#define DURO_OBJ_SQL_T_H

#include "keys.h"
#include "list.h"

#include <stddef.h>
#include <stdint.h>

struct sqlite3;
struct sqlite3_stmt;
struct object;
struct duro_sql_cursor;
struct http_exchange;
struct sql_ahead;
struct sql_ahead_job;
struct core;

#define SQL_TXN_SEQ UINT64_MAX /* a page written by the event still running */
#define SQL_STMT_CACHE 16      /* prepared single statements kept per connection */
#define SQL_ERR_MAX 512
#define SQL_PAGE_POOL 256      /* freed pages a core keeps for reuse (1 MiB) */
#define SQL_AHEAD_STMTS 4      /* statements of a namespace prepared ahead with a connection */

/* One page of the database file that RocksDB does not hold (yet): written by the running
 * event (seq SQL_TXN_SEQ), or committed in batch seq and not yet applied. */
struct sql_page {
	struct sql_page *hnext;
	struct sql_page *undo;  /* while the event runs: the committed page this one replaced */
	struct sql_page *tnext; /* the running event's pages, newest first */
	uint64_t seq;
	uint32_t pgno;
	uint8_t data[KEYS_SQL_PAGE];
};

struct sql_cached_stmt {
	struct sqlite3_stmt *st;
	char *text;
	uint32_t len;
	uint64_t hash, used;
	uint8_t busy; /* a cursor has it */
	uint8_t once; /* a schema statement: finalized once it ran (sql_stmt_is_ddl) */
};

/* duro's own statements, prepared once per connection. */
enum sql_internal {
	SQL_BEGIN, SQL_COMMIT, SQL_ROLLBACK,
	SQL_SP, SQL_SP_RELEASE, SQL_SP_ROLLBACK,       /* duro_txn_* savepoints */
	SQL_EX, SQL_EX_RELEASE, SQL_EX_ROLLBACK,       /* one exec of several statements */
	SQL_PAGE_COUNT, SQL_FREELIST_COUNT, SQL_NINTERNAL
};

struct obj_sql {
	struct object *obj;
	struct sqlite3 *db; /* NULL while closed (evicted for memory, or after a reset) */
	struct list_node lru;   /* in sql_core.lru while it may hold a page cache or pages */
	struct list_node conns; /* in sql_core.conns while its connection is open */
	struct sqlite3_stmt *internal_st[SQL_NINTERNAL];
	struct sql_cached_stmt cache[SQL_STMT_CACHE];
	uint64_t cache_tick;
	/* The file: pages by number (power-of-two buckets), the running event's pages. */
	struct sql_page **buckets;
	uint32_t nbuckets, count;
	struct sql_page *txn;
	uint64_t txn_bytes;
	uint64_t size;           /* the file's bytes as the running event sees them */
	uint64_t committed_size; /* as the last commit left them */
	uint64_t min_size;       /* the least size during the event (truncations) */
	uint64_t oldest_seq;     /* of committed pages still held (0: none) */
	uint64_t wiped_seq;      /* a wipe RocksDB has not applied: its pages do not count */
	uint8_t *page1;    /* the committed page 1 (to skip rewriting it unchanged), or NULL */
	uint8_t page1_valid;
	uint8_t wiped;     /* the running event wiped the database (delete_all) */
	uint8_t in_txn;    /* BEGIN issued in this event */
	uint8_t committed; /* SQLite committed the event; its batch has not taken the pages yet */
	uint8_t doomed;    /* the event must fail (interrupted, or SQLite rolled it back) */
	uint8_t over_cap;  /* the event wrote more pages than allowed */
	uint8_t internal;  /* running duro's own statements: the authorizer lets them by */
	uint8_t readonly;  /* this event may only read (the control plane's queries) */
	unsigned depth;    /* duro_txn savepoints issued */
	int doom_err;
	uint64_t event_start_ms;
	uint64_t total_changes; /* at the start of the current exec */
	struct duro_sql_cursor *cursors; /* the class's open cursors */
	size_t cache_mem;  /* the connection's page cache, as last counted against the core */
	size_t conn_mem;   /* and its fixed part (schema, statements, the connection) */
	size_t pager_fixed; /* of SQLite's cache figure, what only a close gives back */
	unsigned events_since_measure;
	uint8_t alter_seen; /* the authorizer saw ALTER TABLE: check the names it leaves */
	uint8_t big_cache;  /* the connection's cache_size was raised to the core's budget */
	/* Opening ahead (sql_ahead.c): while ahead_job is set the opener thread owns the
	 * connection being made and this struct's SQLite side (internal_st, cache, page1, the
	 * flags the callbacks read); the core waits for it before touching them. Requests that
	 * came meanwhile wait in `parked` (linked through msg.next, oldest first), each
	 * counted in the object's ndeferred, which keeps it in memory. */
	uint8_t ahead;      /* set up on the opener thread: callbacks leave the core's state alone */
	struct sql_ahead_job *ahead_job;
	struct http_exchange *parked, *parked_tail;
};

/* What a core learned of a namespace's databases: its objects use SQL (so their
 * connections are opened ahead), and the first statements their connections kept, which
 * are prepared ahead with each connection. Texts never change once added (the opener
 * thread reads them), freed with the core. */
struct sql_ns {
	uint8_t uses;
	unsigned n;
	char *text[SQL_AHEAD_STMTS];
	uint32_t len[SQL_AHEAD_STMTS];
};

/* Each core's share: what its connections hold, in two budgets. Page caches and pages
 * held in memory are cheap to give back (read again from the page map or RocksDB's block
 * cache) and count against sql.cache_bytes_per_core; a connection's fixed part (SQLite's
 * connection, the parsed schema, prepared statements) costs a reopen to give back (the
 * schema parsed again, duro's PRAGMAs, statements prepared again) and counts against
 * sql.connection_bytes_per_core, so a page cache never closes connections. */
struct sql_core {
	struct list_node lru;   /* databases that may hold pages, least recently used first */
	struct list_node conns; /* open connections, least recently used first */
	size_t mem;           /* page caches and held pages */
	size_t conn_mem;      /* connections' fixed parts */
	unsigned open;
	uint64_t opens, closes_for_memory, interrupts, statements, failures;
	uint64_t caches_released, stmts_dropped; /* idle connections trimmed short of a close */
	uint64_t opens_ahead, ahead_full; /* opened on the opener thread; opened here, its queue full */
	struct sql_page *free_pages; /* freed pages kept for reuse (sql_vfs.c), at most SQL_PAGE_POOL */
	unsigned nfree_pages;
	struct sql_ahead *ahead; /* the opener thread, once started (NULL: none yet, or off) */
	struct sql_ns *ns;       /* by namespace index */
	unsigned nns;
	void (*run_parked)(struct core *c, struct object *obj); /* event_run_parked */
	const char *auth_reason; /* why the authorizer refused the statement being prepared */
	char auth_arg[64];
	char err[SQL_ERR_MAX];   /* the last failed call's message (duro_sql_error) */
};

#endif
