/* The history family past its retention: each object's records older than the window are
 * folded into one base record (the state as of the newest of them), so every point inside
 * the window can still be rebuilt and nothing older is kept. A thread does it every
 * pitr_sweep_ms. Its writes bypass the commit logs: they change no object's state, only
 * how its past is kept, and a fold lost in a crash is simply done again. */
#include "store_int.h"
#include "clock.h"
#include "history.h"
#include "keys.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- a base record from a rebuilt state ---- */

static int add_kv(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	hist_rec_kv(arg, k, klen, v, vlen, 1);
	return 0;
}

static int state_record(const struct hist_state *s, uint64_t time_ms, struct hist_rec *r)
{
	hist_rec_begin(r, HIST_WIPE_KV | HIST_WIPE_SQL, time_ms);
	hist_state_each_kv(s, add_kv, r);
	hist_rec_sql(r, s->sql_size, 0);
	for (uint32_t i = 0; i < s->npages_cap; i++)
		if (s->pages[i].p)
			hist_rec_page(r, i + 1, s->pages[i].p, s->pages[i].len);
	return hist_rec_end(r);
}

/* ---- one object ---- */

/* Folds the object's records older than cutoff (it starts at the iterator's key, an
 * object's first record). Leaves the iterator past the object. Returns 1 folded, 0 not,
 * or a negative errno. */
static int fold_object(struct store *st, rocksdb_iterator_t *it, uint64_t cutoff)
{
	size_t kl;
	const char *k = rocksdb_iter_key(it, &kl);
	uint8_t id[KEYS_ID_BYTES], hi[KEYS_ID_BYTES];
	memcpy(id, k, KEYS_ID_BYTES);
	keys_id_successor(id, hi);
	uint64_t first = keys_history_seq(k), last_old = 0, last_time = 0;
	int old = 0, r = 0, first_base = 0;
	struct hist_state s;
	hist_state_init(&s);
	for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		k = rocksdb_iter_key(it, &kl);
		if (kl != KEYS_HISTORY_KEY_LEN || memcmp(k, id, KEYS_ID_BYTES))
			break;
		size_t vl;
		const char *v = rocksdb_iter_value(it, &vl);
		uint64_t t;
		if (hist_peek(v, vl, NULL, &t) < 0) {
			r = -EBADMSG;
			break;
		}
		if (t >= cutoff)
			break;
		if (!old)
			first_base = hist_is_base(v, vl);
		if (!first_base)
			break; /* no base to start from: left as it is */
		if ((r = hist_apply(&s, v, vl)) < 0)
			break;
		last_old = keys_history_seq(k);
		last_time = t;
		old++;
	}
	/* On past this object's records. */
	while (rocksdb_iter_valid(it)) {
		k = rocksdb_iter_key(it, &kl);
		if (kl < KEYS_ID_BYTES || memcmp(k, id, KEYS_ID_BYTES))
			break;
		rocksdb_iter_seek(it, (const char *)hi, sizeof(hi));
	}
	if (r < 0 || old < 2) {
		hist_state_free(&s);
		return r;
	}
	/* The state after last_old replaces every record up to it. */
	struct hist_rec rec;
	char lo_key[KEYS_HISTORY_KEY_LEN], at_key[KEYS_HISTORY_KEY_LEN];
	keys_history(lo_key, id, first);
	keys_history(at_key, id, last_old);
	r = state_record(&s, last_time, &rec);
	hist_state_free(&s);
	if (r == 0) {
		rocksdb_writebatch_t *b = rocksdb_writebatch_create();
		rocksdb_writebatch_delete_range_cf(b, st->cf[STORE_CF_HISTORY], lo_key, sizeof(lo_key),
						   at_key, sizeof(at_key));
		rocksdb_writebatch_put_cf(b, st->cf[STORE_CF_HISTORY], at_key, sizeof(at_key),
					  (const char *)rec.buf, rec.len);
		char *e = NULL;
		rocksdb_write(st->db, st->wopts_nowal, b, &e);
		rocksdb_writebatch_destroy(b);
		if (e) {
			log_warn("storage: folding an object's history: %s", e);
			free(e);
			r = -EIO;
		}
	}
	hist_rec_free(&rec);
	return r < 0 ? r : 1;
}

int store_history_expire(struct store *st, uint64_t now_ms)
{
	uint64_t ret = st->cfg.pitr_retention_ms;
	if (!ret || now_ms <= ret)
		return 0;
	uint64_t cutoff = now_ms - ret;
	rocksdb_iterator_t *it = rocksdb_create_iterator_cf(st->db, st->ropts, st->cf[STORE_CF_HISTORY]);
	int folded = 0, r = 0;
	rocksdb_iter_seek_to_first(it);
	while (rocksdb_iter_valid(it) && !st->sweep_stop) {
		size_t kl;
		rocksdb_iter_key(it, &kl);
		if (kl != KEYS_HISTORY_KEY_LEN) {
			rocksdb_iter_next(it);
			continue;
		}
		int f = fold_object(st, it, cutoff);
		if (f < 0)
			r = f;
		else
			folded += f;
	}
	rocksdb_iter_destroy(it);
	if (folded)
		log_info("storage: history of %d objects past storage.pitr_retention folded", folded);
	return r < 0 ? r : folded;
}

uint64_t store_history_bytes(struct store *st)
{
	uint64_t v = 0;
	if (!rocksdb_property_int_cf(st->db, st->cf[STORE_CF_HISTORY], "rocksdb.estimate-live-data-size", &v)) {
		uint64_t mem = 0;
		if (!rocksdb_property_int_cf(st->db, st->cf[STORE_CF_HISTORY], "rocksdb.cur-size-all-mem-tables", &mem))
			v += mem;
	}
	return v;
}

/* ---- the sweeper ---- */

static void *sweep_main(void *arg)
{
	struct store *st = arg;
	pthread_mutex_lock(&st->sweep_lock);
	while (!st->sweep_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ms = st->cfg.pitr_sweep_ms;
		ts.tv_sec += (time_t)(ms / 1000);
		ts.tv_nsec += (long)(ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&st->sweep_cond, &st->sweep_lock, &ts);
		if (st->sweep_stop)
			break;
		pthread_mutex_unlock(&st->sweep_lock);
		store_history_expire(st, clock_wall_ms());
		pthread_mutex_lock(&st->sweep_lock);
	}
	pthread_mutex_unlock(&st->sweep_lock);
	return NULL;
}

int store_sweeper_start(struct store *st)
{
	pthread_mutex_init(&st->sweep_lock, NULL);
	pthread_cond_init(&st->sweep_cond, NULL);
	if (!st->cfg.pitr_retention_ms)
		return 0;
	if (!st->cfg.pitr_sweep_ms)
		st->cfg.pitr_sweep_ms = STORE_DEFAULT_PITR_SWEEP_MS;
	int r = pthread_create(&st->sweep_thread, NULL, sweep_main, st);
	if (r)
		return -r;
	st->sweep_started = 1;
	return 0;
}

void store_sweeper_stop(struct store *st)
{
	if (!st->sweep_started)
		return;
	pthread_mutex_lock(&st->sweep_lock);
	st->sweep_stop = 1;
	pthread_cond_signal(&st->sweep_cond);
	pthread_mutex_unlock(&st->sweep_lock);
	pthread_join(st->sweep_thread, NULL);
	st->sweep_started = 0;
}
