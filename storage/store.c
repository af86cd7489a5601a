/* RocksDB behind duro's storage interface: options, column families, reads and batches.
 * The options below are chosen for many small objects with small keys and values, read
 * mostly through per-object caches above, written in per-core group commits. */
#include "store.h"
#include "store_int.h"
#include "base_assert.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <rocksdb/c.h>

void store_config_defaults(struct store_config *cfg, const char *data_dir)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->dir, sizeof(cfg->dir), "%s", data_dir);
	cfg->block_cache_bytes = STORE_DEFAULT_BLOCK_CACHE_BYTES;
	cfg->write_buffer_bytes = STORE_DEFAULT_WRITE_BUFFER_BYTES;
	cfg->blob_min_bytes = STORE_DEFAULT_BLOB_MIN_BYTES;
	cfg->log_rotate_bytes = STORE_DEFAULT_LOG_ROTATE_BYTES;
	cfg->min_free_bytes = STORE_DEFAULT_MIN_FREE_BYTES;
	cfg->pitr_retention_ms = STORE_DEFAULT_PITR_RETENTION_MS;
	cfg->pitr_sweep_ms = STORE_DEFAULT_PITR_SWEEP_MS;
}

static void any_cpu_set(cpu_set_t *set)
{
	CPU_ZERO(set);
	for (long i = 0, n = sysconf(_SC_NPROCESSORS_ONLN); i < n && i < CPU_SETSIZE; i++)
		CPU_SET((int)i, set);
}

void store_thread_attr_any_cpu(pthread_attr_t *attr)
{
	cpu_set_t all;
	any_cpu_set(&all);
	if (pthread_attr_setaffinity_np(attr, sizeof(all), &all) != 0)
		log_warn("storage: a background thread keeps its creator's CPU affinity");
}

int64_t store_free_bytes(const struct store *st)
{
	struct statvfs sv;
	if (statvfs(st->cfg.dir, &sv) < 0)
		return -errno;
	return (int64_t)((uint64_t)sv.f_bavail * sv.f_frsize);
}

static rocksdb_options_t *cf_options(struct store *st)
{
	rocksdb_options_t *o = rocksdb_options_create();
	rocksdb_options_set_write_buffer_size(o, st->cfg.write_buffer_bytes);
	rocksdb_options_set_max_write_buffer_number(o, 4);
	/* LZ4 where data is hot, ZSTD at the bottom where most bytes rest: cheap to write,
	 * compact at rest. */
	rocksdb_options_set_compression(o, rocksdb_lz4_compression);
	rocksdb_options_set_bottommost_compression(o, rocksdb_zstd_compression);
	rocksdb_options_set_enable_blob_files(o, 1);
	rocksdb_options_set_min_blob_size(o, st->cfg.blob_min_bytes);
	rocksdb_options_set_blob_compression_type(o, rocksdb_lz4_compression);
	rocksdb_options_set_enable_blob_gc(o, 1);
	rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_cache(t, st->cache);
	/* Full bloom filters, 10 bits per key (~1% false positives): most reads of a fresh
	 * object are for keys that do not exist yet. */
	rocksdb_block_based_options_set_filter_policy(t, rocksdb_filterpolicy_create_bloom_full(10));
	rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
	rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(t, 1);
	rocksdb_options_set_block_based_table_factory(o, t);
	rocksdb_block_based_options_destroy(t);
	return o;
}

static int mkdir_one(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		log_error("storage: mkdir %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

static int store_open_db(struct store *st);

int store_open(const struct store_config *cfg, struct store **out)
{
	struct store *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->cfg = *cfg;
	store_dropper_init(st);
	snprintf(st->db_dir, sizeof(st->db_dir), "%s/db", cfg->dir);
	snprintf(st->log_dir, sizeof(st->log_dir), "%s/commit-log", cfg->dir);
	int r;
	if ((r = mkdir_one(cfg->dir)) < 0 || (r = mkdir_one(st->log_dir)) < 0) {
		store_dropper_fini(st);
		free(st);
		return r;
	}
	/* RocksDB starts its thread pools while the database opens, from this thread, which
	 * the EAL pinned to core 0's CPU: widen this thread's affinity meanwhile, so that the
	 * pools inherit every CPU, not core 0's. */
	cpu_set_t pinned, all;
	int widened = pthread_getaffinity_np(pthread_self(), sizeof(pinned), &pinned) == 0;
	any_cpu_set(&all);
	widened = widened && pthread_setaffinity_np(pthread_self(), sizeof(all), &all) == 0;
	r = store_open_db(st);
	if (widened)
		pthread_setaffinity_np(pthread_self(), sizeof(pinned), &pinned);
	if (r < 0)
		return r;
	if ((r = store_sweeper_start(st)) < 0) {
		store_close(st);
		return r;
	}
	*out = st;
	return 0;
}

/* The rest of store_open: RocksDB, its families, the replay of the commit logs. */
static int store_open_db(struct store *st)
{
	const struct store_config *cfg = &st->cfg;
	int r;
	st->cache = rocksdb_cache_create_lru(cfg->block_cache_bytes);
	st->db_opts = cf_options(st);
	rocksdb_options_set_create_if_missing(st->db_opts, 1);
	rocksdb_options_set_create_missing_column_families(st->db_opts, 1);
	rocksdb_options_set_max_background_jobs(st->db_opts, 2);
	/* No atomic_flush: a commit log is deleted only after every family has been flushed,
	 * so families may flush independently. Replaying the logs left after a crash over
	 * families that already hold part of them gives the same state: logs are deleted
	 * oldest first (commit_log.c), so those left are each core's newest. (Debian's
	 * RocksDB 7.8 also asserts when manual and automatic atomic flushes meet.) */
	rocksdb_options_set_avoid_unnecessary_blocking_io(st->db_opts, 1);

	/* Open with every family on disk (RocksDB insists), the fixed ones first (those a
	 * database made before them lacks are created). */
	const char *names[STORE_MAX_CF + 1];
	const rocksdb_options_t *opts[STORE_MAX_CF + 1];
	snprintf(st->cf_names[STORE_CF_META], sizeof(st->cf_names[0]), "meta");
	snprintf(st->cf_names[STORE_CF_ALARMS], sizeof(st->cf_names[0]), "alarms");
	snprintf(st->cf_names[STORE_CF_SQL], sizeof(st->cf_names[0]), "sql");
	snprintf(st->cf_names[STORE_CF_HISTORY], sizeof(st->cf_names[0]), "history");
	st->ncf = STORE_CF_FIRST_CLASS;
	size_t nexisting = 0;
	char *err = NULL;
	char **existing = rocksdb_list_column_families(st->db_opts, st->db_dir, &nexisting, &err);
	free(err);
	err = NULL;
	for (size_t i = 0; existing && i < nexisting; i++) {
		int fixed = !strcmp(existing[i], "default");
		for (unsigned f = 0; f < STORE_CF_FIRST_CLASS; f++)
			fixed |= !strcmp(existing[i], st->cf_names[f]);
		if (fixed)
			continue;
		if (st->ncf == STORE_MAX_CF) {
			log_error("storage: %s has more than %d column families", st->db_dir, STORE_MAX_CF);
			rocksdb_list_column_families_destroy(existing, nexisting);
			store_close(st);
			return -E2BIG;
		}
		snprintf(st->cf_names[st->ncf++], sizeof(st->cf_names[0]), "%s", existing[i]);
	}
	if (existing)
		rocksdb_list_column_families_destroy(existing, nexisting);
	for (unsigned i = 0; i < st->ncf; i++)
		names[i] = st->cf_names[i];
	names[st->ncf] = "default";
	for (unsigned i = 0; i <= st->ncf; i++)
		opts[i] = st->db_opts;
	rocksdb_column_family_handle_t *handles[STORE_MAX_CF + 1];
	st->db = rocksdb_open_column_families(st->db_opts, st->db_dir, (int)st->ncf + 1, names, opts,
					      handles, &err);
	if (!st->db) {
		log_error("storage: open %s: %s", st->db_dir, err ? err : "unknown error");
		free(err);
		store_close(st);
		return -EIO;
	}
	for (unsigned i = 0; i < st->ncf; i++)
		st->cf[i] = handles[i];
	st->cf_default = handles[st->ncf];
	st->ropts = rocksdb_readoptions_create();
	st->wopts_nowal = rocksdb_writeoptions_create();
	rocksdb_writeoptions_disable_WAL(st->wopts_nowal, 1);
	st->wopts_sync = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(st->wopts_sync, 1);
	r = store_replay_logs(st);
	if (r < 0) {
		store_close(st);
		return r;
	}
	return 0;
}

int store_flush_all(struct store *st)
{
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	rocksdb_flushoptions_set_wait(fo, 1);
	int r = 0;
	for (unsigned i = 0; i < st->ncf && r == 0; i++) {
		if (!st->cf[i])
			continue; /* dropped by a migration */
		char *err = NULL;
		rocksdb_flush_cf(st->db, fo, st->cf[i], &err);
		if (err) {
			log_error("storage: flush %s: %s", st->cf_names[i], err);
			free(err);
			r = -EIO;
		}
	}
	rocksdb_flushoptions_destroy(fo);
	return r;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	store_sweeper_stop(st);
	if (st->db) {
		/* Memtables hold what only the commit logs have made durable: flush them so the
		 * next start replays nothing. A failure here is harmless: the logs stay. So do
		 * they when a core stopped with durable batches it could not apply. */
		store_dropper_stop(st);
		if (st->keep_logs)
			log_error("storage: commit logs kept: they hold batches not applied to RocksDB, replayed at the next start");
		else if (store_flush_all(st) == 0)
			store_remove_all_logs(st);
		for (unsigned i = 0; i < st->ncf; i++)
			if (st->cf[i])
				rocksdb_column_family_handle_destroy(st->cf[i]);
		rocksdb_column_family_handle_destroy(st->cf_default);
		rocksdb_close(st->db);
	}
	if (st->ropts)
		rocksdb_readoptions_destroy(st->ropts);
	if (st->wopts_nowal)
		rocksdb_writeoptions_destroy(st->wopts_nowal);
	if (st->wopts_sync)
		rocksdb_writeoptions_destroy(st->wopts_sync);
	if (st->db_opts)
		rocksdb_options_destroy(st->db_opts);
	if (st->cache)
		rocksdb_cache_destroy(st->cache);
	store_dropper_fini(st);
	free(st);
}

int store_cf_by_name(const struct store *st, const char *cf_name)
{
	for (unsigned i = 0; i < st->ncf; i++)
		if (st->cf[i] && !strcmp(st->cf_names[i], cf_name))
			return (int)i;
	return -ENOENT;
}

struct store_snapshot *store_snapshot_take(struct store *st)
{
	return (struct store_snapshot *)rocksdb_create_snapshot(st->db);
}

void store_snapshot_release(struct store *st, struct store_snapshot *snap)
{
	rocksdb_release_snapshot(st->db, (const rocksdb_snapshot_t *)snap);
}

int store_get(struct store *st, int cf, const void *key, size_t klen, struct store_value *out)
{
	return store_get_at(st, NULL, cf, key, klen, out);
}

int store_get_at(struct store *st, const struct store_snapshot *snap, int cf, const void *key,
		 size_t klen, struct store_value *out)
{
	DURO_ASSERT(cf >= 0 && (unsigned)cf < st->ncf);
	char *err = NULL;
	rocksdb_readoptions_t *ro = st->ropts;
	if (snap) {
		ro = rocksdb_readoptions_create();
		rocksdb_readoptions_set_snapshot(ro, (const rocksdb_snapshot_t *)snap);
	}
	rocksdb_pinnableslice_t *ps = rocksdb_get_pinned_cf(st->db, ro, st->cf[cf], key, klen, &err);
	if (snap)
		rocksdb_readoptions_destroy(ro);
	if (err) {
		log_error("storage: get: %s", err);
		free(err);
		return -EIO;
	}
	if (!ps)
		return 0;
	out->data = rocksdb_pinnableslice_value(ps, &out->len);
	out->handle = ps;
	return 1;
}

void store_value_release(struct store_value *v)
{
	if (v->handle)
		rocksdb_pinnableslice_destroy(v->handle);
	v->handle = NULL;
}

struct store_iter {
	rocksdb_iterator_t *it;
	rocksdb_readoptions_t *ro;
	int reverse, started;
	char *lo, *hi;
	size_t lolen, hilen;
};

struct store_iter *store_iter_open(struct store *st, int cf, const void *lo, size_t lolen,
				   const void *hi, size_t hilen, int reverse)
{
	return store_iter_open_at(st, NULL, cf, lo, lolen, hi, hilen, reverse);
}

struct store_iter *store_iter_open_at(struct store *st, const struct store_snapshot *snap, int cf,
				      const void *lo, size_t lolen, const void *hi, size_t hilen,
				      int reverse)
{
	struct store_iter *it = calloc(1, sizeof(*it) + lolen + hilen);
	if (!it)
		return NULL;
	it->lo = (char *)(it + 1);
	it->hi = it->lo + lolen;
	memcpy(it->lo, lo, lolen);
	if (hi)
		memcpy(it->hi, hi, hilen);
	it->lolen = lolen;
	it->hilen = hi ? hilen : 0;
	it->reverse = reverse;
	it->ro = rocksdb_readoptions_create();
	if (snap)
		rocksdb_readoptions_set_snapshot(it->ro, (const rocksdb_snapshot_t *)snap);
	/* Bounds let RocksDB skip files and tombstones outside the object's key range. */
	rocksdb_readoptions_set_iterate_lower_bound(it->ro, it->lo, lolen);
	if (hi)
		rocksdb_readoptions_set_iterate_upper_bound(it->ro, it->hi, hilen);
	it->it = rocksdb_create_iterator_cf(st->db, it->ro, st->cf[cf]);
	return it;
}

int store_iter_next(struct store_iter *it, const char **key, size_t *klen, const char **val,
		    size_t *vlen)
{
	if (!it->started) {
		it->started = 1;
		/* The read options carry both bounds, so these land inside [lo, hi). (SeekForPrev
		 * to the upper bound itself is undefined in RocksDB.) */
		if (it->reverse)
			rocksdb_iter_seek_to_last(it->it);
		else
			rocksdb_iter_seek(it->it, it->lo, it->lolen);
	} else if (it->reverse) {
		rocksdb_iter_prev(it->it);
	} else {
		rocksdb_iter_next(it->it);
	}
	if (!rocksdb_iter_valid(it->it)) {
		char *err = NULL;
		rocksdb_iter_get_error(it->it, &err);
		if (err) {
			log_error("storage: iterate: %s", err);
			free(err);
			return -EIO;
		}
		return 0;
	}
	*key = rocksdb_iter_key(it->it, klen);
	*val = rocksdb_iter_value(it->it, vlen);
	return 1;
}

void store_iter_close(struct store_iter *it)
{
	if (!it)
		return;
	rocksdb_iter_destroy(it->it);
	rocksdb_readoptions_destroy(it->ro);
	free(it);
}

struct store_batch *store_batch_new(void) { return (struct store_batch *)rocksdb_writebatch_create(); }
void store_batch_free(struct store_batch *b) { rocksdb_writebatch_destroy((rocksdb_writebatch_t *)b); }
void store_batch_clear(struct store_batch *b) { rocksdb_writebatch_clear((rocksdb_writebatch_t *)b); }
unsigned store_batch_count(struct store_batch *b)
{
	return (unsigned)rocksdb_writebatch_count((rocksdb_writebatch_t *)b);
}
size_t store_batch_bytes(struct store_batch *b)
{
	size_t n;
	rocksdb_writebatch_data((rocksdb_writebatch_t *)b, &n);
	return n;
}

void store_batch_put(struct store *st, struct store_batch *b, int cf, const void *key, size_t klen, const void *val,
		     size_t vlen)
{
	rocksdb_writebatch_put_cf((rocksdb_writebatch_t *)b, st->cf[cf], key, klen, val, vlen);
}

void store_batch_put2(struct store *st, struct store_batch *b, int cf, const void *key, size_t klen,
		      const void *v1, size_t v1len, const void *v2, size_t v2len)
{
	const char *parts[2] = { v1, v2 };
	size_t lens[2] = { v1len, v2len };
	const char *k = key;
	rocksdb_writebatch_putv_cf((rocksdb_writebatch_t *)b, st->cf[cf], 1, &k, &klen, 2, parts, lens);
}

void store_batch_delete(struct store *st, struct store_batch *b, int cf, const void *key, size_t klen)
{
	rocksdb_writebatch_delete_cf((rocksdb_writebatch_t *)b, st->cf[cf], key, klen);
}

void store_batch_delete_range(struct store *st, struct store_batch *b, int cf, const void *lo, size_t lolen,
			      const void *hi, size_t hilen)
{
	rocksdb_writebatch_delete_range_cf((rocksdb_writebatch_t *)b, st->cf[cf], lo, lolen,
					   hi, hilen);
}

int store_write_durable(struct store *st, struct store_batch *b)
{
	char *err = NULL;
	rocksdb_write(st->db, st->wopts_sync, (rocksdb_writebatch_t *)b, &err);
	if (err) {
		log_error("storage: durable write: %s", err);
		free(err);
		return -EIO;
	}
	return 0;
}

int store_apply(struct store *st, struct store_batch *b)
{
	char *err = NULL;
	rocksdb_write(st->db, st->wopts_nowal, (rocksdb_writebatch_t *)b, &err);
	if (err) {
		log_error("storage: apply a committed batch: %s (kept; retried)", err);
		free(err);
		return -EIO;
	}
	return 0;
}
