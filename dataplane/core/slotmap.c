/* Rendezvous (highest random weight) hashing from slot to core: every core scores every
 * slot with a fixed hash and the highest score wins, so adding core N+1 only takes the
 * slots it now wins (about 1/(N+1) of them) and leaves all others where they were. */
#include "slotmap.h"
#include "base_assert.h"
#include "siphash.h"

/* A fixed public key: the map must be the same on every run and every box. */
static const uint8_t slotmap_key[16] = "duro-slotmap-v1";

void slotmap_build(struct slotmap *m, unsigned ncores)
{
	DURO_ASSERT(ncores >= 1 && ncores <= 255);
	m->ncores = ncores;
	for (unsigned s = 0; s < DURO_SLOTS; s++) {
		uint64_t best = 0;
		unsigned owner = 0;
		for (unsigned c = 0; c < ncores; c++) {
			uint32_t in[2] = { s, c };
			uint64_t score = siphash64(slotmap_key, in, sizeof(in));
			if (c == 0 || score > best) {
				best = score;
				owner = c;
			}
		}
		m->owner[s] = (uint8_t)owner;
	}
}
