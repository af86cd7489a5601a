/* Reference-counted byte buffers from a per-core pool, so parsed requests can point into
 * the bytes they came in and the buffer lives until the last reader is done. */
#ifndef DURO_BASE_BUF_H
#define DURO_BASE_BUF_H

#include "pool.h"

#include <stddef.h>
#include <stdint.h>

/* Buffers of up to BUF_SMALL_SIZE bytes come from the pool; larger ones (big bodies)
 * from malloc, counted in big_allocs. */
#define BUF_SMALL_SIZE (16u * 1024u)

struct buf {
	uint32_t refs;
	uint32_t cap; /* bytes in data[] */
	uint32_t len; /* bytes filled */
	uint32_t big; /* 1 when from malloc rather than the pool */
	char data[];
};

struct buf_pool {
	struct pool small;
	uint64_t big_allocs;
	uint64_t alloc_failures;
};

void buf_pool_init(struct buf_pool *bp, size_t max_small);
void buf_pool_destroy(struct buf_pool *bp);

/* Returns a buffer with refs 1 and len 0 holding at least `cap` bytes, or NULL when out of
 * memory. Owned by the caller's reference; release with buf_unref on the same core. */
struct buf *buf_new(struct buf_pool *bp, size_t cap);

static inline void buf_ref(struct buf *b) { b->refs++; }
/* Drops one reference; the last one returns the buffer to its pool. */
void buf_unref(struct buf_pool *bp, struct buf *b);

#endif
