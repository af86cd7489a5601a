/* Shared by the control plane's files: snapshots and their JSON and text views, the
 * commands, how requests name classes and objects, replies, backups, the worker threads. */
#ifndef DURO_CONTROL_CTL_INT_H
#define DURO_CONTROL_CTL_INT_H

#include "ctl.h"
#include "http.h"
#include "obj.h"
#include "timer.h"

#include <jansson.h>

/* ---- snapshots (ctl_stats.c) ---- */

/* Copies the snapshot of `core`. Returns 0, -EAGAIN (never published) or -EBUSY. */
int ctl_read_snapshot(struct ctl *ctl, unsigned core, struct ctl_snapshot *out);
/* On the core: 1 when its next snapshot is due, then ctl_publish writes it. */
int ctl_snapshot_due(struct ctl *ctl, struct core *c);
void ctl_publish(struct ctl *ctl, struct core *c);

/* New references (NULL when out of memory). */
json_t *ctl_stats_json(struct ctl *ctl);
/* Per class version: events, errors, crashes, objects in memory. */
json_t *ctl_classes_json(void);
json_t *ctl_status_json(struct ctl *ctl);
/* Prometheus text; the caller frees it. */
char *ctl_prometheus(struct ctl *ctl, size_t *len);

/* ---- commands (ctl_requests.c) ---- */

/* Where a request runs: on the control thread (answers from memory), on a worker (waits on
 * cores or storage), or on a worker as the one backup allowed at a time. */
enum ctl_request_kind { CTL_REQ_INLINE, CTL_REQ_WORKER, CTL_REQ_BACKUP };
enum ctl_request_kind ctl_request_kind(json_t *req);
/* Runs one request (a JSON object; borrowed) and returns its reply (a new reference, or
 * NULL when out of memory), on the thread ctl_request_kind says. */
json_t *ctl_request(struct ctl *ctl, json_t *req);
/* Reloads the TLS certificates: the reply. */
json_t *ctl_tls_reload(struct ctl *ctl);

/* ---- naming (ctl_names.c) ---- */

/* A namespace by class or binding name, or -1. */
int ctl_class_ns(const char *name);
/* The object a request names: "id" (64 hex digits), or "binding" and "name". Returns 0,
 * or a negative errno with the reply for it in *err (a new reference). */
int ctl_object_of(json_t *req, unsigned *ns, struct duro_id *id, json_t **err);

/* ---- replies (ctl_reply.c) ---- */

json_t *ctl_error_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Bytes as a JSON-safe string: printable ASCII as is, anything else as \xNN. */
json_t *ctl_bytes_json(const char *p, size_t n);

/* ---- SQL on an object (ctl_sql.c), on a worker ---- */

/* {"cmd": "sql", OBJECT, "sql": "...", "params": [...], "write": bool, "limit": N}: the
 * reply with columns, rows and counts, or the error (SQLite's message). */
json_t *ctl_sql(struct ctl *ctl, json_t *req);

/* ---- point-in-time recovery (ctl_pitr.c), on a worker ---- */

/* {"cmd": "bookmark", OBJECT, "at_ms": T}: the object's bookmark (its newest commit, or
 * the newest at or before T). */
json_t *ctl_bookmark(struct ctl *ctl, json_t *req);
/* {"cmd": "restore", OBJECT, "bookmark": B}: its data as of B, durable when answered, with
 * "undo": the bookmark that brings back what it replaced. */
json_t *ctl_restore(struct ctl *ctl, json_t *req);

/* ---- backups (ctl_backup.c), on a worker ---- */

json_t *ctl_export(struct ctl *ctl, const char *cls, const char *path);
json_t *ctl_import(struct ctl *ctl, const char *path);

/* ---- deploys (ctl_deploy.c), on a worker ---- */

json_t *ctl_deploy(struct ctl *ctl, json_t *req);
json_t *ctl_rollback(struct ctl *ctl, json_t *req);
json_t *ctl_versions(struct ctl *ctl, json_t *req);
/* 1 for the commands only the control socket's owner (durod's user) or root may send:
 * they run code as durod. */
int ctl_request_privileged(json_t *req);
/* Versions rolled back at this start for crashing durod (ctl_deploy_restore). */
uint64_t ctl_deploy_crash_rollbacks(void);

/* ---- worker threads (ctl_jobs.c) ---- */

/* A request handed to a worker and its reply, handed back to the control thread. */
struct ctl_job {
	struct ctl_job *next;
	uint64_t client;       /* the control thread's name for the asking client */
	enum ctl_request_kind kind;
	json_t *req, *reply;   /* owned by the job */
};

/* Starts the workers. Returns 0 or a negative errno. */
int ctl_jobs_start(struct ctl *ctl);
/* Queues a request (the job takes the reference to req). Returns 0; -EBUSY when it is a
 * backup and one is already queued or running (req released); -ENOMEM. */
int ctl_jobs_submit(struct ctl *ctl, uint64_t client, enum ctl_request_kind kind, json_t *req);
/* On the control thread, after wake_fd: a finished job (the caller frees it with
 * ctl_job_free), or NULL. */
struct ctl_job *ctl_jobs_done(struct ctl *ctl);
void ctl_job_free(struct ctl_job *job);
/* Tells the workers to stop (commands waiting on cores give up), joins them, and frees
 * every job left. */
void ctl_jobs_stop(struct ctl *ctl);

/* The dashboard page (dashboard.html, embedded at build time). */
extern const char ctl_dashboard_html[];
extern const unsigned long ctl_dashboard_html_len;

#endif
