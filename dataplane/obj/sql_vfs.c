/* The file SQLite sees for an object's database, and the "duro" VFS that serves it. The
 * file is pages of KEYS_SQL_PAGE bytes: those the running event wrote, those committed in
 * a batch RocksDB has not applied yet, then RocksDB's sql family (keys.h) beneath. SQLite
 * runs with an exclusive lock and its journal in memory, so the only writes to the file
 * are the pages of a commit (or of a cache spill inside one); they stay in memory until
 * the event ends, then go into the core's commit batch with the event's other writes. The
 * file therefore never holds a half transaction, and a crash replays whole batches.
 *
 *   SQLite --xRead--> event's page? --> committed, unapplied? --> RocksDB (or zeros)
 *   SQLite --xWrite-> event's page (copy-on-write over the committed one, kept for undo)
 *
 * Every other file SQLite may open (a sorter's spill, a temporary table) is a buffer in
 * memory. Page 1's change counter and its version-valid-for number are stored as zeros,
 * equal, so SQLite still trusts the size in the header, and a commit that changed
 * nothing else of page 1 need not write it again (mvsqlite does the same). */
#include "sql_int.h"
#include "base_assert.h"
#include "clock.h"
#include "history.h"
#include "commit.h"
#include "core.h"
#include "log.h"
#include "object-t.h"
#include "sqlpage.h"
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

const char sql_vfs_id[] = "duro";

static struct sql_core *score(const struct obj_sql *sq) { return sq->obj->core->obj->sql; }
static struct store *store_of(const struct obj_sql *sq) { return sq->obj->core->obj->rt->store; }
static uint64_t pages_of(uint64_t bytes) { return (bytes + KEYS_SQL_PAGE - 1) / KEYS_SQL_PAGE; }

/* ---- the page map ---- */

static struct sql_page **slot(struct obj_sql *sq, uint32_t pgno)
{
	struct sql_page **pp = &sq->buckets[(pgno * 2654435761u) & (sq->nbuckets - 1)];
	while (*pp && (*pp)->pgno != pgno)
		pp = &(*pp)->hnext;
	return pp;
}

static struct sql_page *find(struct obj_sql *sq, uint32_t pgno)
{
	return sq->nbuckets ? *slot(sq, pgno) : NULL;
}

static int grow(struct obj_sql *sq)
{
	uint32_t n = sq->nbuckets ? sq->nbuckets * 2 : 16;
	struct sql_page **nb = calloc(n, sizeof(*nb));
	if (!nb)
		return -ENOMEM;
	for (uint32_t i = 0; i < sq->nbuckets; i++)
		for (struct sql_page *p = sq->buckets[i], *next; p; p = next) {
			next = p->hnext;
			struct sql_page **b = &nb[(p->pgno * 2654435761u) & (n - 1)];
			p->hnext = *b;
			*b = p;
		}
	free(sq->buckets);
	sq->buckets = nb;
	sq->nbuckets = n;
	return 0;
}

/* A few freed pages are kept per core for the next ones written: each commit writes
 * pages and frees them once RocksDB holds them, and malloc's bins handled those 4 KiB
 * blocks slowly (consolidation, unlinking: a tenth of a core's time over 10,000 databases). */
static struct sql_page *page_alloc(struct obj_sql *sq)
{
	struct sql_core *sc = score(sq);
	struct sql_page *p = sc->free_pages;
	if (!p)
		return malloc(sizeof(*p));
	sc->free_pages = p->hnext;
	sc->nfree_pages--;
	return p;
}

static void page_free(struct obj_sql *sq, struct sql_page *p)
{
	struct sql_core *sc = score(sq);
	sc->mem -= sizeof(*p);
	if (sc->nfree_pages >= SQL_PAGE_POOL) {
		free(p);
		return;
	}
	p->hnext = sc->free_pages;
	sc->free_pages = p;
	sc->nfree_pages++;
}

void sql_pages_pool_free(struct sql_core *sc)
{
	while (sc->free_pages) {
		struct sql_page *p = sc->free_pages;
		sc->free_pages = p->hnext;
		free(p);
	}
	sc->nfree_pages = 0;
}

/* Unlinks p from the map (it must be there). */
static void unlink_page(struct obj_sql *sq, struct sql_page *p)
{
	struct sql_page **pp = slot(sq, p->pgno);
	DURO_ASSERT(*pp == p);
	*pp = p->hnext;
	sq->count--;
}

/* Puts p in the map in place of `old` (NULL: none). */
static void link_page(struct obj_sql *sq, struct sql_page *p, struct sql_page *old)
{
	struct sql_page **pp = slot(sq, p->pgno);
	DURO_ASSERT(*pp == old);
	if (old) {
		p->hnext = old->hnext;
		old->hnext = NULL;
	} else {
		p->hnext = NULL;
		sq->count++;
	}
	*pp = p;
}

size_t sql_pages_bytes(const struct obj_sql *sq) { return sq->count * sizeof(struct sql_page); }

/* ---- reading and writing pages ---- */

/* The committed page (RocksDB's, unless the map holds a newer one) into out. */
static int read_committed(struct obj_sql *sq, const struct sql_page *p, uint32_t pgno,
			  uint8_t out[KEYS_SQL_PAGE])
{
	struct core *c = sq->obj->core;
	if (p) {
		memcpy(out, p->data, KEYS_SQL_PAGE);
		return 0;
	}
	if (pgno == 1 && sq->page1 && sq->page1_valid) {
		memcpy(out, sq->page1, KEYS_SQL_PAGE);
		return 0;
	}
	/* wiped_seq first: on the opener thread it is 0 and the core's state is not read. */
	if ((uint64_t)pgno > pages_of(sq->committed_size) ||
	    (sq->wiped_seq && sq->wiped_seq > commit_applied_seq(c))) {
		memset(out, 0, KEYS_SQL_PAGE);
		return 0;
	}
	char key[KEYS_SQL_PAGE_KEY_LEN];
	keys_sql_page(key, sq->obj->id.bytes, pgno);
	struct store_value v;
	int r = store_get(store_of(sq), STORE_CF_SQL, key, sizeof(key), &v);
	if (r < 0)
		return r;
	if (r == 0) {
		memset(out, 0, KEYS_SQL_PAGE); /* never written (SQLite's lock-byte page) */
	} else {
		r = sqlpage_decode(v.data, v.len, out);
		store_value_release(&v);
		if (r < 0) {
			log_error("sql: an object of class %s: page %" PRIu32 " is damaged in storage",
				  sq->obj->cls->name, pgno);
			return -EIO;
		}
	}
	if (pgno == 1 && (sq->page1 || (sq->page1 = malloc(KEYS_SQL_PAGE)))) {
		memcpy(sq->page1, out, KEYS_SQL_PAGE);
		sq->page1_valid = 1;
	}
	return 0;
}

int sql_page_read(struct obj_sql *sq, uint32_t pgno, uint8_t out[KEYS_SQL_PAGE])
{
	struct sql_page *p = find(sq, pgno);
	if (p && p->seq == SQL_TXN_SEQ) {
		memcpy(out, p->data, KEYS_SQL_PAGE);
		return 0;
	}
	if (sq->wiped) {
		memset(out, 0, KEYS_SQL_PAGE); /* the event wiped the database: nothing beneath */
		return 0;
	}
	return read_committed(sq, p, pgno, out);
}

/* The running event's copy of page pgno, made on first write; `fill` copies the current
 * contents in (a partial write), else the caller overwrites it whole. NULL: no memory,
 * or past the allowance (sq->over_cap). */
static struct sql_page *page_for_write(struct obj_sql *sq, uint32_t pgno, int fill)
{
	struct sql_page *old = find(sq, pgno);
	if (old && old->seq == SQL_TXN_SEQ)
		return old;
	const struct obj_sql_config *cfg = &sq->obj->core->obj->rt->cfg->sql;
	if (sq->txn_bytes + KEYS_SQL_PAGE > cfg->max_event_write_bytes) {
		sq->over_cap = 1;
		return NULL;
	}
	if (sq->count >= sq->nbuckets && grow(sq) < 0)
		return NULL;
	struct sql_page *p = page_alloc(sq);
	if (!p)
		return NULL;
	p->pgno = pgno;
	p->seq = SQL_TXN_SEQ;
	if (fill && sql_page_read(sq, pgno, p->data) < 0) {
		score(sq)->mem += sizeof(*p); /* page_free takes it off */
		page_free(sq, p);
		return NULL;
	}
	/* A wipe hides the committed page: it is not brought back by this event's undo
	 * (the rollback of a wipe resets the connection and every page anyway). */
	p->undo = old;
	link_page(sq, p, old);
	p->tnext = sq->txn;
	sq->txn = p;
	sq->txn_bytes += KEYS_SQL_PAGE;
	score(sq)->mem += sizeof(*p);
	return p;
}

int sql_page_write(struct obj_sql *sq, uint32_t pgno, const uint8_t data[KEYS_SQL_PAGE])
{
	struct sql_page *p = page_for_write(sq, pgno, 0);
	if (!p)
		return sq->over_cap ? -EFBIG : -ENOMEM;
	memcpy(p->data, data, KEYS_SQL_PAGE);
	if ((uint64_t)pgno * KEYS_SQL_PAGE > sq->size)
		sq->size = (uint64_t)pgno * KEYS_SQL_PAGE;
	return 0;
}

/* Drops the event's pages past `pages`, bringing back what they replaced (a truncation
 * within the event: past the size, nothing reads them). */
static void txn_truncate(struct obj_sql *sq, uint64_t pages)
{
	struct sql_page **pp = &sq->txn;
	while (*pp) {
		struct sql_page *p = *pp;
		if (p->pgno <= pages) {
			pp = &p->tnext;
			continue;
		}
		*pp = p->tnext;
		unlink_page(sq, p);
		if (p->undo)
			link_page(sq, p->undo, NULL);
		sq->txn_bytes -= KEYS_SQL_PAGE;
		page_free(sq, p);
	}
}

/* Page 1 as stored: the change counter and version-valid-for zeroed (both equal, so the
 * header's page count stays trusted). */
static void page1_normalize(uint8_t *d)
{
	memset(d + 24, 0, 4);
	memset(d + 92, 0, 4);
}

void sql_pages_commit(struct core *c, struct obj_sql *sq, struct store_batch *b, uint64_t seq,
		      struct hist_rec *hist)
{
	struct store *st = store_of(sq);
	const uint8_t *id = sq->obj->id.bytes;
	uint64_t pages = pages_of(sq->size);
	char lo[KEYS_SQL_PAGE_KEY_LEN];
	uint8_t hi[KEYS_ID_BYTES];
	keys_id_successor(id, hi);
	/* What the file lost (a wipe, a truncation) goes first: a later put of the same page
	 * in this batch wins over the range deletion. */
	uint64_t keep = sq->wiped ? 0 : pages_of(sq->min_size);
	if (hist) {
		/* The history record: the size, what was cut, then the pages written below. */
		if (sq->wiped)
			hist_rec_flags(hist, HIST_WIPE_SQL);
		uint64_t had = pages_of(sq->committed_size);
		hist_rec_sql(hist, sq->size, (uint32_t)(keep < had ? keep : had));
	}
	if (sq->wiped || keep < pages_of(sq->committed_size)) {
		keys_sql_page(lo, id, (uint32_t)(keep + 1));
		store_batch_delete_range(st, b, STORE_CF_SQL, lo, sizeof(lo), hi, sizeof(hi));
		if (sq->wiped)
			sq->wiped_seq = seq;
		/* Committed pages past what is kept are stale now: drop them. */
		for (uint32_t i = 0; i < sq->nbuckets; i++) {
			struct sql_page **pp = &sq->buckets[i];
			while (*pp) {
				struct sql_page *p = *pp;
				if (p->seq == SQL_TXN_SEQ || p->pgno <= keep) {
					pp = &p->hnext;
					continue;
				}
				*pp = p->hnext;
				sq->count--;
				page_free(sq, p);
			}
		}
		if (keep == 0)
			sq->page1_valid = 0;
	}
	uint8_t enc[SQLPAGE_MAX_VALUE];
	for (struct sql_page *p = sq->txn, *next; p; p = next) {
		next = p->tnext;
		p->tnext = NULL;
		if ((uint64_t)p->pgno > pages) {
			unlink_page(sq, p); /* written, then cut off within the event */
			if (p->undo)
				page_free(sq, p->undo);
			page_free(sq, p);
			continue;
		}
		if (p->pgno == 1)
			page1_normalize(p->data);
		/* What RocksDB holds of this page now, if known: a page past the cut is gone. */
		const uint8_t *before = p->undo ? p->undo->data
					: p->pgno == 1 && sq->page1 && sq->page1_valid && !sq->wiped ? sq->page1
					: NULL;
		if (p->pgno > keep && (sq->wiped || keep < pages_of(sq->committed_size)))
			before = NULL;
		int same = before && !memcmp(before, p->data, KEYS_SQL_PAGE);
		if (p->undo) {
			page_free(sq, p->undo);
			p->undo = NULL;
		}
		p->seq = seq;
		if (p->pgno == 1 && (sq->page1 || (sq->page1 = malloc(KEYS_SQL_PAGE)))) {
			memcpy(sq->page1, p->data, KEYS_SQL_PAGE);
			sq->page1_valid = 1;
		}
		if (same)
			continue; /* unchanged (page 1 after a commit that changed only its counter) */
		keys_sql_page(lo, id, p->pgno);
		size_t n = sqlpage_encode(p->data, enc);
		store_batch_put(st, b, STORE_CF_SQL, lo, sizeof(lo), enc, n);
		if (hist)
			hist_rec_page(hist, p->pgno, enc, n);
	}
	if (sq->txn && !sq->oldest_seq)
		sq->oldest_seq = seq;
	sq->txn = NULL;
	sq->txn_bytes = 0;
	(void)c;
}

void sql_pages_rollback(struct core *c, struct obj_sql *sq)
{
	(void)c;
	for (struct sql_page *p = sq->txn, *next; p; p = next) {
		next = p->tnext;
		unlink_page(sq, p);
		if (p->undo)
			link_page(sq, p->undo, NULL);
		page_free(sq, p);
	}
	sq->txn = NULL;
	sq->txn_bytes = 0;
}

void sql_pages_sweep(struct core *c, struct obj_sql *sq)
{
	uint64_t applied = commit_applied_seq(c);
	if (!sq->oldest_seq || sq->oldest_seq > applied)
		return;
	uint64_t oldest = 0;
	for (uint32_t i = 0; i < sq->nbuckets; i++) {
		struct sql_page **pp = &sq->buckets[i];
		while (*pp) {
			struct sql_page *p = *pp;
			if (p->seq != SQL_TXN_SEQ && p->seq <= applied && sq->wiped_seq <= applied) {
				*pp = p->hnext;
				sq->count--;
				page_free(sq, p);
				continue;
			}
			if (p->seq != SQL_TXN_SEQ && (!oldest || p->seq < oldest))
				oldest = p->seq;
			pp = &p->hnext;
		}
	}
	sq->oldest_seq = oldest;
}

void sql_pages_free(struct core *c, struct obj_sql *sq)
{
	sql_pages_rollback(c, sq);
	for (uint32_t i = 0; i < sq->nbuckets; i++)
		for (struct sql_page *p = sq->buckets[i], *next; p; p = next) {
			next = p->hnext;
			page_free(sq, p);
		}
	free(sq->buckets);
	sq->buckets = NULL;
	sq->nbuckets = sq->count = 0;
	sq->oldest_seq = 0;
	free(sq->page1);
	sq->page1 = NULL;
	sq->page1_valid = 0;
}

/* ---- the VFS ---- */

/* Any file but the main database: a buffer in memory. */
struct mem_file {
	uint8_t *buf;
	size_t len, cap;
};

/* The most one memory file may hold (a sort's spill, a temporary index): past it SQLite
 * gets SQLITE_FULL, so a query cannot take the core's memory through its temporary files.
 * Set by each core at start (sql.max_event_write_bytes, the same value), read by all. */
static _Atomic size_t mem_file_limit = (size_t)256 << 20;

/* Set when a memory file refused a write, for the message of the failed call: SQLite opens
 * temporary files without saying for which connection, so this is the core thread's own. */
_Thread_local int sql_vfs_temp_full;

void sql_vfs_set_temp_limit(size_t bytes)
{
	atomic_store_explicit(&mem_file_limit, bytes, memory_order_relaxed);
}

struct vfs_file {
	sqlite3_file base; /* first */
	struct obj_sql *sq; /* the main database; NULL for a memory file */
	struct mem_file mem;
};

static int main_close(sqlite3_file *f)
{
	(void)f;
	return SQLITE_OK; /* the pages belong to the object, not the connection */
}

static int main_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
	struct obj_sql *sq = ((struct vfs_file *)f)->sq;
	uint8_t *out = buf;
	uint8_t page[KEYS_SQL_PAGE];
	uint64_t pos = (uint64_t)off, end = pos + (uint64_t)amt;
	uint64_t have = end <= sq->size ? end : (pos < sq->size ? sq->size : pos);
	while (pos < have) {
		uint32_t pgno = (uint32_t)(pos / KEYS_SQL_PAGE + 1);
		size_t in = (size_t)(pos % KEYS_SQL_PAGE), n = KEYS_SQL_PAGE - in;
		if (n > have - pos)
			n = (size_t)(have - pos);
		if (in == 0 && n == KEYS_SQL_PAGE) {
			if (sql_page_read(sq, pgno, out) < 0)
				return SQLITE_IOERR_READ;
		} else {
			if (sql_page_read(sq, pgno, page) < 0)
				return SQLITE_IOERR_READ;
			memcpy(out, page + in, n);
		}
		out += n;
		pos += n;
	}
	if (have < end) {
		memset(out, 0, (size_t)(end - have));
		return SQLITE_IOERR_SHORT_READ;
	}
	return SQLITE_OK;
}

static int main_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
	struct obj_sql *sq = ((struct vfs_file *)f)->sq;
	const uint8_t *in = buf;
	uint64_t pos = (uint64_t)off, end = pos + (uint64_t)amt;
	while (pos < end) {
		uint32_t pgno = (uint32_t)(pos / KEYS_SQL_PAGE + 1);
		size_t at = (size_t)(pos % KEYS_SQL_PAGE), n = KEYS_SQL_PAGE - at;
		if (n > end - pos)
			n = (size_t)(end - pos);
		struct sql_page *p = page_for_write(sq, pgno, n != KEYS_SQL_PAGE);
		if (!p)
			return sq->over_cap ? SQLITE_FULL : SQLITE_IOERR_NOMEM;
		memcpy(p->data + at, in, n);
		in += n;
		pos += n;
	}
	if (end > sq->size)
		sq->size = end;
	return SQLITE_OK;
}

static int main_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct obj_sql *sq = ((struct vfs_file *)f)->sq;
	if ((uint64_t)size >= sq->size)
		return SQLITE_OK;
	sq->size = (uint64_t)size;
	if (sq->size < sq->min_size)
		sq->min_size = sq->size;
	txn_truncate(sq, pages_of(sq->size));
	return SQLITE_OK;
}

static int main_file_size(sqlite3_file *f, sqlite3_int64 *out)
{
	*out = (sqlite3_int64)((struct vfs_file *)f)->sq->size;
	return SQLITE_OK;
}

static int mem_close(sqlite3_file *f)
{
	free(((struct vfs_file *)f)->mem.buf);
	return SQLITE_OK;
}

static int mem_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
	struct mem_file *m = &((struct vfs_file *)f)->mem;
	size_t have = (size_t)off < m->len ? m->len - (size_t)off : 0;
	size_t n = (size_t)amt < have ? (size_t)amt : have;
	if (n)
		memcpy(buf, m->buf + off, n);
	if (n < (size_t)amt) {
		memset((char *)buf + n, 0, (size_t)amt - n);
		return SQLITE_IOERR_SHORT_READ;
	}
	return SQLITE_OK;
}

static int mem_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
	struct mem_file *m = &((struct vfs_file *)f)->mem;
	size_t end = (size_t)off + (size_t)amt;
	if (end > atomic_load_explicit(&mem_file_limit, memory_order_relaxed)) {
		sql_vfs_temp_full = 1;
		return SQLITE_FULL;
	}
	if (end > m->cap) {
		size_t cap = m->cap ? m->cap : 65536;
		while (cap < end)
			cap *= 2;
		uint8_t *nb = realloc(m->buf, cap);
		if (!nb)
			return SQLITE_IOERR_NOMEM;
		memset(nb + m->cap, 0, cap - m->cap);
		m->buf = nb;
		m->cap = cap;
	}
	memcpy(m->buf + off, buf, (size_t)amt);
	if (end > m->len)
		m->len = end;
	return SQLITE_OK;
}

static int mem_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct mem_file *m = &((struct vfs_file *)f)->mem;
	if ((size_t)size < m->len) {
		memset(m->buf + size, 0, m->len - (size_t)size);
		m->len = (size_t)size;
	}
	return SQLITE_OK;
}

static int mem_file_size(sqlite3_file *f, sqlite3_int64 *out)
{
	*out = (sqlite3_int64)((struct vfs_file *)f)->mem.len;
	return SQLITE_OK;
}

/* Nothing to sync (the commit log makes the event's pages durable), nothing to lock (one
 * connection per object, on its core, in exclusive locking mode). */
static int ok_sync(sqlite3_file *f, int flags)
{
	(void)f;
	(void)flags;
	return SQLITE_OK;
}

static int ok_lock(sqlite3_file *f, int level)
{
	(void)f;
	(void)level;
	return SQLITE_OK;
}

static int no_reserved(sqlite3_file *f, int *out)
{
	(void)f;
	*out = 0;
	return SQLITE_OK;
}

static int no_fcntl(sqlite3_file *f, int op, void *arg)
{
	(void)f;
	(void)op;
	(void)arg;
	return SQLITE_NOTFOUND;
}

static int sector_size(sqlite3_file *f)
{
	(void)f;
	return KEYS_SQL_PAGE;
}

static int device_caps(sqlite3_file *f)
{
	(void)f;
	return SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

static const sqlite3_io_methods main_methods = {
	.iVersion = 1, .xClose = main_close, .xRead = main_read, .xWrite = main_write,
	.xTruncate = main_truncate, .xSync = ok_sync, .xFileSize = main_file_size,
	.xLock = ok_lock, .xUnlock = ok_lock, .xCheckReservedLock = no_reserved,
	.xFileControl = no_fcntl, .xSectorSize = sector_size, .xDeviceCharacteristics = device_caps,
};

static const sqlite3_io_methods mem_methods = {
	.iVersion = 1, .xClose = mem_close, .xRead = mem_read, .xWrite = mem_write,
	.xTruncate = mem_truncate, .xSync = ok_sync, .xFileSize = mem_file_size,
	.xLock = ok_lock, .xUnlock = ok_lock, .xCheckReservedLock = no_reserved,
	.xFileControl = no_fcntl, .xSectorSize = sector_size, .xDeviceCharacteristics = device_caps,
};

#define NAME_PREFIX "/duro/"

void sql_vfs_name(const struct obj_sql *sq, char *out, size_t cap)
{
	snprintf(out, cap, NAME_PREFIX "%" PRIxPTR, (uintptr_t)sq);
}

static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
	(void)vfs;
	struct vfs_file *f = (struct vfs_file *)file;
	memset(f, 0, sizeof(*f));
	if (flags & SQLITE_OPEN_MAIN_DB) {
		/* strtoull rather than sscanf: this runs at every open of a connection. */
		char *end = NULL;
		uintptr_t p = 0;
		if (name && !strncmp(name, NAME_PREFIX, sizeof(NAME_PREFIX) - 1))
			p = (uintptr_t)strtoull(name + sizeof(NAME_PREFIX) - 1, &end, 16);
		if (!p || !end || *end)
			return SQLITE_CANTOPEN;
		f->sq = (struct obj_sql *)p;
		f->base.pMethods = &main_methods;
	} else {
		f->base.pMethods = &mem_methods;
	}
	if (out_flags)
		*out_flags = flags;
	return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *vfs, const char *name, int sync)
{
	(void)vfs;
	(void)name;
	(void)sync;
	return SQLITE_OK;
}

static int vfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	(void)name;
	(void)flags;
	*out = 0; /* no journal or WAL file ever exists */
	return SQLITE_OK;
}

static int vfs_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	snprintf(out, (size_t)n, "%s", name);
	return SQLITE_OK;
}

static int vfs_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	memset(out, 0, (size_t)n);
	ssize_t got = getrandom(out, (size_t)n, GRND_NONBLOCK);
	(void)got; /* names of memory files only: zeros do */
	return n;
}

static int vfs_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return us; /* nothing ever waits on a lock here */
}

static int vfs_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	/* Julian day in ms: the Unix epoch is day 2440587.5. */
	*out = (sqlite3_int64)clock_wall_ms() + 210866760000000ll;
	return SQLITE_OK;
}

static int vfs_current_time(sqlite3_vfs *vfs, double *out)
{
	sqlite3_int64 ms;
	vfs_current_time64(vfs, &ms);
	*out = (double)ms / 86400000.0;
	return SQLITE_OK;
}

static int vfs_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	if (n > 0)
		out[0] = 0;
	return 0;
}

static sqlite3_vfs vfs = {
	.iVersion = 2, .szOsFile = sizeof(struct vfs_file), .mxPathname = 64, .zName = sql_vfs_id,
	.xOpen = vfs_open, .xDelete = vfs_delete, .xAccess = vfs_access,
	.xFullPathname = vfs_full_pathname, .xRandomness = vfs_randomness, .xSleep = vfs_sleep,
	.xCurrentTime = vfs_current_time, .xGetLastError = vfs_last_error,
	.xCurrentTimeInt64 = vfs_current_time64,
};

int sql_vfs_register(void)
{
	return sqlite3_vfs_register(&vfs, 0) == SQLITE_OK ? 0 : -EIO;
}
