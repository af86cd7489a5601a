/* Object runtime types: namespaces, routes and the runtime's config, filled by control/. */
#ifndef DURO_OBJ_OBJ_T_H
#define DURO_OBJ_OBJ_T_H

#include "duro.h"
#include "base_limits.h"
#include "store.h"

#include <stdint.h>

#define OBJ_NAME_MAX 64
#define OBJ_PREFIX_MAX 128

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
	/* Objects' SQL databases (sql.c): memory and the limits modelled on Cloudflare's. */
	struct obj_sql_config {
		uint64_t cache_bytes_per_core; /* SQLite page caches and connections; 64 MiB */
		uint64_t max_event_write_bytes; /* pages one event may write; 256 MiB */
		unsigned max_statement_bytes;  /* 100,000 */
		unsigned max_params;           /* bound parameters per statement; 100 */
		unsigned max_row_bytes;        /* a string, blob or row; 2,000,000 */
		unsigned max_columns;          /* 100 */
		unsigned max_expr_depth;       /* 100 */
		unsigned time_budget_ms;       /* a statement past this since its event began is
						* interrupted and fails the event; 30,000 */
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
};

struct obj_alarm_counters {
	uint64_t pending, fired, retries, dropped, throttled, load_skipped;
};

struct obj_ws_counters {
	uint64_t accepted, streams, closed, refused_full, refused_core, messages, wakeups;
	uint64_t hibernations, auto_responses, event_timeouts, handler_failures, events_lost;
	uint64_t hibernated; /* gauge: objects out of memory whose sockets stay open */
	uint64_t sends, broadcasts, deliveries, gate_dropped;
};

struct obj_counters {
	uint64_t requests, activations, evictions, active, load_failures, handler_failures;
	uint64_t not_found, bad_ids, forwarded;
};

#endif
