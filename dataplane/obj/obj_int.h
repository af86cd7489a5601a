/* Internals of the object runtime shared by object.c (lifecycle, routing), kv.c (storage
 * API, caches, transactions) and commit.c (group commit, output gate). */
#ifndef DURO_OBJ_OBJ_INT_H
#define DURO_OBJ_OBJ_INT_H

#include "http-t.h"
#include "obj.h"
#include "list.h"
#include "obj-t.h"
#include "store.h"
#include "timer.h"

#define KV_TXN_SEQ UINT64_MAX /* written by the event still running */
/* Absent only because a delete_all of the running event hides storage: gone if that
 * delete_all is undone, the batch's once it commits. */
#define KV_WIPED_SEQ (UINT64_MAX - 1)
#define KV_MAX_SAVEPOINTS 16

/* One cached key of an object: a clean copy of what RocksDB holds (seq 0 or already
 * applied), or a write not yet applied (seq of its batch, or KV_TXN_SEQ), or a key read
 * while the running event's delete_all hides RocksDB (KV_WIPED_SEQ). */
struct kv_entry {
	struct kv_entry *hnext;
	struct kv_entry *undo; /* during an event: the entry this one replaced */
	uint64_t seq;
	uint32_t klen, vlen;
	uint8_t present; /* 0: deleted or known absent */
	char data[];     /* key, then value */
};

/* A sync() waiting for a batch: names its object by ID, so the object may be evicted or
 * reset meanwhile and is activated again to hear the outcome. */
struct sync_waiter {
	struct sync_waiter *next;
	struct duro_id id;
	unsigned ns;
	int status;
	duro_sync_fn *fn;
	void *arg;
};

struct kv_stats {
	uint64_t bytes, keys;
};

struct obj_kv {
	struct kv_entry **buckets;
	uint32_t nbuckets, count;
	size_t bytes;
	struct kv_entry **txn; /* entries written by the running event, in order */
	uint32_t ntxn, txn_cap;
	uint32_t savepoint[KV_MAX_SAVEPOINTS];
	struct kv_stats savepoint_stats[KV_MAX_SAVEPOINTS];
	uint8_t savepoint_wiped[KV_MAX_SAVEPOINTS];
	unsigned nsavepoints;
	struct kv_stats stats, stats_at_event; /* stored size and key count */
	int stats_loaded;
	uint64_t wiped_seq; /* delete_all not yet applied: RocksDB's keys do not count */
	uint8_t wiped_in_txn, wiped_at_event;
	uint64_t pending_seq; /* newest batch holding this object's writes */
	struct sync_waiter *syncs, *syncs_tail; /* registered by the running event */
};

#define OBJ_MAX_DEFERRED 4096

struct ws_conn;
struct ws_group;
struct obj_ws_core;

/* What routing leaves in the exchange's scratch area for the owner core. */
struct route_result {
	struct duro_id id;
	uint16_t ns;
	uint16_t subpath_off; /* offset of the subpath in req.path */
	uint16_t name_off, name_len; /* the name's segment of req.path (raw), 0 long if none */
	uint8_t ws_kind;      /* enum ws_kind of the reserved socket */
	uint8_t accepted;     /* the object took the socket (duro_ws_accept, duro_sse_accept) */
	struct object *obj;   /* set on the owner core while its handler runs */
	struct ws_conn *wc;   /* the socket reserved for an upgrade: the connection's core only */
	uint64_t ws_handle;   /* the same as a value any core may keep; 0 when none */
	uint64_t member;      /* the object's name for it once accepted */
};
_Static_assert(sizeof(struct route_result) <= HTTP_USER_BYTES, "route result fits");

struct object {
	struct duro_id id;
	const struct duro_namespace *ns;
	struct object *hnext;
	struct list_node lru;
	uint64_t last_used_ms;
	uint8_t running;
	uint8_t defer_current;  /* the running on_request deferred its response */
	unsigned ndeferred;     /* held responses: the object stays in memory */
	struct http_exchange *deferred; /* linked through msg.next */
	struct ws_group *group; /* its sockets, or NULL */
	char *name;             /* idFromName's name when reached by one, or NULL */
	uint16_t name_len;
	struct core_msg *ws_out_head, *ws_out_tail; /* sends of the running event */
	struct core *core;
	struct obj_kv kv;
	_Alignas(16) unsigned char state[];
};

struct commit_core;
struct alarm_core;

/* duro's own keys in an object's key space: alarms live under ALARM_PREFIX ‖ name. */
#define KV_RESERVED "\xff\xff"
#define ALARM_PREFIX "\xff\xff" "alarm/"
#define ALARM_PREFIX_LEN 8

/* A change to an object's alarms, applied to the core's table when its batch is durable. */
struct alarm_change {
	struct alarm_change *next;
	struct duro_id id;
	unsigned ns;
	int64_t time_ms; /* -1: deleted */
	uint8_t wipe;    /* delete_all: every alarm of the object */
	uint8_t namelen;
	char name[DURO_MAX_ALARM_NAME];
};

struct obj_core {
	struct object **buckets;
	size_t nbuckets;
	size_t count;
	struct list_node lru;
	struct timer evict_timer;
	struct commit_core *commit;
	struct alarm_core *alarms;
	struct obj_ws_core *ws;
	size_t cache_bytes; /* bytes of kv entries on this core */
	uint64_t last_trim_ms;
	uint64_t failure_logged_ms; /* handler failures are logged at most once a second */
	struct obj_counters ctr;
};

/* The runtime's read-only state (object.c). */
struct store *obj_store(void);
const struct obj_storage_limits *obj_limits(void);

/* kv.c */
int kv_event_begin(struct core *c, struct object *obj);
/* Ends the event: commit (ok) moves its writes into the core's open batch and returns 1
 * when there were any; rollback undoes them and returns 0. */
int kv_event_end(struct core *c, struct object *obj, int ok);
void kv_free_all(struct core *c, struct object *obj);
/* Drops clean cached entries of objects, oldest first, until under the core's budget. */
void kv_trim_cache(struct core *c);
int kv_dirty(struct core *c, const struct object *obj);

/* Internal reads and writes that may touch reserved keys (alarms). */
int kv_read(struct object *obj, const void *k, size_t klen, struct duro_str *value);
int kv_write(struct object *obj, const void *k, size_t klen, const void *v, size_t vlen, int present);
int kv_list(struct object *obj, const struct duro_list_options *opt, duro_list_fn *fn, void *arg,
	    int reserved);

/* alarm.c */
/* How long after its `retries`-th failed firing (0 for the first) an alarm fires again. */
uint64_t alarm_retry_delay_ms(const struct obj_alarm_config *cfg, unsigned retries);
int alarm_core_init(struct core *c);
void alarm_core_fini(struct core *c);
/* Applies durable alarm changes to the core's table and timers; frees the list. */
void alarm_apply(struct core *c, struct alarm_change *list);
void alarm_free_changes(struct alarm_change *list);
/* A commit carrying these changes failed: alarms they would have changed fire again. */
void alarm_restore(struct core *c, struct alarm_change *list);

/* commit.c */
/* Attaches an alarm change to the open batch (seq); applied when durable. */
void commit_note_alarm(struct core *c, struct alarm_change *ch);
int commit_core_init(struct core *c);
void commit_core_fini(struct core *c);
/* The open batch (created on demand) and its sequence number; NULL when out of memory. */
struct store_batch *commit_open_batch(struct core *c, uint64_t *seq);
/* Sends the response now, or holds it until batch `seq` is durable. */
void commit_gate(struct core *c, struct http_exchange *ex, uint64_t seq);
uint64_t commit_applied_seq(struct core *c);
/* 0 while the data directory's free space is under storage.min_free_bytes. */
int commit_space_ok(struct core *c);
const struct store_config *obj_store_config(void);
uint64_t commit_durable_seq(struct core *c);
/* Hands the syncs the object's last event registered to the batch they wait for. */
void commit_attach_syncs(struct core *c, struct object *obj);
/* Runs one sync's callback as an event of its object (object.c); frees w. */
void obj_run_sync(struct core *c, struct sync_waiter *w);
/* No commit in flight, open or waiting to be applied. */
int commit_idle(struct core *c);
/* Runs an alarm's handler as an event of its object (object.c). Returns 0 when it
 * succeeded, else the handler's failure. */
int obj_run_alarm(struct core *c, const struct duro_id *id, unsigned ns, const char *name,
		  size_t namelen, int64_t time_ms, unsigned retries, int drop);
/* The namespace of a class (-1 when none is bound). */
int obj_ns_of_class(const char *class_name, size_t len);
const struct obj_alarm_config *obj_alarm_config(void);
const char *obj_ns_name(unsigned ns); /* the namespace's class name, for logs */
/* Resets an object whose writes were lost in a failed commit (object.c). */
void obj_reset(struct core *c, struct object *obj);
/* Holds any message (an HTTP exchange or a WebSocket batch) until batch `seq` is durable. */
void commit_gate_msg(struct core *c, struct core_msg *m, uint64_t seq);

/* object.c, for events that do not come from a request */
struct object *obj_activate(struct core *c, unsigned ns, const struct duro_id *id, int *err);
void obj_event_begin(struct core *c, struct object *obj);
/* Returns 1 wrote, 0 nothing to write, or a negative errno; sends what the event queued. */
int obj_event_end(struct core *c, struct object *obj, int ok);
const struct duro_class *obj_ns_cls(unsigned ns);
const struct obj_ws_config *obj_ws_config(void);

/* websocket.c */
int obj_ws_core_init(struct core *c);
void obj_ws_core_fini(struct core *c);
/* On the connection's core: reserves a socket for an upgrade or event-stream request.
 * Returns 0 (nothing to do, or reserved), or -1 when it already answered 503. */
int obj_ws_route(struct core *c, struct http_exchange *ex);
/* The object's group on activation and eviction (hibernation keeps the group). */
void obj_ws_attach(struct core *c, struct object *obj);
void obj_ws_detach(struct core *c, struct object *obj);
/* Sockets of an object on this (its owner) core, live or hibernated. */
size_t obj_ws_count(struct core *c, unsigned ns, const struct duro_id *id);
/* After an event: its sends go out, behind the output gate. */
void obj_ws_flush(struct core *c, struct object *obj);

#endif
