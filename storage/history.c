/* Point-in-time recovery's records: writing one per commit of an object, and rebuilding an
 * object's state from a run of them (history.h has the format). */
#include "history.h"
#include "keys.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ---- */

static void grow_to(struct hist_rec *r, size_t need)
{
	if (r->err || need <= r->cap)
		return;
	size_t cap = r->cap ? r->cap : 256;
	while (cap < need)
		cap *= 2;
	uint8_t *nb = realloc(r->buf, cap);
	if (!nb) {
		r->err = -ENOMEM;
		return;
	}
	r->buf = nb;
	r->cap = cap;
}

static void put(struct hist_rec *r, const void *p, size_t n)
{
	grow_to(r, r->len + n);
	if (r->err)
		return;
	if (n)
		memcpy(r->buf + r->len, p, n);
	r->len += n;
}

static void put32(struct hist_rec *r, uint32_t v) { put(r, &v, 4); }
static void put64(struct hist_rec *r, uint64_t v) { put(r, &v, 8); }

void hist_rec_begin(struct hist_rec *r, unsigned flags, uint64_t time_ms)
{
	*r = (struct hist_rec){ 0 };
	uint8_t head[2] = { HIST_VERSION, (uint8_t)flags };
	put(r, head, 2);
	put64(r, time_ms);
	r->nkv_at = r->len;
	put32(r, 0);
}

void hist_rec_flags(struct hist_rec *r, unsigned flags)
{
	if (!r->err)
		r->buf[1] |= (uint8_t)flags;
}

void hist_rec_kv(struct hist_rec *r, const void *k, size_t klen, const void *v, size_t vlen, int present)
{
	uint8_t p = (uint8_t)(present != 0);
	put(r, &p, 1);
	put32(r, (uint32_t)klen);
	put32(r, present ? (uint32_t)vlen : 0);
	put(r, k, klen);
	if (present)
		put(r, v, vlen);
	r->nkv++;
}

static void pages_start(struct hist_rec *r)
{
	if (r->npages_at)
		return;
	r->npages_at = r->len;
	put32(r, 0);
}

void hist_rec_sql(struct hist_rec *r, uint64_t size, uint32_t keep_pages)
{
	if (r->sql_done || r->npages_at)
		return;
	hist_rec_flags(r, HIST_SQL);
	put64(r, size);
	put32(r, keep_pages);
	r->sql_done = 1;
}

void hist_rec_page(struct hist_rec *r, uint32_t pgno, const void *value, size_t len)
{
	pages_start(r);
	put32(r, pgno);
	put32(r, (uint32_t)len);
	put(r, value, len);
	r->npages++;
}

int hist_rec_end(struct hist_rec *r)
{
	pages_start(r);
	if (r->err)
		return r->err;
	memcpy(r->buf + r->nkv_at, &r->nkv, 4);
	memcpy(r->buf + r->npages_at, &r->npages, 4);
	return 0;
}

void hist_rec_free(struct hist_rec *r)
{
	free(r->buf);
	*r = (struct hist_rec){ 0 };
}

/* ---- reading ---- */

struct cursor {
	const uint8_t *p, *end;
	int bad;
};

static const uint8_t *take(struct cursor *c, size_t n)
{
	if (c->bad || (size_t)(c->end - c->p) < n) {
		c->bad = 1;
		return NULL;
	}
	const uint8_t *at = c->p;
	c->p += n;
	return at;
}

static uint32_t get32(struct cursor *c)
{
	const uint8_t *p = take(c, 4);
	uint32_t v = 0;
	if (p)
		memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(struct cursor *c)
{
	const uint8_t *p = take(c, 8);
	uint64_t v = 0;
	if (p)
		memcpy(&v, p, 8);
	return v;
}

int hist_peek(const void *rec, size_t len, unsigned *flags, uint64_t *time_ms)
{
	struct cursor c = { rec, (const uint8_t *)rec + len, 0 };
	const uint8_t *h = take(&c, 2);
	uint64_t t = get64(&c);
	if (c.bad || h[0] != HIST_VERSION)
		return -EBADMSG;
	if (flags)
		*flags = h[1];
	if (time_ms)
		*time_ms = t;
	return 0;
}

/* ---- rebuilding ---- */

static uint64_t hash(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

void hist_state_init(struct hist_state *s) { *s = (struct hist_state){ 0 }; }

static void clear_kv(struct hist_state *s)
{
	for (size_t i = 0; i < s->nbuckets; i++)
		for (struct hist_kv *e = s->buckets[i], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	if (s->nbuckets)
		memset(s->buckets, 0, s->nbuckets * sizeof(*s->buckets));
	s->count = 0;
}

static void drop_pages_from(struct hist_state *s, uint32_t keep)
{
	for (uint32_t i = keep; i < s->npages_cap; i++) {
		free(s->pages[i].p);
		s->pages[i].p = NULL;
		s->pages[i].len = 0;
	}
}

void hist_state_free(struct hist_state *s)
{
	clear_kv(s);
	free(s->buckets);
	drop_pages_from(s, 0);
	free(s->pages);
	hist_state_init(s);
}

static int set_kv(struct hist_state *s, const uint8_t *k, uint32_t klen, const uint8_t *v, uint32_t vlen,
		  int present)
{
	if (s->count >= s->nbuckets) {
		size_t n = s->nbuckets ? s->nbuckets * 2 : 64;
		struct hist_kv **nb = calloc(n, sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		for (size_t i = 0; i < s->nbuckets; i++)
			for (struct hist_kv *e = s->buckets[i], *next; e; e = next) {
				next = e->next;
				size_t b = hash(e->data, e->klen) & (n - 1);
				e->next = nb[b];
				nb[b] = e;
			}
		free(s->buckets);
		s->buckets = nb;
		s->nbuckets = n;
	}
	struct hist_kv **pp = &s->buckets[hash(k, klen) & (s->nbuckets - 1)];
	while (*pp && !((*pp)->klen == klen && !memcmp((*pp)->data, k, klen)))
		pp = &(*pp)->next;
	if (*pp) {
		struct hist_kv *old = *pp;
		*pp = old->next;
		free(old);
		s->count--;
	}
	if (!present)
		return 0;
	struct hist_kv *e = malloc(sizeof(*e) + klen + vlen);
	if (!e)
		return -ENOMEM;
	e->klen = klen;
	e->vlen = vlen;
	e->present = 1;
	memcpy(e->data, k, klen);
	if (vlen)
		memcpy(e->data + klen, v, vlen);
	e->next = *pp;
	*pp = e;
	s->count++;
	return 0;
}

static int set_page(struct hist_state *s, uint32_t pgno, const uint8_t *v, uint32_t len)
{
	if (pgno == 0)
		return -EBADMSG;
	if (pgno > s->npages_cap) {
		uint32_t n = s->npages_cap ? s->npages_cap : 64;
		while (n < pgno)
			n *= 2;
		void *np = realloc(s->pages, (size_t)n * sizeof(*s->pages));
		if (!np)
			return -ENOMEM;
		s->pages = np;
		memset(s->pages + s->npages_cap, 0, (size_t)(n - s->npages_cap) * sizeof(*s->pages));
		s->npages_cap = n;
	}
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, v, len);
	free(s->pages[pgno - 1].p);
	s->pages[pgno - 1].p = copy;
	s->pages[pgno - 1].len = len;
	return 0;
}

int hist_is_base(const void *rec, size_t len)
{
	unsigned flags;
	if (hist_peek(rec, len, &flags, NULL) < 0)
		return 0;
	if ((flags & (HIST_WIPE_KV | HIST_WIPE_SQL)) == (HIST_WIPE_KV | HIST_WIPE_SQL))
		return 1;
	if (!(flags & HIST_WIPE_KV))
		return 0;
	/* Keys wiped, database not: a base only if it says there is no database after it. */
	struct cursor c = { rec, (const uint8_t *)rec + len, 0 };
	take(&c, 10);
	uint32_t nkv = get32(&c);
	for (uint32_t i = 0; i < nkv && !c.bad; i++) {
		take(&c, 1);
		uint32_t kl = get32(&c), vl = get32(&c);
		take(&c, (size_t)kl + vl);
	}
	if (c.bad)
		return 0;
	if (!(flags & HIST_SQL))
		return 0; /* the database's state is not said: it is what it was */
	return get64(&c) == 0 && !c.bad;
}

int hist_apply(struct hist_state *s, const void *rec, size_t len)
{
	struct cursor c = { rec, (const uint8_t *)rec + len, 0 };
	const uint8_t *h = take(&c, 2);
	get64(&c);
	if (c.bad || h[0] != HIST_VERSION)
		return -EBADMSG;
	unsigned flags = h[1];
	if (flags & HIST_WIPE_KV)
		clear_kv(s);
	if (flags & HIST_WIPE_SQL) {
		drop_pages_from(s, 0);
		s->sql_size = 0;
	}
	uint32_t nkv = get32(&c);
	for (uint32_t i = 0; i < nkv; i++) {
		const uint8_t *pr = take(&c, 1);
		uint32_t kl = get32(&c), vl = get32(&c);
		const uint8_t *k = take(&c, kl), *v = take(&c, vl);
		if (c.bad)
			return -EBADMSG;
		int r = set_kv(s, k, kl, v, vl, pr[0]);
		if (r < 0)
			return r;
	}
	if (flags & HIST_SQL) {
		uint64_t size = get64(&c);
		uint32_t keep = get32(&c);
		if (c.bad || size % KEYS_SQL_PAGE)
			return -EBADMSG;
		drop_pages_from(s, keep);
		s->sql_size = size;
	}
	uint32_t np = get32(&c);
	for (uint32_t i = 0; i < np; i++) {
		uint32_t pgno = get32(&c), pl = get32(&c);
		const uint8_t *v = take(&c, pl);
		if (c.bad)
			return -EBADMSG;
		int r = set_page(s, pgno, v, pl);
		if (r < 0)
			return r;
	}
	if (c.bad || c.p != c.end)
		return -EBADMSG;
	/* Pages past the size are not the database's. */
	if (s->sql_size / KEYS_SQL_PAGE < s->npages_cap)
		drop_pages_from(s, (uint32_t)(s->sql_size / KEYS_SQL_PAGE));
	s->started = 1;
	return 0;
}

int hist_state_each_kv(const struct hist_state *s,
		       int (*fn)(void *arg, const void *k, size_t klen, const void *v, size_t vlen), void *arg)
{
	for (size_t i = 0; i < s->nbuckets; i++)
		for (const struct hist_kv *e = s->buckets[i]; e; e = e->next) {
			int r = fn(arg, e->data, e->klen, e->data + e->klen, e->vlen);
			if (r)
				return r;
		}
	return 0;
}
