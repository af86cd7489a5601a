/* Shared by the control plane's files: snapshots, the JSON and text views of them, and the
 * commands that run on a core on the control thread's behalf. */
#ifndef DURO_CONTROL_CTL_INT_H
#define DURO_CONTROL_CTL_INT_H

#include "ctl.h"
#include "http.h"
#include "obj.h"
#include "timer.h"

#include <jansson.h>

/* Copies the snapshot of `core`. Returns 0, -EAGAIN (never published) or -EBUSY. */
int ctl_read_snapshot(struct ctl *ctl, unsigned core, struct ctl_snapshot *out);
/* On the core: 1 when its next snapshot is due, then ctl_publish writes it. */
int ctl_snapshot_due(struct ctl *ctl, struct core *c);
void ctl_publish(struct ctl *ctl, struct core *c);

/* New references (NULL when out of memory). */
json_t *ctl_stats_json(struct ctl *ctl);
json_t *ctl_status_json(struct ctl *ctl);
/* Prometheus text; the caller frees it. */
char *ctl_prometheus(struct ctl *ctl, size_t *len);

/* A command the control thread leaves in a core's mailbox. */
enum ctl_cmd_state { CMD_PENDING, CMD_DONE, CMD_ABANDONED };
struct ctl_cmd {
	_Atomic int state;
	/* Runs on the core: returns 1 when finished, 0 when ctl_cmd_finish comes later. */
	int (*fn)(struct core *c, struct ctl_cmd *cmd);
	unsigned ns;
	struct duro_id id;
	int result;
	struct obj_info info;
	void *payload; /* freed with the command by payload_free */
	void (*payload_free)(void *payload);
};

/* On the core: the command is finished (frees it if the control thread gave up). */
void ctl_cmd_finish(struct ctl_cmd *cmd);
void ctl_cmd_free(struct ctl_cmd *cmd);
/* Posts cmd to a core; then ctl_wait. Returns 0 or -EAGAIN (mailbox full; cmd not freed). */
int ctl_post_to_core(struct ctl *ctl, unsigned core, struct ctl_cmd *cmd);
/* Waits for a posted command: 0, or -ETIMEDOUT (it then belongs to the core). */
int ctl_wait(struct ctl *ctl, struct ctl_cmd *cmd);
/* Both: returns 0 (cmd->result holds the outcome) or a negative errno; on -EAGAIN the
 * command is freed, on -ETIMEDOUT the core frees it. */
int ctl_run_on_core(struct ctl *ctl, unsigned core, struct ctl_cmd *cmd);
/* Core side of the backup barrier: result 1 when the core's storage is settled. */
int ctl_do_settled(struct core *c, struct ctl_cmd *cmd);

json_t *ctl_error_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A namespace by class or binding name, or -1. */
int ctl_class_ns(const char *name);

/* Backups (ctl_backup.c): replies for the export and import commands. */
json_t *ctl_export(struct ctl *ctl, const char *cls, const char *path);
json_t *ctl_import(struct ctl *ctl, const char *path);

/* The dashboard page (dashboard.html, embedded at build time). */
extern const char ctl_dashboard_html[];
extern const unsigned long ctl_dashboard_html_len;

#endif
