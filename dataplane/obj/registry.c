/* The class registry: every struct duro_class the process knows, by name, with where it
 * came from (built in, or a module of the config). DURO_CLASS fills it from constructors
 * before main; a registration that fails there is kept, so durod refuses to start rather
 * than serve without the class. Modules add theirs through obj_registry_add; a module
 * that tries duro_register_class while it is being loaded (a DURO_CLASS constructor, as
 * a build without -DDURO_MODULE has) is refused and counted, and its loader says so. */
#include "obj.h"
#include "module.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static struct {
	pthread_mutex_t lock;
	const struct duro_class *classes[DURO_MAX_CLASSES];
	const struct obj_module *module[DURO_MAX_CLASSES]; /* NULL: built in */
	unsigned n;
	char failure[160]; /* the first refused registration, for obj_registry_check */
	_Atomic int loading; /* a module's dlopen is running */
	_Atomic unsigned refused_while_loading;
	char refused_name[OBJ_NAME_MAX];
} reg = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int find_locked(const char *name)
{
	for (unsigned i = 0; i < reg.n; i++)
		if (strcmp(reg.classes[i]->name, name) == 0)
			return (int)i;
	return -1;
}

static int check_name(const struct duro_class *cls)
{
	return cls->name && cls->name[0] && strlen(cls->name) < OBJ_NAME_MAX ? 0 : -EINVAL;
}

int duro_register_class(const struct duro_class *cls)
{
	if (atomic_load(&reg.loading)) {
		/* Code of a module running inside dlopen: its classes come from its init. */
		pthread_mutex_lock(&reg.lock);
		if (!atomic_fetch_add(&reg.refused_while_loading, 1))
			snprintf(reg.refused_name, sizeof(reg.refused_name), "%.63s",
				 cls->name ? cls->name : "");
		pthread_mutex_unlock(&reg.lock);
		return -EPERM;
	}
	pthread_mutex_lock(&reg.lock);
	int r = check_name(cls);
	if (r == 0 && find_locked(cls->name) >= 0)
		r = -EEXIST;
	else if (r == 0 && reg.n == DURO_MAX_CLASSES)
		r = -ENOSPC;
	if (r == 0) {
		reg.module[reg.n] = NULL;
		reg.classes[reg.n++] = cls;
	} else if (!reg.failure[0]) {
		snprintf(reg.failure, sizeof(reg.failure), "class \"%.64s\": %s",
			 cls->name ? cls->name : "",
			 r == -EEXIST ? "a class of this name is already registered"
			 : r == -ENOSPC ? "more classes than the registry holds (64)"
					: "the name is empty or over 63 bytes");
	}
	pthread_mutex_unlock(&reg.lock);
	return r;
}

int obj_registry_check(char *err, size_t errlen)
{
	pthread_mutex_lock(&reg.lock);
	int r = reg.failure[0] ? -EINVAL : 0;
	if (r)
		snprintf(err, errlen, "%s", reg.failure);
	pthread_mutex_unlock(&reg.lock);
	return r;
}

int obj_registry_add(const struct duro_class *cls, const struct obj_module *module, char *err,
		     size_t errlen)
{
	pthread_mutex_lock(&reg.lock);
	int r = check_name(cls), i = r ? -1 : find_locked(cls->name);
	if (r)
		snprintf(err, errlen, "a class name is empty or over 63 bytes");
	else if (i >= 0)
		snprintf(err, errlen, "class \"%s\" is already registered (%s%s)", cls->name,
			 reg.module[i] ? "by module " : "built in", reg.module[i] ? reg.module[i]->path : "");
	else if (reg.n == DURO_MAX_CLASSES)
		snprintf(err, errlen, "more classes than the registry holds (%d)", DURO_MAX_CLASSES);
	if (!r && i >= 0)
		r = -EEXIST;
	else if (!r && reg.n == DURO_MAX_CLASSES)
		r = -ENOSPC;
	if (r == 0) {
		reg.module[reg.n] = module;
		reg.classes[reg.n++] = cls;
	}
	pthread_mutex_unlock(&reg.lock);
	return r;
}

void obj_registry_loading(int on)
{
	if (on) {
		atomic_store(&reg.refused_while_loading, 0);
		reg.refused_name[0] = 0;
	}
	atomic_store(&reg.loading, on);
}

unsigned obj_registry_refused_while_loading(char *name, size_t len)
{
	pthread_mutex_lock(&reg.lock);
	unsigned n = atomic_load(&reg.refused_while_loading);
	snprintf(name, len, "%s", reg.refused_name);
	pthread_mutex_unlock(&reg.lock);
	return n;
}

const struct duro_class *obj_find_class(const char *name)
{
	pthread_mutex_lock(&reg.lock);
	int i = find_locked(name);
	const struct duro_class *cls = i >= 0 ? reg.classes[i] : NULL;
	pthread_mutex_unlock(&reg.lock);
	return cls;
}

const struct obj_module *obj_class_module(const char *name)
{
	pthread_mutex_lock(&reg.lock);
	int i = find_locked(name);
	const struct obj_module *o = i >= 0 ? reg.module[i] : NULL;
	pthread_mutex_unlock(&reg.lock);
	return o;
}

void obj_each_class(void (*fn)(const char *name, void *arg), void *arg)
{
	pthread_mutex_lock(&reg.lock);
	unsigned n = reg.n;
	const struct duro_class *cls[DURO_MAX_CLASSES];
	memcpy(cls, reg.classes, n * sizeof(cls[0]));
	pthread_mutex_unlock(&reg.lock);
	for (unsigned i = 0; i < n; i++)
		fn(cls[i]->name, arg);
}
