/* Shared by the control plane's files: snapshots, the JSON and text views of them, and the
 * commands that run on a core on the control thread's behalf. */
#ifndef DURO_CONTROL_CTL_INT_H
#define DURO_CONTROL_CTL_INT_H

#include "ctl.h"
#include "http.h"
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

/* The dashboard page (dashboard.html, embedded at build time). */
extern const char ctl_dashboard_html[];
extern const unsigned long ctl_dashboard_html_len;

#endif
