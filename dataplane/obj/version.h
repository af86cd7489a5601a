/* Class versions (version.c): each struct duro_class durod runs — built in, from a config's
 * module, or deployed — as a version with a name (its module's SHA-256), per-core counters
 * and the attribution of the code running on each core. Versions are made once and never
 * freed: their code stays mapped, and objects, views and continuations point at them.
 *
 * Which version an object runs: its namespace's entry in the core's view names the
 * version new activations take; during a gradual deploy (--percent), an object whose
 * keyed hash of its ID falls at or over the split keeps the old one:
 *
 *     share(seed, id) = SipHash(seed, id) mod 10000;   runs ver  iff share < split
 *
 * so raising the percentage (the split) never moves an object back. */
#ifndef DURO_OBJ_VERSION_H
#define DURO_OBJ_VERSION_H

#include "object-t.h"

#include <stdatomic.h>

/* The split that puts every object on the new version. */
#define OBJ_SPLIT_ALL 10000
#define OBJ_SHA_BUILTIN "builtin"

struct obj_module;

struct obj_version {
	const struct duro_class *cls;
	char class_name[OBJ_NAME_MAX];
	char sha[65];   /* SHA-256 of its module file (64 hex digits), or "builtin" */
	char label[13]; /* what logs and metrics show: the sha's first 12 digits, or "builtin" */
	const struct obj_module *module; /* NULL for a class compiled into durod */
	struct obj_version *next;        /* every version, newest first */
	_Atomic uint64_t crashes;        /* fatal signals and hangs attributed to it */
	/* Written by one core each, read by the control plane: relaxed atomics, no lock. */
	struct obj_version_core {
		_Atomic uint64_t events;  /* callbacks run */
		_Atomic uint64_t errors;  /* callbacks that failed (their writes rolled back) */
		_Atomic int64_t objects;  /* objects in memory on this version */
	} __attribute__((aligned(64))) core[DURO_MAX_CORES];
};

/* The version of `cls`, made on the first call: sha and module as above (sha NULL for a
 * built-in class). NULL when out of memory. Any thread. */
struct obj_version *obj_version_of(const struct duro_class *cls, const char *sha,
				   const struct obj_module *module);
/* The version of class `name` with this sha (or a unique prefix of at least 6 hex digits;
 * "builtin"), or NULL. */
struct obj_version *obj_version_find(const char *class_name, const char *sha);
/* Every version, newest first, while fn returns 0. Any thread. */
void obj_versions_each(int (*fn)(const struct obj_version *v, void *arg), void *arg);
/* A version's counters summed over the cores. */
struct obj_version_totals {
	uint64_t events, errors, crashes;
	int64_t objects;
};
void obj_version_totals(const struct obj_version *v, struct obj_version_totals *out);

/* An object's share in a gradual deploy: [0, OBJ_SPLIT_ALL). */
unsigned obj_version_share(const uint8_t seed[16], const struct duro_id *id);
/* The version a new activation of id runs, by a view's entry for its namespace. */
struct obj_version *obj_version_target(const struct obj_ns_entry *e, const struct duro_id *id);

/* ---- on a core: counters, and what runs now (for a fatal signal or the watchdog) ---- */

/* What each core is running, written by that core at every callback. The fatal-signal
 * handler reads its own core's; the watchdog reads a stuck one's. */
struct obj_attrib {
	struct obj_version *_Atomic ver; /* NULL: no class code running */
	_Atomic uint64_t id[DURO_ID_BYTES / 8];
	_Atomic uint64_t since_ms;             /* core clock when it started */
	_Atomic int what;                      /* enum obj_attrib_what */
};
enum obj_attrib_what { ATTRIB_EVENT, ATTRIB_LOAD, ATTRIB_UNLOAD };
extern struct obj_attrib obj_attrib[DURO_MAX_CORES];

/* Class code of obj's version starts (events++ for an event) or ended (errors++ when it
 * failed). */
void obj_version_enter(struct core *c, const struct object *obj, enum obj_attrib_what what);
void obj_version_leave(struct core *c, const struct object *obj, int failed);
/* An object in memory joined (+1) or left (-1) a version. */
void obj_version_count(struct core *c, struct obj_version *v, int delta);

#endif
