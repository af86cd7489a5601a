/* Consistent hashing of objects to cores: an ID picks one of DURO_SLOTS fixed slots, and
 * each slot is owned by one core, chosen by rendezvous hashing so a change of core count
 * moves only the slots the new or removed core wins or loses. */
#ifndef DURO_CORE_SLOTMAP_H
#define DURO_CORE_SLOTMAP_H

#include "base_limits.h"

#include <stdint.h>

struct slotmap {
	unsigned ncores;
	uint8_t owner[DURO_SLOTS];
};

void slotmap_build(struct slotmap *m, unsigned ncores);

/* The slot of an ID: its top 12 bits (uniform: IDs are random or PRF output). Being a
 * prefix of the ID, a slot's objects are one contiguous key range in every family keyed
 * by ID (storage/keys.h), which a cluster moves and drops as a whole. */
_Static_assert(DURO_SLOTS == 4096, "a slot is the ID's top 12 bits");
static inline unsigned slotmap_slot(const uint8_t *id)
{
	return (unsigned)id[0] << 4 | id[1] >> 4;
}

static inline unsigned slotmap_owner(const struct slotmap *m, const uint8_t *id)
{
	return m->owner[slotmap_slot(id)];
}

#endif
