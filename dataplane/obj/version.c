/* Class versions: the process's list of every class version it ran (appended under a lock,
 * read without one), the gradual-deploy share of an object, and each core's counters and
 * attribution of the code it runs. */
#include "version.h"
#include "core.h"
#include "siphash.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct obj_attrib obj_attrib[DURO_MAX_CORES];

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct obj_version *_Atomic versions;

struct obj_version *obj_version_of(const struct duro_class *cls, const char *sha,
				   const struct obj_module *module)
{
	pthread_mutex_lock(&lock);
	struct obj_version *v;
	for (v = atomic_load(&versions); v; v = v->next)
		if (v->cls == cls)
			break;
	if (!v && posix_memalign((void **)&v, 64, sizeof(*v)) == 0) {
		memset(v, 0, sizeof(*v));
		v->cls = cls;
		v->module = module;
		snprintf(v->class_name, sizeof(v->class_name), "%s", cls->name);
		snprintf(v->sha, sizeof(v->sha), "%s", sha ? sha : OBJ_SHA_BUILTIN);
		snprintf(v->label, sizeof(v->label), "%.12s", v->sha);
		v->next = atomic_load(&versions);
		atomic_store_explicit(&versions, v, memory_order_release);
	} else if (!v) {
		v = NULL;
	}
	pthread_mutex_unlock(&lock);
	return v;
}

struct obj_version *obj_version_find(const char *class_name, const char *sha)
{
	size_t n = strlen(sha);
	int exact = !strcmp(sha, OBJ_SHA_BUILTIN) || n == 64;
	if (!exact && n < 6)
		return NULL;
	struct obj_version *found = NULL;
	for (struct obj_version *v = atomic_load_explicit(&versions, memory_order_acquire); v;
	     v = v->next) {
		if (strcmp(v->class_name, class_name) || strncmp(v->sha, sha, exact ? 65 : n))
			continue;
		if (found && found != v && strcmp(found->sha, v->sha))
			return NULL; /* an ambiguous prefix */
		if (!found)
			found = v;
	}
	return found;
}

void obj_versions_each(int (*fn)(const struct obj_version *v, void *arg), void *arg)
{
	for (struct obj_version *v = atomic_load_explicit(&versions, memory_order_acquire); v;
	     v = v->next)
		if (fn(v, arg))
			return;
}

void obj_version_totals(const struct obj_version *v, struct obj_version_totals *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < DURO_MAX_CORES; i++) {
		out->events += atomic_load_explicit(&v->core[i].events, memory_order_relaxed);
		out->errors += atomic_load_explicit(&v->core[i].errors, memory_order_relaxed);
		out->objects += atomic_load_explicit(&v->core[i].objects, memory_order_relaxed);
	}
	out->crashes = atomic_load(&v->crashes);
}

unsigned obj_version_share(const uint8_t seed[16], const struct duro_id *id)
{
	return (unsigned)(siphash64(seed, id->bytes, DURO_ID_BYTES) % OBJ_SPLIT_ALL);
}

struct obj_version *obj_version_target(const struct obj_ns_entry *e, const struct duro_id *id)
{
	if (!e->old || e->split >= OBJ_SPLIT_ALL)
		return e->ver;
	return obj_version_share(e->seed, id) < e->split ? e->ver : e->old;
}

/* One writer per counter (its core): a relaxed load and store, no locked instruction. */
static void bump(_Atomic uint64_t *x)
{
	atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

void obj_version_enter(struct core *c, const struct object *obj, enum obj_attrib_what what)
{
	struct obj_attrib *a = &obj_attrib[c->index];
	for (unsigned i = 0; i < DURO_ID_BYTES / 8; i++) {
		uint64_t w;
		memcpy(&w, obj->id.bytes + 8 * i, 8);
		atomic_store_explicit(&a->id[i], w, memory_order_relaxed);
	}
	atomic_store_explicit(&a->since_ms, c->now_ms, memory_order_relaxed);
	atomic_store_explicit(&a->what, (int)what, memory_order_relaxed);
	atomic_store_explicit(&a->ver, obj->ver, memory_order_release);
	if (what == ATTRIB_EVENT)
		bump(&obj->ver->core[c->index].events);
}

void obj_version_leave(struct core *c, const struct object *obj, int failed)
{
	atomic_store_explicit(&obj_attrib[c->index].ver, NULL, memory_order_release);
	if (failed)
		bump(&obj->ver->core[c->index].errors);
}

void obj_version_count(struct core *c, struct obj_version *v, int delta)
{
	_Atomic int64_t *x = &v->core[c->index].objects;
	atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + delta,
			      memory_order_relaxed);
}
