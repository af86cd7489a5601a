/* The runtime's shared state: opening the store and applying migrations, resolving each
 * binding to its class, column family and namespace secret, and publishing views to the
 * cores. Cores never read the state here while serving, only their own copies (runtime.h);
 * the control plane's threads read it under a lock that no core takes. */
#include "runtime.h"
#include "obj.h"
#include "base_assert.h"
#include "core.h"
#include "clock.h"
#include "log.h"
#include "module.h"
#include "object-t.h"
#include "version.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One publication on its way: a message per core, the last core to install frees it. */
struct publication {
	struct obj_view *view;
	_Atomic unsigned pending;
	struct core_msg msg[DURO_MAX_CORES];
};

/* Keys an import adopted: kept until the runtime ends, since a core may be deriving an ID
 * with the keys they replaced. */
struct adopted_keys {
	struct adopted_keys *next;
	uint8_t keys[32];
};

static struct {
	struct obj_runtime pub;
	struct core_group *group;
	/* Namespaces: appended only, each valid for the process's life. */
	struct duro_namespace ns[DURO_MAX_BINDINGS];
	_Atomic unsigned nns;
	struct obj_binding live_bindings[DURO_MAX_BINDINGS]; /* of namespaces added later */
	/* The newest view, for the control plane's threads (cores keep their own). */
	pthread_mutex_t lock;
	struct obj_view current;
	struct publication *_Atomic inflight;
	_Atomic uint64_t installed_gen;
	struct adopted_keys *adopted;
} rt = { .lock = PTHREAD_MUTEX_INITIALIZER };

const struct obj_runtime *obj_runtime(void) { return &rt.pub; }

int obj_runtime_init(const struct obj_config *cfg, unsigned ncores)
{
	memset(&rt.current, 0, sizeof(rt.current));
	rt.pub.cfg = cfg;
	rt.pub.ncores = ncores;
	atomic_store(&rt.nns, 0);
	struct obj_view *v = &rt.current;
	v->gen = 1;
	slotmap_build(&v->map, ncores);
	v->nroutes = cfg->nroutes;
	memcpy(v->routes, cfg->routes, sizeof(cfg->routes[0]) * cfg->nroutes);
	atomic_store(&rt.installed_gen, 1);
	int r = store_open(&cfg->store, &rt.pub.store);
	if (r < 0)
		return r;
	char err[512];
	r = store_migrate(rt.pub.store, cfg->migrations, cfg->nmigrations, err, sizeof(err));
	if (r == -EINVAL) {
		log_error("%s", err);
		return r;
	}
	if (r < 0)
		return r;
	for (unsigned i = 0; i < cfg->nbindings; i++) {
		struct duro_namespace *ns = &rt.ns[i];
		const struct obj_binding *b = &cfg->bindings[i];
		ns->index = i;
		ns->binding = b;
		ns->cls = obj_find_class(b->class_name);
		if (!ns->cls) {
			log_error("config: binding %s: unknown class \"%s\"", b->name, b->class_name);
			return -EINVAL;
		}
		uint8_t secret[32];
		char deleted_by[STORE_NAME_MAX];
		r = store_class(rt.pub.store, ns->cls->name, &ns->cf, secret, deleted_by);
		if (r == -ENOENT && deleted_by[0]) {
			log_error("config: durable_objects.bindings[%u]: class \"%s\" was deleted by migration tag \"%s\" and is still bound",
				  i, b->class_name, deleted_by);
			return -EINVAL;
		}
		if (r == -ENOENT) {
			log_error("config: durable_objects.bindings[%u]: class \"%s\" has no migration: list it in new_classes of a migrations tag",
				  i, b->class_name);
			return -EINVAL;
		}
		if (r < 0)
			return r;
		obj_namespace_keys(ns, secret);
		const struct obj_module *m = obj_class_module(b->class_name);
		struct obj_version *ver = obj_version_of(ns->cls, m ? m->sha : NULL, m);
		if (!ver)
			return -ENOMEM;
		v->ns[i] = (struct obj_ns_entry){ .ns = ns, .cls = ns->cls, .ver = ver,
						   .split = OBJ_SPLIT_ALL };
		v->nns = i + 1;
		atomic_store_explicit(&rt.nns, i + 1, memory_order_release);
	}
	return 0;
}

void obj_runtime_attach(struct core_group *g) { rt.group = g; }

void obj_runtime_set_version(unsigned ns, struct obj_version *ver, struct obj_version *old,
			     unsigned split, const uint8_t seed[16])
{
	DURO_ASSERT(!rt.group && ns < rt.current.nns && !strcmp(ver->class_name, rt.ns[ns].cls->name));
	pthread_mutex_lock(&rt.lock);
	struct obj_ns_entry *e = &rt.current.ns[ns];
	e->ver = ver;
	e->cls = ver->cls;
	e->old = split < OBJ_SPLIT_ALL ? old : NULL;
	e->split = (uint16_t)(e->old ? split : OBJ_SPLIT_ALL);
	memcpy(e->seed, seed, sizeof(e->seed));
	pthread_mutex_unlock(&rt.lock);
}

void obj_runtime_fini(void)
{
	/* A publication the cores stopped before taking: nobody frees it but us. */
	struct publication *p = atomic_exchange(&rt.inflight, NULL);
	if (p) {
		free(p->view);
		free(p);
	}
	while (rt.adopted) {
		struct adopted_keys *next = rt.adopted->next;
		free(rt.adopted);
		rt.adopted = next;
	}
	store_close(rt.pub.store);
	rt.pub.store = NULL;
	rt.pub.cfg = NULL;
	rt.group = NULL;
	atomic_store(&rt.nns, 0);
}

/* ---- views ---- */

void obj_view_install_initial(struct core *c, struct obj_view *out)
{
	(void)c;
	pthread_mutex_lock(&rt.lock);
	*out = rt.current;
	pthread_mutex_unlock(&rt.lock);
}

struct obj_view *obj_view_copy(void)
{
	struct obj_view *v = malloc(sizeof(*v));
	if (!v)
		return NULL;
	pthread_mutex_lock(&rt.lock);
	*v = rt.current;
	pthread_mutex_unlock(&rt.lock);
	return v;
}

void obj_runtime_view_msg(struct core *c, struct core_msg *m)
{
	struct publication *p = LIST_CONTAINER(m - c->index, struct publication, msg);
	/* Namespaces keep their index: live objects keep their class version until they are
	 * unloaded; new activations take the view's. */
	c->obj->view = *p->view;
	if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) != 1)
		return;
	/* The last core to take it: every core has its copy now. */
	atomic_store(&rt.installed_gen, p->view->gen);
	atomic_store(&rt.inflight, NULL);
	free(p->view);
	free(p);
}

int obj_runtime_publish(struct obj_view *next)
{
	DURO_ASSERT(rt.group);
	if (atomic_load(&rt.inflight)) {
		free(next);
		return -EBUSY;
	}
	pthread_mutex_lock(&rt.lock);
	DURO_ASSERT(next->nns >= rt.current.nns && next->nns <= DURO_MAX_BINDINGS);
	for (unsigned i = 0; i < rt.current.nns; i++)
		DURO_ASSERT(next->ns[i].ns == rt.current.ns[i].ns); /* never reordered */
	next->gen = rt.current.gen + 1;
	pthread_mutex_unlock(&rt.lock);
	struct publication *p = calloc(1, sizeof(*p));
	if (!p) {
		free(next);
		return -ENOBUFS;
	}
	p->view = next;
	unsigned n = rt.group->ncores;
	atomic_store(&p->pending, n);
	for (unsigned i = 0; i < n; i++)
		p->msg[i].type = MSG_OBJ_VIEW;
	atomic_store(&rt.inflight, p);
	pthread_mutex_lock(&rt.lock);
	rt.current = *next;
	pthread_mutex_unlock(&rt.lock);
	/* From here the cores own p: a core may install (and the last one free) it at once. */
	for (unsigned i = 0; i < n; i++) {
		while (core_post(rt.group, i, &p->msg[i]) < 0) {
			/* A full post ring drains within a turn: wait for room rather than leave
			 * one core on the old view. */
			struct timespec ts = { 0, 100000 };
			nanosleep(&ts, NULL);
		}
	}
	return 0;
}

uint64_t obj_runtime_installed_gen(void) { return atomic_load(&rt.installed_gen); }

int obj_runtime_add_namespace(const struct obj_binding *b, struct obj_version *ver, int cf,
			      const uint8_t secret[32], const struct obj_route *route,
			      uint64_t deadline_ms)
{
	unsigned i = atomic_load(&rt.nns);
	DURO_ASSERT(ver && !strcmp(ver->class_name, b->class_name));
	struct obj_view *v = obj_view_copy();
	if (!v)
		return -ENOMEM;
	DURO_ASSERT(v->nns == i); /* namespaces shown are those every core has */
	if (i == DURO_MAX_BINDINGS || (route && v->nroutes == DURO_MAX_ROUTES)) {
		free(v);
		return -ENOSPC;
	}
	struct duro_namespace *ns = &rt.ns[i];
	rt.live_bindings[i] = *b;
	memset(ns, 0, sizeof(*ns));
	ns->index = i;
	ns->binding = &rt.live_bindings[i];
	ns->cls = ver->cls;
	ns->cf = cf;
	obj_namespace_keys(ns, secret);
	v->ns[i] = (struct obj_ns_entry){ .ns = ns, .cls = ver->cls, .ver = ver, .split = OBJ_SPLIT_ALL };
	v->nns = i + 1;
	if (route) {
		v->routes[v->nroutes] = *route;
		v->routes[v->nroutes++].binding = (int)i;
	}
	if (!rt.group) {
		pthread_mutex_lock(&rt.lock);
		rt.current = *v;
		pthread_mutex_unlock(&rt.lock);
		free(v);
		atomic_store_explicit(&rt.nns, i + 1, memory_order_release);
		return (int)i;
	}
	struct obj_view *copy = malloc(sizeof(*copy));
	if (!copy) {
		free(v);
		return -ENOMEM;
	}
	int r;
	for (;;) {
		*copy = *v;
		r = obj_runtime_publish(copy);
		if (r == 0)
			break;
		if (r != -EBUSY || clock_now_ms() > deadline_ms) {
			free(v);
			return r == -EBUSY ? -ETIMEDOUT : r;
		}
		if (!(copy = malloc(sizeof(*copy)))) {
			free(v);
			return -ENOMEM;
		}
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	pthread_mutex_lock(&rt.lock);
	uint64_t gen = rt.current.gen;
	pthread_mutex_unlock(&rt.lock);
	free(v);
	r = (int)i;
	while (obj_runtime_installed_gen() < gen && r >= 0) {
		if (clock_now_ms() > deadline_ms)
			r = -ETIMEDOUT; /* posted: it reaches the cores later, and the index is taken */
		else
			nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	atomic_store_explicit(&rt.nns, i + 1, memory_order_release);
	return r;
}

/* ---- namespaces, for classes (duro.h) and the control plane: any thread ---- */

const struct duro_namespace *duro_namespace(const char *binding)
{
	unsigned n = atomic_load_explicit(&rt.nns, memory_order_acquire);
	for (unsigned i = 0; i < n; i++)
		if (strcmp(rt.ns[i].binding->name, binding) == 0)
			return &rt.ns[i];
	return NULL;
}

unsigned obj_namespaces(void) { return atomic_load_explicit(&rt.nns, memory_order_acquire); }
const char *obj_namespace_binding(unsigned ns) { return rt.ns[ns].binding->name; }
int obj_namespace_cf(unsigned ns) { return rt.ns[ns].cf; }
struct store *obj_runtime_store(void) { return rt.pub.store; }

const char *obj_namespace_class(unsigned ns)
{
	pthread_mutex_lock(&rt.lock);
	const char *name = rt.current.ns[ns].cls->name;
	pthread_mutex_unlock(&rt.lock);
	return name;
}

unsigned obj_owner(const struct duro_id *id)
{
	pthread_mutex_lock(&rt.lock);
	unsigned core = slotmap_owner(&rt.current.map, id->bytes);
	pthread_mutex_unlock(&rt.lock);
	return core;
}

int obj_parse_id(const char *hex, size_t len, unsigned *ns, struct duro_id *id)
{
	int r = -ENOENT;
	unsigned n = obj_namespaces();
	for (unsigned i = 0; i < n; i++) {
		r = duro_id_from_string(&rt.ns[i], hex, len, id);
		if (r == 0) {
			*ns = i;
			return 0;
		}
		if (r == -EINVAL)
			return r;
	}
	return r;
}

int obj_id_from_name(const char *binding, const char *name, size_t len, unsigned *ns,
		     struct duro_id *id)
{
	const struct duro_namespace *n = duro_namespace(binding);
	if (!n)
		return -ENOENT;
	int r = duro_id_from_name(n, name, len, id);
	if (r == 0)
		*ns = n->index;
	return r;
}

int obj_namespace_adopt(unsigned ns, const uint8_t secret[32])
{
	struct adopted_keys *a = malloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	memcpy(a->keys, secret, 32);
	a->next = rt.adopted;
	rt.adopted = a;
	atomic_store_explicit(&rt.ns[ns].keys, a->keys, memory_order_release);
	return 0;
}
