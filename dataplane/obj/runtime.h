/* The runtime's shared state and how it changes while serving: the config, the store, the
 * namespaces (bindings resolved to classes), and the view every core routes and runs by.
 *
 *   publisher (any thread) --obj_runtime_publish--> MSG_OBJ_VIEW to each core
 *   core: installs its own copy at the start of a turn (c->obj->view), never shared
 *
 * Namespaces are long-lived and only ever appended (an index names the same namespace on
 * every core and in every message); what may change per view is which class version each
 * namespace runs, the routes and which core owns each slot. */
#ifndef DURO_OBJ_RUNTIME_H
#define DURO_OBJ_RUNTIME_H

#include "obj-t.h"
#include "slotmap.h"

struct core;
struct core_msg;
struct obj_version;

/* A namespace as one view has it. */
struct obj_ns_entry {
	const struct duro_namespace *ns;
	const struct duro_class *cls; /* the class version new activations run (ver's) */
	struct obj_version *ver;      /* its version (version.h) */
	/* A gradual deploy: an object whose share (version.h) is at or over split runs old.
	 * split OBJ_SPLIT_ALL (10000), or old NULL: every object runs ver. */
	struct obj_version *old;
	uint16_t split;
	uint8_t seed[16];
	/* A deploy: resident objects on another version switch at their next quiescent point
	 * (no event running, nothing of the old code pending), and by this time (the cores'
	 * clock, ms) they are switched anyway. Each deploy of the namespace raises deploy_gen,
	 * which makes each core look at its objects again. */
	uint64_t force_at_ms;
	uint64_t deploy_gen;
};

/* What a core routes and runs requests by. Immutable once published; each core keeps its
 * own copy, so the request path reads only core-local memory and takes no lock. */
struct obj_view {
	uint64_t gen; /* 1 for the view the cores start with, then one more per publication */
	unsigned nns;
	struct obj_ns_entry ns[DURO_MAX_BINDINGS];
	unsigned nroutes;
	struct obj_route routes[DURO_MAX_ROUTES];
	struct slotmap map;
};

/* The process's runtime, set up once before the cores start. The config and store are
 * read-only while serving; cores reach them through their obj_core. */
struct obj_runtime {
	const struct obj_config *cfg;
	struct store *store;
	unsigned ncores;
};

/* The runtime (valid between obj_runtime_init and obj_runtime_fini). */
const struct obj_runtime *obj_runtime(void);

/* Before the cores start (after obj_runtime_init): namespace ns runs version `ver`, and
 * `old` for objects at or over `split` (a gradual deploy; old NULL for none): durod
 * restoring what was deployed. Not while serving: publish a view instead. */
void obj_runtime_set_version(unsigned ns, struct obj_version *ver, struct obj_version *old,
			     unsigned split, const uint8_t seed[16]);

/* The view a core starts with, copied into out. */
void obj_view_install_initial(struct core *c, struct obj_view *out);
/* The handler of MSG_OBJ_VIEW on each core: installs the core's copy of a publication. */
void obj_runtime_view_msg(struct core *c, struct core_msg *m);

/* A copy of the current view for a publisher to change (the caller owns it); NULL when out
 * of memory. */
struct obj_view *obj_view_copy(void);
/* Publishes `next` (from obj_view_copy; ownership passes here) to every core, which
 * installs it at its next turn. Publications are serialized by the caller (the control
 * thread); a publication starts only when the previous one has reached every core.
 * Returns 0, -EBUSY while the previous one is still on its way, or -ENOBUFS (not
 * published: `next` is freed). Namespaces may be appended (nns grows), never removed or
 * reordered. */
int obj_runtime_publish(struct obj_view *next);
/* The generation of the newest view every core has installed. */
uint64_t obj_runtime_installed_gen(void);

/* Adds a namespace: binding b (copied, kept for the process's life) running version ver,
 * its data in column family cf under `secret`, and `route` (NULL for none; its binding
 * index is set here) appended to the routes. Before the cores start it joins the view
 * they start with; while serving (the control thread, which serializes publications) a
 * view holding it is published, and only once every core has installed it do
 * duro_namespace and obj_namespaces show it, so no core meets an index it does not know.
 * Returns the namespace's index, -ENOSPC (DURO_MAX_BINDINGS or DURO_MAX_ROUTES reached),
 * -ENOMEM, or -ETIMEDOUT when the cores did not all take the view by deadline_ms. */
int obj_runtime_add_namespace(const struct obj_binding *b, struct obj_version *ver, int cf,
			      const uint8_t secret[32], const struct obj_route *route,
			      uint64_t deadline_ms);

#endif
