/* The SQL calls of duro.h behind each object: one SQLite connection per object in memory
 * (opened at its first SQL call, closed when it is evicted or the core needs the memory),
 * running on the object's core with SQLITE_OPEN_NOMUTEX. Each event that uses SQL is one
 * SQLite transaction: BEGIN at its first statement, COMMIT when it ends well (the pages
 * then join the event's other writes in the core's batch, sql_vfs.c), ROLLBACK when it
 * fails; duro_txn_* are savepoints within it. An authorizer keeps user SQL off
 * transactions, ATTACH, PRAGMAs outside a list, temporary objects and duro's names
 * (workerd's rules); a progress handler interrupts a statement past the event's budget.
 *
 *   event_begin --> first SQL call: open? BEGIN, SAVEPOINT per open duro_txn level
 *               --> exec: [SAVEPOINT x] statements... [RELEASE x | ROLLBACK TO x]
 *   event_end   --> sql_event_finish: COMMIT --> size record (kv) --> sql_event_commit:
 *                   pages into the batch     |   or sql_event_rollback: ROLLBACK */
#include "sql.h"
#include "sql_int.h"
#include "base_assert.h"
#include "clock.h"
#include "commit.h"
#include "core.h"
#include "kv.h"
#include "log.h"
#include "sqlpage.h"
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Fixed limits besides the configured ones: no attached databases, as Cloudflare. */
#define SQL_PROGRESS_OPS 1000      /* VM steps between looks at the clock */
#define SQL_CONN_OVERHEAD (12u << 10) /* a connection's own memory, beyond its pager's block,
					 schema and statements (measured: 25.4 KB for a SqlCounter's
					 with its three statements: 12.8 connection, 4.9 pager,
					 6.9 statements, 0.8 schema) */
#define SQL_MEASURE_EVERY 64       /* events between measurements of schema memory */
#define SQL_STACK_COLUMNS 64       /* a row of up to this many columns needs no allocation */
#define SQL_BIG_DB_BYTES (1u << 20) /* a database this large gets the core's cache budget */

struct duro_sql_cursor {
	struct obj_sql *sq;
	struct duro_sql_cursor *next; /* the class's open cursors (heap ones) */
	struct sqlite3_stmt *st;
	int slot;          /* in the statement cache, or -1 (finalized at close) */
	unsigned ncols;
	int state;         /* 2 not stepped yet, 1 a row is current, 0 done, < 0 failed */
	uint8_t savepoint; /* an exec of several statements: SQL_EX is open */
	uint8_t guard;     /* an ALTER TABLE: check the names it leaves */
	uint8_t heap;
	uint8_t readonly;
	uint64_t returned, scanned;
	int64_t changes_at_start;
};

static struct sql_core *SC(const struct object *obj) { return obj->core->obj->sql; }
static const struct obj_sql_config *cfg_of(const struct obj_sql *sq)
{
	return &sq->obj->core->obj->rt->cfg->sql;
}

/* ---- process-wide set-up ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_err;
static int default_page_size, default_secure_delete; /* this SQLite's defaults are duro's */

static void global_init(void)
{
	/* Memory statistics take a global mutex on every allocation: off (duro counts each
	 * connection's memory itself). Must come before SQLite initializes. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	/* No bulk page allocation at open (20 pages, 88 KiB, by default): a core keeps
	 * thousands of small databases open; pages are allocated as they are used. */
	sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
	if (sqlite3_initialize() != SQLITE_OK || sql_vfs_register() < 0)
		global_err = -EIO;
	char opt[32];
	snprintf(opt, sizeof(opt), "DEFAULT_PAGE_SIZE=%u", KEYS_SQL_PAGE);
	default_page_size = sqlite3_compileoption_used(opt);
	default_secure_delete = sqlite3_compileoption_used("SECURE_DELETE");
}

int sql_core_init(struct core *c)
{
	pthread_once(&global_once, global_init);
	if (global_err) {
		log_error("sql: SQLite would not initialize");
		return global_err;
	}
	c->obj->sql = calloc(1, sizeof(struct sql_core));
	if (!c->obj->sql)
		return -ENOMEM;
	sql_vfs_set_temp_limit((size_t)c->obj->rt->cfg->sql.max_event_write_bytes);
	list_init(&c->obj->sql->lru);
	list_init(&c->obj->sql->conns);
	return 0;
}

void sql_core_fini(struct core *c)
{
	struct sql_core *sc = c->obj ? c->obj->sql : NULL;
	if (!sc)
		return;
	sql_pages_pool_free(sc);
	for (unsigned i = 0; i < sc->nns; i++)
		for (unsigned k = 0; k < sc->ns[i].n; k++)
			free(sc->ns[i].text[k]);
	free(sc->ns);
	if (sc->opens)
		log_info("core %u: sql: %llu connections opened (%llu ahead, %llu here with the opener's queue full), %llu closed for memory, %llu page caches given back, %llu statement caches dropped, %llu statements, %llu interrupted",
			 c->index, (unsigned long long)sc->opens, (unsigned long long)sc->opens_ahead,
			 (unsigned long long)sc->ahead_full, (unsigned long long)sc->closes_for_memory,
			 (unsigned long long)sc->caches_released, (unsigned long long)sc->stmts_dropped,
			 (unsigned long long)sc->statements, (unsigned long long)sc->interrupts);
	free(sc);
	c->obj->sql = NULL;
}

const struct sql_core *sql_core_stats(struct core *c) { return c->obj->sql; }

/* ---- messages ---- */

__attribute__((format(printf, 2, 3))) static void set_err(struct obj_sql *sq, const char *fmt, ...)
{
	struct sql_core *sc = SC(sq->obj);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sc->err, sizeof(sc->err), fmt, ap);
	va_end(ap);
}

const char *duro_sql_error(struct duro_object *o)
{
	return SC((struct object *)o)->err;
}

/* duro's errno for an SQLite result code. */
static int map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_AUTH:
	case SQLITE_PERM:
		return -EPERM;
	case SQLITE_TOOBIG:
		return -E2BIG;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_INTERRUPT:
		return -ETIMEDOUT;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_IOERR:
	case SQLITE_CORRUPT:
	case SQLITE_CANTOPEN:
	case SQLITE_NOTADB:
	case SQLITE_INTERNAL:
		return -EIO;
	default:
		return -EINVAL; /* SQLITE_ERROR, CONSTRAINT, MISMATCH, RANGE, ... */
	}
}

/* The message for a failed SQLite call: the authorizer's reason, the event's allowance,
 * or SQLite's own text. Returns duro's errno. */
static int fail_rc(struct obj_sql *sq, int rc)
{
	struct sql_core *sc = SC(sq->obj);
	int err = map_rc(rc);
	if ((rc & 0xff) == SQLITE_AUTH && sc->auth_reason) {
		set_err(sq, sc->auth_reason, sc->auth_arg);
	} else if ((rc & 0xff) == SQLITE_FULL && sql_vfs_temp_full) {
		set_err(sq, "a temporary file (a sort, an index being built) passed %llu bytes (sql.max_event_write_bytes): add a LIMIT or an index",
			(unsigned long long)cfg_of(sq)->max_event_write_bytes);
	} else if ((rc & 0xff) == SQLITE_FULL && sq->over_cap) {
		set_err(sq, "an event may write at most %llu bytes of SQL pages (sql.max_event_write_bytes)",
			(unsigned long long)cfg_of(sq)->max_event_write_bytes);
	} else if ((rc & 0xff) == SQLITE_INTERRUPT) {
		set_err(sq, "interrupted: the statement ran past the event's time budget of %u ms (sql.time_budget_ms)",
			cfg_of(sq)->time_budget_ms);
	} else if (sq->db) {
		set_err(sq, "%s", sqlite3_errmsg(sq->db));
	} else {
		set_err(sq, "%s", sqlite3_errstr(rc));
	}
	sc->auth_reason = NULL;
	sc->failures++;
	sql_vfs_temp_full = 0;
	return err;
}

/* ---- the authorizer: what user SQL may not do ---- */

static const char *const allowed_pragmas[] = {
	"data_version", "foreign_key_check", "foreign_key_list", "foreign_keys",
	"defer_foreign_keys", "index_info", "index_list", "index_xinfo", "optimize",
	"quick_check", "table_info", "table_list", "table_xinfo", "collation_list",
	"page_count", "freelist_count", NULL,
};

static const char *const allowed_modules[] = { "fts5", "fts5vocab", "rtree", "rtree_i32", NULL };

static int listed(const char *const *list, const char *name)
{
	for (unsigned i = 0; name && list[i]; i++)
		if (!strcasecmp(list[i], name))
			return 1;
	return 0;
}

/* Names duro (and, for ported code, Cloudflare) keeps for itself. */
static int reserved_name(const char *name)
{
	return name && (!strncasecmp(name, "_cf_", 4) || !strncasecmp(name, "_duro", 5));
}

static int deny(struct sql_core *sc, const char *reason, const char *arg)
{
	if (!sc)
		return SQLITE_DENY; /* on the opener thread: the core prepares it again and says why */
	sc->auth_reason = reason;
	snprintf(sc->auth_arg, sizeof(sc->auth_arg), "%s", arg ? arg : "");
	return SQLITE_DENY;
}

static int authorize(void *arg, int action, const char *a1, const char *a2, const char *dbname,
		     const char *trigger)
{
	(void)dbname;
	(void)trigger;
	struct obj_sql *sq = arg;
	if (sq->internal)
		return SQLITE_OK;
	/* On the opener thread (sq->ahead) the core's state is not this thread's to touch. */
	struct sql_core *sc = sq->ahead ? NULL : SC(sq->obj);
	switch (action) {
	case SQLITE_TRANSACTION:
	case SQLITE_SAVEPOINT:
		return deny(sc, "%sBEGIN, COMMIT, ROLLBACK and SAVEPOINT are not allowed: each event is a transaction (use duro_txn_begin/commit/rollback)", NULL);
	case SQLITE_ATTACH:
	case SQLITE_DETACH:
		return deny(sc, "%sATTACH and DETACH are not allowed", NULL);
	case SQLITE_PRAGMA:
		if (listed(allowed_pragmas, a1))
			return SQLITE_OK;
		return deny(sc, "PRAGMA %s is not allowed", a1);
	case SQLITE_CREATE_TEMP_INDEX:
	case SQLITE_CREATE_TEMP_TABLE:
	case SQLITE_CREATE_TEMP_TRIGGER:
	case SQLITE_CREATE_TEMP_VIEW:
		return deny(sc, "%stemporary tables, views, triggers and indexes are not allowed", NULL);
	case SQLITE_CREATE_TABLE:
	case SQLITE_CREATE_INDEX:
	case SQLITE_CREATE_TRIGGER:
	case SQLITE_CREATE_VIEW:
	case SQLITE_INSERT:
	case SQLITE_UPDATE:
	case SQLITE_DELETE:
		if (reserved_name(a1))
			return deny(sc, "the name %s is reserved: names starting with _cf_ or _duro are duro's", a1);
		return SQLITE_OK;
	case SQLITE_CREATE_VTABLE:
		if (reserved_name(a1))
			return deny(sc, "the name %s is reserved: names starting with _cf_ or _duro are duro's", a1);
		if (!listed(allowed_modules, a2))
			return deny(sc, "virtual table module %s is not allowed (fts5 and rtree are)", a2);
		return SQLITE_OK;
	case SQLITE_ALTER_TABLE:
		sq->alter_seen = 1; /* a RENAME's new name is not shown here: checked after it ran */
		return SQLITE_OK;
	case SQLITE_FUNCTION:
		if (a2 && !strcasecmp(a2, "load_extension"))
			return deny(sc, "%sload_extension() is not allowed", NULL);
		return SQLITE_OK;
	default:
		return SQLITE_OK;
	}
}

/* ---- the time budget ---- */

static int progress(void *arg)
{
	struct obj_sql *sq = arg;
	if (sq->internal || sq->ahead || clock_now_ms() - sq->event_start_ms <= cfg_of(sq)->time_budget_ms)
		return 0;
	if (!sq->doomed) {
		sq->doomed = 1;
		sq->doom_err = -ETIMEDOUT;
		SC(sq->obj)->interrupts++;
	}
	return 1;
}

/* ---- duro's own statements ---- */

static const char *const internal_sql[SQL_NINTERNAL] = {
	[SQL_BEGIN] = "BEGIN", [SQL_COMMIT] = "COMMIT", [SQL_ROLLBACK] = "ROLLBACK",
	[SQL_SP] = "SAVEPOINT _duro_sp", [SQL_SP_RELEASE] = "RELEASE _duro_sp",
	[SQL_SP_ROLLBACK] = "ROLLBACK TO _duro_sp",
	[SQL_EX] = "SAVEPOINT _duro_ex", [SQL_EX_RELEASE] = "RELEASE _duro_ex",
	[SQL_EX_ROLLBACK] = "ROLLBACK TO _duro_ex",
	[SQL_PAGE_COUNT] = "PRAGMA page_count", [SQL_FREELIST_COUNT] = "PRAGMA freelist_count",
};

/* Runs one of duro's statements; *out (when not NULL) gets its first column. Returns the
 * SQLite result code. */
static int run_internal(struct obj_sql *sq, enum sql_internal which, int64_t *out)
{
	uint8_t was = sq->internal;
	sq->internal = 1;
	/* Prepared at first use: most connections need only BEGIN and COMMIT, and a
	 * connection is reopened often when many objects share a core's memory. */
	if (!sq->internal_st[which]) {
		int rc = sqlite3_prepare_v3(sq->db, internal_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
					    &sq->internal_st[which], NULL);
		if (rc != SQLITE_OK) {
			sq->internal = was;
			return rc;
		}
	}
	struct sqlite3_stmt *st = sq->internal_st[which];
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && out)
		*out = sqlite3_column_int64(st, 0);
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	sqlite3_reset(st);
	sq->internal = was;
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---- connections ---- */

static void measure(struct obj_sql *sq, int all)
{
	struct sql_core *sc = SC(sq->obj);
	int cur = 0, hi = 0;
	size_t cache = 0, conn = sq->conn_mem;
	if (sq->db) {
		/* SQLite's cache figure includes the pager's own block (a page of scratch space
		 * and the Pager), which only a close gives back: the connection's, not the
		 * cache's (else the cache budget would close connections to get it). */
		sqlite3_db_status(sq->db, SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0);
		cache = (size_t)cur > sq->pager_fixed ? (size_t)cur - sq->pager_fixed : 0;
		if (all) {
			int schema = 0, stmts = 0;
			sqlite3_db_status(sq->db, SQLITE_DBSTATUS_SCHEMA_USED, &schema, &hi, 0);
			sqlite3_db_status(sq->db, SQLITE_DBSTATUS_STMT_USED, &stmts, &hi, 0);
			conn = SQL_CONN_OVERHEAD + sq->pager_fixed + (size_t)schema + (size_t)stmts;
			sq->events_since_measure = 0;
		}
	} else {
		conn = 0;
	}
	sc->mem = sc->mem - sq->cache_mem + cache;
	sc->conn_mem = sc->conn_mem - sq->conn_mem + conn;
	sq->cache_mem = cache;
	sq->conn_mem = conn;
}

/* Finalizes the idle connection's cached statements (the class's; duro's own stay).
 * Returns how many. */
static unsigned drop_statements(struct obj_sql *sq)
{
	unsigned n = 0;
	for (unsigned i = 0; i < SQL_STMT_CACHE; i++) {
		struct sql_cached_stmt *cs = &sq->cache[i];
		if (!cs->st)
			continue;
		DURO_ASSERT(!cs->busy);
		sqlite3_finalize(cs->st);
		free(cs->text);
		memset(cs, 0, sizeof(*cs));
		n++;
	}
	return n;
}

static void close_db(struct obj_sql *sq)
{
	if (!sq->db)
		return;
	DURO_ASSERT(!sq->cursors); /* closed at the event's end, and before any reset */
	for (unsigned i = 0; i < SQL_NINTERNAL; i++) {
		sqlite3_finalize(sq->internal_st[i]);
		sq->internal_st[i] = NULL;
	}
	drop_statements(sq);
	sqlite3_close(sq->db);
	sq->db = NULL;
	sq->big_cache = 0;
	list_del(&sq->conns);
	sq->in_txn = 0;
	sq->depth = 0;
	SC(sq->obj)->open--;
	measure(sq, 0);
}

/* Opens sq's connection and sets it up: duro's PRAGMAs (SQLite loads the schema for the
 * first of them), limits, the authorizer and the time budget. Touches no state of the
 * core (the opener thread runs it too, sql_ahead.c): on failure the message is in err.
 * Returns SQLITE_OK with *out, or an SQLite result code. */
int sql_conn_setup(struct obj_sql *sq, struct sqlite3 **out, char *err, size_t errlen)
{
	const struct obj_sql_config *cfg = cfg_of(sq);
	const struct obj_config *ocfg = sq->obj->core->obj->rt->cfg;
	char name[64];
	sql_vfs_name(sq, name, sizeof(name));
	struct sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(name, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				 SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, sql_vfs_id);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "opening the database: %s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return rc;
	}
	int fixed = 0, hi = 0; /* nothing cached yet: the pager's own block */
	sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_USED, &fixed, &hi, 0);
	sq->pager_fixed = (size_t)fixed;
	sqlite3_extended_result_codes(db, 1);
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	uint64_t max_pages = ocfg->limits.max_object_bytes / KEYS_SQL_PAGE;
	if (max_pages > 0xfffffffeu)
		max_pages = 0xfffffffeu;
	uint64_t cache_kib = cfg->cache_bytes_per_core / 1024;
	char setup[512];
	/* Exclusive locking and the journal in memory: nothing but the pages of a commit (or
	 * a spill within one) ever reaches the file, and no lock or journal file exists. */
	/* Only what differs from this SQLite's defaults (checked once at start, global_init):
	 * each statement here is paid again whenever a connection is reopened. Syncs and temp
	 * files need nothing: xSync does nothing and every other file is memory (sql_vfs.c). */
	int n = snprintf(setup, sizeof(setup),
			 "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=MEMORY;"
			 "PRAGMA max_page_count=%llu;", (unsigned long long)(max_pages ? max_pages : 1));
	/* A database smaller than SQLite's default cache (2,000 KiB in Debian's build) fits it
	 * whole: its cache_size is raised only once it grows (sql_event_finish). */
	sq->big_cache = 0;
	if (sq->size > SQL_BIG_DB_BYTES) {
		n += snprintf(setup + n, sizeof(setup) - (size_t)n, "PRAGMA cache_size=-%llu;",
			      (unsigned long long)(cache_kib ? cache_kib : 1));
		sq->big_cache = 1;
	}
	if (!default_page_size)
		n += snprintf(setup + n, sizeof(setup) - (size_t)n, "PRAGMA page_size=%u;", KEYS_SQL_PAGE);
	if (!default_secure_delete)
		snprintf(setup + n, sizeof(setup) - (size_t)n, "PRAGMA secure_delete=ON;");
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_FKEY, 1, NULL);
	uint8_t was = sq->internal;
	sq->internal = 1;
	rc = sqlite3_exec(db, setup, NULL, NULL, NULL);
	sq->internal = was;
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(db));
		sqlite3_close(db);
		sq->big_cache = 0;
		return rc;
	}
	/* The limits after duro's own set-up statements, which they need not fit. */
	sqlite3_limit(db, SQLITE_LIMIT_LENGTH, (int)cfg->max_row_bytes);
	sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, (int)cfg->max_statement_bytes);
	sqlite3_limit(db, SQLITE_LIMIT_COLUMN, (int)cfg->max_columns);
	sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, (int)cfg->max_expr_depth);
	sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, (int)cfg->max_params);
	sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
	sqlite3_limit(db, SQLITE_LIMIT_WORKER_THREADS, 0);
	/* Set once: setting an authorizer expires every statement prepared before it. */
	sqlite3_set_authorizer(db, authorize, sq);
	sqlite3_progress_handler(db, SQL_PROGRESS_OPS, progress, sq);
	*out = db;
	return SQLITE_OK;
}

/* ---- what the opener thread needs of the core (sql_ahead.c) ---- */

struct sql_ns *sql_ns_of(struct sql_core *sc, unsigned ns, int make)
{
	if (ns < sc->nns)
		return &sc->ns[ns];
	if (!make)
		return NULL;
	struct sql_ns *n = realloc(sc->ns, (ns + 1) * sizeof(*n));
	if (!n)
		return NULL;
	memset(n + sc->nns, 0, (ns + 1 - sc->nns) * sizeof(*n));
	sc->ns = n;
	sc->nns = ns + 1;
	return &n[ns];
}

/* Objects of obj's namespace use SQL: their connections may be opened ahead. */
static void learn_ns(struct object *obj)
{
	struct sql_ns *n = sql_ns_of(SC(obj), obj->ns->index, 1);
	if (n)
		n->uses = 1;
}

/* A statement sq's connection kept (or a schema statement it ran): one of the first few
 * of its namespace, prepared ahead with each of the namespace's connections. */
static void learn_stmt(struct obj_sql *sq, const char *text, size_t len)
{
	struct sql_ns *n = sql_ns_of(SC(sq->obj), sq->obj->ns->index, 1);
	if (!n || n->n >= SQL_AHEAD_STMTS || len > UINT32_MAX)
		return;
	for (unsigned i = 0; i < n->n; i++)
		if (n->len[i] == len && !memcmp(n->text[i], text, len))
			return;
	char *t = malloc(len ? len : 1);
	if (!t)
		return;
	memcpy(t, text, len);
	n->text[n->n] = t;
	n->len[n->n] = (uint32_t)len;
	n->n++;
}

static void sql_cache_adopt(struct obj_sql *sq, struct sqlite3_stmt *st, const char *text, size_t len);
static void sql_conn_attach(struct obj_sql *sq, struct sqlite3 *db);

void sql_ahead_attach(struct sql_ahead_job *j)
{
	struct obj_sql *sq = j->sq;
	j->sq = NULL;
	sq->ahead_job = NULL;
	sq->ahead = 0;
	if (!j->db)
		return;
	sql_conn_attach(sq, j->db);
	SC(sq->obj)->opens_ahead++;
	for (unsigned i = 0; i < j->n; i++)
		if (j->st[i])
			sql_cache_adopt(sq, j->st[i], j->text[i], j->len[i]);
	j->db = NULL;
}

/* Waits for sq's connection being opened ahead, if any, and makes it sq's: every use of
 * sq's SQLite side on the core comes after this. Rare: another event of an object whose
 * requests wait for their connection. */
static void claim(struct obj_sql *sq)
{
	struct sql_ahead_job *j = sq->ahead_job;
	if (!j)
		return;
	while (!atomic_load_explicit(&j->done, memory_order_acquire))
		sched_yield();
	sql_ahead_attach(j);
}

struct http_exchange *sql_ahead_take_parked(struct object *obj)
{
	struct obj_sql *sq = obj->sql;
	if (!sq || !sq->parked)
		return NULL;
	struct http_exchange *ex = sq->parked;
	sq->parked = sq->parked_tail = NULL;
	for (struct core_msg *m = (struct core_msg *)ex; m; m = m->next) {
		DURO_ASSERT(obj->ndeferred > 0);
		obj->ndeferred--;
	}
	return ex;
}

/* The connection db (set up by sql_conn_setup, here or on the opener thread) becomes sq's:
 * counted against the core's budget, measured again at its first event's end, when its
 * statements are prepared. */
static void sql_conn_attach(struct obj_sql *sq, struct sqlite3 *db)
{
	struct sql_core *sc = SC(sq->obj);
	sq->db = db;
	list_add_tail(&sc->conns, &sq->conns);
	sc->open++;
	sc->opens++;
	measure(sq, 1);
	sq->events_since_measure = SQL_MEASURE_EVERY - 1;
	learn_ns(sq->obj); /* objects of this namespace use SQL: open theirs ahead */
}

static int open_db(struct obj_sql *sq)
{
	struct sqlite3 *db = NULL;
	char err[SQL_ERR_MAX];
	int rc = sql_conn_setup(sq, &db, err, sizeof(err));
	if (rc != SQLITE_OK) {
		set_err(sq, "%s", err);
		SC(sq->obj)->failures++;
		return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
	}
	sql_conn_attach(sq, db);
	return 0;
}

/* Gives back memory until the core is well under its budgets (an eighth below, so that
 * it is not done again at the next event), least recently used databases first. Over the
 * cache budget, pages RocksDB now holds are dropped and idle connections give back their
 * page caches (a page is read again from the page map or RocksDB's block cache in
 * microseconds); the database then leaves the cache list until its next use, so each walk
 * only meets databases with something to give. Pages not yet in RocksDB stay, whatever
 * the budget: closing a connection would not free them either. Over the connection
 * budget, idle connections drop the class's prepared statements, then close, oldest
 * first (reopening one costs far more than a page: SQLite parses the schema again, and
 * the statements are prepared again). */
static void trim(struct core *c)
{
	struct obj_core *oc = c->obj;
	struct sql_core *sc = oc->sql;
	const struct obj_sql_config *cfg = &oc->rt->cfg->sql;
	size_t cache_target = cfg->cache_bytes_per_core - cfg->cache_bytes_per_core / 8;
	size_t conn_target = cfg->connection_bytes_per_core - cfg->connection_bytes_per_core / 8;
	for (struct list_node *n = sc->lru.next, *next; n != &sc->lru && sc->mem > cache_target; n = next) {
		next = n->next;
		struct obj_sql *sq = LIST_CONTAINER(n, struct obj_sql, lru);
		if (sq->obj->running || sq->in_txn || sq->cursors || sq->ahead_job)
			continue;
		sql_pages_sweep(c, sq);
		if (sq->db && sq->cache_mem) {
			sqlite3_db_release_memory(sq->db);
			measure(sq, 0);
			sc->caches_released++;
		}
		if (!sq->count)
			list_del(&sq->lru);
	}
	/* First the class's prepared statements (a third of a small database's connection,
	 * prepared again in microseconds), then whole connections. */
	for (int pass = 0; pass < 2 && sc->conn_mem > conn_target; pass++) {
		for (struct list_node *n = sc->conns.next, *next;
		     n != &sc->conns && sc->conn_mem > conn_target; n = next) {
			next = n->next;
			struct obj_sql *sq = LIST_CONTAINER(n, struct obj_sql, conns);
			if (sq->obj->running || sq->in_txn || sq->cursors)
				continue;
			if (pass == 0) {
				if (drop_statements(sq)) {
					measure(sq, 1);
					sc->stmts_dropped++;
				}
			} else {
				close_db(sq);
				sc->closes_for_memory++;
			}
		}
	}
}

/* ---- the event's transaction ---- */

/* The running event's state of obj's database (made on the first call). With `open`,
 * the connection is open and the event's transaction begun. Returns 0 or an error. */
int sql_state(struct object *obj, struct obj_sql **out)
{
	DURO_ASSERT(obj->running);
	struct obj_sql *sq = obj->sql;
	if (!sq) {
		struct duro_str v;
		int r = kv_read(obj, KEYS_SQL_SIZE, KEYS_SQL_SIZE_LEN, &v);
		if (r < 0)
			return r;
		uint64_t size = 0;
		if (r == 1 && v.len == sizeof(size))
			memcpy(&size, v.ptr, sizeof(size));
		if (!(sq = calloc(1, sizeof(*sq))))
			return -ENOMEM;
		sq->obj = obj;
		list_init(&sq->conns);
		sq->size = sq->committed_size = sq->min_size = size;
		sq->event_start_ms = obj->core->now_ms;
		obj->sql = sq;
	}
	*out = sq;
	return 0;
}

static int get_sql(struct object *obj, int open, struct obj_sql **out)
{
	struct obj_sql *sq;
	int r = sql_state(obj, &sq);
	if (r < 0)
		return r;
	claim(sq);
	*out = sq;
	SC(obj)->err[0] = 0;
	if (sq->doomed) {
		if (sq->doom_err == -ETIMEDOUT)
			set_err(sq, "interrupted: a statement ran past the event's time budget of %u ms (sql.time_budget_ms); the event fails",
				cfg_of(sq)->time_budget_ms);
		else
			set_err(sq, "SQLite rolled this event's transaction back after an error; the event fails");
		return sq->doom_err;
	}
	if (!open)
		return 0;
	if (!sq->db && (r = open_db(sq)) < 0)
		return r;
	/* The most recently used in both lists (unless it is already). */
	if (sq->lru.next != &SC(obj)->lru) {
		if (list_linked(&sq->lru))
			list_del(&sq->lru);
		list_add_tail(&SC(obj)->lru, &sq->lru);
	}
	if (sq->conns.next != &SC(obj)->conns) {
		list_del(&sq->conns);
		list_add_tail(&SC(obj)->conns, &sq->conns);
	}
	if (sq->in_txn)
		return 0;
	int rc = run_internal(sq, SQL_BEGIN, NULL);
	if (rc != SQLITE_OK)
		return fail_rc(sq, rc);
	sq->in_txn = 1;
	/* Savepoints the event opened before its first SQL call. */
	for (unsigned d = kv_txn_depth(obj); sq->depth < d; sq->depth++)
		if ((rc = run_internal(sq, SQL_SP, NULL)) != SQLITE_OK)
			return fail_rc(sq, rc);
	return 0;
}

/* The database grew past SQL_BIG_DB_BYTES: its connection may cache up to the core's
 * budget (trim() keeps the sum of all caches within it). */
static void raise_cache(struct obj_sql *sq)
{
	char q[64];
	snprintf(q, sizeof(q), "PRAGMA cache_size=-%llu",
		 (unsigned long long)(cfg_of(sq)->cache_bytes_per_core / 1024));
	sq->internal = 1;
	if (sqlite3_exec(sq->db, q, NULL, NULL, NULL) == SQLITE_OK)
		sq->big_cache = 1;
	sq->internal = 0;
}

/* After an error: SQLite may have rolled the whole transaction back (an interrupt, a full
 * database, an I/O error); the event cannot commit what it did then. */
static void check_rolled_back(struct obj_sql *sq, int err)
{
	if (sq->in_txn && sqlite3_get_autocommit(sq->db)) {
		sq->in_txn = 0;
		sq->depth = 0;
		if (!sq->doomed) {
			sq->doomed = 1;
			sq->doom_err = err;
		}
	}
}

void sql_event_begin(struct core *c, struct object *obj)
{
	struct obj_sql *sq = obj->sql;
	if (!sq)
		return;
	claim(sq); /* an event of an object whose requests wait for its connection */
	sq->event_start_ms = clock_now_ms();
	sql_vfs_temp_full = 0;
	sq->readonly = 0;
	sq->doomed = 0;
	sq->doom_err = 0;
	sq->over_cap = 0;
	sq->min_size = sq->size = sq->committed_size;
	sql_pages_sweep(c, sq);
}

static void close_cursors(struct obj_sql *sq);

int sql_event_finish(struct core *c, struct object *obj)
{
	struct obj_sql *sq = obj->sql;
	if (!sq)
		return 0;
	close_cursors(sq);
	if (sq->doomed)
		return sq->doom_err ? sq->doom_err : -EIO;
	if (sq->in_txn) {
		int rc = run_internal(sq, SQL_COMMIT, NULL);
		if (rc != SQLITE_OK) {
			int err = fail_rc(sq, rc); /* a deferred foreign key, or no memory */
			log_warn("class %s: an event's SQL could not commit: %s", obj->cls->name, SC(obj)->err);
			return err < 0 ? err : -EIO;
		}
		sq->in_txn = 0;
		sq->depth = 0;
	}
	if (sq->db && !sq->big_cache && sq->size > SQL_BIG_DB_BYTES)
		raise_cache(sq);
	if (sq->db && ++sq->events_since_measure >= SQL_MEASURE_EVERY)
		measure(sq, 1);
	else if (sq->db)
		measure(sq, 0);
	int changed = sq->txn || sq->size != sq->committed_size || sq->wiped;
	/* The size record, a key of the object: it lists and names the object and goes with
	 * its key-value writes (so a key-value delete_all takes it: written again then). Absent
	 * means no database. */
	if (changed || kv_event_wiped(obj)) {
		struct duro_str v;
		int r = kv_read(obj, KEYS_SQL_SIZE, KEYS_SQL_SIZE_LEN, &v);
		uint64_t stored = 0;
		if (r == 1 && v.len == sizeof(stored))
			memcpy(&stored, v.ptr, sizeof(stored));
		if (r >= 0 && (stored != sq->size || (r == 1) != (sq->size != 0)))
			r = sq->size ? kv_write(obj, KEYS_SQL_SIZE, KEYS_SQL_SIZE_LEN, &sq->size,
						sizeof(sq->size), 1)
				     : kv_write(obj, KEYS_SQL_SIZE, KEYS_SQL_SIZE_LEN, NULL, 0, 0);
		if (r < 0) {
			set_err(sq, "the database's size record could not be written (%s)", strerror(-r));
			return r;
		}
	}
	const struct obj_sql_config *cfg = &c->obj->rt->cfg->sql;
	if (SC(obj)->mem > cfg->cache_bytes_per_core || SC(obj)->conn_mem > cfg->connection_bytes_per_core)
		trim(c);
	if (!changed)
		return 0; /* a size record written again goes with the key-value writes */
	sq->committed = 1;
	return 1;
}

void sql_event_commit(struct core *c, struct object *obj, struct store_batch *b, uint64_t seq,
		      struct hist_rec *hist)
{
	struct obj_sql *sq = obj->sql;
	if (!sq || !sq->committed)
		return;
	sql_pages_commit(c, sq, b, seq, hist);
	sq->committed_size = sq->min_size = sq->size;
	sq->committed = 0;
	sq->wiped = 0;
}

void sql_event_rollback(struct core *c, struct object *obj)
{
	struct obj_sql *sq = obj->sql;
	if (!sq)
		return;
	close_cursors(sq);
	int reset = sq->committed || sq->wiped;
	if (sq->in_txn && run_internal(sq, SQL_ROLLBACK, NULL) != SQLITE_OK)
		reset = 1;
	sq->in_txn = 0;
	sq->depth = 0;
	/* SQLite's cache holds what the event did when it committed it (or began again after
	 * a wipe): only a fresh connection forgets it. */
	if (reset)
		close_db(sq);
	sql_pages_rollback(c, sq);
	sq->size = sq->min_size = sq->committed_size;
	sq->committed = 0;
	sq->wiped = 0;
	sq->doomed = 0;
	if (sq->db)
		measure(sq, 0);
}

int sql_dirty(struct core *c, const struct object *obj)
{
	const struct obj_sql *sq = obj->sql;
	return sq && (sq->txn || (sq->oldest_seq && sq->oldest_seq > commit_applied_seq(c)) ||
		      sq->wiped_seq > commit_applied_seq(c));
}

void sql_free(struct core *c, struct object *obj)
{
	struct obj_sql *sq = obj->sql;
	if (!sq)
		return;
	DURO_ASSERT(!sq->parked); /* answered first (object.c) */
	claim(sq);
	close_cursors(sq);
	close_db(sq);
	sql_pages_free(c, sq);
	if (list_linked(&sq->lru))
		list_del(&sq->lru);
	free(sq);
	obj->sql = NULL;
}

/* ---- savepoints (duro_txn_*) ---- */

int sql_txn_begin(struct object *obj)
{
	struct obj_sql *sq = obj->sql;
	if (!sq || !sq->in_txn)
		return 0; /* issued when the event's first statement begins its transaction */
	int rc = run_internal(sq, SQL_SP, NULL);
	if (rc != SQLITE_OK)
		return fail_rc(sq, rc);
	sq->depth++;
	return 0;
}

void sql_txn_commit(struct object *obj)
{
	struct obj_sql *sq = obj->sql;
	if (!sq || !sq->in_txn || !sq->depth)
		return;
	run_internal(sq, SQL_SP_RELEASE, NULL);
	sq->depth--;
}

void sql_txn_rollback(struct object *obj)
{
	struct obj_sql *sq = obj->sql;
	if (!sq || !sq->in_txn || !sq->depth)
		return;
	int rc = run_internal(sq, SQL_SP_ROLLBACK, NULL);
	if (rc == SQLITE_OK)
		rc = run_internal(sq, SQL_SP_RELEASE, NULL);
	if (rc != SQLITE_OK) {
		/* Cannot undo to the savepoint: the event must not commit what is left. */
		sq->doomed = 1;
		sq->doom_err = map_rc(rc);
	}
	sq->depth--;
}

/* Drops every table, view and trigger inside the transaction: delete_all within a
 * savepoint, which a rollback must be able to undo. */
static int drop_everything(struct obj_sql *sq)
{
	static const char list[] = "SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
				   "AND type IN ('table', 'view', 'trigger') ORDER BY type = 'table'";
	struct sqlite3_stmt *st;
	sq->internal = 1;
	int rc = sqlite3_prepare_v2(sq->db, list, -1, &st, NULL);
	char *names = NULL;
	size_t len = 0;
	while (rc == SQLITE_OK || rc == SQLITE_ROW) {
		if ((rc = sqlite3_step(st)) != SQLITE_ROW)
			break;
		const char *type = (const char *)sqlite3_column_text(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		char *q = sqlite3_mprintf("DROP %s IF EXISTS \"%w\";", !strcmp(type, "table") ? "TABLE"
							 : !strcmp(type, "view") ? "VIEW" : "TRIGGER", name);
		char *nn = q ? realloc(names, len + strlen(q) + 1) : NULL;
		if (!nn) {
			sqlite3_free(q);
			rc = SQLITE_NOMEM;
			break;
		}
		names = nn;
		memcpy(names + len, q, strlen(q) + 1);
		len += strlen(q);
		sqlite3_free(q);
	}
	if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
	sqlite3_finalize(st);
	/* Parents and children go together: their foreign keys are checked at COMMIT. */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(sq->db, "PRAGMA defer_foreign_keys=ON", NULL, NULL, NULL);
	if (rc == SQLITE_OK && names)
		rc = sqlite3_exec(sq->db, names, NULL, NULL, NULL);
	if (rc == SQLITE_OK) {
		/* AUTOINCREMENT's counters (no such table when nothing used it) */
		rc = sqlite3_exec(sq->db, "DELETE FROM sqlite_sequence", NULL, NULL, NULL);
		if (rc == SQLITE_ERROR)
			rc = SQLITE_OK;
	}
	sq->internal = 0;
	free(names);
	return rc == SQLITE_OK ? 0 : fail_rc(sq, rc);
}

int sql_delete_all(struct object *obj)
{
	struct obj_sql *sq = obj->sql;
	if (!sq) {
		/* Not used since it was loaded: anything stored? (kv_read sees the key-value
		 * delete_all just made, so ask before it: the caller calls this first.) */
		int r = get_sql(obj, 0, &sq);
		if (r < 0)
			return r;
		if (!sq->committed_size)
			return 0;
	}
	if (sq->doomed)
		return sq->doom_err;
	if (kv_txn_depth(obj) > 0) {
		int r = get_sql(obj, 1, &sq);
		return r < 0 ? r : drop_everything(sq);
	}
	/* The whole file goes with the event: SQLite's view of it too. */
	close_cursors(sq);
	if (sq->in_txn)
		run_internal(sq, SQL_ROLLBACK, NULL);
	close_db(sq);
	sql_pages_rollback(obj->core, sq);
	sq->wiped = 1;
	sq->size = sq->min_size = 0;
	return 0;
}

/* ---- imports and restores ---- */

int sql_event_readonly(struct object *obj)
{
	struct obj_sql *sq;
	int r = get_sql(obj, 0, &sq);
	if (r == 0)
		sq->readonly = 1;
	return r;
}

int sql_load_size(struct object *obj, uint64_t bytes)
{
	struct obj_sql *sq;
	int r = get_sql(obj, 0, &sq);
	if (r < 0)
		return r;
	if (bytes % KEYS_SQL_PAGE || bytes > obj->core->obj->rt->cfg->limits.max_object_bytes)
		return -EINVAL;
	close_cursors(sq);
	if (sq->in_txn)
		run_internal(sq, SQL_ROLLBACK, NULL);
	close_db(sq); /* its cache would not know the pages loaded under it */
	sq->size = bytes;
	if (bytes < sq->min_size)
		sq->min_size = bytes;
	return 0;
}

int sql_load_page(struct object *obj, uint32_t pgno, const void *value, size_t len)
{
	struct obj_sql *sq;
	int r = get_sql(obj, 0, &sq);
	if (r < 0)
		return r;
	if (pgno == 0 || (uint64_t)pgno * KEYS_SQL_PAGE > sq->size)
		return -EINVAL;
	uint8_t page[KEYS_SQL_PAGE];
	if ((r = sqlpage_decode(value, len, page)) < 0)
		return r;
	uint64_t size = sq->size;
	r = sql_page_write(sq, pgno, page);
	sq->size = size;
	return r;
}

int sql_each_page(struct object *obj, int (*fn)(void *arg, uint32_t pgno, const void *page), void *arg)
{
	struct obj_sql *sq;
	int r = get_sql(obj, 0, &sq);
	if (r < 0)
		return r;
	uint8_t page[KEYS_SQL_PAGE];
	uint32_t pages = (uint32_t)(sq->committed_size / KEYS_SQL_PAGE);
	for (uint32_t p = 1; p <= pages; p++) {
		if ((r = sql_page_read(sq, p, page)) < 0 || (r = fn(arg, p, page)) != 0)
			return r;
	}
	return 0;
}

/* ---- statements ---- */

static uint64_t text_hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
	return h;
}

/* Past whitespace, semicolons and comments: the start of the next statement, or end. */
static const char *skip_blank(const char *p, const char *end)
{
	while (p < end) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == ';') {
			p++;
		} else if (*p == '-' && p + 1 < end && p[1] == '-') {
			while (p < end && *p != '\n')
				p++;
		} else if (*p == '/' && p + 1 < end && p[1] == '*') {
			p += 2;
			while (p + 1 < end && !(p[0] == '*' && p[1] == '/'))
				p++;
			p = p + 1 < end ? p + 2 : end;
		} else {
			break;
		}
	}
	return p;
}

int sql_stmt_is_ddl(const char *text, size_t len)
{
	const char *p = skip_blank(text, text + len);
	size_t n = (size_t)(text + len - p);
	return (n > 6 && !strncasecmp(p, "CREATE", 6)) || (n > 4 && !strncasecmp(p, "DROP", 4)) ||
	       (n > 5 && !strncasecmp(p, "ALTER", 5));
}

static int cache_find(struct obj_sql *sq, const char *p, size_t n, uint64_t h)
{
	for (int i = 0; i < SQL_STMT_CACHE; i++) {
		struct sql_cached_stmt *cs = &sq->cache[i];
		if (cs->st && !cs->busy && cs->hash == h && cs->len == n && !memcmp(cs->text, p, n))
			return i;
	}
	return -1;
}

/* Keeps st (a whole single statement) for reuse: the least recently used goes. Returns
 * its slot, or -1 when it is not kept (the caller then finalizes it). */
static int cache_put(struct obj_sql *sq, struct sqlite3_stmt *st, const char *p, size_t n, uint64_t h)
{
	int victim = -1;
	for (int i = 0; i < SQL_STMT_CACHE; i++) {
		struct sql_cached_stmt *cs = &sq->cache[i];
		if (cs->busy)
			continue;
		if (!cs->st) {
			victim = i;
			break;
		}
		if (victim < 0 || cs->used < sq->cache[victim].used)
			victim = i;
	}
	char *text = victim >= 0 ? malloc(n ? n : 1) : NULL;
	if (!text)
		return -1;
	struct sql_cached_stmt *cs = &sq->cache[victim];
	sqlite3_finalize(cs->st);
	free(cs->text);
	memcpy(text, p, n);
	/* A schema statement runs once per database, or per activation: kept, it would hold
	 * the connection's memory (its budget) for nothing. It is only cached to be found by
	 * the run it was prepared for (ahead, sql_ahead.c). */
	*cs = (struct sql_cached_stmt){ .st = st, .text = text, .len = (uint32_t)n, .hash = h,
					 .once = (uint8_t)sql_stmt_is_ddl(p, n) };
	return victim;
}

static void sql_cache_adopt(struct obj_sql *sq, struct sqlite3_stmt *st, const char *text, size_t len)
{
	if (cache_put(sq, st, text, len, text_hash(text, len)) < 0)
		sqlite3_finalize(st);
}

struct sqlite3_stmt *sql_prepare_ahead(struct obj_sql *sq, struct sqlite3 *db, const char *text, size_t len)
{
	struct sqlite3_stmt *st = NULL;
	const char *tail = text + len;
	sq->alter_seen = 0;
	int rc = sqlite3_prepare_v3(db, text, (int)len, 0, &st, &tail);
	/* An ALTER TABLE's names are checked after it runs (statement_done): never ahead. */
	if (rc != SQLITE_OK || !st || skip_blank(tail, text + len) != text + len || sq->alter_seen) {
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

int sql_prepare_internal(struct obj_sql *sq, struct sqlite3 *db, enum sql_internal which)
{
	if (sq->internal_st[which])
		return SQLITE_OK;
	return sqlite3_prepare_v3(db, internal_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
				  &sq->internal_st[which], NULL);
}

static void release_stmt(struct duro_sql_cursor *cur)
{
	if (!cur->st)
		return;
	if (cur->slot >= 0 && cur->sq->cache[cur->slot].once) {
		struct sql_cached_stmt *cs = &cur->sq->cache[cur->slot];
		sqlite3_finalize(cs->st);
		free(cs->text);
		memset(cs, 0, sizeof(*cs));
	} else if (cur->slot >= 0) {
		struct sql_cached_stmt *cs = &cur->sq->cache[cur->slot];
		sqlite3_reset(cur->st);
		sqlite3_clear_bindings(cur->st);
		cs->busy = 0;
		cs->used = ++cur->sq->cache_tick;
	} else {
		sqlite3_finalize(cur->st);
	}
	cur->st = NULL;
	cur->slot = -1;
}

static int bind_params(struct obj_sql *sq, struct sqlite3_stmt *st, const struct duro_sql_value *params,
		size_t n)
{
	int want = sqlite3_bind_parameter_count(st);
	if ((size_t)want != n) {
		set_err(sq, "%zu parameters given; the statement takes %d", n, want);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct duro_sql_value *v = &params[i];
		int rc, k = (int)i + 1;
		switch (v->type) {
		case DURO_SQL_NULL:
			rc = sqlite3_bind_null(st, k);
			break;
		case DURO_SQL_INTEGER:
			rc = sqlite3_bind_int64(st, k, v->u.i);
			break;
		case DURO_SQL_REAL:
			rc = sqlite3_bind_double(st, k, v->u.d);
			break;
		case DURO_SQL_TEXT:
			rc = sqlite3_bind_text64(st, k, v->u.s.ptr ? v->u.s.ptr : "", v->u.s.len, SQLITE_STATIC,
						 SQLITE_UTF8);
			break;
		case DURO_SQL_BLOB:
			rc = sqlite3_bind_blob64(st, k, v->u.s.ptr ? v->u.s.ptr : "", v->u.s.len, SQLITE_STATIC);
			break;
		default:
			set_err(sq, "parameter %zu has an unknown type %d", i + 1, (int)v->type);
			return -EINVAL;
		}
		if (rc != SQLITE_OK)
			return fail_rc(sq, rc);
	}
	return 0;
}

/* After a statement of the exec ran to its end: full-scan steps count as rows read, and
 * an ALTER TABLE may not have renamed anything into duro's names. */
static int statement_done(struct duro_sql_cursor *cur, struct sqlite3_stmt *st)
{
	struct obj_sql *sq = cur->sq;
	cur->scanned += (uint64_t)sqlite3_stmt_status(st, SQLITE_STMTSTATUS_FULLSCAN_STEP, 1);
	if (!cur->guard)
		return 0;
	cur->guard = 0;
	struct sqlite3_stmt *chk;
	static const char q[] = "SELECT name FROM sqlite_schema WHERE name LIKE '\\_cf\\_%' ESCAPE '\\' "
				"OR name LIKE '\\_duro%' ESCAPE '\\' LIMIT 1";
	sq->internal = 1;
	int rc = sqlite3_prepare_v2(sq->db, q, -1, &chk, NULL);
	int found = rc == SQLITE_OK && sqlite3_step(chk) == SQLITE_ROW;
	if (found)
		set_err(sq, "the name %s is reserved: names starting with _cf_ or _duro are duro's",
			(const char *)sqlite3_column_text(chk, 0));
	sqlite3_finalize(chk);
	sq->internal = 0;
	return found ? -EPERM : 0;
}

/* A statement failed (rc): the message, and whether SQLite dropped the transaction. */
static int statement_failed(struct duro_sql_cursor *cur, int rc)
{
	struct obj_sql *sq = cur->sq;
	int err = fail_rc(sq, rc);
	check_rolled_back(sq, err);
	if (sq->doomed && sq->doom_err == -ETIMEDOUT)
		err = -ETIMEDOUT;
	return err;
}

/* Runs every statement of sql but the last, prepares and binds the last into cur. On
 * failure nothing is left open and nothing the exec did remains. */
static int cursor_start(struct obj_sql *sq, struct duro_sql_cursor *cur, const char *sql, size_t len,
			const struct duro_sql_value *params, size_t nparams)
{
	memset(cur, 0, sizeof(*cur));
	cur->sq = sq;
	cur->slot = -1;
	cur->state = 0;
	cur->changes_at_start = sqlite3_total_changes64(sq->db);
	struct sql_core *sc = SC(sq->obj);
	if (nparams > cfg_of(sq)->max_params) {
		set_err(sq, "too many parameters: %zu (sql.max_params is %u)", nparams, cfg_of(sq)->max_params);
		return -E2BIG;
	}
	if (!sql)
		len = 0;
	const char *end = sql + len, *p = skip_blank(sql, end);
	int r = 0;
	while (p < end) {
		struct sqlite3_stmt *st = NULL;
		const char *tail = end;
		int whole = p == skip_blank(sql, end); /* the statement may be all of sql */
		uint64_t h = 0;
		int slot = -1;
		if (whole) {
			h = text_hash(p, (size_t)(end - p));
			if ((slot = cache_find(sq, p, (size_t)(end - p), h)) >= 0) {
				st = sq->cache[slot].st;
				sq->cache[slot].busy = 1;
			}
		}
		if (!st) {
			sq->alter_seen = 0;
			sc->auth_reason = NULL;
			if ((size_t)(end - p) > cfg_of(sq)->max_statement_bytes) {
				set_err(sq, "the SQL is %zu bytes long (sql.max_statement_bytes is %u)",
					(size_t)(end - p), cfg_of(sq)->max_statement_bytes);
				r = -E2BIG;
				break;
			}
			int rc = sqlite3_prepare_v3(sq->db, p, (int)(end - p), 0, &st, &tail);
			if (rc != SQLITE_OK) {
				r = statement_failed(cur, rc);
				break;
			}
			if (!st) { /* nothing but comments */
				p = skip_blank(tail, end);
				continue;
			}
			cur->guard = sq->alter_seen;
		}
		if (sq->readonly && !sqlite3_stmt_readonly(st)) {
			set_err(sq, "read-only: the statement would write (allow writes to run it)");
			if (slot >= 0)
				sq->cache[slot].busy = 0;
			else
				sqlite3_finalize(st);
			r = -EPERM;
			break;
		}
		const char *next = skip_blank(tail, end);
		sc->statements++;
		if (next < end || cur->guard) {
			/* Several statements (or a rename to check after): one savepoint for all. */
			if (!cur->savepoint) {
				int rc = run_internal(sq, SQL_EX, NULL);
				if (rc != SQLITE_OK) {
					sqlite3_finalize(st);
					r = fail_rc(sq, rc);
					break;
				}
				cur->savepoint = 1;
			}
		}
		if (next < end) {
			if (sqlite3_bind_parameter_count(st) > 0) {
				set_err(sq, "parameters bind to the last statement only; an earlier one takes %d",
					sqlite3_bind_parameter_count(st));
				sqlite3_finalize(st);
				r = -EINVAL;
				break;
			}
			int rc;
			while ((rc = sqlite3_step(st)) == SQLITE_ROW)
				;
			if (rc != SQLITE_DONE) {
				r = statement_failed(cur, rc);
				sqlite3_finalize(st);
				break;
			}
			r = statement_done(cur, st);
			sqlite3_finalize(st);
			if (r < 0)
				break;
			p = next;
			continue;
		}
		/* The last statement: the cursor's. Kept for reuse when it is all of sql. */
		if (slot < 0 && whole && !cur->guard) {
			int ddl = sql_stmt_is_ddl(p, (size_t)(end - p));
			if (!ddl)
				slot = cache_put(sq, st, p, (size_t)(end - p), h);
			if (slot >= 0 || ddl)
				learn_stmt(sq, p, (size_t)(end - p));
		}
		if (slot >= 0)
			sq->cache[slot].busy = 1;
		cur->st = st;
		cur->slot = slot;
		cur->ncols = (unsigned)sqlite3_column_count(st);
		cur->readonly = (uint8_t)sqlite3_stmt_readonly(st);
		cur->state = 2;
		if ((r = bind_params(sq, st, params, nparams)) < 0)
			break;
		return 0;
	}
	if (r == 0 && nparams) {
		set_err(sq, "%zu parameters given, but there is no statement", nparams);
		r = -EINVAL;
	}
	if (r < 0) {
		release_stmt(cur);
		if (cur->savepoint && !sq->doomed && sq->in_txn) {
			run_internal(sq, SQL_EX_ROLLBACK, NULL);
			run_internal(sq, SQL_EX_RELEASE, NULL);
		}
		cur->savepoint = 0;
		cur->state = r;
		return r;
	}
	return 0; /* only comments, or statements without a last one to read: done */
}

static int cursor_next(struct duro_sql_cursor *cur)
{
	if (cur->state <= 0)
		return cur->state;
	int rc = sqlite3_step(cur->st);
	if (rc == SQLITE_ROW) {
		cur->state = 1;
		cur->returned++;
		return 1;
	}
	if (rc == SQLITE_DONE) {
		int r = statement_done(cur, cur->st);
		cur->state = r;
		return r;
	}
	cur->state = statement_failed(cur, rc);
	return cur->state;
}

/* Runs the rest, ends the exec's savepoint, fills res, releases the statement. */
static int cursor_finish(struct duro_sql_cursor *cur, struct duro_sql_result *res)
{
	struct obj_sql *sq = cur->sq;
	if (cur->state > 0 && cur->st) {
		if (cur->readonly)
			cur->state = statement_done(cur, cur->st);
		else
			while (cursor_next(cur) > 0)
				cur->returned--; /* run to its end; rows nobody reads are not returned */
	}
	int r = cur->state < 0 ? cur->state : 0;
	release_stmt(cur);
	if (cur->savepoint && sq->in_txn) {
		int rc = SQLITE_OK;
		if (r < 0)
			rc = run_internal(sq, SQL_EX_ROLLBACK, NULL);
		if (rc == SQLITE_OK)
			rc = run_internal(sq, SQL_EX_RELEASE, NULL);
		if (rc != SQLITE_OK && !sq->doomed) {
			sq->doomed = 1;
			sq->doom_err = map_rc(rc);
		}
	}
	cur->savepoint = 0;
	if (res) {
		res->rows_returned = cur->returned;
		res->rows_read = cur->returned + cur->scanned;
		int64_t now = sq->db ? sqlite3_total_changes64(sq->db) : cur->changes_at_start;
		res->rows_written = r < 0 ? 0 : (uint64_t)(now - cur->changes_at_start);
	}
	cur->state = 0;
	return r;
}

static void close_cursors(struct obj_sql *sq)
{
	while (sq->cursors) {
		struct duro_sql_cursor *cur = sq->cursors;
		sq->cursors = cur->next;
		cursor_finish(cur, NULL);
		free(cur);
	}
}

static struct duro_sql_value column_value(struct sqlite3_stmt *st, int i)
{
	struct duro_sql_value v = { .type = DURO_SQL_NULL };
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		v.type = DURO_SQL_INTEGER;
		v.u.i = sqlite3_column_int64(st, i);
		break;
	case SQLITE_FLOAT:
		v.type = DURO_SQL_REAL;
		v.u.d = sqlite3_column_double(st, i);
		break;
	case SQLITE_TEXT:
		v.type = DURO_SQL_TEXT;
		v.u.s.ptr = (const char *)sqlite3_column_text(st, i);
		v.u.s.len = (size_t)sqlite3_column_bytes(st, i);
		break;
	case SQLITE_BLOB:
		v.type = DURO_SQL_BLOB;
		v.u.s.ptr = sqlite3_column_blob(st, i);
		v.u.s.len = (size_t)sqlite3_column_bytes(st, i);
		break;
	default:
		break;
	}
	return v;
}

/* ---- the calls of duro.h ---- */

int duro_sql_exec(struct duro_object *o, const char *sql, size_t len,
		  const struct duro_sql_value *params, size_t nparams, duro_sql_row_fn *fn, void *arg,
		  struct duro_sql_result *res)
{
	struct object *obj = (struct object *)o;
	struct obj_sql *sq;
	if (res)
		memset(res, 0, sizeof(*res));
	int r = get_sql(obj, 1, &sq);
	if (r < 0)
		return r;
	struct duro_sql_cursor cur;
	if ((r = cursor_start(sq, &cur, sql, len, params, nparams)) < 0)
		return r;
	struct duro_str names_stack[SQL_STACK_COLUMNS];
	struct duro_sql_value vals_stack[SQL_STACK_COLUMNS];
	struct duro_str *names = names_stack;
	struct duro_sql_value *vals = vals_stack;
	int named = 0, stopped = !fn;
	if (cur.ncols > SQL_STACK_COLUMNS) {
		names = malloc(cur.ncols * sizeof(*names));
		vals = malloc(cur.ncols * sizeof(*vals));
	}
	if (!names || !vals) {
		cursor_finish(&cur, NULL);
		r = -ENOMEM;
		set_err(sq, "out of memory for a row of %u columns", cur.ncols);
	} else {
		while ((r = cursor_next(&cur)) == 1) {
			if (stopped) {
				if (cur.readonly)
					break;
				cur.returned--;
				continue;
			}
			if (!named) {
				for (unsigned i = 0; i < cur.ncols; i++) {
					const char *n = sqlite3_column_name(cur.st, (int)i);
					names[i] = (struct duro_str){ n ? n : "", n ? strlen(n) : 0 };
				}
				named = 1;
			}
			for (unsigned i = 0; i < cur.ncols; i++)
				vals[i] = column_value(cur.st, (int)i);
			if (fn(arg, cur.ncols, names, vals) != 0)
				stopped = 1;
		}
		if (r == 1)
			r = 0; /* stopped a read early: the rest is not wanted */
		int f = cursor_finish(&cur, res);
		r = r < 0 ? r : f;
	}
	if (names != names_stack)
		free(names);
	if (vals != vals_stack)
		free(vals);
	return r;
}

int duro_sql_open(struct duro_object *o, const char *sql, size_t len,
		  const struct duro_sql_value *params, size_t nparams, struct duro_sql_cursor **out)
{
	struct object *obj = (struct object *)o;
	struct obj_sql *sq;
	int r = get_sql(obj, 1, &sq);
	if (r < 0)
		return r;
	struct duro_sql_cursor *cur = malloc(sizeof(*cur));
	if (!cur)
		return -ENOMEM;
	if ((r = cursor_start(sq, cur, sql, len, params, nparams)) < 0) {
		free(cur);
		return r;
	}
	cur->heap = 1;
	cur->next = sq->cursors;
	sq->cursors = cur;
	*out = cur;
	return 0;
}

int duro_sql_next(struct duro_sql_cursor *cur) { return cursor_next(cur); }
unsigned duro_sql_column_count(const struct duro_sql_cursor *cur) { return cur->st ? cur->ncols : 0; }

struct duro_str duro_sql_column_name(const struct duro_sql_cursor *cur, unsigned i)
{
	const char *n = cur->st && i < cur->ncols ? sqlite3_column_name(cur->st, (int)i) : NULL;
	return (struct duro_str){ n ? n : "", n ? strlen(n) : 0 };
}

struct duro_sql_value duro_sql_column(const struct duro_sql_cursor *cur, unsigned i)
{
	if (cur->state != 1 || i >= cur->ncols)
		return (struct duro_sql_value){ .type = DURO_SQL_NULL };
	return column_value(cur->st, (int)i);
}

int duro_sql_close(struct duro_sql_cursor *cur, struct duro_sql_result *res)
{
	struct obj_sql *sq = cur->sq;
	struct duro_sql_cursor **pp = &sq->cursors;
	while (*pp && *pp != cur)
		pp = &(*pp)->next;
	DURO_ASSERT(*pp == cur); /* open, and of this event */
	*pp = cur->next;
	int r = cursor_finish(cur, res);
	free(cur);
	return r;
}

int64_t duro_sql_database_size(struct duro_object *o)
{
	struct object *obj = (struct object *)o;
	struct obj_sql *sq;
	int r = get_sql(obj, 0, &sq);
	if (r < 0)
		return r;
	if (!sq->size && !sq->in_txn)
		return 0; /* no database: nothing to open for the answer */
	if ((r = get_sql(obj, 1, &sq)) < 0)
		return r;
	int64_t pages = 0, free_pages = 0;
	int rc = run_internal(sq, SQL_PAGE_COUNT, &pages);
	if (rc == SQLITE_OK)
		rc = run_internal(sq, SQL_FREELIST_COUNT, &free_pages);
	if (rc != SQLITE_OK)
		return fail_rc(sq, rc);
	return (pages - free_pages) * KEYS_SQL_PAGE;
}
