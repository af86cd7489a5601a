/* Replication's owner side on a core (cluster_ship.h): a batch's writes sorted into
 * per-slot records and queued, box-wide, for the replicator thread. */
#include "cluster_ship.h"
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

static void enqueue(const struct ship_ctx *x)
{
	for (unsigned i = 0; i < x->n; i++) {
		const struct ship_buf *sb = &x->b[i];
		struct obj_ship_item *it = sb->failed ? NULL : malloc(sizeof(*it) + sb->len);
		pthread_mutex_lock(&q.lock);
		if (!it || q.bytes + sb->len > OBJ_SHIP_QUEUE_MAX) {
			pthread_mutex_unlock(&q.lock);
			free(it);
			atomic_fetch_add(&q.dropped, 1);
			continue;
		}
		it->next = NULL;
		it->slot = (unsigned)sb->slot;
		it->epoch = x->t->epoch[sb->slot];
		it->len = sb->len;
		memcpy(it->data, sb->buf, sb->len);
		if (q.tail)
			q.tail->next = it;
		else
			q.head = it;
		q.tail = it;
		q.bytes += sb->len;
		pthread_cond_signal(&q.cond);
		pthread_mutex_unlock(&q.lock);
	}
}

static void ctx_free(struct ship_ctx *x)
{
	for (unsigned i = 0; i < x->n; i++)
		free(x->b[i].buf);
	memset(x->b, 0, sizeof(x->b));
	x->n = 0;
}

void obj_cluster_ship_batch(struct core *c, struct store_batch *b)
{
	const struct obj_cluster_table *t = c->obj->cluster;
	if (!c->obj->rt->cfg->replicate || !t)
		return;
	struct store *st = c->obj->rt->store;
	struct ship_ctx *x = calloc(1, sizeof(*x));
	if (!x) {
		atomic_fetch_add(&q.dropped, 1);
		return;
	}
	x->t = t;
	/* Usually one pass; a batch of more than SHIP_SLOTS slots takes a pass per
	 * SHIP_SLOTS of them. */
	do {
		x->overflow = 0;
		if (store_batch_each(st, b, ship_op, x) < 0) {
			atomic_fetch_add(&q.dropped, 1);
			break;
		}
		enqueue(x);
		for (unsigned i = 0; i < x->n; i++)
			x->done[x->b[i].slot / 64] |= 1ull << (x->b[i].slot % 64);
		ctx_free(x);
	} while (x->overflow);
	ctx_free(x);
	free(x);
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
