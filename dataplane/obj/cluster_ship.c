/* Replication's owner side on a core (cluster_ship.h): a batch's writes sorted into
 * per-slot records and queued, box-wide, for the replicator thread. */
#include "cluster_ship.h"
#include "base_assert.h"
#include "cluster_capture.h"
#include "cluster_gate.h"
#include "core.h"
#include "object-t.h"
#include "store_slot.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Slots of one batch sorted at once; a batch touching more ships them in several items
 * (each still one record of its slot, in commit order). */
#define SHIP_SLOTS 64

/* The box's queue: every core produces, the replicator consumes. A mutex rather than a
 * ring: items are one per slot per batch, and the consumer blocks on its sends anyway. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct obj_ship_item *head, *tail;
	size_t bytes;
	_Atomic uint64_t dropped;
} q = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0 };

struct ship_buf {
	int slot;
	char *buf;
	size_t len, cap;
	int failed;
};

struct ship_ctx {
	const struct obj_cluster_table *t;
	struct ship_buf b[SHIP_SLOTS];
	unsigned n;
	int overflow; /* a slot found no buffer: shipped by another pass */
	uint64_t done[DURO_SLOTS / 64]; /* slots shipped by an earlier pass */
};

static void ship_op(void *arg, enum store_op op, int cf, const char *key, size_t klen,
		    const char *val, size_t vlen)
{
	struct ship_ctx *x = arg;
	int slot = store_slot_of(cf, key, klen);
	if (slot < 0 || !(x->t->owned[slot / 64] >> (slot % 64) & 1) ||
	    (x->done[slot / 64] >> (slot % 64) & 1))
		return;
	struct ship_buf *sb = NULL;
	for (unsigned i = 0; i < x->n && !sb; i++)
		if (x->b[i].slot == slot)
			sb = &x->b[i];
	if (!sb) {
		if (x->n == SHIP_SLOTS) {
			x->overflow = 1;
			return;
		}
		sb = &x->b[x->n++];
		sb->slot = slot;
	}
	if (!sb->failed &&
	    obj_cluster_capture_put(&sb->buf, &sb->len, &sb->cap, op, cf, key, klen, val, vlen) < 0)
		sb->failed = 1;
}

/* Turns x's buffers into items at the end of the list *h..*t. -ENOMEM when one failed. */
static int make_items(const struct ship_ctx *x, unsigned core, uint64_t seq,
		      struct obj_ship_item **h, struct obj_ship_item **t, size_t *bytes)
{
	for (unsigned i = 0; i < x->n; i++) {
		const struct ship_buf *sb = &x->b[i];
		struct obj_ship_item *it = sb->failed ? NULL : malloc(sizeof(*it) + sb->len);
		if (!it)
			return -ENOMEM;
		*it = (struct obj_ship_item){ .slot = (unsigned)sb->slot,
					      .epoch = x->t->epoch[sb->slot], .core = core,
					      .seq = seq, .len = sb->len };
		memcpy(it->data, sb->buf, sb->len);
		if (*t)
			(*t)->next = it;
		else
			*h = it;
		*t = it;
		*bytes += sb->len;
	}
	return 0;
}

static void ctx_free(struct ship_ctx *x)
{
	for (unsigned i = 0; i < x->n; i++)
		free(x->b[i].buf);
	memset(x->b, 0, sizeof(x->b));
	x->n = 0;
}

static void items_free(struct obj_ship_item *it)
{
	while (it) {
		struct obj_ship_item *next = it->next;
		free(it);
		it = next;
	}
}

int obj_cluster_ship_batch(struct core *c, struct store_batch *b, uint64_t seq)
{
	const struct obj_cluster_table *t = c->obj->cluster;
	if (!t)
		return 0;
	struct store *st = c->obj->rt->store;
	struct ship_ctx *x = calloc(1, sizeof(*x));
	struct obj_ship_item *h = NULL, *tail = NULL;
	size_t bytes = 0;
	if (!x) {
		atomic_fetch_add(&q.dropped, 1);
		return -ENOBUFS;
	}
	int r = 0;
	x->t = t;
	/* Usually one pass; a batch of more than SHIP_SLOTS slots takes a pass per
	 * SHIP_SLOTS of them. */
	while (r == 0) {
		x->overflow = 0;
		if (store_batch_each(st, b, ship_op, x) < 0)
			r = -EPROTO;
		else
			r = make_items(x, c->index, seq, &h, &tail, &bytes);
		for (unsigned i = 0; i < x->n; i++)
			x->done[x->b[i].slot / 64] |= 1ull << (x->b[i].slot % 64);
		ctx_free(x);
		if (!x->overflow)
			break;
	}
	free(x);
	long n = 0;
	for (struct obj_ship_item *it = h; it; it = it->next)
		n++;
	if (r == 0 && n == 0)
		return 0;
	/* All of a batch at once: the replicator tells its outcome after its last item. */
	pthread_mutex_lock(&q.lock);
	if (r == 0 && q.bytes + bytes > OBJ_SHIP_QUEUE_MAX)
		r = -ENOBUFS;
	if (r == 0) {
		tail->last = 1;
		if (q.tail)
			q.tail->next = h;
		else
			q.head = h;
		q.tail = tail;
		q.bytes += bytes;
		pthread_cond_signal(&q.cond);
	}
	pthread_mutex_unlock(&q.lock);
	if (r < 0) {
		items_free(h);
		atomic_fetch_add(&q.dropped, 1);
		return -ENOBUFS;
	}
	return n > INT32_MAX ? INT32_MAX : (int)n;
}

/* Outcomes per core: the replicator appends, the core takes. */
#define SHIP_RESULTS 4096
static struct ship_results {
	pthread_mutex_t lock;
	unsigned head, n;
	uint64_t seq[SHIP_RESULTS];
	uint8_t ok[SHIP_RESULTS];
} results[DURO_MAX_CORES];
static pthread_once_t results_once = PTHREAD_ONCE_INIT;

static void results_init(void)
{
	for (unsigned i = 0; i < DURO_MAX_CORES; i++)
		pthread_mutex_init(&results[i].lock, NULL);
}

void obj_cluster_ship_done(unsigned core, uint64_t seq, int ok)
{
	DURO_ASSERT(core < DURO_MAX_CORES);
	pthread_once(&results_once, results_init);
	struct ship_results *r = &results[core];
	pthread_mutex_lock(&r->lock);
	if (r->n == SHIP_RESULTS) {
		/* The core is not taking them (stopping): the oldest word is lost, and its
		 * batch stays held until the process ends. */
		r->head = (r->head + 1) % SHIP_RESULTS;
		r->n--;
	}
	unsigned at = (r->head + r->n) % SHIP_RESULTS;
	r->seq[at] = seq;
	r->ok[at] = (uint8_t)(ok != 0);
	r->n++;
	pthread_mutex_unlock(&r->lock);
}

unsigned obj_cluster_ship_poll(struct core *c, uint64_t *seq, uint8_t *ok, unsigned max)
{
	pthread_once(&results_once, results_init);
	struct ship_results *r = &results[c->index];
	pthread_mutex_lock(&r->lock);
	unsigned k = 0;
	while (k < max && r->n) {
		seq[k] = r->seq[r->head];
		ok[k] = r->ok[r->head];
		r->head = (r->head + 1) % SHIP_RESULTS;
		r->n--;
		k++;
	}
	pthread_mutex_unlock(&r->lock);
	return k;
}

struct obj_ship_item *obj_cluster_ship_take(unsigned wait_ms)
{
	pthread_mutex_lock(&q.lock);
	if (!q.head) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		ts.tv_sec += wait_ms / 1000 + ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&q.cond, &q.lock, &ts);
	}
	struct obj_ship_item *h = q.head;
	q.head = q.tail = NULL;
	q.bytes = 0;
	pthread_mutex_unlock(&q.lock);
	return h;
}

uint64_t obj_cluster_ship_dropped(void) { return atomic_load(&q.dropped); }
