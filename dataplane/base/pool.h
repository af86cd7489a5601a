/* Fixed-size object pool owned by one core: a free list over slabs, no locks.
 * Slabs are malloc'd as the pool grows up to its cap; objects are never returned to libc. */
#ifndef DURO_BASE_POOL_H
#define DURO_BASE_POOL_H

#include <stddef.h>
#include <stdint.h>

struct pool {
	const char *name;
	size_t obj_size;   /* rounded up to 16 bytes */
	size_t per_slab;   /* objects carved from one slab */
	size_t cap;        /* most objects ever live at once; 0 = no cap */
	size_t live;       /* objects handed out */
	size_t total;      /* objects carved so far */
	uint64_t cap_hits; /* times pool_get failed at the cap */
	void *free_list;
	void **slabs;
	size_t nslabs, slabs_cap;
};

/* Sets up an empty pool; no memory is taken until the first pool_get. */
void pool_init(struct pool *p, const char *name, size_t obj_size, size_t per_slab, size_t cap);
/* Returns an object (contents undefined), or NULL at the cap or when malloc fails.
 * The caller owns it until pool_put on the same pool, from the same core. */
void *pool_get(struct pool *p);
void pool_put(struct pool *p, void *obj);
/* Frees every slab; objects still out become invalid. */
void pool_destroy(struct pool *p);

#endif
