/* Point-in-time recovery's records (storage/history.c) against a plain model, seeded: random
 * commits of key writes, wipes, database growth, cuts and page writes, each written as a
 * record; replaying the records from any base up to commit i gives the model's state after
 * commit i, and a state written back as a base record replays to the same state. Damaged
 * records are refused, never half applied past the damage. */
#include "check.h"
#include "history.h"
#include "keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NKEYS 12
#define NPAGES 24
#define NCOMMITS 300

struct model {
	int present[NKEYS];
	uint32_t val[NKEYS];
	uint64_t size; /* bytes */
	uint32_t page[NPAGES]; /* a page's value: its 4-byte tag (0: never written) */
};

static uint64_t rng;
static uint64_t rnd(uint64_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng % n;
}

static void key_of(int k, char out[8]) { snprintf(out, 8, "k%02d", k); }

/* One random commit: applied to m, written to r. */
static void commit(struct model *m, struct hist_rec *r, uint64_t t, int base)
{
	unsigned flags = base ? HIST_WIPE_KV | HIST_WIPE_SQL : 0;
	if (!base && rnd(20) == 0)
		flags |= HIST_WIPE_KV;
	if (!base && rnd(25) == 0)
		flags |= HIST_WIPE_SQL;
	hist_rec_begin(r, flags, t);
	if (flags & HIST_WIPE_KV)
		memset(m->present, 0, sizeof(m->present));
	if (flags & HIST_WIPE_SQL) {
		m->size = 0;
		memset(m->page, 0, sizeof(m->page));
	}
	for (uint64_t n = rnd(4); n > 0; n--) {
		int k = (int)rnd(NKEYS), present = rnd(4) != 0;
		uint32_t v = (uint32_t)rnd(1u << 30);
		char key[8];
		key_of(k, key);
		hist_rec_kv(r, key, 3, &v, sizeof(v), present);
		m->present[k] = present;
		m->val[k] = v;
	}
	if ((flags & HIST_WIPE_SQL) || rnd(2)) {
		uint64_t pages = m->size / KEYS_SQL_PAGE;
		uint32_t keep = (uint32_t)(rnd(4) == 0 ? rnd(pages + 1) : pages);
		uint64_t size = (uint64_t)(keep + rnd(NPAGES - keep + 1)) * KEYS_SQL_PAGE;
		hist_rec_sql(r, size, keep);
		for (uint32_t p = keep; p < NPAGES; p++)
			m->page[p] = 0;
		m->size = size;
		for (uint64_t n = rnd(5); n > 0 && size; n--) {
			uint32_t p = (uint32_t)rnd(size / KEYS_SQL_PAGE);
			uint32_t tag = (uint32_t)rnd(1u << 30) | 1;
			hist_rec_page(r, p + 1, &tag, sizeof(tag));
			m->page[p] = tag;
		}
	}
	CHECK_EQ(hist_rec_end(r), 0);
}

static int same(const struct hist_state *s, const struct model *m)
{
	if (s->sql_size != m->size)
		return 0;
	size_t present = 0;
	for (int k = 0; k < NKEYS; k++) {
		present += (size_t)m->present[k];
		char key[8];
		key_of(k, key);
		const struct hist_kv *e = NULL;
		for (size_t b = 0; b < s->nbuckets && !e; b++)
			for (const struct hist_kv *x = s->buckets[b]; x; x = x->next)
				if (x->klen == 3 && !memcmp(x->data, key, 3))
					e = x;
		if ((e != NULL) != m->present[k])
			return 0;
		if (e && (e->vlen != 4 || memcmp(e->data + 3, &m->val[k], 4)))
			return 0;
	}
	if (present != s->count)
		return 0;
	for (uint32_t p = 0; p < NPAGES; p++) {
		int has = p < s->npages_cap && s->pages[p].p;
		if (has != (m->page[p] != 0))
			return 0;
		if (has && (s->pages[p].len != 4 || memcmp(s->pages[p].p, &m->page[p], 4)))
			return 0;
	}
	return 1;
}

static void test_replay_matches_the_model(void)
{
	rng = check_seed("test_history") | 1;
	static struct hist_rec recs[NCOMMITS];
	static struct model after[NCOMMITS];
	struct model m = { 0 };
	for (int i = 0; i < NCOMMITS; i++) {
		commit(&m, &recs[i], (uint64_t)i, i == 0);
		after[i] = m;
	}
	/* From every base up to every later commit (a sample). */
	for (int trial = 0; trial < 200; trial++) {
		int end = (int)rnd(NCOMMITS), start = end;
		while (start > 0 && !hist_is_base(recs[start].buf, recs[start].len))
			start--;
		CHECK(hist_is_base(recs[start].buf, recs[start].len));
		struct hist_state s;
		hist_state_init(&s);
		for (int i = start; i <= end; i++)
			CHECK_EQ(hist_apply(&s, recs[i].buf, recs[i].len), 0);
		CHECK(same(&s, &after[end]));
		hist_state_free(&s);
	}
	for (int i = 0; i < NCOMMITS; i++)
		hist_rec_free(&recs[i]);
}

static void test_damaged_records_are_refused(void)
{
	rng = 12345;
	struct model m = { 0 };
	struct hist_rec r;
	commit(&m, &r, 7, 1);
	uint64_t t = 0;
	unsigned flags = 0;
	CHECK_EQ(hist_peek(r.buf, r.len, &flags, &t), 0);
	CHECK_EQ(t, 7);
	for (size_t cut = 0; cut < r.len; cut++) {
		struct hist_state s;
		hist_state_init(&s);
		CHECK_EQ(hist_apply(&s, r.buf, cut), -EBADMSG);
		hist_state_free(&s);
	}
	r.buf[0] = 99; /* another version */
	struct hist_state s;
	hist_state_init(&s);
	CHECK_EQ(hist_apply(&s, r.buf, r.len), -EBADMSG);
	hist_state_free(&s);
	hist_rec_free(&r);
}

int main(void)
{
	RUN(test_replay_matches_the_model);
	RUN(test_damaged_records_are_refused);
	return CHECK_DONE();
}
