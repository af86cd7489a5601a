/* Cluster mode, part 1 (cluster.c, cluster_rebalance.c): this box's membership in etcd
 * (a lease and members/<box>), self-fencing when the lease cannot be renewed in time or the
 * member key is gone, the slot table kept current by a watch and handed to every core
 * (cluster_gate.h), and the rebalancer elected through etcd assigning slots. Runs on a
 * thread of its own in the control plane, never on a core. A config without a cluster
 * section never starts it. */
#ifndef DURO_CONTROL_CLUSTER_H
#define DURO_CONTROL_CLUSTER_H

#include "config.h"
#include "core-t.h"
#include "ctl_mailbox.h"

#include <stdint.h>
#include <stdio.h>

struct cluster;

/* Starts the cluster thread for cfg->cluster (name set). It joins as soon as etcd answers
 * and retries meanwhile; the cores serve no object until it has joined and been given
 * slots. mb and group outlive it. 0, or a negative errno (logged). */
int cluster_start(struct cluster **out, const struct duro_config *cfg, struct ctl_mailbox *mb,
		  struct core_group *group, const char *version);
/* Stops the thread; a joined box revokes its lease, so the others see it leave at once.
 * NULL is fine. */
void cluster_stop(struct cluster *cl);

/* `duroctl cluster status`: a new JSON object (boxes, slots per box, epochs, the
 * rebalancer, this box's state and counters), or NULL when out of memory. Any thread. */
struct json_t *cluster_status_json(struct cluster *cl);
/* `duroctl cluster drain BOX` (undo: no longer draining) and `duroctl cluster rebalance`:
 * carried out by the cluster thread on its next turn. 0 or -EINVAL. Any thread. */
int cluster_request_drain(struct cluster *cl, const char *box, int undo);
void cluster_request_rebalance(struct cluster *cl);

/* The same figures for Prometheus, appended to f. Any thread. */
void cluster_prometheus(struct cluster *cl, FILE *f);

/* This box's load as the others see it (cluster_load.c): every CLUSTER_LOAD_PERIOD_MS the
 * cluster thread asks fn for the box's figures and publishes them as load/<box>, under its
 * lease; every box keeps the others' for its status, dashboard and Prometheus. */
struct cluster_load_figures {
	uint64_t requests; /* HTTP requests answered since start (a counter) */
	uint64_t active;   /* objects in memory */
	uint64_t sockets;  /* WebSockets and event streams open */
};
typedef void cluster_load_fn(void *arg, struct cluster_load_figures *out);
void cluster_set_load_source(struct cluster *cl, cluster_load_fn *fn, void *arg);

#endif
