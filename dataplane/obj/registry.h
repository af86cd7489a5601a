/* The class registry's side that only the module loader uses (registry.c): while a
 * module's dlopen runs, duro_register_class is refused and counted. The rest of the
 * registry is obj.h's, for durod and the control plane. */
#ifndef DURO_OBJ_REGISTRY_H
#define DURO_OBJ_REGISTRY_H

#include <stddef.h>

/* on: a module is being loaded (from now, registrations are refused); off: done. */
void obj_registry_loading(int on);
/* Registrations refused since obj_registry_loading(1); the first one's class name in
 * name[len]. */
unsigned obj_registry_refused_while_loading(char *name, size_t len);

#endif
