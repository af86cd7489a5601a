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

/* A box's published load (load/<box>, cluster_load.c); at_ms 0: none seen. */
struct cluster_box_load {
	uint64_t at_ms; /* when this box read it */
	uint64_t rps, active, sockets;
};

/* A box this one knows of: a member now, or a name the slot table still holds. */
struct cluster_box {
	char name[CLUSTER_NAME_MAX];
	struct cluster_member_value v;
	int64_t incarnation; /* create_revision of members/<name>; 0 when not a member */
	int64_t lease;
	uint8_t live;        /* its member key exists */
	uint8_t draining;    /* drain/<name> exists: its slots move away, none comes to it */
	struct cluster_box_load load; /* load/<name> (cluster_load.c) */
};

struct cluster_slot {
	int16_t owner;       /* index into boxes, -1 for none (absent, or an unreadable value) */
	int16_t target;      /* CLUSTER_SLOT_MOVING: the box taking it, else -1 */
	uint8_t state;       /* enum cluster_slot_state */
	int64_t incarnation; /* of the owner when assigned */
	int64_t target_incarnation;
	int64_t epoch;       /* the key's mod_revision; 0 when absent */
	uint8_t nvoters;     /* boxes holding copies, owner included; 0 for an old value */
	int16_t voters[CLUSTER_MAX_VOTERS]; /* indexes into boxes, the owner first */
};

/* This box's part in a slot's move (cluster_move.c), by slot. */
enum cluster_move_role { MOVE_NONE, MOVE_GIVE, MOVE_TAKE };
/* The giver serves the slot until the taker asks for it (WAITING), then freezes it
 * (FREEZING: its cores start no new event of it and drain) and ships it (READY). */
/* The taker copies a snapshot and the live tail (PULLING), then asks for the rest
 * (CATCHING) until the owner has frozen the slot, and takes it over (IMPORTED). */
/* KEPT: the giver's freeze outlived its bound (cluster_move.h); it serves the slot again
 * until the rebalancer rolls the move back. */
enum cluster_move_phase { MOVE_WAITING, MOVE_FREEZING, MOVE_READY, MOVE_PULLING, MOVE_CATCHING,
			  MOVE_IMPORTED, MOVE_KEPT };
struct cluster_move {
	uint8_t role, phase;
	int64_t epoch;          /* the "moving" epoch this is for */
	uint64_t started_ms, next_try_ms;
	unsigned tries;
	uint32_t copy_ms, snap_ms, tails; /* the taker: its copy (snapshot, tails, the rest) */
	uint64_t copy_start_ms;
	uint64_t bytes, records;
};

enum cluster_state { CLUSTER_JOINING, CLUSTER_JOINED };

/* Where each slot's followers are, for the replicator thread (cluster_repl.c): copied from
 * the table by the cluster thread when it changes. */
struct cluster_repl_view {
	int64_t epoch[DURO_SLOTS];
	uint8_t nfollowers[DURO_SLOTS];
	uint8_t followers[DURO_SLOTS][CLUSTER_MAX_VOTERS]; /* indexes into peer */
	char peer[CLUSTER_MAX_BOXES][CLUSTER_ADDR_MAX];   /* "" for a box not live */
};

/* Figures others read (status, Prometheus), copied under lock by the cluster thread. */
struct cluster_figures {
	uint64_t joins, fences, renewals, renew_failures, watch_restarts, join_failures;
	uint64_t assigned, rounds, bad_values;
	uint64_t moves_begun, moves_done, moves_failed, moves_rolled_back, bytes_moved;
	uint64_t records_moved, last_pause_ms, max_pause_ms, last_move_ms;
	uint64_t refused_rounds;  /* rounds that left slots unassigned: too few boxes for K */
	uint64_t failovers;       /* slots the rebalancer gave to a live voter of a dead owner */
	uint64_t copies_lost;     /* slots reassigned with no live voter: they start empty */
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
	int poke_fd;       /* eventfd: a taker asked for a slot to freeze (cluster_move.c) */
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
	char refused[256];        /* why the rebalancer leaves slots unassigned, "" when it does not */
	uint64_t last_join_log_ms;
	char last_join_error[256];
	struct cluster_figures f;
	const char *fence_why;    /* a fence the loop carries out (set while reading the watch) */
	struct cluster_move moves[DURO_SLOTS];
	uint64_t moving_seen_ms[DURO_SLOTS]; /* the rebalancer: when it saw the slot moving */
	int64_t moving_seen_epoch[DURO_SLOTS];
	int taking;                           /* the slot this box pulls now, or -1 */
	char peer_addr[CLUSTER_ADDR_MAX];    /* where this box serves its slots' data */
	int peer_fd;                          /* its listener, -1 until started */
	pthread_t peer_thread;
	int peer_started;
	uint8_t peer_key[16];                 /* MACs of peer requests, from the shared secrets */
	_Atomic int peer_key_set;
	int watch_status;         /* what the watch's messages said in this read */
	uint64_t next_status_ms;

	/* ---- for other threads, under lock ---- */
	pthread_mutex_t lock;
	char *status_text;        /* the last status JSON (owned) */
	struct cluster_figures fig;
	int64_t export_epoch[DURO_SLOTS]; /* slots ready to ship at that epoch (cluster_move.c) */
	int64_t freeze_req[DURO_SLOTS];   /* slots a taker asked for, at that epoch */
	int64_t moving_epoch[DURO_SLOTS]; /* slots moving from here, at that epoch */
	char drain_req[CLUSTER_NAME_MAX]; /* `duroctl cluster drain`, for the cluster thread */
	int drain_undo;
	_Atomic int rebalance_now;        /* `duroctl cluster rebalance` */
	cluster_load_fn *load_fn;         /* this box's figures (cluster_load.c) */
	void *load_arg;
	/* the cluster thread's: the last figures published, and when */
	uint64_t load_next_ms, load_last_ms, load_last_requests;
	struct cluster_repl_view *repl_view; /* owned; NULL until the first table */

	/* ---- replication (cluster_repl.c; cluster.replication) ---- */
	pthread_t repl_thread;
	int repl_started;
	_Atomic uint64_t repl_sent, repl_acked, repl_received, repl_failed, repl_stale;
	_Atomic uint64_t repl_skipped;      /* appends not sent: the follower was not answering */
	_Atomic uint64_t repl_unreplicated; /* records a majority of copies did not acknowledge */
	_Atomic uint64_t repl_applied;      /* writes applied from replica logs at failovers */
	uint64_t repl_owned[DURO_SLOTS / 64]; /* the cluster thread's: slots owned as last pushed */
};

/* ---- cluster_load.c ---- */

#define CLUSTER_LOAD_PERIOD_MS 5000
/* Publishes this box's load when due (joined only). */
void cluster_load_tick(struct cluster *cl, uint64_t now);
/* load/<box> put (value, len) or deleted, from the table's range or watch. */
void cluster_load_apply(struct cluster *cl, const char *box, const char *value, size_t len,
			int deleted);
/* {"rps", "active", "sockets", "age_ms"} of box b, or NULL when it published none. */
json_t *cluster_load_json(const struct cluster_box *b);

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
/* The voters of v into sl (whose owner is set): the owner first, then the others that
 * fit; a value without voters leaves the owner alone. */
void cluster_slot_set_voters(struct cluster *cl, struct cluster_slot *sl,
			     const struct cluster_slot_value *v);
/* How many of slot s's voters are members now. */
unsigned cluster_slot_live_voters(const struct cluster *cl, unsigned s);
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

/* ---- cluster_peer.c ---- */

/* Starts the listener and thread that serve this box's moving slots to the boxes taking
 * them (cl->peer_addr set). 0 or a negative errno (logged). */
int cluster_peer_start(struct cluster *cl);
void cluster_peer_stop(struct cluster *cl);
/* The peer MAC key, from the namespace secrets the boxes share (after they are shared). */
void cluster_peer_key(struct cluster *cl);
/* Pulls kind ("snap", "tail", "final") of slot at epoch from the owner's peer address
 * and imports it (a snap over a fresh copy of the slot's ranges). 0 when all of it is
 * durable here; -EAGAIN when the owner is not ready yet, -ESTALE when its capture is void
 * (start over); else a negative errno, with nothing of the slot left here. */
int cluster_peer_pull(struct cluster *cl, const char *kind, unsigned slot, int64_t epoch,
		      const char *peer, uint64_t *bytes, uint64_t *records);
/* Ends the capture of slot's writes on its core (the move is over). */
void cluster_peer_capture_stop(struct cluster *cl, unsigned slot);
/* The MAC of a peer request (kind, slot, epoch) into out[17]. */
void cluster_peer_mac(const struct cluster *cl, const char *kind, unsigned slot, int64_t epoch,
		      char out[17]);
/* A blocking connection to a peer address with io_ms send and receive timeouts: the fd,
 * or a negative errno. */
int cluster_peer_dial(const char *addr, unsigned io_ms);

/* ---- cluster_repl.c ---- */

/* Starts the replicator thread (cluster.replication): it sends what the cores queue
 * (dataplane/obj/cluster_ship.h) to each slot's followers. 0 or a negative errno. */
int cluster_repl_start(struct cluster *cl);
void cluster_repl_stop(struct cluster *cl);
/* The cluster thread, before it pushes a table whose owned slots are `owned` (a bit per
 * slot): each slot newly owned gets the records of its replica log not yet in its data
 * families applied, durably (a failover: the copy survives its old owner). */
void cluster_repl_take_over(struct cluster *cl, const uint64_t *owned);
/* The cluster thread, when a move brought slot s here with its data: the replica log's
 * records are older than that data, so they count as applied (trimmed). */
void cluster_repl_moved_in(struct cluster *cl, unsigned s);
/* The cluster thread, after a new table: the followers' addresses for the replicator. */
void cluster_repl_publish(struct cluster *cl);
/* The peer thread, for a "repl" request on fd for slot at epoch: reads the append frame
 * (have[0..nhave) are its first bytes, read with the request line), takes it into this
 * box's replica log (cluster_follow.h) and writes the answer frame. */
void cluster_repl_serve(struct cluster *cl, int fd, unsigned slot, int64_t epoch,
			const char *have, size_t nhave);

/* ---- cluster_move.c ---- */

/* Runs fn for slot (as cmd->ns) on every core; returns the sum of their cmd->result, or a
 * negative errno when a core could not be asked. */
long cluster_on_cores(struct cluster *cl, int (*fn)(struct core *, struct ctl_cmd *), unsigned slot);
/* Every loop turn while joined: this box's part in the moves the table shows. Returns
 * how many moves this box takes part in now. */
unsigned cluster_move_tick(struct cluster *cl);
/* 1 when this box, owner of moving slot s, has frozen it for its taker: nobody serves it. */
int cluster_move_frozen(const struct cluster *cl, unsigned s);
/* 1 when a box of the table is draining. */
int cluster_box_draining(const struct cluster *cl, int box);

/* ---- cluster_rebalance.c ---- */

/* Once per rebalance interval while joined: stands for election when nobody holds the key,
 * and when this box holds it, assigns unowned and orphaned slots. */
void cluster_rebalance_tick(struct cluster *cl, uint64_t now);
/* Slots owned by a live box that is not their rendezvous target (what moves would fix). */
unsigned cluster_moves_wanted(const struct cluster *cl);

#endif
