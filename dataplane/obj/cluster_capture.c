/* A slot move's live tail (cluster_capture.h): per core, a few captures, each a buffer of
 * the records of one slot's writes, filled after each batch is applied. */
#include "cluster_capture.h"
#include "core.h"
#include "object-t.h"
#include "store_slot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct capture {
	unsigned slot;
	uint8_t active, void_;
	char *buf;
	size_t len, cap;
	long records;
};

struct obj_move_core {
	unsigned nactive;
	struct capture cap[OBJ_MOVE_CAPTURES];
};

static struct capture *capture_of(struct core *c, unsigned slot)
{
	struct obj_move_core *m = c->obj->move;
	for (unsigned i = 0; m && i < OBJ_MOVE_CAPTURES; i++)
		if (m->cap[i].active && m->cap[i].slot == slot)
			return &m->cap[i];
	return NULL;
}

static void capture_reset(struct capture *k)
{
	free(k->buf);
	k->buf = NULL;
	k->len = k->cap = 0;
	k->records = 0;
	k->void_ = 0;
}

int obj_cluster_capture_start(struct core *c, unsigned slot)
{
	if (!c->obj->move) {
		c->obj->move = calloc(1, sizeof(*c->obj->move));
		if (!c->obj->move)
			return -ENOMEM;
	}
	struct capture *k = capture_of(c, slot);
	if (!k) {
		struct obj_move_core *m = c->obj->move;
		for (unsigned i = 0; i < OBJ_MOVE_CAPTURES && !k; i++)
			if (!m->cap[i].active)
				k = &m->cap[i];
		if (!k)
			return -EBUSY;
		k->active = 1;
		k->slot = slot;
		m->nactive++;
	}
	capture_reset(k);
	return 0;
}

long obj_cluster_capture_take(struct core *c, unsigned slot, char **buf, size_t *len)
{
	struct capture *k = capture_of(c, slot);
	*buf = NULL;
	*len = 0;
	if (!k)
		return -ENOENT;
	if (k->void_)
		return -EOVERFLOW;
	long n = k->records;
	*buf = k->buf;
	*len = k->len;
	k->buf = NULL;
	k->len = k->cap = 0;
	k->records = 0;
	return n;
}

void obj_cluster_capture_stop(struct core *c, unsigned slot)
{
	struct capture *k = capture_of(c, slot);
	if (!k)
		return;
	capture_reset(k);
	k->active = 0;
	c->obj->move->nactive--;
}

int obj_cluster_capture_put(char **buf, size_t *len, size_t *cap, int op, int cf, const char *key,
			    size_t klen, const char *val, size_t vlen)
{
	size_t need = 10 + klen + vlen;
	if (*len + need > *cap) {
		size_t ncap = *cap ? *cap : 64 * 1024;
		while (ncap < *len + need)
			ncap *= 2;
		char *b = realloc(*buf, ncap);
		if (!b)
			return -ENOMEM;
		*buf = b;
		*cap = ncap;
	}
	char *p = *buf + *len;
	uint32_t kl = (uint32_t)klen, vl = (uint32_t)vlen;
	p[0] = (char)op;
	p[1] = (char)cf;
	memcpy(p + 2, &kl, 4);
	memcpy(p + 6, &vl, 4);
	memcpy(p + 10, key, klen);
	if (vlen)
		memcpy(p + 10 + klen, val, vlen);
	*len += need;
	return 0;
}

static void capture_add(struct capture *k, enum store_op op, int cf, const char *key, size_t klen,
			const char *val, size_t vlen)
{
	if (k->void_)
		return;
	if (k->len + 10 + klen + vlen > OBJ_MOVE_CAPTURE_MAX ||
	    obj_cluster_capture_put(&k->buf, &k->len, &k->cap, op, cf, key, klen, val, vlen) < 0) {
		capture_reset(k);
		k->void_ = 1;
		return;
	}
	k->records++;
}

static void capture_op(void *arg, enum store_op op, int cf, const char *key, size_t klen,
		       const char *val, size_t vlen)
{
	struct core *c = arg;
	struct obj_move_core *m = c->obj->move;
	for (unsigned i = 0; i < OBJ_MOVE_CAPTURES; i++) {
		struct capture *k = &m->cap[i];
		if (k->active && store_slot_contains(cf, k->slot, key, klen))
			capture_add(k, op, cf, key, klen, val, vlen);
	}
}

void obj_cluster_capture_batch(struct core *c, struct store_batch *b)
{
	struct obj_move_core *m = c->obj->move;
	if (!m || !m->nactive)
		return;
	if (store_batch_each(c->obj->rt->store, b, capture_op, c) < 0) {
		/* A write it cannot read: no capture may claim to be whole. */
		for (unsigned i = 0; i < OBJ_MOVE_CAPTURES; i++)
			if (m->cap[i].active) {
				capture_reset(&m->cap[i]);
				m->cap[i].void_ = 1;
			}
	}
}

void obj_cluster_move_fini(struct core *c)
{
	struct obj_move_core *m = c->obj->move;
	if (!m)
		return;
	for (unsigned i = 0; i < OBJ_MOVE_CAPTURES; i++)
		capture_reset(&m->cap[i]);
	free(m);
	c->obj->move = NULL;
}
