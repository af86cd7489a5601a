/* Internals shared by store.c (RocksDB) and commit_log.c (per-core logs and replay).
 * Not for use outside storage/. */
#ifndef DURO_STORAGE_STORE_INT_H
#define DURO_STORAGE_STORE_INT_H

#include "store.h"

#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>

#define STORE_MAX_CF 72

struct retired_log;

/* The history sweeper: started by store_open when history is kept, stopped by store_close. */
int store_sweeper_start(struct store *st);
void store_sweeper_stop(struct store *st);

struct store {
	struct store_config cfg;
	char db_dir[600], log_dir[600];
	rocksdb_t *db;
	rocksdb_options_t *db_opts;
	rocksdb_cache_t *cache;
	rocksdb_readoptions_t *ropts;
	rocksdb_writeoptions_t *wopts_nowal;
	rocksdb_writeoptions_t *wopts_sync; /* meta changes outside commits (migrations) */
	rocksdb_column_family_handle_t *cf[STORE_MAX_CF];
	rocksdb_column_family_handle_t *cf_default;
	char cf_names[STORE_MAX_CF][80];
	/* Families in cf[]: a live deploy appends one while cores and background threads
	 * read, so the entry is written before ncf grows past it. */
	_Atomic unsigned ncf;
	/* Logs the cores retired, waiting for the dropper thread (commit_log.c), which flushes
	 * and then deletes them strictly in this order: oldest first. */
	pthread_mutex_t drop_lock;
	pthread_cond_t drop_cond;
	struct retired_log *drop_head, *drop_tail;
	pthread_t drop_thread;
	int drop_started, drop_stop;
	int keep_logs; /* a core stopped with durable batches not applied: store_close keeps the logs */
	/* The history sweeper (history_expire.c). */
	pthread_mutex_t sweep_lock;
	pthread_cond_t sweep_cond;
	pthread_t sweep_thread;
	int sweep_started;
	_Atomic int sweep_stop;
};


/* Replays every commit log in log_dir, in order per core, flushes, and deletes them
 * oldest first; returns 0 or -EIO. */
int store_replay_logs(struct store *st);
/* Deletes every commit log, oldest first: only once all cores have closed theirs and a
 * flush succeeded. */
void store_remove_all_logs(struct store *st);
/* The lock and condition of the dropper, made with the store and destroyed with it. */
void store_dropper_init(struct store *st);
void store_dropper_fini(struct store *st);
/* Stops the thread that drops retired logs, which the first store_log_open started,
 * waiting for a flush under way. */
void store_dropper_stop(struct store *st);
/* Index of a column family by its RocksDB name, or -ENOENT. */
int store_cf_by_name(const struct store *st, const char *cf_name);
/* Flushes the memtables of every family, waiting; 0 or -EIO. */
int store_flush_all(struct store *st);

#endif
