/* Point-in-time recovery from the control plane: `duroctl bookmark` (an object's current
 * bookmark, or the one for a time) and `duroctl restore` (its data as of a bookmark, as one
 * durable event on its owner core; the reply carries the bookmark that undoes it). Both
 * run on a worker; the work is the owner core's (dataplane/obj/pitr.c). */
#include "ctl_int.h"
#include "ctl_mailbox.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RESTORE_EVICT_TRIES 100 /* 10 ms apart: the restore's writes reach RocksDB first */

struct pitr_job {
	int64_t at_ms;
	char bookmark[DURO_BOOKMARK_LEN + 1];
	char out[DURO_BOOKMARK_LEN + 1];
	char err[256];
};

static int do_bookmark(struct core *c, struct ctl_cmd *cmd)
{
	struct pitr_job *j = cmd->payload;
	cmd->result = obj_bookmark(c, cmd->ns, &cmd->id, j->at_ms, j->out, j->err, sizeof(j->err));
	return 1;
}

static void restore_done(void *arg, int status)
{
	struct ctl_cmd *cmd = arg;
	cmd->result = status;
	ctl_cmd_finish(cmd);
}

static int do_restore(struct core *c, struct ctl_cmd *cmd)
{
	struct pitr_job *j = cmd->payload;
	int r = obj_restore(c, cmd->ns, &cmd->id, j->bookmark, j->out, j->err, sizeof(j->err),
			    restore_done, cmd);
	if (r == 0)
		return 0; /* finished once durable */
	cmd->result = r;
	return 1;
}

static int do_evict(struct core *c, struct ctl_cmd *cmd)
{
	cmd->result = obj_evict(c, cmd->ns, &cmd->id);
	return 1;
}

/* Runs fn on the object's owner core with a copy of j; the finished command (the caller
 * frees it; its payload is the copy, with the results) or NULL with *reply set. */
static struct ctl_cmd *on_owner(struct ctl *ctl, unsigned ns, const struct duro_id *id,
				int (*fn)(struct core *, struct ctl_cmd *), const struct pitr_job *j,
				const char *what, json_t **reply)
{
	struct ctl_cmd *cmd = ctl_cmd_new(fn);
	struct pitr_job *copy = malloc(sizeof(*copy));
	if (!cmd || !copy) {
		free(copy);
		if (cmd)
			ctl_cmd_free(cmd);
		*reply = ctl_error_reply("out of memory");
		return NULL;
	}
	/* The command's own copy: an abandoned command is freed by the core, with it. */
	*copy = *j;
	cmd->ns = ns;
	cmd->id = *id;
	cmd->payload = copy;
	cmd->payload_free = free;
	unsigned owner = obj_owner(id);
	int r = ctl_mailbox_call(&ctl->mb, owner, cmd);
	if (r < 0) {
		*reply = r == -ECANCELED ? ctl_error_reply("%s: durod is stopping", what)
					 : ctl_error_reply("%s: core %u did not finish in time", what, owner);
		return NULL;
	}
	return cmd;
}

static json_t *failed(const char *what, struct ctl_cmd *cmd)
{
	const struct pitr_job *got = cmd->payload;
	json_t *reply = ctl_error_reply("%s: %s", what, got->err[0] ? got->err : strerror(-cmd->result));
	if (reply)
		json_object_set_new(reply, "errno", json_integer(-cmd->result));
	return reply;
}

json_t *ctl_bookmark(struct ctl *ctl, json_t *req)
{
	unsigned ns;
	struct duro_id id;
	json_t *err;
	if (ctl_object_of(req, &ns, &id, &err) < 0)
		return err;
	json_t *at = json_object_get(req, "at_ms");
	if (at && (!json_is_integer(at) || json_integer_value(at) < 0))
		return ctl_error_reply("\"at_ms\": want a time in ms since the epoch");
	struct pitr_job j = { .at_ms = at ? (int64_t)json_integer_value(at) : -1 };
	json_t *reply = NULL;
	struct ctl_cmd *cmd = on_owner(ctl, ns, &id, do_bookmark, &j, "bookmark", &reply);
	if (!cmd)
		return reply;
	const struct pitr_job *got = cmd->payload;
	if (cmd->result < 0)
		reply = failed("bookmark", cmd);
	else
		reply = json_pack("{s:b, s:s}", "ok", 1, "bookmark", got->out);
	ctl_cmd_free(cmd);
	return reply;
}

json_t *ctl_restore(struct ctl *ctl, json_t *req)
{
	unsigned ns;
	struct duro_id id;
	json_t *err;
	if (ctl_object_of(req, &ns, &id, &err) < 0)
		return err;
	const char *bm = json_string_value(json_object_get(req, "bookmark"));
	if (!bm || strlen(bm) != DURO_BOOKMARK_LEN)
		return ctl_error_reply("restore wants \"bookmark\": %d characters, as duroctl bookmark prints",
				       DURO_BOOKMARK_LEN);
	struct pitr_job j = { 0 };
	memcpy(j.bookmark, bm, DURO_BOOKMARK_LEN);
	json_t *reply = NULL;
	struct ctl_cmd *cmd = NULL;
	/* A live instance with writes on their way cannot be evicted yet: a few tries. */
	for (int tries = 0; tries < RESTORE_EVICT_TRIES; tries++) {
		if (cmd)
			ctl_cmd_free(cmd);
		if (!(cmd = on_owner(ctl, ns, &id, do_restore, &j, "restore", &reply)))
			return reply;
		if (cmd->result != -EBUSY)
			break;
		usleep(10000);
	}
	if (cmd->result < 0) {
		reply = failed("restore", cmd);
		ctl_cmd_free(cmd);
		return reply;
	}
	memcpy(j.out, ((const struct pitr_job *)cmd->payload)->out, sizeof(j.out));
	ctl_cmd_free(cmd);
	/* Durable: the instance that did the restore goes, so the next event loads it whole. */
	int evicted = 0;
	for (int tries = 0; tries < RESTORE_EVICT_TRIES && !evicted; tries++) {
		struct ctl_cmd *ev = on_owner(ctl, ns, &id, do_evict, &j, "restore", &reply);
		if (!ev)
			return reply;
		evicted = ev->result >= 0;
		ctl_cmd_free(ev);
		if (!evicted)
			usleep(10000);
	}
	return json_pack("{s:b, s:s, s:b}", "ok", 1, "undo", j.out, "evicted", evicted);
}
