/* The object runtime behind duro.h: classes, namespaces and IDs, routing a request to its
 * object's owner core, activation, strictly serial events per object, idle eviction. */
#ifndef DURO_OBJ_OBJ_H
#define DURO_OBJ_OBJ_H

#include "http-t.h"
#include "obj-t.h"
#include "ws.h"

/* Looks up a registered class; NULL when none has that name. */
const struct duro_class *obj_find_class(const char *name);
/* Calls fn for every registered class name (for messages that list the choices). */
void obj_each_class(void (*fn)(const char *name, void *arg), void *arg);
/* 0, or -EINVAL with the reason in err when a class could not be registered at start (a
 * duplicate name): durod refuses to start rather than run without it. */
int obj_registry_check(char *err, size_t errlen);
/* Registers a class of a module loaded at start (module.h). Returns 0, or -EEXIST (a
 * class of that name: err says whose), -ENOSPC, -EINVAL (a bad name), with one line in
 * err. */
struct obj_module;
int obj_registry_add(const struct duro_class *cls, const struct obj_module *module, char *err,
		     size_t errlen);
/* Where a registered class came from: NULL built in, else its module. */
const struct obj_module *obj_class_module(const char *name);

/* Opens the store, applies the config's migrations and resolves each binding to its class,
 * column family and namespace secret (kept in the meta family). Call once before the cores
 * start. Returns 0, -EINVAL for a refusal of the config (log line says which), or another
 * negative errno. */
int obj_runtime_init(const struct obj_config *cfg, unsigned ncores);
/* The cores that serve it (after core_group_init): views are published to them. */
void obj_runtime_attach(struct core_group *g);
void obj_runtime_fini(void);

/* Per-core set-up and tear-down (tear-down unloads every object). */
int obj_core_init(struct core *c);
void obj_core_fini(struct core *c);

/* The http handler: routes the request and sends it to its object's core. */
void obj_handle_http(struct core *c, struct http_exchange *ex);

/* What the socket layer reports to the object runtime (ws_core_init's events). */
const struct ws_events *obj_ws_events(void);

const struct obj_counters *obj_counters(struct core *c);
const struct obj_ws_counters *obj_ws_counters(struct core *c);
const struct obj_commit_counters *obj_commit_counters(struct core *c);
const struct obj_alarm_counters *obj_alarm_counters(struct core *c);
/* Calls per namespace (DURO_MAX_BINDINGS entries, indexed like obj_namespaces). */
const struct obj_call_counters *obj_call_counters(struct core *c);
/* Frees what calls still held when the cores stopped: after core_group_run returns. */
void obj_calls_fini(void);
/* True when this core has no commit open, in flight or unapplied (for shutdown). */
int obj_idle(struct core *c);

/* ---- for the control plane ---- */

/* Namespaces (bindings) in config order; read-only while serving, any thread. */
unsigned obj_namespaces(void);
const char *obj_namespace_binding(unsigned ns);
const char *obj_namespace_class(unsigned ns);
int obj_namespace_cf(unsigned ns);
/* The store, for reads from any thread (RocksDB reads are thread-safe). */
struct store *obj_runtime_store(void);
/* Parses 64 hex digits and finds the namespace that minted the ID. Returns 0, -EINVAL
 * (malformed) or -ENOENT (no namespace of this config). */
int obj_parse_id(const char *hex, size_t len, unsigned *ns, struct duro_id *id);
/* idFromName(name) in the namespace of `binding` (what a "name" route computes). Returns 0,
 * -ENOENT (no binding of that name) or -EINVAL (a name empty or over DURO_MAX_NAME). */
int obj_id_from_name(const char *binding, const char *name, size_t len, unsigned *ns,
		     struct duro_id *id);
/* The core that owns an object (any thread). */
unsigned obj_owner(const struct duro_id *id);

/* On the object's owner core: */
struct obj_info {
	int in_memory, running, hibernated;
	unsigned sockets, deferred;
};
void obj_describe(struct core *c, unsigned ns, const struct duro_id *id, struct obj_info *out);
/* Unloads the object now if nothing keeps it: 1 evicted, 0 not in memory, -EBUSY (a
 * running event, writes not yet in RocksDB, held responses or open sockets). */
int obj_evict(struct core *c, unsigned ns, const struct duro_id *id);
/* Hard delete: every key, alarm, size and name record of the object, as one event; done
 * is called on this core once that is durable (0) or failed (negative errno). Returns 0
 * or a negative errno (then done is not called). */
int obj_delete(struct core *c, unsigned ns, const struct duro_id *id,
	       void (*done)(void *arg, int status), void *arg);

/* 1 when every commit this core made durable is also in RocksDB (a snapshot taken now
 * holds every write acknowledged so far), 0 while an apply is pending. */
int obj_storage_settled(struct core *c);
/* Restores one object from an export, as one event: every key (duro's own alarm keys
 * included, so its alarms are scheduled) and its name. The object must hold nothing yet
 * (-EEXIST). done is called on this core once durable (0) or failed. Returns 0 or a
 * negative errno (then done is not called). */
int obj_import(struct core *c, unsigned ns, const struct duro_id *id, const char *name,
	       size_t name_len, const struct duro_kv *entries, size_t n,
	       void (*done)(void *arg, int status), void *arg);
/* Runs SQL on the object as one event (duroctl sql, the dashboard): rows of the last
 * statement to fn on this core, *res filled, SQLite's message in err on failure. Without
 * `write` a statement that would write is refused (-EPERM) and nothing is kept; with it,
 * the event commits and done is called once that is durable (0) or failed. Returns 1
 * when finished now (done is not called: reads, and failures), 0 when done will be
 * called, or a negative errno (err says why). */
int obj_sql(struct core *c, unsigned ns, const struct duro_id *id, const char *sql, size_t len,
	    const struct duro_sql_value *params, size_t nparams, int write, duro_sql_row_fn *fn,
	    void *arg, struct duro_sql_result *res, char *err, size_t errlen,
	    void (*done)(void *arg, int status), void *done_arg);

/* Point-in-time recovery (pitr.c), on the object's owner core. obj_bookmark: the bookmark
 * of the object's newest commit at or before at_ms (-1: its newest), or a negative errno
 * with why in err (-ENOTSUP history off, -ERANGE before the window). obj_restore: the
 * object's state at `bookmark` is rebuilt off the core (a thread), then the live instance
 * is evicted (waited for up to 10 s while it has writes not yet stored: then -EBUSY) and
 * the state written as one event; undo gets the bookmark of the state it replaced.
 * Returns 0 when done will be called once that is durable (0) or failed (err says why;
 * undo and err must stay valid until then), or a negative errno with err at once
 * (-EINVAL a bookmark not of this object, -ERANGE past the window). */
int obj_bookmark(struct core *c, unsigned ns, const struct duro_id *id, int64_t at_ms,
		 char out[DURO_BOOKMARK_LEN + 1], char *err, size_t errlen);
int obj_restore(struct core *c, unsigned ns, const struct duro_id *id, const char *bookmark,
		char undo[DURO_BOOKMARK_LEN + 1], char *err, size_t errlen,
		void (*done)(void *arg, int status), void *done_arg);

/* Makes `secret` the namespace's, live (an import adopting the exporting box's IDs). The
 * caller has stored it in the meta family first. */
int obj_namespace_adopt(unsigned ns, const uint8_t secret[32]);

/* An outbound.allow pattern: 0, or -EINVAL with the reason in *why (for config errors). */
int obj_outbound_check(const char *pattern, const char **why);
/* Resolves the host names outbound.allow spells out (not wildcards) once, before the
 * cores start (a reactor never waits on a lookup), then starts the thread that looks them
 * up again every outbound.resolve_interval_ms and after failed connects. A name that does
 * not resolve is logged and fetches to it fail with -EHOSTUNREACH until it does. cfg is
 * kept until obj_outbound_resolve_stop. Returns 0 (without a thread, names stay as
 * resolved now: logged). */
int obj_outbound_resolve(const struct obj_outbound_config *cfg);
/* Stops the resolver thread, after the cores have stopped. */
void obj_outbound_resolve_stop(void);

/* 0 when id was minted by namespace ns, else -ENOENT. */
int obj_id_check(const struct duro_namespace *ns, const struct duro_id *id);

/* Derivation without a namespace lookup, for tests: see duro.h for the contracts. */
void obj_namespace_keys(struct duro_namespace *ns, const uint8_t secret[32]);

#endif
