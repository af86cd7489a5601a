/* The SQL API of duro.h against a reference SQLite in memory, seeded: random events of
 * random statements (DDL, inserts that collide on keys, updates that break a UNIQUE
 * constraint, deletes, joins, aggregates, indexes, blobs large enough for overflow pages
 * and cache spills, several statements in one call, nested duro_txn savepoints,
 * delete_all, key-value writes beside) on a few objects of a real runtime, and the same
 * on one in-memory SQLite per object in this test. Every call must answer the same rows
 * and fail the same way; events commit or fail at random, and what sync() reports durable
 * must be what RocksDB holds: the object's pages read back from the sql family and opened
 * as a database here give the reference's contents. Runs: plain, with every 5th commit
 * sync failing (objects reset to their durable state), a restart, and a run with a tiny
 * page cache and evictions.
 *
 * The event layer's calls (event.h) run an event of an object without an HTTP request. */
#include "check.h"
#include "rt.h"
#include "event.h"
#include "keys.h"
#include "object-t.h"
#include "sql.h"
#include "sqlpage.h"
#include "store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NOBJ 3
#define NTABLES 3
#define MAX_DEPTH 4

static int bad;
static int trace;

#define TRACE(...)                                                                     \
	do {                                                                           \
		if (trace)                                                             \
			fprintf(stderr, __VA_ARGS__);                                  \
	} while (0)

#define EXPECT(cond, ...)                                                              \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "  %s:%d: %s: ", __FILE__, __LINE__, #cond);   \
			fprintf(stderr, __VA_ARGS__);                                  \
			fprintf(stderr, "\n");                                         \
			check_failed_in_test = 1;                                      \
			bad++;                                                         \
		}                                                                      \
	} while (0)

/* ---- text buffers ---- */

struct tbuf {
	char *p;
	size_t len, cap;
};

static void buf_add(struct tbuf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void buf_fmt(struct tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_fmt(struct tbuf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	buf_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void buf_value(struct tbuf *b, const struct duro_sql_value *v)
{
	switch (v->type) {
	case DURO_SQL_NULL:
		buf_add(b, "N", 1);
		break;
	case DURO_SQL_INTEGER:
		buf_fmt(b, "I%lld", (long long)v->u.i);
		break;
	case DURO_SQL_REAL:
		buf_fmt(b, "R%.17g", v->u.d);
		break;
	case DURO_SQL_TEXT:
		buf_fmt(b, "T%zu:", v->u.s.len);
		buf_add(b, v->u.s.ptr, v->u.s.len);
		break;
	case DURO_SQL_BLOB: {
		uint32_t h = 2166136261u; /* blobs by length and hash: some are kilobytes */
		for (size_t i = 0; i < v->u.s.len; i++)
			h = (h ^ (uint8_t)v->u.s.ptr[i]) * 16777619u;
		buf_fmt(b, "B%zu:%08x", v->u.s.len, h);
		break;
	}
	}
	buf_add(b, "|", 1);
}

/* ---- the reference ---- */

static struct duro_sql_value ref_value(sqlite3_stmt *st, int i)
{
	struct duro_sql_value v = { .type = DURO_SQL_NULL };
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		v = DURO_SQL_INT(sqlite3_column_int64(st, i));
		break;
	case SQLITE_FLOAT:
		v = DURO_SQL_REALV(sqlite3_column_double(st, i));
		break;
	case SQLITE_TEXT:
		v = DURO_SQL_TEXTN((const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
		break;
	case SQLITE_BLOB:
		v = DURO_SQL_BLOBN(sqlite3_column_blob(st, i), (size_t)sqlite3_column_bytes(st, i));
		break;
	}
	return v;
}

/* Runs sql (params bound to the last statement) on the reference, atomically as duro
 * does: the rows of the last statement into out. Returns 0 or -1 (failed, undone). */
static char ref_err[256];

static int ref_exec(sqlite3 *db, const char *sql, const struct duro_sql_value *params, size_t n,
		    struct tbuf *out)
{
	ref_err[0] = 0;
	sqlite3_exec(db, "SAVEPOINT ref_ex", NULL, NULL, NULL);
	const char *p = sql;
	int failed = 0;
	while (*p && !failed) {
		sqlite3_stmt *st = NULL;
		const char *tail = NULL;
		if (sqlite3_prepare_v2(db, p, -1, &st, &tail) != SQLITE_OK) {
			snprintf(ref_err, sizeof(ref_err), "%s", sqlite3_errmsg(db));
			failed = 1;
			break;
		}
		if (!st)
			break;
		const char *rest = tail;
		while (*rest == ' ' || *rest == ';' || *rest == '\n')
			rest++;
		int last = *rest == 0;
		if (last)
			for (size_t i = 0; i < n; i++) {
				const struct duro_sql_value *v = &params[i];
				int k = (int)i + 1;
				if (v->type == DURO_SQL_INTEGER)
					sqlite3_bind_int64(st, k, v->u.i);
				else if (v->type == DURO_SQL_TEXT)
					sqlite3_bind_text(st, k, v->u.s.ptr, (int)v->u.s.len, SQLITE_STATIC);
				else if (v->type == DURO_SQL_BLOB)
					sqlite3_bind_blob(st, k, v->u.s.ptr, (int)v->u.s.len, SQLITE_STATIC);
				else if (v->type == DURO_SQL_REAL)
					sqlite3_bind_double(st, k, v->u.d);
				else
					sqlite3_bind_null(st, k);
			}
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (!last)
				continue;
			int nc = sqlite3_column_count(st);
			for (int i = 0; i < nc; i++) {
				struct duro_sql_value v = ref_value(st, i);
				buf_value(out, &v);
			}
			buf_add(out, "\n", 1);
		}
		if (rc != SQLITE_DONE) {
			snprintf(ref_err, sizeof(ref_err), "%s", sqlite3_errmsg(db));
			failed = 1;
		}
		sqlite3_finalize(st);
		p = rest;
	}
	if (failed)
		sqlite3_exec(db, "ROLLBACK TO ref_ex", NULL, NULL, NULL);
	sqlite3_exec(db, "RELEASE ref_ex", NULL, NULL, NULL);
	return failed ? -1 : 0;
}

/* The whole database as text: schema, then every table's rows in key order. */
static void dump_ref(sqlite3 *db, struct tbuf *out)
{
	out->len = 0;
	buf_add(out, "", 0);
	struct tbuf tables = { 0 };
	ref_exec(db, "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name", NULL, 0, out);
	ref_exec(db, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 't%' ORDER BY name",
		 NULL, 0, &tables);
	for (char *line = tables.p; line && *line;) {
		char *nl = strchr(line, '\n');
		char name[16];
		/* "T2:t0|" */
		snprintf(name, sizeof(name), "%.*s", 2, strchr(line, ':') + 1);
		char q[64];
		snprintf(q, sizeof(q), "SELECT * FROM %s ORDER BY id", name);
		buf_fmt(out, "== %s\n", name);
		ref_exec(db, q, NULL, 0, out);
		line = nl ? nl + 1 : NULL;
	}
	free(tables.p);
}

static sqlite3 *ref_open(void)
{
	sqlite3 *db;
	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		abort();
	sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
	return db;
}

static unsigned char *ref_snapshot(sqlite3 *db, sqlite3_int64 *size)
{
	return sqlite3_serialize(db, "main", size, 0);
}

static void ref_restore(sqlite3 *db, const unsigned char *img, sqlite3_int64 size)
{
	unsigned char *copy = sqlite3_malloc64(size ? (sqlite3_uint64)size : 1);
	if (!copy)
		abort();
	memcpy(copy, img, (size_t)size);
	if (sqlite3_deserialize(db, "main", copy, size, size,
				SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) != SQLITE_OK)
		abort();
}

/* ---- per object ---- */

struct image {
	unsigned char *p;
	sqlite3_int64 size;
};

struct hist {
	uint64_t event;
	struct image img;
};

struct object_model {
	struct duro_id id;
	sqlite3 *ref;          /* what reads see now */
	struct image durable;  /* what the last successful sync() reported */
	struct hist *hist;
	size_t nhist, caphist;
};

static struct object_model objs[NOBJ];
static unsigned ns_index;

static void image_free(struct image *im)
{
	sqlite3_free(im->p);
	im->p = NULL;
	im->size = 0;
}

static struct image image_of(sqlite3 *db)
{
	struct image im;
	im.p = ref_snapshot(db, &im.size);
	return im;
}

/* The durable state as a database of its own, for dumps. */
static void dump_image(const struct image *im, struct tbuf *out)
{
	sqlite3 *db = ref_open();
	if (im->size)
		ref_restore(db, im->p, im->size);
	dump_ref(db, out);
	sqlite3_close(db);
}

struct counters {
	uint64_t events, failed_events, statements, statement_errors, multi, savepoints;
	uint64_t delete_alls, evictions, sync_ok, sync_failed, storage_checks, rows;
};

static struct {
	uint64_t rs;
	unsigned target;
	int verify_at_start, verified, ids_ready, settling;
	uint64_t next_event;
	unsigned pending;
	struct counters ctr;
	uint64_t closes_for_memory, caches_released; /* the core's, at the run's end */
} run;

static uint64_t rnd(uint64_t n) { return check_below(&run.rs, n); }

/* ---- duro's side ---- */

static int row_to_buf(void *arg, unsigned ncols, const struct duro_str *names,
		      const struct duro_sql_value *values)
{
	(void)names;
	struct tbuf *b = arg;
	for (unsigned i = 0; i < ncols; i++)
		buf_value(b, &values[i]);
	buf_add(b, "\n", 1);
	return 0;
}

static void dump_duro(struct duro_object *o, struct tbuf *out)
{
	out->len = 0;
	buf_add(out, "", 0);
	struct tbuf tables = { 0 };
	static const char q1[] = "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name";
	static const char q2[] = "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 't%' ORDER BY name";
	EXPECT(duro_sql_exec(o, q1, strlen(q1), NULL, 0, row_to_buf, out, NULL) == 0, "dump: %s",
	       duro_sql_error(o));
	EXPECT(duro_sql_exec(o, q2, strlen(q2), NULL, 0, row_to_buf, &tables, NULL) == 0, "dump: %s",
	       duro_sql_error(o));
	for (char *line = tables.p; line && *line;) {
		char *nl = strchr(line, '\n');
		char q[64];
		int n = snprintf(q, sizeof(q), "SELECT * FROM %.2s ORDER BY id", strchr(line, ':') + 1);
		buf_fmt(out, "== %.2s\n", strchr(line, ':') + 1);
		EXPECT(duro_sql_exec(o, q, (size_t)n, NULL, 0, row_to_buf, out, NULL) == 0, "dump: %s",
		       duro_sql_error(o));
		line = nl ? nl + 1 : NULL;
	}
	free(tables.p);
}

/* The object's database as RocksDB holds it: its size record and its pages, opened as a
 * database of its own here, dumped. Returns 0 or a negative errno. */
static int dump_storage(const struct duro_id *id, struct tbuf *out)
{
	struct store *st = obj_runtime_store();
	char key[KEYS_ID_BYTES + KEYS_SQL_SIZE_LEN];
	size_t kl = keys_data(key, id->bytes, KEYS_SQL_SIZE, KEYS_SQL_SIZE_LEN);
	struct store_value v;
	uint64_t size = 0;
	int r = store_get(st, obj_namespace_cf(ns_index), key, kl, &v);
	if (r < 0)
		return r;
	if (r == 1) {
		if (v.len == sizeof(size))
			memcpy(&size, v.data, sizeof(size));
		store_value_release(&v);
	}
	unsigned char *img = sqlite3_malloc64(size ? size : 1);
	if (!img)
		return -ENOMEM;
	memset(img, 0, size);
	char lo[KEYS_SQL_PAGE_KEY_LEN];
	uint8_t hi[KEYS_ID_BYTES];
	keys_sql_page(lo, id->bytes, 0);
	keys_id_successor(id->bytes, hi);
	struct store_iter *it = store_iter_open(st, STORE_CF_SQL, lo, sizeof(lo), hi, sizeof(hi), 0);
	const char *k, *val;
	size_t klen, vl;
	int stray = 0;
	while ((r = store_iter_next(it, &k, &klen, &val, &vl)) == 1) {
		uint32_t pgno = keys_sql_page_number(k);
		if (!pgno || (uint64_t)pgno * KEYS_SQL_PAGE > size) {
			stray++; /* a page past the size: a truncation or wipe left it */
			continue;
		}
		if (sqlpage_decode(val, vl, img + (size_t)(pgno - 1) * KEYS_SQL_PAGE) < 0)
			r = -EBADMSG;
	}
	store_iter_close(it);
	if (stray)
		fprintf(stderr, "  %d pages past the database's size in RocksDB\n", stray);
	sqlite3 *db = ref_open();
	if (size && sqlite3_deserialize(db, "main", img, (sqlite3_int64)size, (sqlite3_int64)size,
					SQLITE_DESERIALIZE_FREEONCLOSE) != SQLITE_OK)
		r = -EBADMSG;
	else if (!size)
		sqlite3_free(img);
	dump_ref(db, out);
	sqlite3_close(db);
	return r < 0 ? r : stray ? -EBADMSG : 0;
}

/* ---- history of outcomes ---- */

static void hist_push(struct object_model *m, uint64_t event)
{
	if (m->nhist == m->caphist) {
		m->caphist = m->caphist ? m->caphist * 2 : 16;
		m->hist = realloc(m->hist, m->caphist * sizeof(*m->hist));
		if (!m->hist)
			abort();
	}
	m->hist[m->nhist].event = event;
	m->hist[m->nhist].img = image_of(m->ref);
	m->nhist++;
}

static void hist_drop_through(struct object_model *m, uint64_t event)
{
	size_t o = 0;
	for (size_t i = 0; i < m->nhist; i++) {
		if (m->hist[i].event > event)
			m->hist[o++] = m->hist[i];
		else
			image_free(&m->hist[i].img);
	}
	m->nhist = o;
}

static struct object_model *model_of(struct duro_object *o)
{
	for (int i = 0; i < NOBJ; i++)
		if (!memcmp(objs[i].id.bytes, duro_object_id(o)->bytes, DURO_ID_BYTES))
			return &objs[i];
	return NULL;
}

static void on_synced(struct duro_object *o, int status, void *arg)
{
	uint64_t event = (uint64_t)(uintptr_t)arg;
	struct object_model *m = model_of(o);
	EXPECT(m, "a sync outcome for an unknown object");
	if (!m)
		return;
	run.pending--;
	struct hist *h = NULL;
	for (size_t i = 0; i < m->nhist; i++)
		if (m->hist[i].event == event)
			h = &m->hist[i];
	EXPECT(h, "event %llu: outcome heard twice, or for no event", (unsigned long long)event);
	if (!h)
		return;
	TRACE("outcome of event %llu: %d\n", (unsigned long long)event, status);
	if (status == 0) {
		run.ctr.sync_ok++;
		image_free(&m->durable);
		m->durable = h->img;
		h->img.p = NULL;
		/* The gate: durable means RocksDB holds this state (or a later event's, applied
		 * in the same turn). Checked for some events: it opens a database each time. */
		if (event % 4 == 0) { /* not rnd(): outcomes come in an order timing decides */
			struct tbuf db = { 0 }, want = { 0 };
			int r = dump_storage(&m->id, &db);
			int seen = 0;
			for (size_t i = 0; r == 0 && i < m->nhist && !seen; i++) {
				if (m->hist[i].event < event)
					continue;
				struct image *im = m->hist[i].event == event ? &m->durable : &m->hist[i].img;
				dump_image(im, &want);
				seen = !strcmp(db.p, want.p);
			}
			run.ctr.storage_checks++;
			EXPECT(seen, "event %llu: sync() said durable, RocksDB holds another database (%d):\n%s",
			       (unsigned long long)event, r, db.p);
			free(db.p);
			free(want.p);
		}
		hist_drop_through(m, event);
	} else {
		run.ctr.sync_failed++;
		EXPECT(status == -EIO, "event %llu: sync status %d", (unsigned long long)event, status);
		/* Lost with everything the object wrote after it: reset to what is durable. */
		sqlite3_close(m->ref);
		m->ref = ref_open();
		if (m->durable.size)
			ref_restore(m->ref, m->durable.p, m->durable.size);
		hist_drop_through(m, event);
	}
}

/* ---- random SQL ---- */

static const char *const table_def =
	"(id INTEGER PRIMARY KEY, a INTEGER UNIQUE, b TEXT, c BLOB)";

static uint8_t blob_bytes[12000];

static struct duro_sql_value rand_value(int kind)
{
	switch (kind) {
	case 0:
		return DURO_SQL_INT((int64_t)rnd(40));
	case 1: {
		static char texts[8][24];
		static unsigned k;
		char *t = texts[k++ % 8];
		int n = snprintf(t, sizeof(texts[0]), "s%llu", (unsigned long long)rnd(30));
		return DURO_SQL_TEXTN(t, (size_t)n);
	}
	default: {
		size_t len = rnd(10) == 0 ? 2000 + rnd(9000) : rnd(40);
		size_t off = rnd(sizeof(blob_bytes) - len);
		return DURO_SQL_BLOBN((const char *)blob_bytes + off, len);
	}
	}
}

/* One statement (or several) on object x, in duro and in the reference. */
static void one_statement(struct duro_object *o, struct object_model *m)
{
	char sql[512];
	struct duro_sql_value p[4];
	size_t np = 0;
	int t = (int)rnd(NTABLES), u = (int)rnd(NTABLES);
	unsigned op = (unsigned)rnd(100);
	if (op < 12) {
		snprintf(sql, sizeof(sql), "CREATE TABLE IF NOT EXISTS t%d %s", t, table_def);
	} else if (op < 13) {
		snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS t%d", t);
	} else if (op < 10) {
		snprintf(sql, sizeof(sql), rnd(2) ? "CREATE INDEX IF NOT EXISTS i%d ON t%d(b)"
						   : "DROP INDEX IF EXISTS i%d", t, t);
	} else if (op < 36) {
		snprintf(sql, sizeof(sql), "INSERT %sINTO t%d(id, a, b, c) VALUES (?, ?, ?, ?)",
			 rnd(4) == 0 ? "OR REPLACE " : "", t);
		p[np++] = DURO_SQL_INT((int64_t)rnd(60));
		p[np++] = rnd(8) ? rand_value(0) : (struct duro_sql_value){ .type = DURO_SQL_NULL };
		p[np++] = rand_value(1);
		p[np++] = rand_value(2);
	} else if (op < 46) {
		snprintf(sql, sizeof(sql), "UPDATE t%d SET a = a + ?, b = ? WHERE id %% 3 = ?", t);
		p[np++] = DURO_SQL_INT((int64_t)rnd(3));
		p[np++] = rand_value(1);
		p[np++] = DURO_SQL_INT((int64_t)rnd(3));
	} else if (op < 52) {
		snprintf(sql, sizeof(sql), "UPDATE t%d SET c = ? WHERE id = ?", t);
		p[np++] = rand_value(2);
		p[np++] = DURO_SQL_INT((int64_t)rnd(60));
	} else if (op < 60) {
		snprintf(sql, sizeof(sql), "DELETE FROM t%d WHERE a < ?", t);
		p[np++] = DURO_SQL_INT((int64_t)rnd(20));
	} else if (op < 70) {
		snprintf(sql, sizeof(sql), "SELECT x.id, x.a, y.b, length(y.c) FROM t%d x JOIN t%d y ON x.a = y.a "
			 "ORDER BY x.id, y.id", t, u);
	} else if (op < 78) {
		snprintf(sql, sizeof(sql), "SELECT count(*), sum(a), min(b), max(length(c)), total(id) FROM t%d WHERE b >= ?", t);
		p[np++] = rand_value(1);
	} else if (op < 84) {
		snprintf(sql, sizeof(sql), "SELECT id, a, b, c FROM t%d WHERE id BETWEEN ? AND ? ORDER BY id DESC", t);
		p[np++] = DURO_SQL_INT((int64_t)rnd(30));
		p[np++] = DURO_SQL_INT((int64_t)rnd(60));
	} else {
		/* Several statements in one call: all or nothing, the rows of the last. */
		run.ctr.multi++;
		snprintf(sql, sizeof(sql),
			 "INSERT INTO t%d(id, a, b) VALUES (%d, %d, 'm%d'); UPDATE t%d SET a = a + 1 WHERE id = %d; "
			 "INSERT INTO t%d(id, a) VALUES (%d, %d); SELECT id, a, b FROM t%d ORDER BY id",
			 t, (int)rnd(60), (int)rnd(40), (int)rnd(9), t, (int)rnd(60), u, (int)rnd(60),
			 (int)rnd(40), t);
	}
	struct tbuf got = { 0 }, want = { 0 };
	buf_add(&got, "", 0);
	buf_add(&want, "", 0);
	struct duro_sql_result res;
	int r = duro_sql_exec(o, sql, strlen(sql), np ? p : NULL, np, row_to_buf, &got, &res);
	int wr = ref_exec(m->ref, sql, p, np, &want);
	run.ctr.statements++;
	run.ctr.statement_errors += r < 0;
	TRACE("  %s -> %d %s\n", sql, r, r < 0 ? duro_sql_error(o) : "");
	EXPECT((r == 0) == (wr == 0), "%s: duro %d (%s), reference %s", sql, r, duro_sql_error(o),
	       wr ? ref_err : "ok");
	if (r == 0 && wr == 0) {
		EXPECT(!strcmp(got.p, want.p), "%s: rows differ:\nduro:\n%sreference:\n%s", sql, got.p, want.p);
		run.ctr.rows += res.rows_returned;
	} else if (r < 0) {
		EXPECT(r == -EINVAL, "%s: %d, want -EINVAL (%s)", sql, r, duro_sql_error(o));
		EXPECT(duro_sql_error(o)[0] != 0, "%s: no message", sql);
	}
	free(got.p);
	free(want.p);
}

static struct object *activate(struct core *c, int x)
{
	int err = 0;
	struct object *obj = event_activate(c, ns_index, &objs[x].id, &err);
	EXPECT(obj, "activating object %d: %d", x, err);
	return obj;
}

static void one_event(struct core *c, int x)
{
	struct object_model *m = &objs[x];
	struct object *obj = activate(c, x);
	if (!obj)
		return;
	struct duro_object *o = (struct duro_object *)obj;
	int depth = 0;
	event_begin(c, obj);
	sqlite3_exec(m->ref, "BEGIN", NULL, NULL, NULL);
	for (uint64_t i = 1 + rnd(8); i > 0 && !bad; i--) {
		unsigned op = (unsigned)rnd(100);
		if (op < 80) {
			one_statement(o, m);
		} else if (op < 86 && depth < MAX_DEPTH) {
			TRACE("  txn_begin\n");
			EXPECT(duro_txn_begin(o) == 0, "txn_begin");
			sqlite3_exec(m->ref, "SAVEPOINT ref_sp", NULL, NULL, NULL);
			depth++;
			run.ctr.savepoints++;
		} else if (op < 91 && depth) {
			TRACE("  txn_commit\n");
			EXPECT(duro_txn_commit(o) == 0, "txn_commit");
			sqlite3_exec(m->ref, "RELEASE ref_sp", NULL, NULL, NULL);
			depth--;
		} else if (op < 96 && depth) {
			TRACE("  txn_rollback\n");
			EXPECT(duro_txn_rollback(o) == 0, "txn_rollback");
			sqlite3_exec(m->ref, "ROLLBACK TO ref_sp; RELEASE ref_sp", NULL, NULL, NULL);
			depth--;
		} else if (op < 98) {
			/* key-value writes in the same event: they commit or fail with the SQL */
			char v[16];
			int n = snprintf(v, sizeof(v), "%llu", (unsigned long long)rnd(1000));
			EXPECT(duro_put(o, "kv", 2, v, (size_t)n) == 0, "put");
		} else {
			run.ctr.delete_alls++;
			TRACE("  delete_all at depth %d\n", depth);
			EXPECT(duro_delete_all(o) == 0, "delete_all: %s", duro_sql_error(o));
			/* The reference: every table goes. */
			struct tbuf names = { 0 };
			ref_exec(m->ref, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 't%'",
				 NULL, 0, &names);
			for (char *line = names.p; line && *line;) {
				char *nl = strchr(line, '\n');
				char q[48];
				snprintf(q, sizeof(q), "DROP TABLE %.2s", strchr(line, ':') + 1);
				sqlite3_exec(m->ref, q, NULL, NULL, NULL);
				line = nl ? nl + 1 : NULL;
			}
			free(names.p);
		}
	}
	int ok = rnd(6) != 0;
	uint64_t event = ++run.next_event;
	EXPECT(duro_sync(o, on_synced, (void *)(uintptr_t)event) == 0, "sync");
	int wrote = event_end(c, obj, ok);
	EXPECT(wrote >= 0, "event end: %d", wrote);
	sqlite3_exec(m->ref, ok ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
	TRACE("event %llu on object %d: %s, wrote %d\n", (unsigned long long)event, x, ok ? "ok" : "failed", wrote);
	if (trace) { /* the first event after which duro and the reference differ */
		struct tbuf a = { 0 }, b = { 0 };
		event_begin(c, obj);
		dump_duro(o, &a);
		event_end(c, obj, 1);
		dump_ref(m->ref, &b);
		EXPECT(!strcmp(a.p, b.p), "after event %llu: duro has\n%sreference\n%s", (unsigned long long)event, a.p, b.p);
		free(a.p);
		free(b.p);
	}
	run.ctr.events++;
	run.ctr.failed_events += !ok;
	hist_push(m, event);
	run.pending++;
}

/* duro's database of object x against `want` (a dump), in an event of its own. */
static void verify_object(struct core *c, int x, const char *want, const char *what)
{
	struct object *obj = activate(c, x);
	if (!obj)
		return;
	struct tbuf got = { 0 };
	event_begin(c, obj);
	dump_duro((struct duro_object *)obj, &got);
	event_end(c, obj, 1);
	EXPECT(!strcmp(got.p, want), "object %d %s: duro has\n%swant\n%s", x, what, got.p, want);
	free(got.p);
}

static void ids(void)
{
	const struct duro_namespace *ns = duro_namespace("SqlOracle");
	CHECK(ns != NULL);
	ns_index = ns->index;
	for (int x = 0; x < NOBJ; x++) {
		char name[8];
		int n = snprintf(name, sizeof(name), "q%d", x);
		CHECK_EQ(duro_id_from_name(ns, name, (size_t)n, &objs[x].id), 0);
	}
	run.ids_ready = 1;
}

static enum rt_step step(struct core *c, void *arg)
{
	(void)arg;
	if (!run.ids_ready)
		ids();
	if (run.verify_at_start && !run.verified) {
		run.verified = 1;
		for (int x = 0; x < NOBJ; x++) {
			struct tbuf want = { 0 };
			dump_image(&objs[x].durable, &want);
			verify_object(c, x, want.p, "after a restart");
			free(want.p);
		}
		return RT_BUSY;
	}
	if (bad)
		return RT_DONE;
	if (run.settling) {
		if (!obj_idle(c))
			return RT_IDLE;
		run.settling = 0;
		int x = (int)rnd(NOBJ);
		int r = obj_evict(c, ns_index, &objs[x].id);
		EXPECT(r == 1 || r == 0, "evict when settled: %d", r);
		run.ctr.evictions += r == 1;
		return RT_BUSY;
	}
	if (run.ctr.events < run.target) {
		unsigned n = (unsigned)rnd(4);
		for (unsigned i = 0; i < n && run.ctr.events < run.target; i++)
			one_event(c, (int)rnd(NOBJ));
		if (rnd(10) == 0) {
			int x = (int)rnd(NOBJ);
			int r = obj_evict(c, ns_index, &objs[x].id);
			EXPECT(r == 1 || r == 0 || r == -EBUSY, "evict: %d", r);
			run.ctr.evictions += r == 1;
		}
		run.settling = rnd(30) == 0;
		return n ? RT_BUSY : RT_IDLE;
	}
	if (run.pending || !obj_idle(c))
		return RT_IDLE;
	for (int x = 0; x < NOBJ; x++) {
		struct tbuf want = { 0 }, cur = { 0 }, db = { 0 };
		dump_image(&objs[x].durable, &want);
		dump_ref(objs[x].ref, &cur);
		EXPECT(!strcmp(want.p, cur.p), "object %d: the reference's reads differ from its durable state", x);
		int r = dump_storage(&objs[x].id, &db);
		EXPECT(r == 0 && !strcmp(db.p, want.p), "object %d: RocksDB holds (%d)\n%swant\n%s", x, r, db.p, want.p);
		verify_object(c, x, want.p, "at the end");
		free(want.p);
		free(cur.p);
		free(db.p);
	}
	const struct sql_core *sc = sql_core_stats(c);
	run.closes_for_memory = sc->closes_for_memory;
	run.caches_released = sc->caches_released;
	return RT_DONE;
}

static int sql_oracle_request(struct duro_object *o, const struct duro_request *req,
			      struct duro_response *res)
{
	(void)o;
	(void)req;
	(void)res;
	return 0;
}

static const struct duro_class sql_oracle_class = { .name = "SqlOracle", .on_request = sql_oracle_request };

static struct rt rt;

static void start_run(unsigned target, int verify)
{
	memset(&run.ctr, 0, sizeof(run.ctr));
	run.target = target;
	run.verify_at_start = verify;
	run.verified = 0;
	run.ids_ready = 0;
	run.settling = 0;
	run.pending = 0;
	CHECK_EQ(rt_run(&rt, step, NULL), 0);
	CHECK_EQ(run.pending, 0);
	printf("# %llu events (%llu failed), %llu statements (%llu failed, %llu multi), %llu rows, "
	       "%llu savepoints, %llu delete_alls, %llu evictions, syncs %llu ok %llu failed, %llu storage checks\n",
	       (unsigned long long)run.ctr.events, (unsigned long long)run.ctr.failed_events,
	       (unsigned long long)run.ctr.statements, (unsigned long long)run.ctr.statement_errors,
	       (unsigned long long)run.ctr.multi, (unsigned long long)run.ctr.rows,
	       (unsigned long long)run.ctr.savepoints, (unsigned long long)run.ctr.delete_alls,
	       (unsigned long long)run.ctr.evictions, (unsigned long long)run.ctr.sync_ok,
	       (unsigned long long)run.ctr.sync_failed, (unsigned long long)run.ctr.storage_checks);
}

static void test_differential_plain(void)
{
	start_run(600, 0);
	CHECK(run.ctr.statement_errors > 0 && run.ctr.failed_events > 0 && run.ctr.evictions > 0);
	CHECK(run.ctr.sync_ok > 0 && run.ctr.sync_failed == 0 && run.ctr.storage_checks > 0);
}

static void test_differential_failed_syncs(void)
{
	setenv("DURO_FAULT_SYNC_EVERY", "5", 1);
	start_run(400, 1);
	unsetenv("DURO_FAULT_SYNC_EVERY");
	CHECK(run.ctr.sync_failed > 0 && run.ctr.sync_ok > 0);
}

static void test_differential_restart(void)
{
	start_run(150, 1);
	CHECK(run.ctr.sync_ok > 0);
}

static void test_differential_tiny_cache(void)
{
	/* A page cache of 64 KiB for all connections: spills inside transactions, connections
	 * closed for memory between events. */
	rt.cfg.sql.cache_bytes_per_core = 64u << 10;
	rt.cfg.sql.connection_bytes_per_core = 64u << 10;
	start_run(300, 1);
	rt.cfg.sql.cache_bytes_per_core = 64u << 20;
	rt.cfg.sql.connection_bytes_per_core = 256u << 20;
	CHECK(run.closes_for_memory > 0);
}

static void test_differential_tiny_cache_open_connections(void)
{
	/* The budgets apart: page caches over theirs are given back, and no connection closes
	 * for it while the connection budget has room (a reopen costs far more than a page). */
	rt.cfg.sql.cache_bytes_per_core = 64u << 10;
	start_run(300, 1);
	rt.cfg.sql.cache_bytes_per_core = 64u << 20;
	CHECK(run.caches_released > 0);
	CHECK_EQ(run.closes_for_memory, 0);
}

int main(void)
{
	run.rs = check_seed("test_obj_sql");
	trace = getenv("DURO_TEST_TRACE") != NULL;
	for (size_t i = 0; i < sizeof(blob_bytes); i++)
		blob_bytes[i] = (uint8_t)(check_rand(&run.rs) >> 56);
	for (int x = 0; x < NOBJ; x++)
		objs[x].ref = ref_open();
	duro_register_class(&sql_oracle_class);
	static const char *const classes[] = { "SqlOracle" };
	rt_init(&rt, 1, classes, 1);
	RUN(test_differential_plain);
	RUN(test_differential_failed_syncs);
	RUN(test_differential_restart);
	RUN(test_differential_tiny_cache);
	RUN(test_differential_tiny_cache_open_connections);
	for (int x = 0; x < NOBJ; x++) {
		for (size_t i = 0; i < objs[x].nhist; i++)
			image_free(&objs[x].hist[i].img);
		free(objs[x].hist);
		image_free(&objs[x].durable);
		sqlite3_close(objs[x].ref);
	}
	rt_cleanup(&rt);
	return CHECK_DONE();
}
