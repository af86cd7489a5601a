/* A test class is a built-in class plus test hooks: a copy of the built-in definition under
 * a new name, with room after the built-in's per-object state for the hooks' own. */
#ifndef DURO_TEST_CLASS_H
#define DURO_TEST_CLASS_H

#include "duro.h"

#include <stddef.h>

/* Where the hooks' state starts in an object of a class derived from `base`. */
static inline size_t test_class_offset(const struct duro_class *base)
{
	return (base->state_size + 15) & ~(size_t)15;
}

/* Fills `cls` as `base` renamed to `name` (a string that outlives it) with `hooks_size`
 * bytes of state after the base's; the caller then replaces the handlers it wraps and
 * registers `cls`. */
static inline void test_class_derive(struct duro_class *cls, const struct duro_class *base,
				     const char *name, size_t hooks_size)
{
	*cls = *base;
	cls->name = name;
	cls->state_size = test_class_offset(base) + hooks_size;
}

/* The hooks' state of `obj`, an object of a class derived from `base`. */
static inline void *test_class_hooks(struct duro_object *obj, const struct duro_class *base)
{
	return (char *)duro_state(obj) + test_class_offset(base);
}

#endif
