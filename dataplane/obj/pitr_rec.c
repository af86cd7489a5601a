/* Point-in-time recovery's records as events commit (pitr.h): where an object's history
 * stands, its base when it has none, and the record of each commit, put into the commit's
 * own batch. Called from event.c; pitr.c reads what this writes. */
#include "pitr.h"
#include "keys.h"
#include "kv.h"
#include "log.h"
#include "store.h"
#include "clock.h"
#include "core.h"

#include <errno.h>
#include <string.h>

static struct store *store_of(struct core *c) { return c->obj->rt->store; }

/* ---- where an object's history stands ---- */

/* Its newest record's seq and time; hist_seq stays 0 with hist_time_ms 0 when it has none
 * (then *none and obj->hist_empty are 1). Returns 0 or -EIO. */
int pitr_load_head(struct core *c, struct object *obj, int *none)
{
	*none = obj->hist_empty;
	if (obj->hist_loaded)
		return 0;
	uint8_t hi[KEYS_ID_BYTES];
	keys_id_successor(obj->id.bytes, hi);
	struct store_iter *it = store_iter_open(store_of(c), STORE_CF_HISTORY, obj->id.bytes,
						KEYS_ID_BYTES, hi, sizeof(hi), 1);
	if (!it)
		return -ENOMEM;
	const char *k, *v;
	size_t kl, vl;
	int r = store_iter_next(it, &k, &kl, &v, &vl);
	if (r == 1 && kl == KEYS_HISTORY_KEY_LEN) {
		uint64_t t = 0;
		if (hist_peek(v, vl, NULL, &t) < 0)
			r = -EIO;
		obj->hist_seq = keys_history_seq(k);
		obj->hist_time_ms = t;
	} else if (r == 0) {
		obj->hist_seq = 0;
		obj->hist_time_ms = 0;
		obj->hist_empty = 1;
		*none = 1;
	}
	store_iter_close(it);
	if (r < 0)
		return -EIO;
	obj->hist_loaded = 1;
	return 0;
}

/* The object's state as RocksDB holds it, as a base record: its history's start. */
static int base_from_store(struct core *c, struct object *obj, struct hist_rec *rec)
{
	struct store *st = store_of(c);
	uint8_t hi[KEYS_ID_BYTES];
	keys_id_successor(obj->id.bytes, hi);
	hist_rec_begin(rec, HIST_WIPE_KV | HIST_WIPE_SQL, 0);
	uint64_t sql_size = 0;
	struct store_iter *it = store_iter_open(st, obj->ns->cf, obj->id.bytes, KEYS_ID_BYTES, hi,
						sizeof(hi), 0);
	const char *k, *v;
	size_t kl, vl;
	int r = it ? 0 : -ENOMEM;
	while (it && (r = store_iter_next(it, &k, &kl, &v, &vl)) == 1) {
		hist_rec_kv(rec, k + KEYS_ID_BYTES, kl - KEYS_ID_BYTES, v, vl, 1);
		if (kl - KEYS_ID_BYTES == KEYS_SQL_SIZE_LEN &&
		    !memcmp(k + KEYS_ID_BYTES, KEYS_SQL_SIZE, KEYS_SQL_SIZE_LEN) && vl == sizeof(sql_size))
			memcpy(&sql_size, v, sizeof(sql_size));
	}
	if (it)
		store_iter_close(it);
	if (r < 0)
		return r;
	hist_rec_sql(rec, sql_size, 0);
	if (sql_size) {
		it = store_iter_open(st, STORE_CF_SQL, obj->id.bytes, KEYS_ID_BYTES, hi, sizeof(hi), 0);
		r = it ? 0 : -ENOMEM;
		while (it && (r = store_iter_next(it, &k, &kl, &v, &vl)) == 1)
			if (kl == KEYS_SQL_PAGE_KEY_LEN)
				hist_rec_page(rec, keys_sql_page_number(k), v, vl);
		if (it)
			store_iter_close(it);
		if (r < 0)
			return r;
	}
	return hist_rec_end(rec);
}

/* ---- an event's record ---- */

static void add_write(void *arg, const char *k, size_t klen, const char *v, size_t vlen, int present)
{
	hist_rec_kv(arg, k, klen, v, vlen, present);
}

int history_event_begin(struct core *c, struct object *obj, struct store_batch *b, struct hist_rec *rec)
{
	if (!c->obj->rt->cfg->store.pitr_retention_ms)
		return 0;
	int none = 0;
	if (pitr_load_head(c, obj, &none) < 0) {
		log_error("class %s: an object's history could not be read: this commit is not in it",
			  obj->cls->name);
		obj->hist_loaded = 0;
		return 0;
	}
	if (none) {
		struct hist_rec base;
		char key[KEYS_HISTORY_KEY_LEN];
		if (base_from_store(c, obj, &base) == 0) {
			keys_history(key, obj->id.bytes, 0);
			store_batch_put(store_of(c), b, STORE_CF_HISTORY, key, sizeof(key), base.buf, base.len);
		} else {
			/* Without a base the records that follow replay onto nothing: restores wait
			 * for the next base (a delete_all, a restore). */
			log_error("class %s: an object's history could not begin (no memory)", obj->cls->name);
		}
		obj->hist_empty = 0;
		hist_rec_free(&base);
	}
	uint64_t now = clock_wall_ms();
	if (now < obj->hist_time_ms)
		now = obj->hist_time_ms; /* never back in time: bookmarks sort by it */
	hist_rec_begin(rec, kv_event_wiped(obj) ? HIST_WIPE_KV : 0, now);
	kv_event_each_write(obj, add_write, rec);
	return 1;
}

void history_event_end(struct core *c, struct object *obj, struct store_batch *b, struct hist_rec *rec)
{
	uint64_t t = 0;
	hist_peek(rec->buf, rec->len, NULL, &t);
	if (hist_rec_end(rec) < 0) {
		/* Without this record the later ones cannot be replayed over the earlier ones: the
		 * gap stays until a base (a delete_all, a restore) follows. */
		hist_rec_free(rec);
		hist_rec_begin(rec, 0, t);
		hist_rec_flags(rec, HIST_GAP);
		log_error("class %s: no memory for an object's history record: restores before this commit are refused",
			  obj->cls->name);
		if (hist_rec_end(rec) < 0) {
			hist_rec_free(rec);
			return;
		}
	}
	char key[KEYS_HISTORY_KEY_LEN];
	keys_history(key, obj->id.bytes, ++obj->hist_seq);
	store_batch_put(store_of(c), b, STORE_CF_HISTORY, key, sizeof(key), rec->buf, rec->len);
	obj->hist_time_ms = t;
	hist_rec_free(rec);
}

