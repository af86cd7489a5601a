/* Reference-counted buffers: pool-backed up to BUF_SMALL_SIZE, malloc above it.
 * References are taken and dropped only on the owning core, so counts are plain integers. */
#include "buf.h"
#include "base_assert.h"

#include <stdlib.h>

void buf_pool_init(struct buf_pool *bp, size_t max_small)
{
	*bp = (struct buf_pool){ 0 };
	pool_init(&bp->small, "buf", sizeof(struct buf) + BUF_SMALL_SIZE, 64, max_small);
}

void buf_pool_destroy(struct buf_pool *bp) { pool_destroy(&bp->small); }

struct buf *buf_new(struct buf_pool *bp, size_t cap)
{
	struct buf *b;
	if (cap <= BUF_SMALL_SIZE) {
		b = pool_get(&bp->small);
		if (b) {
			b->cap = BUF_SMALL_SIZE;
			b->big = 0;
		}
	} else {
		DURO_ASSERT(cap < UINT32_MAX);
		b = malloc(sizeof(*b) + cap);
		if (b) {
			b->cap = (uint32_t)cap;
			b->big = 1;
			bp->big_allocs++;
		}
	}
	if (!b) {
		bp->alloc_failures++;
		return NULL;
	}
	b->refs = 1;
	b->len = 0;
	return b;
}

void buf_unref(struct buf_pool *bp, struct buf *b)
{
	DURO_ASSERT(b->refs > 0);
	if (--b->refs)
		return;
	if (b->big)
		free(b);
	else
		pool_put(&bp->small, b);
}
