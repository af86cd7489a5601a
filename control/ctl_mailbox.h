/* The core mailbox: commands the control plane's threads leave for a core (one ring per
 * core, many producers, the core the only consumer), run at the end of the core's turn. */
#ifndef DURO_CONTROL_CTL_MAILBOX_H
#define DURO_CONTROL_CTL_MAILBOX_H

#include "base_limits.h"
#include "core-t.h"
#include "obj.h"

#include <pthread.h>
#include <stdatomic.h>

struct rte_ring;

/* A command's life: the poster makes it (ctl_cmd_new), posts it and waits. The core runs
 * fn; fn finishes it at once (returns 1) or later on the core (ctl_cmd_finish from a
 * callback). If the waiter gives up first (deadline, shutdown), the command is marked
 * abandoned and the core frees it when it finishes: either side frees it, never both. */
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

struct ctl_mailbox {
	struct rte_ring *ring[DURO_MAX_CORES];
	struct core_group *group;
	_Atomic int stopping; /* the control plane is stopping: waits give up */
	/* Posting threads take turns (control side only; a core never takes it). rte_ring's
	 * multi-producer enqueue waits for the producer before it with a relaxed load, so in
	 * C11's terms a command written by one producer and published by the next one's tail
	 * store is not ordered before the core's read: ThreadSanitizer reports it. */
	pthread_mutex_t post_lock;
};

/* Makes one ring per core of the group (call after the EAL is up, before the cores run).
 * Returns 0 or -ENOMEM (logged). */
int ctl_mailbox_init(struct ctl_mailbox *mb, struct core_group *group);
/* Frees the rings and every command left in them (the cores have stopped). */
void ctl_mailbox_fini(struct ctl_mailbox *mb);
/* From now on every wait gives up at once (shutdown). */
void ctl_mailbox_stop(struct ctl_mailbox *mb);
/* 1 once durod is stopping (SIGTERM seen, or ctl_mailbox_stop): no more posts; long
 * commands (exports, imports) stop between records. */
int ctl_mailbox_stopping(const struct ctl_mailbox *mb);

/* On core c, once per turn: runs the commands waiting for it. */
void ctl_mailbox_run(struct ctl_mailbox *mb, struct core *c);

/* A zeroed command that runs fn; NULL when out of memory. The caller owns it until posted. */
struct ctl_cmd *ctl_cmd_new(int (*fn)(struct core *c, struct ctl_cmd *cmd));
/* On the core: the command is finished (frees it if its waiter gave up). */
void ctl_cmd_finish(struct ctl_cmd *cmd);
void ctl_cmd_free(struct ctl_cmd *cmd);

/* Posts cmd to core `core`. Returns 0 (the core may now run it), -EAGAIN (that mailbox
 * is full) or -ECANCELED (durod is stopping); on failure cmd is still the caller's. */
int ctl_mailbox_post(struct ctl_mailbox *mb, unsigned core, struct ctl_cmd *cmd);
/* Blocks the calling thread (never the control socket's) until a posted command is
 * finished: 0 (the caller owns and frees it; cmd->result holds the outcome), or
 * -ETIMEDOUT after CTL_CMD_TIMEOUT_MS or at shutdown (it then belongs to the core). */
#define CTL_CMD_TIMEOUT_MS 5000
int ctl_mailbox_wait(struct ctl_mailbox *mb, struct ctl_cmd *cmd);
/* Post and wait: 0, or -EAGAIN or -ECANCELED (cmd freed) or -ETIMEDOUT (the core frees
 * it). */
int ctl_mailbox_call(struct ctl_mailbox *mb, unsigned core, struct ctl_cmd *cmd);

#endif
