/* Object runtime types: namespaces, routes and the runtime's config, filled by control/. */
#ifndef DURO_OBJ_OBJ_T_H
#define DURO_OBJ_OBJ_T_H

#include "duro.h"
#include "base_limits.h"
#include "store.h"

#include <stdint.h>

#define OBJ_NAME_MAX 64
#define OBJ_PREFIX_MAX 128

#define OBJ_MAX_ALLOW 32        /* outbound.allow patterns */
#define OBJ_ALLOW_TEXT 160      /* bytes of one pattern */
#define OBJ_OUTBOUND_HOST_MAX 128

#define OBJ_MAX_VARS 16
#define OBJ_VAR_VALUE_MAX 256

struct obj_var {
	char name[OBJ_NAME_MAX];
	char value[OBJ_VAR_VALUE_MAX];
};

struct obj_binding {
	char name[OBJ_NAME_MAX];       /* e.g. "COUNTER" */
	char class_name[OBJ_NAME_MAX]; /* e.g. "Counter" */
	struct obj_var vars[OBJ_MAX_VARS]; /* the class's settings for this binding */
	unsigned nvars;
};

enum obj_route_kind {
	ROUTE_NAME,    /* <prefix><name>[/…] -> idFromName(name) in the route's binding */
	ROUTE_ID,      /* <prefix><64 hex>[/…] -> idFromString in the route's binding */
	ROUTE_GENERIC, /* <prefix><binding>/<64 hex | new>[/…] */
};

struct obj_route {
	char prefix[OBJ_PREFIX_MAX]; /* starts and ends with '/' */
	enum obj_route_kind kind;
	int binding; /* index into bindings; -1 for ROUTE_GENERIC */
};

struct obj_config {
	uint8_t cluster; /* cluster mode: objects pass the slot gate (cluster_gate.h) */
	int cluster_pipeline; /* forwarded requests pipelined per peer (cluster_forward.c) */
	uint8_t replicate; /* cluster.replication: owned slots' writes go to followers */
	struct obj_binding bindings[DURO_MAX_BINDINGS];
	unsigned nbindings;
	struct obj_route routes[DURO_MAX_ROUTES];
	unsigned nroutes;
	unsigned evict_idle_ms; /* an object idle this long is unloaded; default 30 s */
	char data_dir[512];
	struct store_config store;
	struct obj_alarm_config {
		unsigned retry_initial_ms; /* first retry after a failed handler; doubles; 2 s */
		unsigned max_retries;      /* then the alarm is dropped; 6 */
		unsigned min_interval_ms;  /* an alarm re-armed sooner after firing is delayed */
	} alarms;
	struct store_migration migrations[DURO_MAX_MIGRATIONS];
	unsigned nmigrations;
	struct obj_ws_config {
		unsigned max_per_object;    /* sockets and streams; beyond it 503; 32768 */
		unsigned hibernate_idle_ms; /* an object with only sockets is evicted; 10 s */
	} websockets;
	struct obj_storage_limits {
		size_t max_key, max_value;     /* bytes; defaults 2 KiB and 128 MiB */
		uint64_t max_object_bytes;     /* default 50 GB */
		size_t cache_bytes_per_core;   /* per-object read caches; default 64 MiB */
	} limits;
	struct obj_call_config {
		unsigned timeout_ms;   /* a call unanswered this long: -ETIMEDOUT; 30 s */
		unsigned max_depth;    /* calls in a chain (A calls B calls C ...); 16 */
		unsigned max_queue;    /* calls an object holds unanswered; then -EBUSY; 1024 */
		unsigned max_pending;  /* calls an object waits for at once; then -ENOSPC; 1024 */
		unsigned max_per_core; /* calls out from one core at once; then -EBUSY; 65536 */
	} calls;
	struct obj_outbound_config {
		char allow[OBJ_MAX_ALLOW][OBJ_ALLOW_TEXT]; /* where fetch may go; none: nowhere */
		unsigned nallow;
		unsigned connect_timeout_ms;  /* 5 s */
		unsigned timeout_ms;          /* the whole fetch, unless it gives its own; 30 s */
		unsigned max_response_bytes;  /* of an answer's body; then -EFBIG; 16 MiB */
		unsigned max_per_object;      /* fetches one object has at once; then -EBUSY; 6 */
		unsigned max_idle_per_core;   /* pooled keep-alive connections per core; 256 */
		unsigned idle_timeout_ms;     /* a pooled connection unused this long closes; 30 s */
		unsigned resolve_interval_ms; /* names looked up again this often; 0: at start only; 30 s */
		char hosts_file[512];         /* hosts(5) lines read before the system's resolver; "" */
	} outbound;
	/* Objects' SQL databases (sql.c): memory and the limits modelled on Cloudflare's. */
	struct obj_sql_config {
		uint64_t cache_bytes_per_core; /* SQLite page caches and held pages; 64 MiB */
		uint64_t connection_bytes_per_core; /* open connections' schemas and statements;
						     * 256 MiB */
		uint64_t max_event_write_bytes; /* pages one event may write; 256 MiB */
		unsigned max_statement_bytes;  /* 100,000 */
		unsigned max_params;           /* bound parameters per statement; 100 */
		unsigned max_row_bytes;        /* a string, blob or row; 2,000,000 */
		unsigned max_columns;          /* 100 */
		unsigned max_expr_depth;       /* 100 */
		unsigned time_budget_ms;       /* a statement past this since its event began is
						* interrupted and fails the event; 30,000 */
		int open_ahead;                /* requests wait while the core's opener thread opens
						* their object's connection (sql_ahead.c); off */
	} sql;
};

/* A namespace: a binding resolved to its class, with its secret. Read-only once serving. */
struct duro_namespace {
	unsigned index;
	const struct obj_binding *binding;
	const struct duro_class *cls;
	int cf;               /* the class's column family */
	/* The name key (16 bytes, keys the hash of names into ID bodies) then the MAC key (16,
	 * binds an ID to this namespace). An import that adopts another box's secret swaps
	 * the pointer whole, so no reader mixes old and new halves. */
	const uint8_t *_Atomic keys;
	uint8_t keys_initial[32];
};

struct obj_commit_counters {
	uint64_t commits;      /* transactions that wrote */
	uint64_t batches;      /* commit-log records written */
	uint64_t batched_txns; /* transactions in those records: /batches = commits per sync */
	uint64_t syncs;        /* fdatasyncs that succeeded */
	uint64_t failures;     /* failed commits */
	uint64_t gated;        /* responses held behind the output gate */
	uint64_t apply_retries;
	uint64_t prepare_retries; /* records held back a turn: no memory for their aligned copy */
	uint64_t space_refusals; /* events whose writes were refused: disk under the reserve */
	uint64_t unreplicated; /* batches whose answers left as of unknown outcome: not on a
				* majority of copies (cluster.replication) */
};

struct obj_alarm_counters {
	uint64_t pending, fired, retries, dropped, throttled, load_skipped;
	uint64_t not_owner_deferred; /* cluster mode: due while another box owned the slot */
};

struct obj_ws_counters {
	uint64_t accepted, streams, closed, refused_full, refused_core, messages, wakeups;
	uint64_t hibernations, auto_responses, event_timeouts, handler_failures, events_lost;
	uint64_t hibernated; /* gauge: objects out of memory whose sockets stay open */
	uint64_t sends, broadcasts, deliveries, gate_dropped;
	/* Outbound sockets (duro_ws_connect): opened, failed to open, opened again by the
	 * runtime, and dials refused before anything was sent. */
	uint64_t outbound_opened, outbound_failed, outbound_reconnects, outbound_refused;
};

/* Latency of calls, in powers of two of microseconds: [0] under 1 us, [i] under 2^i us. */
#define OBJ_CALL_LAT_BUCKETS 24

/* Per namespace (binding, hence class) on one core. All uint64_t (summed word by word). */
struct obj_call_counters {
	uint64_t made;          /* calls its objects made (duro_call returned 0) */
	uint64_t replies;       /* answered by their callee, whatever the status */
	uint64_t timeouts;      /* done() heard -ETIMEDOUT */
	uint64_t late;          /* answers that came after the timeout, dropped */
	uint64_t overloaded;    /* done() heard -EBUSY, or duro_call returned it */
	uint64_t refused;       /* duro_call returned another error (depth, size, pending) */
	uint64_t not_delivered; /* never left: the event failed, or its commit did (-EIO) */
	uint64_t errors;        /* done() heard another error (callee reset, shutdown) */
	uint64_t received;      /* calls its objects handled as callee */
	uint64_t queue_full;    /* calls to its objects refused at calls.max_queue */
	uint64_t fetches;       /* outbound fetches its objects made (in made, replies too) */
	uint64_t fetch_refused; /* refused: a destination outbound.allow does not name */
	uint64_t latency_sum_ns;
	uint64_t latency[OBJ_CALL_LAT_BUCKETS]; /* made to answered, of replies */
};

struct obj_counters {
	uint64_t requests, activations, evictions, active, load_failures, handler_failures;
	uint64_t not_found, bad_ids, forwarded;
	/* Cluster mode (cluster_gate.c): refused while fenced or joining, refused as not the
	 * slot's owner. */
	uint64_t cluster_fenced, cluster_not_owner;
	/* Answers that reached the output gate after this box's lease ran out (a pause, a
	 * slow disk): sent as 503 instead, their outcome unknown (cluster_gate.h). */
	uint64_t cluster_late;
	/* Requests forwarded to the owner box (cluster_forward.c), attempts made again after a
	 * refusal or a failed connection, and those answered 502/503/504 by this box. */
	uint64_t cluster_fwd, cluster_fwd_retries, cluster_fwd_failed;
	/* WebSockets relayed to their owner box (cluster_wsrelay.c): opened, open now, found
	 * their owner again after losing it, dials made again, refused or closed 1013 here;
	 * messages each way; on the owner, relayed upgrades admitted (cluster_gate.c). */
	uint64_t cluster_ws_relayed, cluster_ws_open, cluster_ws_rerouted, cluster_ws_retries;
	uint64_t cluster_ws_failed, cluster_ws_to_owner, cluster_ws_from_owner, cluster_ws_inbound;
	/* On the owner: relayed sockets cut off because their edge box's member key went
	 * (1006 to the object), or closed 1012 because their slot left this box. */
	uint64_t cluster_ws_edge_lost, cluster_ws_slot_moved;
	/* Deploys (switch.c): objects switched in place to another version, those of them
	 * switched by force (max delay passed), the held responses that answered 503 and the
	 * sync() callbacks that ran with -ECANCELED because of it, and objects waiting now. */
	uint64_t switches, switches_forced, switch_deferred_503, switch_cancelled, switch_waiting;
};

#endif
