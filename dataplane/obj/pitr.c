/* Point-in-time recovery on an object's core (pitr.h): bookmarks and restores (the records
 * themselves are pitr_rec.c's). Every commit of an object writes, in its own
 * batch, a record of what it changed (storage/history.h) under ID ‖ the object's commit seq
 * in the history family: the commit log stays the only synchronous write, and the record
 * is durable exactly when the commit is. An object's first record (seq 0) is a base: its
 * whole state before history began (empty for a new object). Bookmarks are
 *
 *     %016x time ms - %016x object commit seq - %016x MAC(namespace key, ID, time, seq)
 *
 * so their order is time order and one object's bookmark is refused by another. A restore
 * rebuilds the state at a bookmark (the newest base at or before it, then each record up to
 * it) and writes it as one ordinary event: delete_all, then every key and page; so it is
 * durable, survives a crash, and its own bookmark undoes it. */
#include "pitr.h"
#include "obj.h"
#include "clock.h"
#include "core.h"
#include "event.h"
#include "keys.h"
#include "kv.h"
#include "log.h"
#include "object.h"
#include "siphash.h"
#include "sql.h"
#include "store.h"
#include "timer.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <time.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct store *store_of(struct core *c) { return c->obj->rt->store; }
static uint64_t retention(struct core *c) { return c->obj->rt->cfg->store.pitr_retention_ms; }

/* ---- bookmarks ---- */

static uint64_t mac(const struct duro_namespace *ns, const struct duro_id *id, uint64_t t, uint64_t seq)
{
	uint8_t in[DURO_ID_BYTES + 16];
	memcpy(in, id->bytes, DURO_ID_BYTES);
	memcpy(in + DURO_ID_BYTES, &t, 8);
	memcpy(in + DURO_ID_BYTES + 8, &seq, 8);
	const uint8_t *keys = atomic_load_explicit(&((struct duro_namespace *)ns)->keys, memory_order_acquire);
	return siphash64(keys + 16, in, sizeof(in));
}

static void bookmark_text(const struct duro_namespace *ns, const struct duro_id *id, uint64_t t,
			  uint64_t seq, char out[DURO_BOOKMARK_LEN + 1])
{
	snprintf(out, DURO_BOOKMARK_LEN + 1, "%016" PRIx64 "-%016" PRIx64 "-%016" PRIx64, t, seq,
		 mac(ns, id, t, seq));
}

static int hexfield(const char *p, uint64_t *out)
{
	uint64_t v = 0;
	for (int i = 0; i < 16; i++) {
		char ch = p[i];
		unsigned d = ch >= '0' && ch <= '9' ? (unsigned)(ch - '0')
			   : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10) : 16;
		if (d == 16)
			return -1;
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

/* Checks a bookmark of obj: 0 with its time and seq, or -EINVAL with why in err. */
static int bookmark_parse(const struct object *obj, const char *text, uint64_t *t, uint64_t *seq,
			  char *err, size_t errlen)
{
	uint64_t m;
	if (!text || strlen(text) != DURO_BOOKMARK_LEN || text[16] != '-' || text[33] != '-' ||
	    hexfield(text, t) < 0 || hexfield(text + 17, seq) < 0 || hexfield(text + 34, &m) < 0) {
		snprintf(err, errlen, "not a bookmark (want TIME-SEQ-MAC, 50 characters of hex and dashes)");
		return -EINVAL;
	}
	if (m != mac(obj->ns, &obj->id, *t, *seq)) {
		snprintf(err, errlen, "that bookmark is not one of this object's");
		return -EINVAL;
	}
	return 0;
}

/* The bookmark of the newest commit at or before time t (UINT64_MAX: the newest). */
static int bookmark_at(struct core *c, struct object *obj, uint64_t t, char out[DURO_BOOKMARK_LEN + 1],
		       char *err, size_t errlen)
{
	if (!retention(c)) {
		snprintf(err, errlen, "point-in-time recovery is off (storage.pitr_retention is 0)");
		return -ENOTSUP;
	}
	uint64_t now = clock_wall_ms();
	if (t != UINT64_MAX && t + retention(c) < now) {
		snprintf(err, errlen, "%" PRIu64 " is before the retention window (storage.pitr_retention: %" PRIu64 " ms back from now)",
			 t, retention(c));
		return -ERANGE;
	}
	int none;
	if (pitr_load_head(c, obj, &none) < 0) {
		snprintf(err, errlen, "the object's history could not be read");
		return -EIO;
	}
	if (t == UINT64_MAX || obj->hist_time_ms <= t) {
		bookmark_text(obj->ns, &obj->id, obj->hist_time_ms, obj->hist_seq, out);
		return 0;
	}
	/* Newest first: the first record at or before t (older ones are in RocksDB). */
	uint8_t hi[KEYS_ID_BYTES];
	keys_id_successor(obj->id.bytes, hi);
	struct store_iter *it = store_iter_open(store_of(c), STORE_CF_HISTORY, obj->id.bytes,
						KEYS_ID_BYTES, hi, sizeof(hi), 1);
	if (!it)
		return -ENOMEM;
	const char *k, *v;
	size_t kl, vl;
	int r, found = 0;
	while ((r = store_iter_next(it, &k, &kl, &v, &vl)) == 1) {
		uint64_t rt;
		if (kl != KEYS_HISTORY_KEY_LEN || hist_peek(v, vl, NULL, &rt) < 0)
			continue;
		if (rt <= t) {
			bookmark_text(obj->ns, &obj->id, rt, keys_history_seq(k), out);
			found = 1;
			break;
		}
	}
	store_iter_close(it);
	if (r < 0)
		return -EIO;
	if (!found) {
		snprintf(err, errlen, "the object has no history that far back");
		return -ERANGE;
	}
	return 0;
}

/* ---- rebuilding and restoring ---- */

/* The object's state after its commit seq, into s: from the newest base at or before it.
 * Reads only the store, so it runs off the cores (a restore's thread). */
static int state_at(struct store *st, const struct duro_id *id, uint64_t seq, struct hist_state *s,
		    char *err, size_t errlen)
{
	char lo[KEYS_HISTORY_KEY_LEN], hi[KEYS_HISTORY_KEY_LEN];
	keys_history(lo, id->bytes, 0);
	keys_history(hi, id->bytes, seq + 1);
	struct store_iter *it = store_iter_open(st, STORE_CF_HISTORY, lo, sizeof(lo), hi, sizeof(hi), 1);
	if (!it)
		return -ENOMEM;
	const char *k, *v;
	size_t kl, vl;
	int r;
	uint64_t base = UINT64_MAX, newest = UINT64_MAX;
	while ((r = store_iter_next(it, &k, &kl, &v, &vl)) == 1) {
		if (kl != KEYS_HISTORY_KEY_LEN)
			continue;
		if (newest == UINT64_MAX)
			newest = keys_history_seq(k);
		unsigned flags = 0;
		if (hist_peek(v, vl, &flags, NULL) < 0 || (flags & HIST_GAP))
			break;
		if (hist_is_base(v, vl)) {
			base = keys_history_seq(k);
			break;
		}
	}
	store_iter_close(it);
	if (r < 0)
		return -EIO;
	if (newest != seq) {
		snprintf(err, errlen, "commit %" PRIu64 " is no longer in the object's history (past storage.pitr_retention)", seq);
		return -ERANGE;
	}
	if (base == UINT64_MAX) {
		snprintf(err, errlen, "the object's history before commit %" PRIu64 " is incomplete", seq);
		return -ERANGE;
	}
	keys_history(lo, id->bytes, base);
	if (!(it = store_iter_open(st, STORE_CF_HISTORY, lo, sizeof(lo), hi, sizeof(hi), 0)))
		return -ENOMEM;
	while ((r = store_iter_next(it, &k, &kl, &v, &vl)) == 1)
		if (kl == KEYS_HISTORY_KEY_LEN && (r = hist_apply(s, v, vl)) < 0)
			break;
	store_iter_close(it);
	if (r < 0) {
		snprintf(err, errlen, "the object's history could not be replayed (%s)", strerror(-r));
		return r == -ENOMEM ? r : -EIO;
	}
	return 0;
}

/* A restore under way. Replaying history reads as many records as lie between the base
 * and the bookmark (0.45 s for 100,000 here), which must not stall the core's other
 * objects: a thread of its own rebuilds the state, then the core writes it as one event.
 * The core owns the job except while the thread runs (from pthread_create until the
 * thread's post arrives); the caller's undo and err stay valid until done is called. */
struct pitr_restore {
	struct timer t; /* first: retries while the object is busy */
	struct core_msg msg;
	struct pitr_restore *next;
	struct core *c;
	struct store *st;
	unsigned ns;
	struct duro_id id;
	uint64_t seq;
	pthread_t thread;
	int threaded;  /* thread to be joined */
	int replayed;  /* the thread's result: 0, or a negative errno with why */
	unsigned tries;
	struct hist_state s;
	char why[256];
	char *undo, *err;
	size_t errlen;
	void (*done)(void *arg, int status);
	void *done_arg;
};

#define RESTORE_RETRY_MS 10
#define RESTORE_TRIES 1000 /* 10 s of an object too busy to be unloaded */

static void restore_unlink(struct core *c, struct pitr_restore *j)
{
	struct pitr_restore **pp = &c->obj->pitr_restores;
	while (*pp && *pp != j)
		pp = &(*pp)->next;
	if (*pp)
		*pp = j->next;
}

/* Frees j (its thread, if it had one, was joined). */
static void restore_free(struct core *c, struct pitr_restore *j)
{
	restore_unlink(c, j);
	timer_cancel(&j->t);
	hist_state_free(&j->s);
	free(j);
}

/* Ends j: done hears status (err already says why when it is an error). */
static void restore_finish(struct core *c, struct pitr_restore *j, int status)
{
	void (*done)(void *, int) = j->done;
	void *arg = j->done_arg;
	restore_free(c, j);
	done(arg, status);
}

static void *restore_thread(void *arg)
{
	struct pitr_restore *j = arg;
	j->replayed = state_at(j->st, &j->id, j->seq, &j->s, j->why, sizeof(j->why));
	/* A full post ring drains within a turn of the core. */
	while (core_post(j->c->group, j->c->index, &j->msg) < 0) {
		struct timespec ts = { 0, 100000 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

struct restore_write {
	struct object *obj;
	int r;
};

static int restore_kv(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct restore_write *w = arg;
	/* The database's size record is sql.c's to write, with its pages. */
	if (klen == KEYS_SQL_SIZE_LEN && !memcmp(k, KEYS_SQL_SIZE, KEYS_SQL_SIZE_LEN))
		return 0;
	w->r = kv_write(w->obj, k, klen, v, vlen, 1);
	return w->r < 0;
}

struct restore_wait {
	void (*done)(void *arg, int status);
	void *arg;
	int refused;
};

static void restore_synced(struct duro_object *o, int status, void *arg)
{
	(void)o;
	struct restore_wait *w = arg;
	w->done(w->arg, w->refused ? w->refused : status);
	free(w);
}

/* On the core, with the state rebuilt: the live instance goes first (its sockets stay
 * open: its memory would not know of the restore), then the state is written as one
 * event. Returns 0 when the sync's callback will end the caller's wait, 1 to be called
 * again (busy), or a negative errno with why in j->err. */
static int restore_write(struct core *c, struct pitr_restore *j)
{
	struct object *obj = object_find(c, &j->id);
	if (obj && obj->ns->index == j->ns) {
		if (obj->running || kv_dirty(c, obj) || obj->ndeferred)
			return 1;
		object_unload(c, obj);
	}
	int e = 0;
	if (!(obj = event_activate(c, j->ns, &j->id, &e))) {
		snprintf(j->err, j->errlen, "the object failed to load");
		return e ? e : -EIO;
	}
	if (obj->running)
		return 1;
	int none;
	if (pitr_load_head(c, obj, &none) < 0) {
		snprintf(j->err, j->errlen, "the object's history could not be read");
		return -EIO;
	}
	bookmark_text(obj->ns, &obj->id, obj->hist_time_ms, obj->hist_seq, j->undo);
	struct restore_wait *w = malloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct restore_wait){ j->done, j->done_arg, 0 };
	event_begin(c, obj);
	struct duro_object *o = (struct duro_object *)obj;
	int r = duro_delete_all(o);
	struct restore_write rw = { obj, 0 };
	if (r == 0 && hist_state_each_kv(&j->s, restore_kv, &rw))
		r = rw.r;
	if (r == 0 && j->s.sql_size)
		r = sql_load_size(obj, j->s.sql_size);
	for (uint32_t p = 0; r == 0 && p < j->s.npages_cap; p++)
		if (j->s.pages[p].p)
			r = sql_load_page(obj, p + 1, j->s.pages[p].p, j->s.pages[p].len);
	if (r < 0)
		snprintf(j->err, j->errlen, "the restore could not be written (%s)", strerror(-r));
	if (r == 0)
		r = duro_sync(o, restore_synced, w);
	int wrote = event_end(c, obj, r == 0);
	if (r < 0) {
		free(w);
		return r;
	}
	if (wrote < 0) {
		w->refused = wrote; /* done hears it through the sync */
		snprintf(j->err, j->errlen, "%s", wrote == -ENOSPC ? "storage full: the restore was not saved"
								   : "the restore could not be committed");
	}
	log_info("class %s: object restored to commit %" PRIu64 " (undo: %s)", obj->cls->name, j->seq,
		 j->undo);
	return 0;
}

static void restore_step(struct core *c, struct pitr_restore *j);

static void restore_retry(struct core *c, struct timer *t) { restore_step(c, (struct pitr_restore *)t); }

static void restore_step(struct core *c, struct pitr_restore *j)
{
	int r = restore_write(c, j);
	if (r == 1 && ++j->tries < RESTORE_TRIES) {
		timer_arm(c, &j->t, c->now_ms + RESTORE_RETRY_MS, restore_retry);
		return;
	}
	if (r == 1) {
		snprintf(j->err, j->errlen, "the object is busy (writes not yet stored, or held responses): try again");
		r = -EBUSY;
	}
	if (r == 0) {
		restore_free(c, j); /* restore_synced calls done */
		return;
	}
	restore_finish(c, j, r);
}

static void on_replayed(struct core *c, struct core_msg *m)
{
	struct pitr_restore *j = (struct pitr_restore *)((char *)m - offsetof(struct pitr_restore, msg));
	pthread_join(j->thread, NULL);
	j->threaded = 0;
	if (j->replayed < 0) {
		snprintf(j->err, j->errlen, "%s", j->why);
		restore_finish(c, j, j->replayed);
		return;
	}
	restore_step(c, j);
}

void pitr_core_init(struct core *c) { core_set_msg_handler(c, MSG_OBJ_RESTORE, on_replayed); }

int obj_restore(struct core *c, unsigned ns, const struct duro_id *id, const char *bookmark,
		char undo[DURO_BOOKMARK_LEN + 1], char *err, size_t errlen,
		void (*done)(void *arg, int status), void *done_arg)
{
	err[0] = 0;
	if (!retention(c)) {
		snprintf(err, errlen, "point-in-time recovery is off (storage.pitr_retention is 0)");
		return -ENOTSUP;
	}
	int e = 0;
	struct object *obj = object_find(c, id);
	if (!obj || obj->ns->index != ns)
		obj = event_activate(c, ns, id, &e);
	if (!obj) {
		snprintf(err, errlen, "the object failed to load");
		return e ? e : -EIO;
	}
	uint64_t t, seq;
	int r = bookmark_parse(obj, bookmark, &t, &seq, err, errlen);
	if (r < 0)
		return r;
	if (t + retention(c) < clock_wall_ms() && t != 0) {
		snprintf(err, errlen, "that bookmark is before the retention window (storage.pitr_retention)");
		return -ERANGE;
	}
	int none;
	if (pitr_load_head(c, obj, &none) < 0) {
		snprintf(err, errlen, "the object's history could not be read");
		return -EIO;
	}
	if (none || seq > obj->hist_seq) {
		snprintf(err, errlen, "the object has no commit %" PRIu64 " in its history", seq);
		return -ERANGE;
	}
	struct pitr_restore *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->msg.type = MSG_OBJ_RESTORE;
	j->c = c;
	j->st = store_of(c);
	j->ns = ns;
	j->id = *id;
	j->seq = seq;
	j->undo = undo;
	j->err = err;
	j->errlen = errlen;
	j->done = done;
	j->done_arg = done_arg;
	hist_state_init(&j->s);
	j->next = c->obj->pitr_restores;
	c->obj->pitr_restores = j;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	store_thread_attr_any_cpu(&attr); /* the replay is not the reactor's CPU time */
	r = pthread_create(&j->thread, &attr, restore_thread, j);
	pthread_attr_destroy(&attr);
	if (r == 0) {
		j->threaded = 1;
		return 0;
	}
	/* No thread: replay here, as a short stall of this core beats refusing the restore. */
	log_warn("restore: no thread for the replay (%s): it runs on core %u", strerror(r), c->index);
	j->replayed = state_at(j->st, &j->id, seq, &j->s, j->why, sizeof(j->why));
	if (j->replayed < 0) {
		snprintf(err, errlen, "%s", j->why);
		r = j->replayed;
		restore_free(c, j);
		return r;
	}
	restore_step(c, j);
	return 0;
}

int obj_bookmark(struct core *c, unsigned ns, const struct duro_id *id, int64_t at_ms,
		 char out[DURO_BOOKMARK_LEN + 1], char *err, size_t errlen)
{
	err[0] = 0;
	int e = 0;
	struct object *obj = event_activate(c, ns, id, &e);
	if (!obj) {
		snprintf(err, errlen, "the object failed to load");
		return e ? e : -EIO;
	}
	return bookmark_at(c, obj, at_ms < 0 ? UINT64_MAX : (uint64_t)at_ms, out, err, errlen);
}

/* ---- the calls of duro.h ---- */

int duro_bookmark_current(struct duro_object *o, char out[DURO_BOOKMARK_LEN + 1])
{
	struct object *obj = (struct object *)o;
	char err[160];
	return bookmark_at(obj->core, obj, UINT64_MAX, out, err, sizeof(err));
}

int duro_bookmark_for_time(struct duro_object *o, int64_t time_ms, char out[DURO_BOOKMARK_LEN + 1])
{
	struct object *obj = (struct object *)o;
	char err[160];
	if (time_ms < 0)
		return -ERANGE;
	return bookmark_at(obj->core, obj, (uint64_t)time_ms, out, err, sizeof(err));
}

/* ---- restores a class asked for (onNextSessionRestoreBookmark) ---- */

#define PENDING_RETRY_MS 10
#define PENDING_TRIES 1000 /* 10 s of an object too busy to be unloaded */

struct pitr_pending {
	struct timer t;
	struct pitr_pending *next;
	struct core *c;
	unsigned ns;
	struct duro_id id;
	char bookmark[DURO_BOOKMARK_LEN + 1];
	unsigned tries;
	uint8_t restored; /* durable: what is left is unloading the instance that did it */
	uint8_t waiting;  /* the restore is under way: pending_done follows */
	char undo[DURO_BOOKMARK_LEN + 1], err[256]; /* the restore's, valid until pending_done */
};

static void pending_free(struct core *c, struct pitr_pending *p)
{
	struct pitr_pending **pp = &c->obj->pitr_pending;
	while (*pp && *pp != p)
		pp = &(*pp)->next;
	if (*pp)
		*pp = p->next;
	timer_cancel(&p->t);
	free(p);
}

static void pending_fire(struct core *c, struct timer *t);

static void pending_done(void *arg, int status)
{
	struct pitr_pending *p = arg;
	p->waiting = 0;
	if (status < 0) {
		log_warn("an object's restore on next session was not saved (%s)",
			 p->err[0] ? p->err : strerror(-status));
		pending_free(p->c, p);
		return;
	}
	p->restored = 1;
	p->tries = 0;
	timer_arm(p->c, &p->t, p->c->now_ms + 1, pending_fire);
}

static void pending_fire(struct core *c, struct timer *t)
{
	struct pitr_pending *p = (struct pitr_pending *)t;
	int r;
	if (p->restored) {
		r = obj_evict(c, p->ns, &p->id);
		if (r == -EBUSY && ++p->tries < PENDING_TRIES)
			timer_arm(c, &p->t, c->now_ms + PENDING_RETRY_MS, pending_fire);
		else
			pending_free(c, p);
		return;
	}
	r = obj_restore(c, p->ns, &p->id, p->bookmark, p->undo, p->err, sizeof(p->err), pending_done, p);
	if (r == -EBUSY && ++p->tries < PENDING_TRIES) {
		timer_arm(c, &p->t, c->now_ms + PENDING_RETRY_MS, pending_fire);
	} else if (r < 0) {
		log_warn("an object's restore on next session failed: %s", p->err[0] ? p->err : strerror(-r));
		pending_free(c, p);
	} else {
		p->waiting = 1; /* pending_done follows */
	}
}

int duro_restore_on_next_session(struct duro_object *o, const char *bookmark,
				 char undo[DURO_BOOKMARK_LEN + 1])
{
	struct object *obj = (struct object *)o;
	struct core *c = obj->core;
	char err[160];
	if (!retention(c))
		return -ENOTSUP;
	uint64_t t, seq;
	int r = bookmark_parse(obj, bookmark, &t, &seq, err, sizeof(err));
	if (r < 0)
		return r;
	int none;
	if (pitr_load_head(c, obj, &none) < 0)
		return -EIO;
	if ((t && t + retention(c) < clock_wall_ms()) || none || seq > obj->hist_seq)
		return -ERANGE;
	struct pitr_pending *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->c = c;
	p->ns = obj->ns->index;
	p->id = obj->id;
	memcpy(p->bookmark, bookmark, DURO_BOOKMARK_LEN);
	p->next = c->obj->pitr_pending;
	c->obj->pitr_pending = p;
	bookmark_text(obj->ns, &obj->id, obj->hist_time_ms, obj->hist_seq, undo);
	/* After this event: the timer runs once it has ended. */
	timer_arm(c, &p->t, c->now_ms + 1, pending_fire);
	return 0;
}

void pitr_core_fini(struct core *c)
{
	/* Restores under way end first (their done may be a pending restore's): a replay
	 * still running is waited for, and its post, which no turn will read, is dropped. */
	while (c->obj->pitr_restores) {
		struct pitr_restore *j = c->obj->pitr_restores;
		if (j->threaded)
			pthread_join(j->thread, NULL);
		snprintf(j->err, j->errlen, "durod is stopping");
		restore_finish(c, j, -ECANCELED);
	}
	while (c->obj->pitr_pending) {
		struct pitr_pending *p = c->obj->pitr_pending;
		c->obj->pitr_pending = p->next;
		timer_cancel(&p->t);
		if (p->waiting)
			continue; /* its restore's sync still holds it: freed when that is dropped */
		free(p);
	}
}
