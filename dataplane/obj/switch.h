/* Deploys on one core (switch.c): after a view names another version for a namespace,
 * each resident object of it switches to the version its ID now gets, in place, at a
 * quiescent point, or by force once the deploy's deadline passes. */
#ifndef DURO_OBJ_SWITCH_H
#define DURO_OBJ_SWITCH_H

#include "object-t.h"

/* Sets up the core's switching and its end-of-turn hook. Returns 0 or -ENOMEM. */
int switch_core_init(struct core *c);
void switch_core_fini(struct core *c);

#endif
