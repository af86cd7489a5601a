/* The core mailbox: the control plane posts commands to a core's ring and waits on a
 * worker thread; the core runs them at the end of its turn, so it never takes a lock. */
#include "ctl_mailbox.h"
#include "base_assert.h"
#include "clock.h"
#include "core.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <rte_errno.h>
#include <rte_ring.h>

#define MAILBOX_SIZE 256
#define MAILBOX_BURST 16

int ctl_mailbox_init(struct ctl_mailbox *mb, struct core_group *group)
{
	mb->group = group;
	atomic_store(&mb->stopping, 0);
	pthread_mutex_init(&mb->post_lock, NULL);
	for (unsigned i = 0; i < group->ncores; i++) {
		char name[32];
		snprintf(name, sizeof(name), "ctl%u", i);
		/* Several control-side threads post (workers, telemetry): MP, SC. */
		mb->ring[i] = rte_ring_create(name, MAILBOX_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
		if (!mb->ring[i]) {
			log_error("rte_ring_create %s: %s", name, rte_strerror(rte_errno));
			return -ENOMEM;
		}
	}
	return 0;
}

void ctl_mailbox_fini(struct ctl_mailbox *mb)
{
	if (!mb->group)
		return;
	for (unsigned i = 0; i < mb->group->ncores; i++) {
		/* Commands never picked up (the cores stopped first): nobody else holds them
		 * once their waiters gave up, which ctl_mailbox_stop made them do. */
		void *cmd;
		while (mb->ring[i] && rte_ring_dequeue(mb->ring[i], &cmd) == 0)
			ctl_cmd_finish(cmd);
		rte_ring_free(mb->ring[i]);
		mb->ring[i] = NULL;
	}
}

void ctl_mailbox_stop(struct ctl_mailbox *mb)
{
	atomic_store(&mb->stopping, 1);
}

int ctl_mailbox_stopping(const struct ctl_mailbox *mb)
{
	return atomic_load(&mb->stopping) || atomic_load(&mb->group->stopping);
}

void ctl_mailbox_run(struct ctl_mailbox *mb, struct core *c)
{
	void *cmds[MAILBOX_BURST];
	unsigned n = rte_ring_sc_dequeue_burst(mb->ring[c->index], cmds, MAILBOX_BURST, NULL);
	for (unsigned i = 0; i < n; i++) {
		struct ctl_cmd *cmd = cmds[i];
		core_did_work(c);
		if (cmd->fn(c, cmd))
			ctl_cmd_finish(cmd);
	}
}

struct ctl_cmd *ctl_cmd_new(int (*fn)(struct core *c, struct ctl_cmd *cmd))
{
	struct ctl_cmd *cmd = calloc(1, sizeof(*cmd));
	if (cmd)
		cmd->fn = fn;
	return cmd;
}

void ctl_cmd_free(struct ctl_cmd *cmd)
{
	if (cmd->payload_free)
		cmd->payload_free(cmd->payload);
	free(cmd);
}

void ctl_cmd_finish(struct ctl_cmd *cmd)
{
	int expect = CMD_PENDING;
	if (!atomic_compare_exchange_strong(&cmd->state, &expect, CMD_DONE))
		ctl_cmd_free(cmd); /* its waiter gave up: ours to free */
}

int ctl_mailbox_post(struct ctl_mailbox *mb, unsigned core, struct ctl_cmd *cmd)
{
	DURO_ASSERT(core < mb->group->ncores);
	/* Draining cores take no new work: an event started now could still be on its way to
	 * the disk when the cores stop, and its completion would never come. */
	if (ctl_mailbox_stopping(mb))
		return -ECANCELED;
	atomic_store(&cmd->state, CMD_PENDING);
	pthread_mutex_lock(&mb->post_lock);
	int r = rte_ring_mp_enqueue(mb->ring[core], cmd) == 0 ? 0 : -EAGAIN;
	pthread_mutex_unlock(&mb->post_lock);
	return r;
}

int ctl_mailbox_wait(struct ctl_mailbox *mb, struct ctl_cmd *cmd)
{
	uint64_t deadline = clock_now_ms() + CTL_CMD_TIMEOUT_MS;
	while (atomic_load(&cmd->state) == CMD_PENDING) {
		/* Cores leaving their loops will not pick it up: give up at once. */
		if (clock_now_ms() >= deadline || atomic_load(&mb->group->stop_now) ||
		    atomic_load(&mb->stopping)) {
			int expect = CMD_PENDING;
			if (atomic_compare_exchange_strong(&cmd->state, &expect, CMD_ABANDONED))
				return -ETIMEDOUT;
			break; /* finished just now */
		}
		usleep(200);
	}
	return 0;
}

int ctl_mailbox_call(struct ctl_mailbox *mb, unsigned core, struct ctl_cmd *cmd)
{
	int r = ctl_mailbox_post(mb, core, cmd);
	if (r < 0) {
		ctl_cmd_free(cmd);
		return r;
	}
	return ctl_mailbox_wait(mb, cmd);
}
