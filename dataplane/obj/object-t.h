/* The runtime's per-core types: one live object, and the core's share of the runtime that
 * every part of dataplane/obj hangs its state from. Types only: any part may embed them. */
#ifndef DURO_OBJ_OBJECT_T_H
#define DURO_OBJ_OBJECT_T_H

#include "kv-t.h"
#include "sql-t.h"
#include "list.h"
#include "runtime.h"
#include "timer.h"

struct core;
struct core_msg;
struct http_exchange;
struct ws_group;
struct obj_sync;
struct commit_core;
struct alarm_core;
struct obj_ws_core;
struct obj_version;
struct switch_core;
struct call_core;
struct fetch_core;
struct pitr_pending;
struct pitr_restore;
struct obj_move_core;

/* Responses an object may hold (duro_res_defer). */
#define OBJ_MAX_DEFERRED 4096

/* One live instance, on its owner core only. */
struct object {
	struct duro_id id;
	const struct duro_namespace *ns;
	const struct duro_class *cls; /* the version it was activated with */
	struct obj_version *ver;      /* cls's version; changes only by a switch (switch.c) */
	struct object *hnext;
	struct list_node lru;
	uint64_t last_used_ms;
	uint8_t running;
	uint8_t defer_current;  /* the running on_request deferred its response */
	unsigned ndeferred;     /* held responses: the object stays in memory */
	struct http_exchange *deferred; /* linked through msg.next */
	/* Held responses the running event answered: they leave when it ends, behind its
	 * writes (the output gate). Linked through msg.next, oldest first. */
	struct http_exchange *answered, *answered_tail;
	struct ws_group *group; /* its sockets, or NULL */
	char *name;             /* idFromName's name when reached by one, or NULL */
	uint16_t name_len;
	struct core_msg *ws_out_head, *ws_out_tail; /* sends of the running event */
	struct obj_sync *syncs, *syncs_tail;        /* sync() calls of the running event */
	struct core *core;
	struct obj_kv kv;
	/* Deploys (switch.c): sync() calls of earlier events still waiting for their batch
	 * (continuations into this version's code, which keep it from switching); the list of
	 * objects waiting to switch; a switched object's state when larger than the state it
	 * was made with (else NULL: state[] below). needs_load: switched, the new version's
	 * on_load runs before its next event. */
	struct list_node conts;
	struct list_node switch_node;
	void *state_mem;
	size_t state_cap;
	uint8_t needs_load;
	/* Calls (call.c): made by the running event, then waiting for done(); how many wait
	 * (they keep it in memory), calls to it it holds unanswered (duro_res_defer), the
	 * newest batch a call of it waited for (no later call leaves before it); nfetches:
	 * the fetches among calls_made and calls_pending (outbound.max_per_object). */
	struct list_node calls_made, calls_pending;
	uint32_t ncalls, calls_held, nfetches;
	uint64_t call_gate_seq;
	uint8_t unloading; /* in object_unload: no more calls */
	struct obj_sql *sql;    /* its SQL database, once it used one (sql.c) */
	/* Its history (history.c): the seq and time of its last commit, once read. */
	uint64_t hist_seq, hist_time_ms;
	uint8_t hist_loaded;
	uint8_t hist_empty; /* it has no history yet: its next commit writes its base first */
	_Alignas(16) unsigned char state[];
};

/* What each core holds of the runtime. */
struct obj_core {
	const struct obj_runtime *rt;
	struct obj_view view; /* this core's copy (runtime.h) */
	struct object **buckets;
	size_t nbuckets;
	size_t count;
	struct list_node lru;
	struct timer evict_timer;
	struct commit_core *commit;
	struct alarm_core *alarms;
	struct obj_ws_core *ws;
	struct switch_core *sw;     /* deploys: objects switching versions (switch.c) */
	struct list_node switching; /* objects on a version their view no longer names */
	struct call_core *calls;
	struct fetch_core *fetch;
	struct sql_core *sql;
	size_t cache_bytes; /* bytes of kv entries on this core */
	uint64_t last_trim_ms;
	uint64_t failure_logged_ms; /* handler failures are logged at most once a second */
	struct obj_counters ctr;
	struct pitr_pending *pitr_pending; /* restores classes asked for (pitr.c) */
	struct pitr_restore *pitr_restores; /* restores under way (pitr.c) */
	struct obj_move_core *move; /* cluster moves' live tails (cluster_move.c), or NULL */
	struct obj_cluster_table *cluster; /* cluster mode's slot gate, NULL on a single box */
	struct obj_cluster_fwd_core *cluster_fwd; /* its requests forwarded to other boxes */
	struct obj_cluster_wsr_core *cluster_wsr; /* its WebSockets relayed to other boxes */
};

#endif
