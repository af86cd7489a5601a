/* Point-in-time recovery's records (history.c): what one commit of an object wrote, as a
 * value of the history family (keys.h: ID ‖ the object's commit seq), and the object's
 * state rebuilt from a run of them. Pure: no I/O, the caller reads and writes the family.
 *
 * Record (little-endian):
 *   u8 version (1), u8 flags (HIST_*), u64 time_ms (never less than the record before),
 *   u32 nkv, nkv × { u8 present, u32 klen, u32 vlen, key, value }   key-value writes, in order
 *   [HIST_SQL: u64 sql_size, u32 keep_pages]                         pages past keep dropped
 *   u32 npages, npages × { u32 pgno, u32 len, value }                 sqlpage.h's encoding
 * HIST_WIPE_KV: every key went before the writes (delete_all, a restore); HIST_WIPE_SQL:
 * the database went. A record that wipes both — or wipes the keys and leaves no database —
 * gives the whole state after it: a base, from which a rebuild may start. */
#ifndef DURO_STORAGE_HISTORY_H
#define DURO_STORAGE_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#define HIST_VERSION 1
#define HIST_WIPE_KV 1u
#define HIST_WIPE_SQL 2u
#define HIST_SQL 4u /* the database's size (and its cut) are in the record */
#define HIST_GAP 8u /* a commit whose record was lost (no memory): nothing replays across it */

/* A record being written: out of memory sticks (err), checked once at the end. */
struct hist_rec {
	uint8_t *buf;
	size_t len, cap;
	size_t nkv_at, npages_at; /* where the counts are */
	uint32_t nkv, npages;
	int sql_done;
	int err;
};

/* Starts a record (flags may gain HIST_WIPE_* later through hist_rec_flags). */
void hist_rec_begin(struct hist_rec *r, unsigned flags, uint64_t time_ms);
void hist_rec_flags(struct hist_rec *r, unsigned flags);
void hist_rec_kv(struct hist_rec *r, const void *k, size_t klen, const void *v, size_t vlen, int present);
/* After every key: the database's size and the page count kept before the pages. */
void hist_rec_sql(struct hist_rec *r, uint64_t size, uint32_t keep_pages);
void hist_rec_page(struct hist_rec *r, uint32_t pgno, const void *value, size_t len);
/* Finishes it: 0 with r->buf[0..r->len) the value (the caller frees r->buf), or -ENOMEM. */
int hist_rec_end(struct hist_rec *r);
void hist_rec_free(struct hist_rec *r);

/* The header of a stored record: 0, or -EBADMSG. */
int hist_peek(const void *rec, size_t len, unsigned *flags, uint64_t *time_ms);
/* 1 when the record gives the whole state after it. */
int hist_is_base(const void *rec, size_t len);

/* An object's state rebuilt from records: its keys (duro's reserved ones included) and
 * its database's pages as stored values. */
struct hist_kv {
	struct hist_kv *next;
	uint32_t klen, vlen;
	uint8_t present;
	uint8_t data[]; /* key then value */
};

struct hist_state {
	struct hist_kv **buckets;
	size_t nbuckets, count;
	struct { uint8_t *p; uint32_t len; } *pages; /* [pgno - 1] */
	uint32_t npages_cap;
	uint64_t sql_size;
	int started; /* a base has been applied */
};

void hist_state_init(struct hist_state *s);
void hist_state_free(struct hist_state *s);
/* Applies one record over s. Returns 0, -EBADMSG (not a record), or -ENOMEM. */
int hist_apply(struct hist_state *s, const void *rec, size_t len);
/* Calls fn for each present key (any order); stops at fn's first non-zero and returns it. */
int hist_state_each_kv(const struct hist_state *s,
		       int (*fn)(void *arg, const void *k, size_t klen, const void *v, size_t vlen), void *arg);

#endif
