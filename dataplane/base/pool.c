/* Fixed-size object pool: free list threaded through free objects, slabs grown on demand.
 * One core owns a pool, so nothing here is atomic. */
#include "pool.h"
#include "base_assert.h"

#include <stdlib.h>

void pool_init(struct pool *p, const char *name, size_t obj_size, size_t per_slab, size_t cap)
{
	DURO_ASSERT(obj_size > 0 && per_slab > 0);
	*p = (struct pool){ .name = name, .obj_size = (obj_size + 15) & ~(size_t)15,
			    .per_slab = per_slab, .cap = cap };
}

static int pool_grow(struct pool *p)
{
	if (p->nslabs == p->slabs_cap) {
		size_t ncap = p->slabs_cap ? p->slabs_cap * 2 : 8;
		void **ns = realloc(p->slabs, ncap * sizeof(*ns));
		if (!ns)
			return -1;
		p->slabs = ns;
		p->slabs_cap = ncap;
	}
	size_t n = p->per_slab;
	if (p->cap && p->total + n > p->cap)
		n = p->cap - p->total;
	if (n == 0)
		return -1;
	char *slab = aligned_alloc(64, ((n * p->obj_size) + 63) & ~(size_t)63);
	if (!slab)
		return -1;
	p->slabs[p->nslabs++] = slab;
	for (size_t i = 0; i < n; i++) {
		void *obj = slab + i * p->obj_size;
		*(void **)obj = p->free_list;
		p->free_list = obj;
	}
	p->total += n;
	return 0;
}

void *pool_get(struct pool *p)
{
	if (!p->free_list && pool_grow(p) < 0) {
		p->cap_hits++;
		return NULL;
	}
	void *obj = p->free_list;
	p->free_list = *(void **)obj;
	p->live++;
	return obj;
}

void pool_put(struct pool *p, void *obj)
{
	DURO_ASSERT(obj && p->live > 0);
	*(void **)obj = p->free_list;
	p->free_list = obj;
	p->live--;
}

void pool_destroy(struct pool *p)
{
	for (size_t i = 0; i < p->nslabs; i++)
		free(p->slabs[i]);
	free(p->slabs);
	p->slabs = NULL;
	p->nslabs = p->slabs_cap = 0;
	p->free_list = NULL;
	p->total = p->live = 0;
}
