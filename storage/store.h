/* duro's storage on RocksDB: one database with column families (meta, alarms, one per
 * class), reads, write batches, and per-core commit logs that make batches durable.
 * Knows nothing of cores or the network: the caller does the log I/O on its own ring. */
#ifndef DURO_STORAGE_STORE_H
#define DURO_STORAGE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/uio.h>

struct store_config {
	char dir[512];              /* the data directory; RocksDB lives in <dir>/db */
	size_t block_cache_bytes;   /* shared LRU block cache */
	size_t write_buffer_bytes;  /* per column family memtable */
	size_t blob_min_bytes;      /* values at least this large go to blob files */
	uint64_t log_rotate_bytes;  /* a core's commit log is rotated past this size */
	uint64_t min_free_bytes;    /* below this much free space, writes are refused */
	int log_buffered;           /* commit logs without O_DIRECT even where it works */
	uint64_t pitr_retention_ms; /* objects' history kept this long (0: none is kept) */
	uint64_t pitr_sweep_ms;     /* how often history past it is folded away */
};

/* The defaults (durod's config table shows and documents them too).
 * 256 MiB of block cache: hot objects live in duro's own caches; this catches the warm
 * tail that those caches evicted. 64 MiB memtables: large enough that bursts of small
 * writes flush rarely. Values of 64 KiB and up go to blob files, so compaction does not
 * rewrite them. Writes stop (507) while less than min_free_bytes is free, so RocksDB
 * always has room to flush and compact: an LSM that meets ENOSPC mid-flush stops (and
 * Debian's RocksDB 7.8, built with its assertions, aborts when a failed file is written
 * again). */
#define STORE_DEFAULT_BLOCK_CACHE_BYTES (256ull << 20)
#define STORE_DEFAULT_WRITE_BUFFER_BYTES (64ull << 20)
#define STORE_DEFAULT_BLOB_MIN_BYTES (64ull << 10)
#define STORE_DEFAULT_LOG_ROTATE_BYTES (64ull << 20)
#define STORE_DEFAULT_MIN_FREE_BYTES (256ull << 20)

#define STORE_DEFAULT_PITR_RETENTION_MS (7ull * 24 * 3600 * 1000)
#define STORE_DEFAULT_PITR_SWEEP_MS 60000ull

void store_config_defaults(struct store_config *cfg, const char *data_dir);

/* Families every database has (keys.h draws their keys), then one per class. */
enum { STORE_CF_META = 0, STORE_CF_ALARMS = 1, STORE_CF_SQL = 2, STORE_CF_HISTORY = 3,
       STORE_CF_FIRST_CLASS = 4 };

struct store;

/* Opens (creating) the database with every column family it has, replays what the commit
 * logs hold beyond the database, flushes, and removes the replayed logs, oldest first.
 * Returns 0 or a negative errno after a log line naming what failed. */
int store_open(const struct store_config *cfg, struct store **out);
void store_close(struct store *st);

/* Migrations (wrangler's): each tag applied once, in order, recorded in meta. */
#define STORE_MIGRATION_MAX_CLASSES 16
#define STORE_NAME_MAX 64
struct store_rename {
	char from[STORE_NAME_MAX], to[STORE_NAME_MAX];
};
struct store_migration {
	char tag[STORE_NAME_MAX];
	char new_classes[STORE_MIGRATION_MAX_CLASSES][STORE_NAME_MAX];
	unsigned nnew;
	struct store_rename renamed[STORE_MIGRATION_MAX_CLASSES];
	unsigned nrenamed;
	char deleted[STORE_MIGRATION_MAX_CLASSES][STORE_NAME_MAX];
	unsigned ndeleted;
	/* From another script: a single box has one, so these act as renames. */
	struct store_rename transferred[STORE_MIGRATION_MAX_CLASSES];
	unsigned ntransferred;
};

/* Applies the tags of `migs` not applied yet, after checking that those applied before
 * are the first tags of the list, in order. Returns 0, or -EINVAL with a message in err
 * ("migrations[2] (tag v3): renamed_classes: no class \"Foo\"") for a refusal, or
 * -EIO. */
int store_migrate(struct store *st, const struct store_migration *migs, unsigned n, char *err,
		  size_t errlen);

/* One key and value of the meta family, written with a live migration. */
struct store_meta_put {
	const void *key, *val;
	size_t klen, vlen;
};

/* A migration tag applied while serving (a live deploy): one new class, its column family
 * made at once, the tag appended to those applied and marked live (so a config may leave
 * it out, or restate it at its place), and `extra` meta keys, all in one synced batch.
 * A crash before that batch leaves at most a family no class names, used as is by the
 * next migration that makes a class. Returns 0 with *cf and secret filled, -EEXIST with a
 * line in err (the tag was applied, or the class exists), -E2BIG (no family left) or
 * -EIO. Any thread, one call at a time. */
int store_migrate_live(struct store *st, const char *tag, const char *class_name,
		       const struct store_meta_put *extra, unsigned nextra, int *cf,
		       uint8_t secret[32], char *err, size_t errlen);

/* A class as the migrations left it: its column family and its namespace's 32-byte
 * secret. Returns 0, or -ENOENT when the class has no migration, and fills
 * *deleted_by (when not NULL) with the tag that deleted it, or "". */
int store_class(struct store *st, const char *class_name, int *cf, uint8_t secret[32],
		char deleted_by[STORE_NAME_MAX]);

/* Point-in-time recovery (history_expire.c): bytes the history family holds (RocksDB's
 * estimate), and a fold of every object's history older than the retention now (the
 * sweeper thread does it every pitr_sweep_ms; tests call it). Returns objects folded, or
 * a negative errno. */
uint64_t store_history_bytes(struct store *st);
int store_history_expire(struct store *st, uint64_t now_ms);

/* Background threads that read or write the store (RocksDB's pools, log preparation,
 * flushes, a restore's replay) may run on any online CPU: created from a reactor, pinned
 * to its CPU by the EAL, they would inherit that CPU alone and take their time from that
 * reactor. Sets attr's affinity so; best effort (should it fail, the thread inherits its
 * creator's affinity, as before). */
void store_thread_attr_any_cpu(pthread_attr_t *attr);

/* Free bytes on the data directory's file system, or a negative errno. */
int64_t store_free_bytes(const struct store *st);

/* A value read from the store; release it with store_value_release. */
struct store_value {
	const char *data;
	size_t len;
	void *handle;
};

/* Point read. Returns 1 found (out filled), 0 absent, or -EIO. */
int store_get(struct store *st, int cf, const void *key, size_t klen, struct store_value *out);
void store_value_release(struct store_value *v);

/* Ordered iteration over [lo, hi) (hi NULL: no upper bound), forward or reverse. */
struct store_iter;
struct store_iter *store_iter_open(struct store *st, int cf, const void *lo, size_t lolen,
				   const void *hi, size_t hilen, int reverse);
/* Returns 1 with key and value views valid until the next call, 0 at the end, -EIO. */
int store_iter_next(struct store_iter *it, const char **key, size_t *klen, const char **val,
		    size_t *vlen);
void store_iter_close(struct store_iter *it);

/* A consistent view of the whole database as of the call, for exports; reads through it
 * see nothing written later. Release it on the thread that took it. */
struct store_snapshot;
struct store_snapshot *store_snapshot_take(struct store *st);
void store_snapshot_release(struct store *st, struct store_snapshot *snap);
/* store_get and store_iter_open reading from a snapshot (NULL: the latest state). */
int store_get_at(struct store *st, const struct store_snapshot *snap, int cf, const void *key,
		 size_t klen, struct store_value *out);
struct store_iter *store_iter_open_at(struct store *st, const struct store_snapshot *snap, int cf,
				      const void *lo, size_t lolen, const void *hi, size_t hilen,
				      int reverse);

/* Write batches: built on a core, logged, then applied. */
struct store_batch;
struct store_batch *store_batch_new(void);
void store_batch_free(struct store_batch *b);
void store_batch_clear(struct store_batch *b);
unsigned store_batch_count(struct store_batch *b);
size_t store_batch_bytes(struct store_batch *b);
void store_batch_put(struct store *st, struct store_batch *b, int cf, const void *key, size_t klen, const void *val,
		     size_t vlen);
/* A put whose value is v1 ‖ v2, written without joining them first. */
void store_batch_put2(struct store *st, struct store_batch *b, int cf, const void *key, size_t klen,
		      const void *v1, size_t v1len, const void *v2, size_t v2len);
void store_batch_delete(struct store *st, struct store_batch *b, int cf, const void *key, size_t klen);
/* Deletes every key in [lo, hi). */
void store_batch_delete_range(struct store *st, struct store_batch *b, int cf, const void *lo, size_t lolen,
			      const void *hi, size_t hilen);

/* Writes a batch through RocksDB's own WAL with a sync: durable on return. For writes
 * made outside the cores' commit logs (imports). Returns 0 or -EIO. */
int store_write_durable(struct store *st, struct store_batch *b);
/* Replaces a class's namespace secret (an import adopting the exporting box's IDs).
 * Returns 0, -ENOENT (no such class) or -EIO. */
int store_class_set_secret(struct store *st, const char *class_name, const uint8_t secret[32]);

/* Applies a batch that its commit log already made durable: RocksDB's own WAL is off, the
 * commit logs are the write-ahead log. Returns 0 or -EIO (the caller retries later). */
int store_apply(struct store *st, struct store_batch *b);

/* A core's commit log: records of [magic, length, crc32c, padding, batch bytes], appended
 * and made durable by the caller on its own io_uring. One per core. */
struct store_log;
int store_log_open(struct store *st, unsigned core, struct store_log **out);
void store_log_close(struct store_log *lg);
/* Direct I/O record alignment of the current log file: 0 when records are buffered
 * writes followed by fdatasync. */
unsigned store_log_direct_align(const struct store_log *lg);
/* One record on its way to disk; owned by the caller until store_log_done, reusable
 * after it. Its aligned copy (direct I/O) is kept for the next record:
 * store_log_record_release frees it. */
struct store_log_record {
	uint32_t header[4];
	uint64_t offset, len, gen;
	void *direct_buf;
	size_t direct_cap;
};
void store_log_record_release(struct store_log_record *rec);
/* How the caller makes one record durable: write iov[0..niov) at offset to fd, with
 * RWF_DSYNC when dsync is set (the write alone is durable: O_DIRECT), else followed by an
 * fdatasync of fd. The iovecs point into rec and the batch. */
struct store_log_io {
	int fd;
	uint64_t offset;
	struct iovec iov[2];
	unsigned niov;
	int dsync;
};
/* Frames batch b as the next record (after those still in flight) and says how to write
 * it. The batch and rec must not change until store_log_done. Returns 0, or -ENOMEM when
 * the aligned copy cannot be made (nothing prepared: try again later). */
int store_log_prepare(struct store_log *lg, struct store_batch *b, struct store_log_record *rec,
		      struct store_log_io *io);
/* Reports a record's write and sync results (bytes or negative errno), oldest record
 * first. Returns 0 when the record is durable; otherwise a negative errno, after cutting
 * the log back to before the record so it can never be replayed, and moving on to a fresh
 * log. A failure also voids every record prepared after it: their done returns -ECANCELED
 * whatever their results, and they stay unreachable behind the cut. */
int store_log_done(struct store_log *lg, struct store_log_record *rec, long write_res, long sync_res);
/* A full log is left for the next one (prepared in the background) when no record is in
 * flight, and a log is always left after a failed record. Call this when every record made
 * durable so far has been applied to RocksDB: the logs left behind are then flushed into
 * RocksDB and deleted by a background thread, oldest first. */
void store_log_retire(struct store_log *lg);
/* For a core that stops with batches durable in its log but not applied to RocksDB (an
 * apply failed): store_close then keeps every log, for the next start to replay. */
void store_log_keep_all(struct store_log *lg);
/* Fault injection for tests (DURO_FAULT_SYNC_EVERY): the sync of every `every`-th record
 * is reported as EIO although the bytes were written, as a failing disk would. 0: off. */
void store_log_inject_sync_failures(struct store_log *lg, unsigned every);

struct store_counters {
	uint64_t log_records, log_bytes, log_failures, log_rotations, applies, apply_failures;
	uint64_t replayed_records;
};
const struct store_counters *store_log_counters(const struct store_log *lg);

#endif
