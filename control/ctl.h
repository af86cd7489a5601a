/* The operator's interface: a control thread serving line-delimited JSON on a Unix socket
 * and, optionally, Prometheus metrics and a dashboard over HTTP, from per-core snapshots. */
#ifndef DURO_CONTROL_CTL_H
#define DURO_CONTROL_CTL_H

#include "config.h"
#include "ctl_mailbox.h"
#include "core-t.h"
#include "hist.h"
#include "http-t.h"
#include "http_client.h"
#include "obj-t.h"
#include "tls.h"
#include "ws.h"

#include <pthread.h>
#include <stdatomic.h>

/* What one core last published, every 100 ms. */
#define CTL_MORE_MAX 96

struct ctl_snapshot {
	uint64_t at_ms;
	struct http_counters http;
	struct net_counters net;
	struct ws_counters ws;
	struct obj_counters obj;
	struct obj_ws_counters objws;
	struct obj_commit_counters commit;
	struct obj_alarm_counters alarms;
	struct core_stats core;
	uint64_t timers;
	struct tls_counters tls;
	uint64_t more[CTL_MORE_MAX]; /* the backend's own (the dpdk stack's), named below */
	uint32_t ring_depth[DURO_MAX_CORES]; /* messages waiting in the ring from core i */
	struct hist latency;
	struct obj_call_counters calls[DURO_MAX_BINDINGS]; /* per namespace, as obj_namespaces */
	struct http_client_counters outbound; /* duro_fetch's connections */
	unsigned nmore;
	const char *const *more_names; /* static in the backend */
};

/* Where a core publishes its snapshot: written by that core only, under a sequence count,
 * so the control thread reads a consistent copy without a lock. The snapshot is kept as
 * words written and read with relaxed atomics (a seqlock whose data accesses are atomic
 * too): a copy torn by a concurrent write is detected and retried, and no access is a
 * data race in C11's sense (a plain memcpy here was, and ThreadSanitizer said so). */
#define CTL_SNAPSHOT_WORDS (sizeof(struct ctl_snapshot) / sizeof(uint64_t))
_Static_assert(sizeof(struct ctl_snapshot) % sizeof(uint64_t) == 0, "snapshot is whole words");
struct ctl_snapshot_slot {
	_Atomic uint64_t seq; /* odd while being written */
	_Atomic uint64_t words[CTL_SNAPSHOT_WORDS];
};

/* How often each of the control plane's limits was hit (status "control", Prometheus). */
struct ctl_counters {
	_Atomic uint64_t requests, errors;  /* lines read; lines that were not a JSON object */
	_Atomic uint64_t refused_peer;      /* clients of another user */
	_Atomic uint64_t refused_limit;     /* clients beyond CTL_MAX_CLIENTS */
	_Atomic uint64_t dropped_slow;      /* clients that left too many replies unread */
	_Atomic uint64_t timed_out;         /* request or idle deadline passed */
	_Atomic uint64_t metrics_requests, metrics_bad, metrics_refused, metrics_timeouts;
};

struct ctl_server;
struct ctl_metrics;
struct cluster;
struct ctl_jobs;

struct ctl {
	const struct duro_config *cfg;
	struct core_group *group;
	const char *version, *backend;
	uint64_t started_wall_ms, started_mono_ms;
	struct ctl_snapshot_slot snap[DURO_MAX_CORES];
	uint64_t snap_due_ms[DURO_MAX_CORES];
	struct ctl_mailbox mb;     /* control plane -> cores */
	char socket_path[600];
	int unix_fd, stop_fd;
	int wake_fd;               /* eventfd: a core or a worker has something for the control thread */
	int tls;                   /* TLS listeners exist: tls-reload means something */
	_Atomic int reload_pending;
	pthread_t thread;
	int running;
	struct ctl_server *server;   /* the control socket's clients (control thread only) */
	struct ctl_metrics *metrics; /* the metrics listener; NULL without control.metrics */
	struct ctl_jobs *jobs;       /* the worker threads */
	struct cluster *cluster;     /* cluster mode's thread (cluster.h); NULL on a single box */
	struct ctl_counters ctr;
	/* The watchdog's: each core's clock at its last finished loop turn (written by that
	 * core at the end of every turn), 0 before its first. */
	_Atomic uint64_t beat[DURO_MAX_CORES];
	uint64_t watchdog_checked_ms;
	uint64_t watchdog_since_ms; /* stalls count from here: the end of a process-wide pause */
};

/* Binds the control socket (and the metrics listener) and makes the mailboxes; call after
 * the EAL is up and before the cores start. Returns 0 or a negative errno (logged). */
int ctl_init(struct ctl *ctl, const struct duro_config *cfg, struct core_group *group,
	     const char *version, const char *backend);
/* Starts the control thread. */
int ctl_start(struct ctl *ctl);
/* Stops the thread and the workers (within a few loop turns, whatever clients do) and
 * removes the socket. */
void ctl_stop(struct ctl *ctl);

/* Each core's end-of-turn hook calls this: publishes its snapshot when due and runs the
 * commands the control thread left in its mailbox. */
void ctl_core_tick(struct ctl *ctl, struct core *c);

/* From any thread (core 0 on SIGHUP): the control thread reloads the TLS certificates. */
void ctl_request_tls_reload(struct ctl *ctl);

/* At start, after obj_runtime_init and before the cores start: folds the crash record
 * into each class's deploy record (rolling back a version that crashed durod 3 times
 * within 10 minutes of its deploy) and makes each class run its deployed version.
 * Returns 0 (what cannot be restored is logged, and the config's version runs). */
int ctl_deploy_restore(const struct duro_config *cfg);
/* At start, after obj_runtime_init and before ctl_deploy_restore: the bindings live
 * deploys added (meta "binding/<NAME>") that the config does not bind by that name are
 * bound again, their classes loaded from the deployed version's file and their routes
 * added. One that cannot be (its class deleted by a later migration, its file unusable)
 * is left out with a log line; durod starts either way. */
void ctl_deploy_restore_bindings(const struct duro_config *cfg);

/* DPDK telemetry commands (/duro/status, /duro/stats, /duro/core) over the same figures. */
int ctl_telemetry_register(struct ctl *ctl);
/* This box's load for the cluster (cluster_load_fn): sums of the cores' snapshots; arg is
 * the struct ctl. */
struct cluster_load_figures;
void ctl_load_figures(void *arg, struct cluster_load_figures *out);

#endif
