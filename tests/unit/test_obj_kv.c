/* The storage API of duro.h against a plain model, seeded: random events of random
 * operations (get, put, delete, their many-key forms, list with every option, nested
 * transactions, delete_all, failing events) on a few objects of a real runtime — real
 * RocksDB, real commit logs on io_uring — so list() merges writes RocksDB does not have
 * yet with what it has, objects are evicted and read back key by key, and size limits
 * follow every rollback. Every event asks sync(): its outcome moves the model's durable
 * state, and when it reports success RocksDB must already hold that state (the output
 * gate's promise). Three runs on one data directory: plain, with every 5th commit sync
 * failing (the objects reset to what was durable), then a restart that must find exactly
 * the durable state.
 *
 * The event layer's calls (event.h) run an event of an object without an HTTP request. */
#include "check.h"
#include "rt.h"
#include "alarm.h"
#include "event.h"
#include "object-t.h"
#include "store.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define NOBJ 4
#define NKEYS 44
#define MAX_KEY 64     /* storage.max_key_bytes */
#define MAX_VALUE 240  /* storage.max_value_bytes */
#define MAX_OBJECT 700 /* storage.max_object_bytes: reached often */
#define MAX_DEPTH 16   /* duro_txn_begin nesting */

/* ---- the model ---- */

struct val {
	uint8_t present;
	uint16_t len;
	uint8_t v[MAX_VALUE];
};

struct state {
	struct val k[NKEYS]; /* by key, in the keys' byte order */
};

struct key {
	const char *p;
	size_t n;
};

static struct key keys[NKEYS];

static int key_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int r = memcmp(a, b, an < bn ? an : bn);
	return r ? r : (an < bn ? -1 : an > bn);
}

static int by_key(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	return key_cmp(x->p, x->n, y->p, y->n);
}

/* Edges of ordering and prefix bounds: the empty key, NUL bytes, 0xFF bytes (a prefix of
 * them has no successor), shared prefixes, the longest key allowed. */
static void keys_init(void)
{
	static char longest[MAX_KEY];
	memset(longest, 'L', sizeof(longest));
	static const struct key fixed[] = {
		{ "", 0 }, { "\0", 1 }, { "\0\0", 2 }, { "a", 1 }, { "ab", 2 }, { "abc", 3 },
		{ "abd", 3 }, { "b", 1 }, { "\xfe\xff", 2 }, { "\xff", 1 }, { "\xff\0", 2 },
		{ "\xff\x01", 2 }, { "z\xff", 2 }, { "z\xff\x01", 3 },
	};
	size_t n = 0;
	for (; n < sizeof(fixed) / sizeof(fixed[0]); n++)
		keys[n] = fixed[n];
	keys[n++] = (struct key){ longest, sizeof(longest) };
	static char knn[NKEYS][4];
	for (int i = 0; n < NKEYS; i++, n++) {
		snprintf(knn[i], sizeof(knn[i]), "k%02d", i);
		keys[n] = (struct key){ knn[i], 3 };
	}
	qsort(keys, NKEYS, sizeof(keys[0]), by_key);
}

static size_t size_of(const struct state *s)
{
	size_t n = 0;
	for (int i = 0; i < NKEYS; i++)
		if (s->k[i].present)
			n += keys[i].n + s->k[i].len;
	return n;
}

/* What kv.c must answer for a put, from the model: 0 or the error. */
static int model_put(struct state *s, int ki, const uint8_t *v, size_t len)
{
	if (len > MAX_VALUE)
		return -EFBIG;
	size_t cur = size_of(s), next = cur + keys[ki].n + len;
	if (s->k[ki].present)
		next -= keys[ki].n + s->k[ki].len;
	if (next > MAX_OBJECT && next > cur)
		return -ENOSPC;
	s->k[ki].present = 1;
	s->k[ki].len = (uint16_t)len;
	memcpy(s->k[ki].v, v, len);
	return 0;
}

/* ---- per object ---- */

struct hist {
	uint64_t event;
	struct state after;
};

struct object_model {
	struct duro_id id;
	struct state cur;     /* what reads see now */
	struct state durable; /* what the last successful sync() reported */
	struct hist *hist;    /* states after events whose sync() outcome is pending */
	size_t nhist, caphist;
};

static struct object_model objs[NOBJ];
static unsigned ns_index;

/* ---- the run ---- */

struct counters {
	uint64_t events, failed_events, ops, lists, lists_unsettled, enospc, evictions;
	uint64_t sync_ok, sync_failed, gate_checks;
};

static struct {
	uint64_t rs;
	unsigned target;       /* events this run */
	int verify_at_start;   /* compare every object with the model first */
	uint64_t next_event;
	unsigned pending;      /* sync() outcomes not yet heard */
	int verified, ids_ready;
	int settling; /* no new events until the commits are in RocksDB, then an eviction */
	struct counters ctr;
} run;

static int bad; /* failures reported so far: stop early rather than flood */
static int trace; /* DURO_TEST_TRACE=1: every event, operation and outcome on stderr */

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

static uint64_t rnd(uint64_t n) { return check_below(&run.rs, n); }

static int pick_key(void) { return (int)rnd(NKEYS); }

static size_t pick_value(uint8_t *v)
{
	size_t len = rnd(20) == 0 ? 100 + rnd(MAX_VALUE - 100 + 1) : rnd(24);
	if (rnd(200) == 0)
		len = MAX_VALUE + 1 + rnd(8); /* too large: -EFBIG */
	for (size_t i = 0; i < len; i++)
		v[i] = (uint8_t)rnd(256);
	return len;
}

/* A raw read of the object's keys in RocksDB (key = ID ‖ user key in its class's family). */
static int rocksdb_state(const struct duro_id *id, struct state *out)
{
	memset(out, 0, sizeof(*out));
	uint8_t hi[DURO_ID_BYTES];
	memcpy(hi, id->bytes, DURO_ID_BYTES);
	int i = DURO_ID_BYTES - 1;
	while (i >= 0 && ++hi[i] == 0)
		i--;
	struct store_iter *it = store_iter_open(obj_runtime_store(), obj_namespace_cf(ns_index),
						id->bytes, DURO_ID_BYTES, hi, DURO_ID_BYTES, 0);
	if (!it)
		return -ENOMEM;
	const char *k, *v;
	size_t kl, vl;
	int r, unknown = 0;
	while ((r = store_iter_next(it, &k, &kl, &v, &vl)) == 1) {
		struct key want = { k + DURO_ID_BYTES, kl - DURO_ID_BYTES };
		struct key *found = bsearch(&want, keys, NKEYS, sizeof(keys[0]), by_key);
		if (!found || vl > MAX_VALUE) {
			unknown++;
			continue;
		}
		struct val *x = &out->k[found - keys];
		x->present = 1;
		x->len = (uint16_t)vl;
		memcpy(x->v, v, vl);
	}
	store_iter_close(it);
	return r < 0 ? r : unknown ? -EBADMSG : 0;
}

static int same_state(const struct state *a, const struct state *b)
{
	for (int i = 0; i < NKEYS; i++) {
		if (a->k[i].present != b->k[i].present)
			return 0;
		if (a->k[i].present &&
		    (a->k[i].len != b->k[i].len || memcmp(a->k[i].v, b->k[i].v, a->k[i].len)))
			return 0;
	}
	return 1;
}

static void hist_push(struct object_model *m, uint64_t event)
{
	if (m->nhist == m->caphist) {
		m->caphist = m->caphist ? m->caphist * 2 : 16;
		m->hist = realloc(m->hist, m->caphist * sizeof(*m->hist));
		if (!m->hist)
			abort();
	}
	m->hist[m->nhist].event = event;
	m->hist[m->nhist].after = m->cur;
	m->nhist++;
}

static struct hist *hist_find(struct object_model *m, uint64_t event)
{
	for (size_t i = 0; i < m->nhist; i++)
		if (m->hist[i].event == event)
			return &m->hist[i];
	return NULL;
}

static void hist_drop_before(struct object_model *m, uint64_t event, int including)
{
	size_t o = 0;
	for (size_t i = 0; i < m->nhist; i++)
		if (m->hist[i].event > event || (!including && m->hist[i].event == event))
			m->hist[o++] = m->hist[i];
	m->nhist = o;
}

/* A sync() outcome: runs as an event of its object, after the writes it waited for. */
static void on_synced(struct duro_object *o, int status, void *arg)
{
	uint64_t event = (uint64_t)(uintptr_t)arg;
	struct object_model *m = NULL;
	for (int i = 0; i < NOBJ; i++)
		if (!memcmp(objs[i].id.bytes, duro_object_id(o)->bytes, DURO_ID_BYTES))
			m = &objs[i];
	EXPECT(m, "a sync outcome for an unknown object");
	if (!m)
		return;
	run.pending--;
	TRACE("outcome of event %llu (object %d): %d\n", (unsigned long long)event, (int)(m - objs), status);
	struct hist *h = hist_find(m, event);
	EXPECT(h, "event %llu: outcome heard twice, or for no event", (unsigned long long)event);
	if (!h)
		return;
	if (status == 0) {
		run.ctr.sync_ok++;
		m->durable = h->after;
		/* The gate: success is reported only once RocksDB has the writes — this event's
		 * state, or a later event's when later batches were applied in the same turn. */
		struct state db;
		int r = rocksdb_state(&m->id, &db);
		int seen = 0;
		for (size_t i = 0; r == 0 && i < m->nhist && !seen; i++)
			seen = m->hist[i].event >= event && same_state(&db, &m->hist[i].after);
		seen = seen || (r == 0 && same_state(&db, &m->cur));
		run.ctr.gate_checks++;
		EXPECT(seen, "event %llu: sync() said durable, RocksDB holds another state (%d)",
		       (unsigned long long)event, r);
		hist_drop_before(m, event, 1);
	} else {
		/* Lost with its commit, and everything the object wrote after it: the object was
		 * reset to what storage holds. */
		run.ctr.sync_failed++;
		EXPECT(status == -EIO, "event %llu: sync status %d", (unsigned long long)event, status);
		m->cur = m->durable;
		hist_drop_before(m, event, 1);
	}
}

struct list_check {
	const struct state *st;
	int want[NKEYS];
	int nwant, got, stop_at, mismatch;
};

static int list_fn(void *arg, struct duro_str k, struct duro_str v)
{
	struct list_check *lc = arg;
	if (lc->got >= lc->nwant) {
		lc->mismatch = 1;
	} else {
		int ki = lc->want[lc->got];
		const struct val *x = &lc->st->k[ki];
		if (key_cmp(k.ptr, k.len, keys[ki].p, keys[ki].n) || v.len != x->len ||
		    memcmp(v.ptr, x->v, x->len))
			lc->mismatch = 1;
	}
	lc->got++;
	return lc->stop_at && lc->got == lc->stop_at;
}

static struct duro_str maybe_key(int *set)
{
	*set = rnd(3) == 0;
	if (!*set)
		return (struct duro_str){ NULL, 0 };
	if (rnd(4) == 0) { /* a bound that is no key of the model */
		static const struct key extra[] = { { "aa", 2 }, { "k0", 2 }, { "k99", 3 }, { "\xff\xff", 2 }, { "zz", 2 } };
		const struct key *e = &extra[rnd(sizeof(extra) / sizeof(extra[0]))];
		return (struct duro_str){ e->p, e->n };
	}
	int ki = pick_key();
	return (struct duro_str){ keys[ki].p, keys[ki].n };
}

static void check_list(struct core *c, struct duro_object *o, const struct state *st)
{
	struct duro_list_options opt = { 0 };
	int has_start, has_after, has_end;
	opt.start = maybe_key(&has_start);
	opt.start_after = maybe_key(&has_after);
	opt.end = maybe_key(&has_end);
	if (rnd(3) == 0) {
		static const struct key prefixes[] = { { "", 0 }, { "a", 1 }, { "ab", 2 }, { "k", 1 }, { "k1", 2 },
						      { "\xff", 1 }, { "\xfe", 1 }, { "\0", 1 }, { "q", 1 }, { "z\xff", 2 } };
		const struct key *p = &prefixes[rnd(sizeof(prefixes) / sizeof(prefixes[0]))];
		opt.prefix = (struct duro_str){ p->p, p->n };
	}
	opt.reverse = (int)rnd(2);
	opt.limit = rnd(3) == 0 ? 1 + rnd(8) : 0;
	struct list_check lc = { .st = st, .stop_at = rnd(6) == 0 ? 1 + (int)rnd(4) : 0 };
	for (int j = 0; j < NKEYS; j++) {
		int i = opt.reverse ? NKEYS - 1 - j : j;
		const struct key *k = &keys[i];
		if (!st->k[i].present)
			continue;
		if (opt.prefix.ptr && (k->n < opt.prefix.len || memcmp(k->p, opt.prefix.ptr, opt.prefix.len)))
			continue;
		if (opt.start.ptr && key_cmp(k->p, k->n, opt.start.ptr, opt.start.len) < 0)
			continue;
		if (opt.start_after.ptr && key_cmp(k->p, k->n, opt.start_after.ptr, opt.start_after.len) <= 0)
			continue;
		if (opt.end.ptr && key_cmp(k->p, k->n, opt.end.ptr, opt.end.len) >= 0)
			continue;
		lc.want[lc.nwant++] = i;
	}
	int expect = lc.nwant;
	if (opt.limit && (size_t)expect > opt.limit)
		expect = (int)opt.limit;
	if (lc.stop_at && expect > lc.stop_at)
		expect = lc.stop_at;
	if (opt.start.ptr && opt.start_after.ptr)
		expect = -EINVAL;
	run.ctr.lists++;
	if (!obj_idle(c))
		run.ctr.lists_unsettled++;
	int r = duro_list(o, &opt, list_fn, &lc);
	EXPECT(r == expect && !lc.mismatch && (r < 0 || lc.got == r),
	       "list (prefix %zu bytes, start %d, start_after %d, end %d, reverse %d, limit %zu, stop %d): "
	       "returned %d with %d entries%s, want %d",
	       opt.prefix.len, has_start, has_after, has_end, opt.reverse, opt.limit, lc.stop_at, r, lc.got,
	       lc.mismatch ? " not as the model's" : "", expect);
}

static void check_get(struct duro_object *o, const struct state *st, int ki)
{
	struct duro_str v;
	int r = duro_get(o, keys[ki].p, keys[ki].n, &v);
	const struct val *x = &st->k[ki];
	EXPECT(r == x->present && (!r || (v.len == x->len && !memcmp(v.ptr, x->v, x->len))),
	       "get of key %d: %d (%zu bytes), want %d (%u bytes)", ki, r, r == 1 ? v.len : 0,
	       x->present, x->len);
	if (trace && bad) {
		struct state db;
		rocksdb_state(duro_object_id(o), &db);
		struct object *obj = (struct object *)o;
		fprintf(stderr, "  RocksDB: key %d present %d len %u; wiped_seq %llu pending_seq %llu\n", ki,
			db.k[ki].present, db.k[ki].len, (unsigned long long)obj->kv.wiped_seq,
			(unsigned long long)obj->kv.pending_seq);
	}
}

/* One operation of a running event on state st (the event's view), with its savepoints. */
static void one_op(struct core *c, struct duro_object *o, struct state *st, struct state *stack,
		   int *depth)
{
	uint8_t v[MAX_VALUE + 16];
	int ki = pick_key(), r, want;
	unsigned op = (unsigned)rnd(100);
	run.ctr.ops++;
	TRACE("  op %u key %d depth %d\n", op, ki, *depth);
	if (op < 30) {
		size_t len = pick_value(v);
		struct state next = *st;
		want = model_put(&next, ki, v, len);
		r = duro_put(o, keys[ki].p, keys[ki].n, v, len);
		EXPECT(r == want, "put of key %d, %zu bytes at size %zu: %d, want %d", ki, len,
		       size_of(st), r, want);
		if (r == 0 && want == 0)
			*st = next;
		run.ctr.enospc += want == -ENOSPC;
	} else if (op < 45) {
		want = st->k[ki].present;
		r = duro_delete(o, keys[ki].p, keys[ki].n);
		EXPECT(r == want, "delete of key %d: %d, want %d", ki, r, want);
		st->k[ki].present = 0;
	} else if (op < 60) {
		check_get(o, st, ki);
	} else if (op < 68) {
		check_list(c, o, st);
	} else if (op < 71) {
		/* put_many: all or nothing */
		struct duro_kv e[6];
		static uint8_t vals[6][MAX_VALUE + 16];
		size_t n = 1 + rnd(6);
		struct state next = *st;
		want = *depth == MAX_DEPTH ? -ENOSPC : 0;
		for (size_t i = 0; i < n; i++) {
			int k = pick_key();
			size_t len = pick_value(vals[i]);
			e[i] = (struct duro_kv){ { keys[k].p, keys[k].n }, { (const char *)vals[i], len } };
			if (want == 0)
				want = model_put(&next, k, vals[i], len);
		}
		r = duro_put_many(o, e, n);
		EXPECT(r == want, "put_many of %zu: %d, want %d", n, r, want);
		if (r == 0 && want == 0)
			*st = next;
	} else if (op < 74) {
		struct duro_str ks[6], vs[6];
		int kis[6], found = 0;
		size_t n = 1 + rnd(6);
		for (size_t i = 0; i < n; i++) {
			kis[i] = pick_key();
			ks[i] = (struct duro_str){ keys[kis[i]].p, keys[kis[i]].n };
			found += st->k[kis[i]].present;
		}
		r = duro_get_many(o, ks, n, vs);
		EXPECT(r == found, "get_many of %zu: %d, want %d", n, r, found);
		for (size_t i = 0; r >= 0 && i < n; i++) {
			const struct val *x = &st->k[kis[i]];
			EXPECT(x->present ? vs[i].ptr && vs[i].len == x->len && !memcmp(vs[i].ptr, x->v, x->len)
					  : vs[i].ptr == NULL,
			       "get_many entry %zu (key %d)", i, kis[i]);
		}
	} else if (op < 77) {
		struct duro_str ks[6];
		size_t n = 1 + rnd(6);
		struct state next = *st;
		int count = 0, invalid = rnd(10) == 0;
		for (size_t i = 0; i < n; i++) {
			int k = pick_key();
			ks[i] = (struct duro_str){ keys[k].p, keys[k].n };
			count += next.k[k].present;
			next.k[k].present = 0;
		}
		if (invalid) { /* a key over the limit: the whole call is undone */
			static char toolong[MAX_KEY + 1];
			memset(toolong, 'x', sizeof(toolong));
			ks[n - 1] = (struct duro_str){ toolong, sizeof(toolong) };
		}
		want = *depth == MAX_DEPTH ? -ENOSPC : invalid ? -EINVAL : count;
		r = duro_delete_many(o, ks, n);
		EXPECT(r == want, "delete_many of %zu: %d, want %d", n, r, want);
		if (r >= 0 && want >= 0)
			*st = next;
	} else if (op < 80) {
		r = duro_delete_all(o);
		EXPECT(r == 0, "delete_all: %d", r);
		memset(st, 0, sizeof(*st));
	} else if (op < 88) {
		r = duro_txn_begin(o);
		want = *depth == MAX_DEPTH ? -ENOSPC : 0;
		EXPECT(r == want, "txn_begin at depth %d: %d", *depth, r);
		if (r == 0 && want == 0)
			stack[(*depth)++] = *st;
	} else if (op < 93) {
		r = duro_txn_commit(o);
		EXPECT(r == (*depth ? 0 : -EINVAL), "txn_commit at depth %d: %d", *depth, r);
		if (*depth && r == 0)
			(*depth)--;
	} else if (op < 98) {
		r = duro_txn_rollback(o);
		EXPECT(r == (*depth ? 0 : -EINVAL), "txn_rollback at depth %d: %d", *depth, r);
		if (*depth && r == 0)
			*st = stack[--(*depth)];
	} else {
		/* duro's own keys and oversized keys are refused and change nothing */
		static char toolong[MAX_KEY + 1];
		memset(toolong, 'y', sizeof(toolong));
		EXPECT(duro_put(o, "\xff\xffmine", 6, "x", 1) == -EINVAL, "put of a reserved key");
		struct duro_str sv;
		EXPECT(duro_get(o, "\xff\xff", 2, &sv) == -EINVAL, "get of a reserved key");
		EXPECT(duro_put(o, toolong, sizeof(toolong), "x", 1) == -EINVAL, "put of a long key");
		EXPECT(duro_delete(o, toolong, sizeof(toolong)) == -EINVAL, "delete of a long key");
	}
}

static struct object *activate(struct core *c, int x)
{
	int err = 0;
	struct object *obj = event_activate(c, ns_index, &objs[x].id, &err);
	EXPECT(obj, "activating object %d: %d", x, err);
	return obj;
}

/* One event of object x: random operations, then commit or fail, and a sync(). */
static void one_event(struct core *c, int x)
{
	struct object_model *m = &objs[x];
	struct object *obj = activate(c, x);
	if (!obj)
		return;
	struct duro_object *o = (struct duro_object *)obj;
	static struct state st, stack[MAX_DEPTH];
	int depth = 0;
	st = m->cur;
	event_begin(c, obj);
	for (uint64_t i = 1 + rnd(10); i > 0 && !bad; i--)
		one_op(c, o, &st, stack, &depth);
	int ok = rnd(8) != 0;
	uint64_t event = ++run.next_event;
	int r = duro_sync(o, on_synced, (void *)(uintptr_t)event);
	EXPECT(r == 0, "sync: %d", r);
	int wrote = event_end(c, obj, ok);
	EXPECT(wrote >= 0, "event end: %d", wrote);
	TRACE("event %llu on object %d: %s, wrote %d\n", (unsigned long long)event, x,
	      ok ? "ok" : "failed", wrote);
	run.ctr.events++;
	if (ok)
		m->cur = st; /* open transactions commit with the event */
	else
		run.ctr.failed_events++;
	hist_push(m, event);
	run.pending++;
}

/* Every key and a full listing each way, in one event, against the model. */
static void verify_object(struct core *c, int x, const struct state *want)
{
	struct object *obj = activate(c, x);
	if (!obj)
		return;
	struct duro_object *o = (struct duro_object *)obj;
	event_begin(c, obj);
	for (int ki = 0; ki < NKEYS; ki++)
		check_get(o, want, ki);
	for (int rev = 0; rev < 2; rev++) {
		struct list_check lc = { .st = want };
		for (int j = 0; j < NKEYS; j++) {
			int i = rev ? NKEYS - 1 - j : j;
			if (want->k[i].present)
				lc.want[lc.nwant++] = i;
		}
		struct duro_list_options opt = { .reverse = rev };
		int r = duro_list(o, &opt, list_fn, &lc);
		EXPECT(r == lc.nwant && !lc.mismatch, "full listing of object %d (reverse %d): %d of %d",
		       x, rev, r, lc.nwant);
	}
	event_end(c, obj, 1);
}

/* The objects' IDs, from the namespace's secret (made by the first start, kept since). */
static void ids(void)
{
	const struct duro_namespace *ns = duro_namespace("Oracle");
	CHECK(ns != NULL);
	ns_index = ns->index;
	for (int x = 0; x < NOBJ; x++) {
		char name[8];
		struct duro_id id;
		int n = snprintf(name, sizeof(name), "o%d", x);
		CHECK_EQ(duro_id_from_name(ns, name, (size_t)n, &id), 0);
		if (run.next_event)
			CHECK(!memcmp(id.bytes, objs[x].id.bytes, DURO_ID_BYTES)); /* stable */
		objs[x].id = id;
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
			verify_object(c, x, &objs[x].durable);
			objs[x].cur = objs[x].durable;
		}
		return RT_BUSY;
	}
	if (bad)
		return RT_DONE;
	if (run.settling) {
		/* Once nothing is on its way to RocksDB, an object can go: its next events read
		 * it back key by key while their own writes are not in RocksDB yet. */
		if (!obj_idle(c))
			return RT_IDLE;
		run.settling = 0;
		int x = (int)rnd(NOBJ);
		int r = obj_evict(c, ns_index, &objs[x].id);
		TRACE("evict object %d when settled: %d\n", x, r);
		EXPECT(r == 1 || r == 0, "evict when settled: %d", r);
		run.ctr.evictions += r == 1;
		return RT_BUSY;
	}
	if (run.ctr.events < run.target) {
		/* Several events a turn, often on one object: they join one batch, and the next
		 * turns' events read and list while it is on its way to disk. */
		unsigned n = (unsigned)rnd(4);
		for (unsigned i = 0; i < n && run.ctr.events < run.target; i++)
			one_event(c, (int)rnd(NOBJ));
		if (rnd(12) == 0) {
			int x = (int)rnd(NOBJ);
			int r = obj_evict(c, ns_index, &objs[x].id);
			TRACE("evict object %d: %d\n", x, r);
			EXPECT(r == 1 || r == 0 || r == -EBUSY, "evict: %d", r);
			run.ctr.evictions += r == 1;
		}
		run.settling = rnd(40) == 0;
		return n ? RT_BUSY : RT_IDLE;
	}
	/* Done: wait for every outcome and for RocksDB to hold every durable write. */
	if (run.pending || !obj_idle(c))
		return RT_IDLE;
	for (int x = 0; x < NOBJ; x++) {
		EXPECT(same_state(&objs[x].cur, &objs[x].durable), "object %d: reads differ from durable", x);
		struct state db;
		int r = rocksdb_state(&objs[x].id, &db);
		EXPECT(r == 0 && same_state(&db, &objs[x].durable), "object %d: RocksDB differs (%d)", x, r);
		verify_object(c, x, &objs[x].durable);
	}
	return RT_DONE;
}

static int oracle_class_request(struct duro_object *o, const struct duro_request *req,
				struct duro_response *res)
{
	(void)o;
	(void)req;
	(void)res;
	return 0;
}

static const struct duro_class oracle_class = { .name = "Oracle", .on_request = oracle_class_request };

static struct rt rt;

/* ---- a regression: keys read while a delete_all hid storage ----
 * A read after delete_all cached the key as absent, outside the transaction, so when the
 * delete_all was rolled back (a failed event, or txn_rollback past it) the key still read
 * as absent although RocksDB held it. */

static struct duro_id regress_id;
static int regress_step;

static int regress_get(struct duro_object *o, const char *k, const char *want)
{
	struct duro_str v;
	int r = duro_get(o, k, strlen(k), &v);
	if (!want)
		return r == 0;
	return r == 1 && v.len == strlen(want) && !memcmp(v.ptr, want, v.len);
}

static int count_fn(void *arg, struct duro_str k, struct duro_str v)
{
	(void)k;
	(void)v;
	(*(int *)arg)++;
	return 0;
}

static int regress_count(struct duro_object *o)
{
	int n = 0;
	struct duro_list_options all = { 0 };
	duro_list(o, &all, count_fn, &n);
	return n;
}

static enum rt_step regress(struct core *c, void *arg)
{
	(void)arg;
	if (!obj_idle(c))
		return RT_IDLE; /* each step starts from a state RocksDB has */
	if (regress_step == 0) {
		const struct duro_namespace *ns = duro_namespace("Oracle");
		ns_index = ns->index;
		CHECK_EQ(duro_id_from_name(ns, "regress", 7, &regress_id), 0);
	}
	int err = 0;
	if (regress_step == 1)
		CHECK_EQ(obj_evict(c, ns_index, &regress_id), 1); /* reads go to RocksDB from now */
	struct object *obj = event_activate(c, ns_index, &regress_id, &err);
	CHECK(obj != NULL);
	if (!obj)
		return RT_DONE;
	struct duro_object *o = (struct duro_object *)obj;
	event_begin(c, obj);
	int ok = 1;
	switch (regress_step) {
	case 0:
		CHECK_EQ(duro_put(o, "a", 1, "1", 1), 0);
		CHECK_EQ(duro_put(o, "b", 1, "2", 1), 0);
		CHECK_EQ(duro_put(o, "d", 1, "4", 1), 0);
		CHECK_EQ(duro_put(o, "e", 1, "5", 1), 0);
		break;
	case 1: /* delete_all, a read of a key not cached, then the event fails */
		CHECK_EQ(duro_delete_all(o), 0);
		CHECK(regress_get(o, "a", NULL));
		CHECK_EQ(regress_count(o), 0);
		ok = 0;
		break;
	case 2:
		CHECK(regress_get(o, "a", "1"));
		CHECK(regress_get(o, "b", "2"));
		CHECK_EQ(regress_count(o), 4);
		/* a rolled back transaction around delete_all, inside an event that commits */
		CHECK_EQ(duro_txn_begin(o), 0);
		CHECK_EQ(duro_delete_all(o), 0);
		CHECK(regress_get(o, "d", NULL));
		CHECK_EQ(duro_txn_rollback(o), 0);
		CHECK(regress_get(o, "d", "4"));
		break;
	case 3:
		/* a savepoint after delete_all: rolling back to it keeps the delete_all; the
		 * event fails, which undoes the delete_all */
		CHECK_EQ(duro_delete_all(o), 0);
		CHECK_EQ(duro_txn_begin(o), 0);
		CHECK(regress_get(o, "e", NULL));
		CHECK_EQ(duro_txn_rollback(o), 0);
		CHECK(regress_get(o, "e", NULL));
		CHECK_EQ(regress_count(o), 0);
		ok = 0;
		break;
	case 4:
		CHECK(regress_get(o, "e", "5"));
		CHECK_EQ(regress_count(o), 4);
		/* committed: what was read through the delete_all is what the batch leaves */
		CHECK_EQ(duro_delete_all(o), 0);
		CHECK(regress_get(o, "a", NULL));
		CHECK_EQ(duro_put(o, "c", 1, "3", 1), 0);
		break;
	case 5:
		CHECK(regress_get(o, "a", NULL));
		CHECK(regress_get(o, "b", NULL));
		CHECK(regress_get(o, "c", "3"));
		CHECK_EQ(regress_count(o), 1);
		break;
	}
	CHECK(event_end(c, obj, ok) >= 0);
	return ++regress_step == 6 ? RT_DONE : RT_BUSY;
}

static void test_rolled_back_delete_all_hides_nothing(void)
{
	regress_step = 0;
	CHECK_EQ(rt_run(&rt, regress, NULL), 0);
	CHECK_EQ(regress_step, 6);
}

static void start_run(unsigned target, int verify)
{
	memset(&run.ctr, 0, sizeof(run.ctr));
	run.target = target;
	run.verify_at_start = verify;
	run.verified = 0;
	run.ids_ready = 0;
	run.settling = 0;
	run.pending = 0;
	int r = rt_run(&rt, step, NULL);
	CHECK_EQ(r, 0);
	CHECK_EQ(run.pending, 0);
	printf("# %llu events (%llu failed), %llu ops, %llu lists (%llu with writes not in RocksDB), "
	       "%llu ENOSPC, %llu evictions, syncs %llu ok %llu failed, %llu gate checks\n",
	       (unsigned long long)run.ctr.events, (unsigned long long)run.ctr.failed_events,
	       (unsigned long long)run.ctr.ops, (unsigned long long)run.ctr.lists,
	       (unsigned long long)run.ctr.lists_unsettled, (unsigned long long)run.ctr.enospc,
	       (unsigned long long)run.ctr.evictions, (unsigned long long)run.ctr.sync_ok,
	       (unsigned long long)run.ctr.sync_failed, (unsigned long long)run.ctr.gate_checks);
}

static void test_oracle_plain(void)
{
	start_run(1500, 0);
	CHECK(run.ctr.lists_unsettled > 0); /* the merge with unapplied writes was exercised */
	CHECK(run.ctr.enospc > 0 && run.ctr.evictions > 0 && run.ctr.failed_events > 0);
	CHECK(run.ctr.sync_ok > 0 && run.ctr.sync_failed == 0);
}

static void test_oracle_failed_syncs(void)
{
	/* Every 5th commit sync fails as EIO would (storage's fault injection). */
	setenv("DURO_FAULT_SYNC_EVERY", "5", 1);
	start_run(1000, 1);
	unsetenv("DURO_FAULT_SYNC_EVERY");
	CHECK(run.ctr.sync_failed > 0 && run.ctr.sync_ok > 0);
}

static void test_oracle_restart_finds_durable_state(void)
{
	start_run(300, 1);
	CHECK(run.ctr.sync_ok > 0);
}

int main(void)
{
	run.rs = check_seed("test_obj_kv");
	trace = getenv("DURO_TEST_TRACE") != NULL;
	keys_init();
	duro_register_class(&oracle_class);
	static const char *const classes[] = { "Oracle" };
	rt_init(&rt, 1, classes, 1);
	rt.cfg.limits.max_key = MAX_KEY;
	rt.cfg.limits.max_value = MAX_VALUE;
	rt.cfg.limits.max_object_bytes = MAX_OBJECT;
	RUN(test_rolled_back_delete_all_hides_nothing);
	RUN(test_oracle_plain);
	RUN(test_oracle_failed_syncs);
	RUN(test_oracle_restart_finds_durable_state);
	for (int x = 0; x < NOBJ; x++)
		free(objs[x].hist);
	rt_cleanup(&rt);
	return CHECK_DONE();
}
