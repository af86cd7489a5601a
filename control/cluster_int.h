/* The cluster thread's state, shared by its files: membership and fencing (cluster.c),
 * the table and its watch (cluster_table.c), the rebalancer (cluster_rebalance.c). All of
 * it belongs to the cluster thread except `fig`, read by others under `lock`. */
#ifndef DURO_CONTROL_CLUSTER_INT_H
#define DURO_CONTROL_CLUSTER_INT_H

#include "cluster.h"
#include "cluster_gate.h"
#include "cluster_wire.h"
#include "etcd.h"

#include <pthread.h>
#include <stdatomic.h>

#define CLUSTER_MAX_BOXES OBJ_CLUSTER_MAX_BOXES
#define CLUSTER_TXN_SLOTS 100 /* slot writes per etcd txn (etcd allows 128 operations) */

/* A box this one knows of: a member now, or a name the slot table still holds. */
struct cluster_box {
	char name[CLUSTER_NAME_MAX];
	struct cluster_member_value v;
	int64_t incarnation; /* create_revision of members/<name>; 0 when not a member */
	int64_t lease;
	uint8_t live;        /* its member key exists */
};

struct cluster_slot {
	int16_t owner;       /* index into boxes, -1 for none (absent, or an unreadable value) */
	uint8_t state;       /* enum cluster_slot_state */
	int64_t incarnation; /* of the owner when assigned */
	int64_t epoch;       /* the key's mod_revision; 0 when absent */
};

enum cluster_state { CLUSTER_JOINING, CLUSTER_JOINED };

/* Figures others read (status, Prometheus), copied under lock by the cluster thread. */
struct cluster_figures {
	uint64_t joins, fences, renewals, renew_failures, watch_restarts, join_failures;
	uint64_t assigned, rounds, bad_values;
	struct etcd_counters etcd;
};

struct cluster {
	const struct duro_config *cfg;
	struct ctl_mailbox *mb;
	struct core_group *group;
	const char *version;
	char prefix[96];   /* "/duro/<name>/" */
	char me[CLUSTER_NAME_MAX];
	char advertise[CLUSTER_ADDR_MAX];
	pthread_t thread;
	int wake_fd;       /* eventfd: stop */
	_Atomic int stop;

	/* ---- the cluster thread's ---- */
	struct etcd_client etcd;
	enum cluster_state state;
	int64_t lease, old_lease; /* old: to revoke before the next join */
	int64_t incarnation;      /* of this box's member key, 0 before the first join */
	uint64_t deadline_ms, renew_due_ms, next_join_ms, next_round_ms;
	uint64_t members_changed_ms;
	uint64_t next_watch_ms;   /* a broken watch is reopened no sooner */
	char why[256];            /* why not serving */
	struct etcd_watch watch;
	int64_t revision;         /* newest revision the table reflects */
	struct cluster_box boxes[CLUSTER_MAX_BOXES];
	unsigned nboxes;
	struct cluster_slot slots[DURO_SLOTS];
	char rebalancer[CLUSTER_NAME_MAX]; /* "" when nobody holds the key */
	int64_t rebalancer_rev;   /* its create_revision */
	int64_t my_rebalancer_rev; /* 0 unless this box holds it */
	int table_dirty, lease_dirty;
	int secrets_shared;       /* the namespace secrets are the cluster's (cluster_secrets.c) */
	uint64_t table_gen;
	unsigned moves_wanted;    /* slots whose target is another live box (moves: later work) */
	uint64_t last_join_log_ms;
	char last_join_error[256];
	struct cluster_figures f;
	const char *fence_why;    /* a fence the loop carries out (set while reading the watch) */
	int watch_status;         /* what the watch's messages said in this read */
	uint64_t next_status_ms;

	/* ---- for other threads, under lock ---- */
	pthread_mutex_t lock;
	char *status_text;        /* the last status JSON (owned) */
	struct cluster_figures fig;
};

/* ---- cluster_table.c ---- */

/* The box index of name, made when new (reusing a departed box no slot names); -1 when
 * the table is full. */
int cluster_box_of(struct cluster *cl, const char *name);
/* Replaces boxes, slots and the rebalancer with a range of the whole prefix. 0 or errno. */
int cluster_table_load(struct cluster *cl);
/* Opens the watch after cl->revision. 0 or errno. */
int cluster_watch_open(struct cluster *cl);
/* Reads the watch's messages (fd readable); a negative errno when it must be reopened. */
int cluster_watch_poll(struct cluster *cl);
/* 1 when slot s is owned by a live box at that box's current incarnation. */
int cluster_slot_live(const struct cluster *cl, unsigned s);
/* Sends the table (or only the lease part) to every core, when all of them run. */
void cluster_push(struct cluster *cl);
/* Rebuilds the status text and figures others read. */
void cluster_publish_status(struct cluster *cl);

/* ---- cluster.c ---- */

/* This box stops serving: the cores are told, the watch closed, and it rejoins as a new
 * incarnation. */
void cluster_fence(struct cluster *cl, const char *why);
/* Renews the lease when its renewal is due (long work calls this between its steps). */
void cluster_renew_if_due(struct cluster *cl);
/* etcd_call with a txn body (borrowed) whose result is read into *succeeded; the reply's
 * header revision into *rev. 0 or errno. */
int cluster_txn(struct cluster *cl, json_t *txn, int *succeeded, int64_t *rev, json_t **reply);
/* JSON string of base64(text[0..n)); of base64(prefix ‖ suffix), a key of ours; of an
 * int64 as the gateway writes them (a decimal string). New references, NULL when out of
 * memory (json_pack then fails). */
json_t *cluster_b64(const char *text, size_t n);
json_t *cluster_key_json(const struct cluster *cl, const char *suffix);
json_t *cluster_i64_json(int64_t v);

/* ---- cluster_secrets.c ---- */

/* Publishes this box's namespace secrets, or adopts the cluster's, class by class. 0, or
 * a negative errno with the reason in err (etcd unreachable; a class that already holds
 * objects under another secret: -EEXIST). */
int cluster_share_secrets(struct cluster *cl, char *err, size_t errlen);

/* ---- cluster_rebalance.c ---- */

/* Once per rebalance interval while joined: stands for election when nobody holds the key,
 * and when this box holds it, assigns unowned and orphaned slots. */
void cluster_rebalance_tick(struct cluster *cl, uint64_t now);
/* Slots owned by a live box that is not their rendezvous target (what moves would fix). */
unsigned cluster_moves_wanted(const struct cluster *cl);

#endif
