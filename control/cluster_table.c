/* The cluster's table as this box sees it (cluster_int.h): boxes and slots read from etcd
 * with one range of the prefix, then kept current by a watch from the revision after it;
 * handed to the cores through their mailboxes, and summed up for status and metrics. */
#include "cluster_int.h"
#include "base_assert.h"
#include "clock.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CLUSTER_STATUS_MS 500 /* the status text is rebuilt at least this often */

int cluster_box_of(struct cluster *cl, const char *name)
{
	for (unsigned i = 0; i < cl->nboxes; i++)
		if (!strcmp(cl->boxes[i].name, name))
			return (int)i;
	int at = -1;
	if (cl->nboxes < CLUSTER_MAX_BOXES) {
		at = (int)cl->nboxes++;
	} else {
		/* Full: reuse a box that left and that no slot names any more. */
		uint8_t named[CLUSTER_MAX_BOXES] = { 0 };
		for (unsigned s = 0; s < DURO_SLOTS; s++) {
			if (cl->slots[s].owner >= 0)
				named[cl->slots[s].owner] = 1;
			for (unsigned v = 0; v < cl->slots[s].nvoters; v++)
				named[cl->slots[s].voters[v]] = 1;
		}
		for (unsigned i = 0; i < CLUSTER_MAX_BOXES && at < 0; i++)
			if (!cl->boxes[i].live && !named[i])
				at = (int)i;
		if (at < 0)
			return -1;
	}
	memset(&cl->boxes[at], 0, sizeof(cl->boxes[at]));
	snprintf(cl->boxes[at].name, sizeof(cl->boxes[at].name), "%s", name);
	return at;
}

void cluster_slot_set_voters(struct cluster *cl, struct cluster_slot *sl,
			     const struct cluster_slot_value *v)
{
	sl->nvoters = 0;
	if (sl->owner < 0)
		return;
	/* The owner first, whatever the value's order: failover picks among the rest. */
	sl->voters[sl->nvoters++] = sl->owner;
	for (unsigned i = 0; i < v->nvoters && sl->nvoters < CLUSTER_MAX_VOTERS; i++) {
		int b = cluster_box_of(cl, v->voters[i]);
		if (b >= 0 && b != sl->owner)
			sl->voters[sl->nvoters++] = (int16_t)b;
	}
}

unsigned cluster_slot_live_voters(const struct cluster *cl, unsigned s)
{
	const struct cluster_slot *sl = &cl->slots[s];
	unsigned n = 0;
	for (unsigned i = 0; i < sl->nvoters; i++)
		n += cl->boxes[sl->voters[i]].live != 0;
	return n;
}

int cluster_slot_live(const struct cluster *cl, unsigned s)
{
	const struct cluster_slot *sl = &cl->slots[s];
	if (sl->owner < 0)
		return 0;
	const struct cluster_box *b = &cl->boxes[sl->owner];
	return b->live && b->incarnation == sl->incarnation;
}

/* One key-value of ours, put or deleted, into the table. */
static void apply(struct cluster *cl, const struct etcd_kv *kv, int deleted)
{
	char box[CLUSTER_NAME_MAX];
	unsigned slot = 0;
	switch (cluster_key_parse(cl->prefix, kv->key, kv->key_len, box, &slot)) {
	case CLUSTER_KEY_OTHER:
		return;
	case CLUSTER_KEY_MEMBER: {
		int i = cluster_box_of(cl, box);
		if (i < 0)
			return;
		struct cluster_box *b = &cl->boxes[i];
		if (deleted) {
			if (b->live)
				cl->members_changed_ms = clock_now_ms();
			b->live = 0;
			b->incarnation = 0;
			/* Fenced by the loop, not here: the watch's buffer is being read. */
			if (!strcmp(box, cl->me) && cl->state == CLUSTER_JOINED)
				cl->fence_why = "its member key was deleted from etcd";
		} else {
			if (!b->live || b->incarnation != kv->create_rev)
				cl->members_changed_ms = clock_now_ms();
			if (cluster_member_parse(kv->value, kv->value_len, &b->v) < 0)
				cl->f.bad_values++;
			b->live = 1;
			b->incarnation = kv->create_rev;
			b->lease = kv->lease;
		}
		cl->table_dirty = 1;
		return;
	}
	case CLUSTER_KEY_SLOT: {
		struct cluster_slot *s = &cl->slots[slot];
		struct cluster_slot_value v;
		s->owner = -1;
		s->target = -1;
		s->incarnation = 0;
		s->target_incarnation = 0;
		s->state = CLUSTER_SLOT_ACTIVE;
		s->nvoters = 0;
		s->epoch = deleted ? 0 : kv->mod_rev;
		if (!deleted) {
			if (cluster_slot_parse(kv->value, kv->value_len, &v) < 0) {
				/* Unreadable: no owner, so the rebalancer writes it over (at its epoch). */
				cl->f.bad_values++;
			} else {
				s->owner = (int16_t)cluster_box_of(cl, v.owner);
				s->incarnation = v.incarnation;
				s->state = (uint8_t)v.state;
				if (v.state == CLUSTER_SLOT_MOVING) {
					s->target = (int16_t)cluster_box_of(cl, v.target);
					s->target_incarnation = v.target_incarnation;
				}
				cluster_slot_set_voters(cl, s, &v);
			}
		}
		cl->table_dirty = 1;
		return;
	}
	case CLUSTER_KEY_REBALANCE:
		/* `duroctl cluster rebalance` on any box: the rebalancer runs a round now. */
		if (!deleted && cl->state == CLUSTER_JOINED)
			cl->next_round_ms = 0;
		return;
	case CLUSTER_KEY_LOAD:
		cluster_load_apply(cl, box, kv->value, kv->value_len, deleted);
		return;
	case CLUSTER_KEY_DRAIN: {
		int i = cluster_box_of(cl, box);
		if (i >= 0)
			cl->boxes[i].draining = !deleted;
		cl->table_dirty = 1;
		return;
	}
	case CLUSTER_KEY_REBALANCER:
		if (deleted) {
			cl->rebalancer[0] = 0;
			cl->rebalancer_rev = 0;
		} else {
			size_t n = kv->value_len < sizeof(cl->rebalancer) - 1 ? kv->value_len
									      : sizeof(cl->rebalancer) - 1;
			memcpy(cl->rebalancer, kv->value, n);
			cl->rebalancer[n] = 0;
			cl->rebalancer_rev = kv->create_rev;
		}
		if (cl->my_rebalancer_rev && cl->rebalancer_rev != cl->my_rebalancer_rev) {
			log_info("cluster %s: box %s is no longer the rebalancer", cl->cfg->cluster.name,
				 cl->me);
			cl->my_rebalancer_rev = 0;
		}
		return;
	}
}

static json_t *prefix_range(struct cluster *cl)
{
	char end[sizeof(cl->prefix)];
	size_t pl = strlen(cl->prefix);
	size_t el = etcd_prefix_end(cl->prefix, pl, end);
	return json_pack("{s:o, s:o}", "key", cluster_b64(cl->prefix, pl), "range_end",
			 cluster_b64(end, el));
}

int cluster_table_load(struct cluster *cl)
{
	json_t *body = prefix_range(cl), *r = NULL;
	if (!body)
		return -ENOMEM;
	int e = etcd_call(&cl->etcd, "/v3/kv/range", body, &r);
	json_decref(body);
	if (e < 0)
		return e;
	int64_t rev;
	json_t *kvs = json_object_get(r, "kvs");
	if (etcd_parse_revision(r, &rev) < 0 || (kvs && !json_is_array(kvs))) {
		json_decref(r);
		cl->etcd.ctr.bad_replies++;
		return -EPROTO;
	}
	/* Everything is replaced: boxes keep their indexes, but none is live until seen. */
	int64_t before[CLUSTER_MAX_BOXES];
	unsigned nbefore = cl->nboxes;
	uint64_t changed = cl->members_changed_ms;
	for (unsigned i = 0; i < cl->nboxes; i++) {
		before[i] = cl->boxes[i].live ? cl->boxes[i].incarnation : 0;
		cl->boxes[i].live = 0;
		cl->boxes[i].draining = 0;
		cl->boxes[i].incarnation = 0;
	}
	for (unsigned s = 0; s < DURO_SLOTS; s++)
		cl->slots[s] = (struct cluster_slot){ .owner = -1, .target = -1 };
	cl->rebalancer[0] = 0;
	cl->rebalancer_rev = 0;
	size_t i;
	json_t *kv;
	json_array_foreach(kvs, i, kv) {
		struct etcd_kv k;
		if (etcd_parse_kv(kv, &k) < 0) {
			cl->f.bad_values++;
			continue;
		}
		apply(cl, &k, 0);
	}
	json_decref(r);
	if (cl->my_rebalancer_rev && cl->rebalancer_rev != cl->my_rebalancer_rev)
		cl->my_rebalancer_rev = 0;
	cl->revision = rev;
	/* Membership changed only if some box's liveness or incarnation did. */
	int same = nbefore == cl->nboxes;
	for (unsigned k = 0; same && k < nbefore; k++)
		same = before[k] == (cl->boxes[k].live ? cl->boxes[k].incarnation : 0);
	cl->members_changed_ms = same ? changed : clock_now_ms();
	cl->table_dirty = 1;
	/* Joined, and the range does not hold our own key: it is gone. */
	int me = cluster_box_of(cl, cl->me);
	if (cl->state == CLUSTER_JOINED && me >= 0 && cl->boxes[me].incarnation != cl->incarnation)
		cl->fence_why = "its member key is gone from etcd";
	return 0;
}

int cluster_watch_open(struct cluster *cl)
{
	etcd_watch_close(&cl->watch);
	json_t *req = prefix_range(cl);
	if (!req)
		return -ENOMEM;
	char start[24];
	snprintf(start, sizeof(start), "%lld", (long long)cl->revision + 1);
	json_object_set_new(req, "start_revision", json_string(start));
	int e = etcd_watch_open(&cl->etcd, &cl->watch, req);
	json_decref(req);
	return e;
}

static void on_event(void *arg, const struct etcd_event *ev)
{
	apply(arg, &ev->kv, ev->type == ETCD_DELETE);
}

static void on_message(void *arg, json_t *msg)
{
	struct cluster *cl = arg;
	struct etcd_watch_msg m;
	if (etcd_parse_watch(msg, &m, on_event, cl) < 0 || m.error) {
		cl->etcd.ctr.watch_bad++;
		cl->watch_status = -EPROTO;
		return;
	}
	cl->f.bad_values += m.bad_events;
	if (m.canceled || m.compact_revision) {
		/* Cancelled (compacted past our revision): read the table again. */
		cl->watch_status = -ECANCELED;
		return;
	}
	if (m.revision > cl->revision)
		cl->revision = m.revision;
}

int cluster_watch_poll(struct cluster *cl)
{
	cl->watch_status = 0;
	int r = etcd_watch_read(&cl->etcd, &cl->watch, on_message, cl);
	return r < 0 ? r : cl->watch_status;
}

/* ---- to the cores ---- */

struct push {
	int lease_only;
	struct obj_cluster_table t;
};

static int do_install(struct core *c, struct ctl_cmd *cmd)
{
	const struct push *p = cmd->payload;
	obj_cluster_install(c, &p->t, p->lease_only);
	return 1;
}

static void fill(struct cluster *cl, struct obj_cluster_table *t)
{
	t->gen = ++cl->table_gen;
	t->serving = cl->state == CLUSTER_JOINED;
	t->deadline_ms = t->serving ? cl->deadline_ms : 0;
	t->incarnation = cl->incarnation;
	snprintf(t->why, sizeof(t->why), "%s", cl->why);
	int me = -1;
	for (unsigned i = 0; i < cl->nboxes; i++)
		if (!strcmp(cl->boxes[i].name, cl->me))
			me = (int)i;
	t->nboxes = cl->nboxes;
	for (unsigned i = 0; i < cl->nboxes; i++) {
		snprintf(t->boxes[i].name, sizeof(t->boxes[i].name), "%s", cl->boxes[i].name);
		snprintf(t->boxes[i].addr, sizeof(t->boxes[i].addr), "%s", cl->boxes[i].v.address);
		t->boxes[i].incarnation = cl->boxes[i].incarnation;
		t->boxes[i].live = cl->boxes[i].live;
	}
	for (unsigned s = 0; s < DURO_SLOTS; s++) {
		const struct cluster_slot *sl = &cl->slots[s];
		t->owner[s] = sl->owner < 0 ? OBJ_CLUSTER_NO_OWNER : (uint8_t)sl->owner;
		t->epoch[s] = sl->epoch;
		/* Moving: its owner serves it until the taker asks for it; frozen then, nobody
		 * serves it until the move ends and the owner's own requests wait in
		 * forwarding's retries, as the other boxes' (refused by it) do, so its events
		 * drain. */
		if (sl->state == CLUSTER_SLOT_MOVING && cluster_move_frozen(cl, s)) {
			t->owner[s] = OBJ_CLUSTER_NO_OWNER;
			continue;
		}
		/* Ours only at this incarnation: a slot a previous incarnation owned waits for
		 * the rebalancer to give it again at a new epoch. */
		if (me >= 0 && sl->owner == me && sl->incarnation == cl->incarnation && cl->incarnation)
			t->owned[s / 64] |= 1ull << (s % 64);
	}
}

void cluster_push(struct cluster *cl)
{
	uint64_t now = clock_now_ms();
	if (!cl->table_dirty && !cl->lease_dirty) {
		if (now >= cl->next_status_ms) {
			cl->next_status_ms = now + CLUSTER_STATUS_MS;
			cluster_publish_status(cl);
		}
		return;
	}
	/* Until every core runs, nobody takes commands: they start not serving anyway. */
	if (atomic_load(&cl->group->serving) < cl->group->ncores || ctl_mailbox_stopping(cl->mb))
		return;
	int lease_only = !cl->table_dirty;
	for (unsigned i = 0; i < cl->group->ncores; i++) {
		struct push *p = calloc(1, sizeof(*p));
		struct ctl_cmd *cmd = p ? ctl_cmd_new(do_install) : NULL;
		if (!cmd) {
			free(p);
			return; /* dirty still: again next turn */
		}
		p->lease_only = lease_only;
		fill(cl, &p->t);
		if (i == 0 && !lease_only)
			cluster_repl_take_over(cl, p->t.owned); /* before any core serves them */
		cmd->payload = p;
		cmd->payload_free = free;
		int r = ctl_mailbox_call(cl->mb, i, cmd);
		if (r == 0)
			ctl_cmd_free(cmd);
		else if (r != -ETIMEDOUT)
			return;
	}
	if (!lease_only)
		cluster_repl_publish(cl);
	cl->table_dirty = cl->lease_dirty = 0;
	cl->next_status_ms = now + CLUSTER_STATUS_MS;
	cluster_publish_status(cl);
}

/* ---- status ---- */

void cluster_publish_status(struct cluster *cl)
{
	unsigned count[CLUSTER_MAX_BOXES] = { 0 }, unowned = 0, under = 0;
	unsigned want = cl->cfg->cluster.replicas + 1;
	int64_t emin[CLUSTER_MAX_BOXES], emax[CLUSTER_MAX_BOXES], all_max = 0;
	for (unsigned i = 0; i < CLUSTER_MAX_BOXES; i++)
		emin[i] = emax[i] = 0;
	for (unsigned s = 0; s < DURO_SLOTS; s++) {
		const struct cluster_slot *sl = &cl->slots[s];
		if (sl->epoch > all_max)
			all_max = sl->epoch;
		if (!cluster_slot_live(cl, s)) {
			unowned++;
			continue;
		}
		/* Fewer live copies than configured: a voter died or the slot was assigned with
		 * cluster.allow_fewer_copies. */
		under += cluster_slot_live_voters(cl, s) < want;
		unsigned o = (unsigned)sl->owner;
		count[o]++;
		if (!emin[o] || sl->epoch < emin[o])
			emin[o] = sl->epoch;
		if (sl->epoch > emax[o])
			emax[o] = sl->epoch;
	}
	cl->moves_wanted = cluster_moves_wanted(cl);
	json_t *boxes = json_array();
	for (unsigned i = 0; boxes && i < cl->nboxes; i++) {
		const struct cluster_box *b = &cl->boxes[i];
		if (!b->live && !count[i])
			continue;
		json_t *bj = json_pack(
			"{s:s, s:s, s:i, s:s, s:I, s:b, s:i, s:I, s:I, s:b, s:s}", "name", b->name,
			"address", b->v.address, "cores", (int)b->v.cores, "version", b->v.version,
			"incarnation", (json_int_t)b->incarnation, "live", b->live, "slots", (int)count[i],
			"epoch_min", (json_int_t)emin[i], "epoch_max", (json_int_t)emax[i],
			"draining", b->draining, "peer", b->v.peer);
		json_t *load = bj ? cluster_load_json(b) : NULL;
		if (load)
			json_object_set_new(bj, "load", load);
		json_array_append_new(boxes, bj);
	}
	json_t *moves = json_array();
	for (unsigned s = 0; moves && s < DURO_SLOTS; s++) {
		const struct cluster_slot *sl = &cl->slots[s];
		if (sl->state != CLUSTER_SLOT_MOVING || sl->owner < 0 || sl->target < 0)
			continue;
		json_array_append_new(moves, json_pack("{s:i, s:s, s:s, s:I}", "slot", (int)s, "from",
						       cl->boxes[sl->owner].name, "to",
						       cl->boxes[sl->target].name, "epoch",
						       (json_int_t)sl->epoch));
	}
	json_t *mc = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			       "begun", (json_int_t)cl->f.moves_begun,
			       "done", (json_int_t)cl->f.moves_done,
			       "failed", (json_int_t)cl->f.moves_failed,
			       "rolled_back", (json_int_t)cl->f.moves_rolled_back,
			       "bytes_moved", (json_int_t)cl->f.bytes_moved,
			       "records_moved", (json_int_t)cl->f.records_moved,
			       "last_pause_ms", (json_int_t)cl->f.last_pause_ms,
			       "max_pause_ms", (json_int_t)cl->f.max_pause_ms,
			       "last_move_ms", (json_int_t)cl->f.last_move_ms);
	const char *state = cl->state == CLUSTER_JOINED ? "serving"
			  : cl->f.fences ? "fenced" : "joining";
	json_t *etcd = json_pack("{s:s, s:s, s:I, s:I, s:I}", "endpoint",
				 cl->etcd.ep[cl->etcd.cur].text, "last_error", cl->etcd.last_error,
				 "requests", (json_int_t)cl->etcd.ctr.requests, "failures",
				 (json_int_t)cl->etcd.ctr.failures, "failovers",
				 (json_int_t)cl->etcd.ctr.failovers);
	json_t *ctr = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
				"joins", (json_int_t)cl->f.joins, "fences", (json_int_t)cl->f.fences,
				"join_failures", (json_int_t)cl->f.join_failures,
				"renewals", (json_int_t)cl->f.renewals,
				"renew_failures", (json_int_t)cl->f.renew_failures,
				"watch_restarts", (json_int_t)cl->f.watch_restarts,
				"assigned", (json_int_t)cl->f.assigned,
				"bad_values", (json_int_t)cl->f.bad_values);
	json_t *st = json_pack(
		"{s:b, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:b, s:I, s:o, s:i, s:I, s:i, s:i, s:I, s:o, s:o}",
		"ok", 1, "cluster", cl->cfg->cluster.name, "box", cl->me, "address", cl->advertise,
		"state", state, "why", cl->why, "incarnation", (json_int_t)cl->incarnation,
		"rebalancer", cl->rebalancer, "is_rebalancer", cl->my_rebalancer_rev != 0,
		"revision", (json_int_t)cl->revision, "boxes", boxes, "slots", DURO_SLOTS,
		"epoch_max", (json_int_t)all_max, "unowned", (int)unowned,
		"moves_wanted", (int)cl->moves_wanted,
		"lease_ms_left", (json_int_t)(cl->state == CLUSTER_JOINED
				 ? (int64_t)cl->deadline_ms - (int64_t)clock_now_ms() : 0),
		"etcd", etcd, "counters", ctr);
	if (st) {
		json_object_set_new(st, "moves", moves ? moves : json_array());
		json_object_set_new(st, "move_counters", mc ? mc : json_object());
		json_object_set_new(st, "peer", json_string(cl->peer_addr));
		json_object_set_new(st, "replication",
				    json_pack("{s:i, s:b, s:i, s:s, s:I, s:I, s:I}", "replicas",
					      (int)cl->cfg->cluster.replicas, "allow_fewer_copies",
					      cl->cfg->cluster.allow_fewer_copies, "under_replicated",
					      (int)under, "refused", cl->refused, "refused_rounds",
					      (json_int_t)cl->f.refused_rounds, "failovers",
					      (json_int_t)cl->f.failovers, "copies_lost",
					      (json_int_t)cl->f.copies_lost));
	} else {
		json_decref(moves);
		json_decref(mc);
	}
	char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;
	json_decref(st);
	if (!text)
		return;
	cl->f.etcd = cl->etcd.ctr;
	pthread_mutex_lock(&cl->lock);
	free(cl->status_text);
	cl->status_text = text;
	cl->fig = cl->f;
	pthread_mutex_unlock(&cl->lock);
}
