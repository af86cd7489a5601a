/* Compile-time ceilings; the configurable limits live in each layer's config struct.
 * Every limit that can be hit at run time has a counter next to where it is checked. */
#ifndef DURO_BASE_LIMITS_H
#define DURO_BASE_LIMITS_H

#define DURO_MAX_CORES 64           /* reactors in one process */
#define DURO_MAX_LISTENERS 8        /* configured listen addresses */
#define DURO_MAX_BINDINGS 64        /* durable_objects.bindings entries */
#define DURO_MAX_ROUTES 64          /* routes entries */
#define DURO_MAX_CLASSES 64         /* registered classes */
#define DURO_MAX_NAME 256           /* bytes in an object name (idFromName) */
#define DURO_MAX_HEADERS 100        /* header fields in one request */
#define DURO_MAX_MIGRATIONS 64      /* migration tags in a config */
#define DURO_SLOTS 4096             /* slot table size for consistent hashing */

#endif
