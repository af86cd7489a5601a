/* The class registry: every struct duro_class the process knows, by name. DURO_CLASS fills
 * it from constructors before main; a registration that fails there is kept, so durod
 * refuses to start rather than serve without the class. */
#include "obj.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct duro_class *classes[DURO_MAX_CLASSES];
static unsigned nclasses;
static char failure[160]; /* the first refused registration, for obj_registry_check */

int duro_register_class(const struct duro_class *cls)
{
	int r = 0;
	if (!cls->name || !cls->name[0] || strlen(cls->name) >= OBJ_NAME_MAX)
		r = -EINVAL;
	else if (obj_find_class(cls->name))
		r = -EEXIST;
	else if (nclasses == DURO_MAX_CLASSES)
		r = -ENOSPC;
	if (r == 0) {
		classes[nclasses++] = cls;
		return 0;
	}
	if (!failure[0])
		snprintf(failure, sizeof(failure), "class \"%.64s\": %s", cls->name ? cls->name : "",
			 r == -EEXIST ? "a class of this name is already registered"
			 : r == -ENOSPC ? "more classes than the registry holds (64)"
					: "the name is empty or over 63 bytes");
	return r;
}

int obj_registry_check(char *err, size_t errlen)
{
	if (!failure[0])
		return 0;
	snprintf(err, errlen, "%s", failure);
	return -EINVAL;
}

const struct duro_class *obj_find_class(const char *name)
{
	for (unsigned i = 0; i < nclasses; i++)
		if (strcmp(classes[i]->name, name) == 0)
			return classes[i];
	return NULL;
}

void obj_each_class(void (*fn)(const char *name, void *arg), void *arg)
{
	for (unsigned i = 0; i < nclasses; i++)
		fn(classes[i]->name, arg);
}
