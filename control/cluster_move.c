/* Planned slot moves (cluster_int.h): a slot's data goes from its owner A to a target C.
 *
 *   rebalancer: slots/<n> {owner A, active} --CAS--> {owner A, moving, target C}   (epoch e)
 *   C: GET /snap on A's peer listener: A's core for the slot starts capturing the slot's
 *       writes as it applies them (cluster_move.h), A streams a RocksDB snapshot; C imports
 *       it durably, then GET /tail (the captured writes) until a tail is small
 *   C: GET /final: A freezes the slot (nobody serves it; its requests wait in forwarding's
 *       retries), its cores drain it (objects unloaded once idle with their writes in
 *       RocksDB), then A hands over the capture's rest; C applies it and
 *       --CAS on epoch e--> {owner C, active}; its cores schedule the slot's alarms
 *   A: seeing another owner, unschedules the slot's alarms and drops its ranges
 *   a move that stalls (C gone, 10 s) is rolled back by the rebalancer:
 *       --CAS on epoch e--> {owner A, active}; C drops what it imported
 *
 * The pause a slot's objects see is one drain, one last tail, one etcd txn and one watch
 * delivery. The peer listener and the stream are cluster_peer.c's. */
#include "cluster_int.h"
#include "base_assert.h"
#include "clock.h"
#include "cluster_move.h"
#include "log.h"
#include "obj.h"
#include "store.h"
#include "store_slot.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MOVE_RETRY_MS 200             /* a failed pull is tried again after this */
#define MOVE_NOT_READY_MS 5           /* the owner still drains the slot: asked again */
#define MOVE_MAX_TAILS 16             /* tails pulled before asking for the freeze anyway */
#define MOVE_TAIL_SMALL (64u << 10)   /* a tail this small: the rest follows the freeze */

/* ---- the cores ---- */

/* cmd->ns carries the slot; cmd->result the answer. */
static int do_quiesce(struct core *c, struct ctl_cmd *cmd)
{
	cmd->result = (int)obj_cluster_quiesce(c, cmd->ns, 0);
	return 1;
}

static int do_quiesce_cut(struct core *c, struct ctl_cmd *cmd)
{
	cmd->result = (int)obj_cluster_quiesce(c, cmd->ns, 1);
	return 1;
}

static int do_gone(struct core *c, struct ctl_cmd *cmd)
{
	cmd->result = (int)obj_cluster_slot_gone(c, cmd->ns);
	return 1;
}

static int do_arrived(struct core *c, struct ctl_cmd *cmd)
{
	cmd->result = (int)obj_cluster_slot_arrived(c, cmd->ns);
	return 1;
}

long cluster_on_cores(struct cluster *cl, int (*fn)(struct core *, struct ctl_cmd *), unsigned slot)
{
	long sum = 0;
	for (unsigned i = 0; i < cl->group->ncores; i++) {
		struct ctl_cmd *cmd = ctl_cmd_new(fn);
		if (!cmd)
			return -ENOMEM;
		cmd->ns = slot;
		int r = ctl_mailbox_call(cl->mb, i, cmd);
		if (r < 0)
			return r;
		sum += cmd->result;
		ctl_cmd_free(cmd);
	}
	return sum;
}

/* ---- the moves this box takes part in ---- */

int cluster_box_draining(const struct cluster *cl, int box)
{
	return box >= 0 && cl->boxes[box].draining;
}

static int my_index(const struct cluster *cl)
{
	for (unsigned i = 0; i < cl->nboxes; i++)
		if (!strcmp(cl->boxes[i].name, cl->me))
			return (int)i;
	return -1;
}

static void set_export(struct cluster *cl, unsigned slot, int64_t epoch)
{
	pthread_mutex_lock(&cl->lock);
	cl->export_epoch[slot] = epoch;
	pthread_mutex_unlock(&cl->lock);
}

/* C's CAS: the slot is this box's at a new epoch, if it is still moving at epoch. C joins
 * the voters in place of a box gone, else a draining one, else the one of lowest
 * rendezvous weight (the giver included), so the voters stay the live boxes the slot
 * ranks highest: a failover then lands where the rebalancer would place the slot, and
 * needs no move after it. */
static int take_over(struct cluster *cl, unsigned slot, int64_t epoch, int64_t *rev)
{
	char suffix[32], val[CLUSTER_SLOT_VALUE_MAX];
	snprintf(suffix, sizeof(suffix), "slots/%u", slot);
	struct cluster_slot_value v = { .incarnation = cl->incarnation, .state = CLUSTER_SLOT_ACTIVE };
	snprintf(v.owner, sizeof(v.owner), "%s", cl->me);
	const struct cluster_slot *sl = &cl->slots[slot];
	snprintf(v.voters[v.nvoters++], sizeof(v.voters[0]), "%s", cl->me);
	unsigned want = sl->nvoters ? sl->nvoters : 1;
	uint8_t used[CLUSTER_MAX_VOTERS] = { 0 };
	while (v.nvoters < want) {
		int best = -1;
		uint64_t bw = 0;
		int brank = -1;
		for (unsigned i = 0; i < sl->nvoters; i++) {
			const struct cluster_box *b = &cl->boxes[sl->voters[i]];
			uint64_t w = cluster_weight(b->name, slot);
			/* Live boxes first, draining ones after them, boxes gone last. */
			int rank = b->live ? (b->draining ? 1 : 2) : 0;
			if (used[i] || !strcmp(b->name, cl->me))
				continue;
			if (best < 0 || rank > brank || (rank == brank && w > bw)) {
				best = (int)i;
				brank = rank;
				bw = w;
			}
		}
		if (best < 0)
			break;
		used[best] = 1;
		snprintf(v.voters[v.nvoters++], sizeof(v.voters[0]), "%s",
			 cl->boxes[sl->voters[best]].name);
	}
	long vn = cluster_slot_format(&v, val, sizeof(val));
	DURO_ASSERT(vn > 0);
	json_t *txn = json_pack("{s:[{s:o, s:s, s:o, s:s}], s:[{s:{s:o, s:o}}]}",
				"compare", "key", cluster_key_json(cl, suffix), "target", "MOD",
				"mod_revision", cluster_i64_json(epoch), "result", "EQUAL",
				"success", "request_put", "key", cluster_key_json(cl, suffix), "value",
				cluster_b64(val, (size_t)vn));
	int ok = 0;
	int r = txn ? cluster_txn(cl, txn, &ok, rev, NULL) : -ENOMEM;
	json_decref(txn);
	return r < 0 ? r : ok;
}

int cluster_move_frozen(const struct cluster *cl, unsigned s)
{
	const struct cluster_move *mv = &cl->moves[s];
	return mv->role == MOVE_GIVE && mv->epoch == cl->slots[s].epoch && mv->phase != MOVE_WAITING &&
	       mv->phase != MOVE_KEPT;
}

static void give_tick(struct cluster *cl, unsigned s, struct cluster_move *mv, uint64_t now)
{
	if (mv->phase == MOVE_WAITING) {
		pthread_mutex_lock(&cl->lock);
		int asked = cl->freeze_req[s] == mv->epoch;
		pthread_mutex_unlock(&cl->lock);
		if (!asked)
			return;
		/* The taker is here: from the next table on, the slot is frozen. */
		mv->phase = MOVE_FREEZING;
		mv->started_ms = now;
		cl->table_dirty = 1;
		return;
	}
	if (mv->phase != MOVE_FREEZING || cl->table_dirty)
		return; /* the cores must know the slot is frozen before they drain it */
	long busy = cluster_on_cores(cl, do_quiesce, s);
	/* Held responses may wait for an event that cannot come while the slot is frozen
	 * (a lock's release): after a while they are answered 503 and their objects go. */
	if (busy != 0 && now >= mv->started_ms + OBJ_CLUSTER_FREEZE_CUT_MS)
		busy = cluster_on_cores(cl, do_quiesce_cut, s);
	if (busy != 0 && now >= mv->started_ms + OBJ_CLUSTER_FREEZE_GIVE_UP_MS) {
		/* Still busy (an event or a call that does not end): the slot stays here and is
		 * served again; the taker's final pull never succeeds, and the rebalancer rolls
		 * the move back. */
		log_warn("cluster %s: slot %u: %ld of its objects still busy after %u ms frozen; "
			 "it is served here again and its move will be rolled back",
			 cl->cfg->cluster.name, s, busy, OBJ_CLUSTER_FREEZE_GIVE_UP_MS);
		mv->phase = MOVE_KEPT;
		cl->table_dirty = 1;
		return;
	}
	if (busy != 0)
		return; /* events still running or writes not applied: next turn */
	mv->phase = MOVE_READY;
	set_export(cl, s, mv->epoch);
}

static void finish(struct cluster *cl, unsigned s, struct cluster_move *mv, int me, uint64_t now);

/* One step of taking slot s: a snapshot and the live tail until it is small, then the
 * rest once the owner froze the slot, then the compare-and-swap. */
static void take_tick(struct cluster *cl, unsigned s, struct cluster_move *mv, uint64_t now)
{
	struct cluster_slot *sl = &cl->slots[s];
	const struct cluster_box *a = &cl->boxes[sl->owner];
	if (!a->v.peer[0]) {
		mv->next_try_ms = now + MOVE_RETRY_MS;
		return; /* an owner of an older version: the rebalancer rolls the move back */
	}
	uint64_t bytes = 0, records = 0, t0 = clock_now_ms();
	int r = 0;
	if (mv->phase == MOVE_PULLING) {
		mv->copy_start_ms = t0;
		r = cluster_peer_pull(cl, "snap", s, mv->epoch, a->v.peer, &bytes, &records);
		if (r == -EAGAIN) {
			mv->next_try_ms = clock_now_ms() + MOVE_NOT_READY_MS;
			return; /* the owner has not seen the move yet */
		}
		mv->bytes = bytes;
		mv->records = records;
		mv->snap_ms = (uint32_t)(clock_now_ms() - t0);
		/* The writes made meanwhile, again and again while there are many (a small
		 * snapshot took little time: the rest follows the freeze). */
		for (unsigned i = 0; r == 0 && mv->bytes >= MOVE_TAIL_SMALL && i < MOVE_MAX_TAILS; i++) {
			bytes = records = 0;
			r = cluster_peer_pull(cl, "tail", s, mv->epoch, a->v.peer, &bytes, &records);
			mv->bytes += bytes;
			mv->records += records;
			mv->tails++;
			if (bytes < MOVE_TAIL_SMALL)
				break;
		}
		if (r == 0)
			mv->phase = MOVE_CATCHING;
	}
	if (r == 0) {
		bytes = records = 0;
		r = cluster_peer_pull(cl, "final", s, mv->epoch, a->v.peer, &bytes, &records);
		if (r == -EAGAIN) {
			mv->next_try_ms = clock_now_ms() + MOVE_NOT_READY_MS;
			return; /* the owner is freezing and draining it */
		}
		mv->bytes += bytes;
		mv->records += records;
	}
	if (r < 0) {
		if (mv->tries++ % 10 == 0)
			log_warn("cluster %s: slot %u: pulling its data from box %s (%s): %s; again",
				 cl->cfg->cluster.name, s, a->name, a->v.peer, strerror(-r));
		store_slot_drop(obj_runtime_store(), s);
		mv->phase = MOVE_PULLING;
		mv->next_try_ms = clock_now_ms() + MOVE_RETRY_MS;
		return;
	}
	int64_t rev = 0;
	r = take_over(cl, s, mv->epoch, &rev);
	if (r == 1) {
		cl->f.bytes_moved += mv->bytes;
		cl->f.records_moved += mv->records;
		mv->copy_ms = (uint32_t)(clock_now_ms() - mv->copy_start_ms);
		/* Ours now: the watch brings the same, but the cores serve it from the next
		 * table (this turn's) rather than a watch delivery later. */
		sl->owner = (int16_t)my_index(cl);
		sl->incarnation = cl->incarnation;
		sl->state = CLUSTER_SLOT_ACTIVE;
		sl->target = -1;
		sl->target_incarnation = 0;
		sl->epoch = rev;
		cl->table_dirty = 1;
		mv->phase = MOVE_IMPORTED;
		mv->epoch = rev;
		cluster_repl_moved_in(cl, s);
		finish(cl, s, mv, my_index(cl), clock_now_ms());
		return;
	}
	if (r == 0) {
		/* The move was rolled back or changed meanwhile: the watch tells the rest. */
		store_slot_drop(obj_runtime_store(), s);
		mv->role = MOVE_NONE;
		return;
	}
	/* Unknown outcome: the data stays until the watch shows who owns the slot. */
	mv->phase = MOVE_IMPORTED;
}

/* The slot is no longer moving (or moving at another epoch): this box's part ends. */
static void finish(struct cluster *cl, unsigned s, struct cluster_move *mv, int me, uint64_t now)
{
	const struct cluster_slot *sl = &cl->slots[s];
	struct store *st = obj_runtime_store();
	int mine = sl->state == CLUSTER_SLOT_ACTIVE && sl->owner == me && me >= 0 &&
		   sl->incarnation == cl->incarnation;
	if (mv->role == MOVE_GIVE) {
		set_export(cl, s, 0);
		pthread_mutex_lock(&cl->lock);
		cl->moving_epoch[s] = 0;
		pthread_mutex_unlock(&cl->lock);
		cluster_peer_capture_stop(cl, s);
		int again = sl->state == CLUSTER_SLOT_MOVING && sl->owner == me && me >= 0 &&
			    sl->incarnation == cl->incarnation;
		if (mine) {
			cl->f.moves_rolled_back++;
			log_warn("cluster %s: slot %u stays on box %s (its move was rolled back)",
				 cl->cfg->cluster.name, s, cl->me);
		} else if (!again) {
			/* Gone: nothing of it may stay here (no alarm, no key). */
			if (cluster_on_cores(cl, do_gone, s) < 0 || store_slot_drop(st, s) < 0)
				log_error("cluster %s: slot %u left box %s but its data could not be "
					  "dropped here", cl->cfg->cluster.name, s, cl->me);
			uint64_t pause = now - mv->started_ms;
			cl->f.last_pause_ms = pause;
			if (pause > cl->f.max_pause_ms)
				cl->f.max_pause_ms = pause;
			cl->f.moves_done++;
		}
		/* again: moving from here at a newer epoch; the tick starts over. */
	} else if (mv->role == MOVE_TAKE) {
		if (mine && mv->phase == MOVE_IMPORTED) {
			long n = cluster_on_cores(cl, do_arrived, s);
			cl->f.last_move_ms = now - mv->started_ms;
			log_info("cluster %s: slot %u moved to box %s at epoch %lld: %llu records, %llu "
				 "bytes copied in %u ms (snapshot %u ms, %u tails; %llu ms since it "
				 "began moving; %ld alarms)",
				 cl->cfg->cluster.name, s, cl->me, (long long)sl->epoch,
				 (unsigned long long)mv->records, (unsigned long long)mv->bytes,
				 mv->copy_ms, mv->snap_ms, mv->tails,
				 (unsigned long long)(now - mv->started_ms), n);
		} else if (!mine) {
			if (mv->phase == MOVE_IMPORTED)
				store_slot_drop(st, s);
			cl->f.moves_failed++;
		}
	}
	mv->role = MOVE_NONE;
}

/* A slot the taker copies: due for its turn. One caught up (CATCHING) that lost its turn
 * while its owner drained it (a long freeze) is due as well, or it would wait for the
 * rebalancer's rollback. */
static int wants_turn(const struct cluster_move *mv, uint64_t now)
{
	return (mv->phase == MOVE_PULLING || mv->phase == MOVE_CATCHING) && now >= mv->next_try_ms;
}

unsigned cluster_move_tick(struct cluster *cl)
{
	if (cl->state != CLUSTER_JOINED)
		return 0;
	unsigned active = 0;
	int me = my_index(cl);
	uint64_t now = clock_now_ms();
	for (unsigned s = 0; s < DURO_SLOTS; s++) {
		const struct cluster_slot *sl = &cl->slots[s];
		struct cluster_move *mv = &cl->moves[s];
		int moving = sl->state == CLUSTER_SLOT_MOVING && me >= 0;
		int giving = moving && sl->owner == me && sl->incarnation == cl->incarnation;
		int taking = moving && sl->target == me && sl->target_incarnation == cl->incarnation;
		if (mv->role != MOVE_NONE &&
		    (mv->epoch != sl->epoch || (mv->role == MOVE_GIVE && !giving) ||
		     (mv->role == MOVE_TAKE && !taking)))
			finish(cl, s, mv, me, now);
		if (mv->role == MOVE_NONE && (giving || taking)) {
			*mv = (struct cluster_move){ .role = giving ? MOVE_GIVE : MOVE_TAKE,
						     .phase = giving ? MOVE_WAITING : MOVE_PULLING,
						     .epoch = sl->epoch, .started_ms = now,
						     .next_try_ms = now };
			if (giving) {
				pthread_mutex_lock(&cl->lock);
				cl->moving_epoch[s] = sl->epoch;
				pthread_mutex_unlock(&cl->lock);
			}
		}
		if (mv->role == MOVE_GIVE)
			give_tick(cl, s, mv, now);
		if (mv->role != MOVE_NONE)
			active++;
	}
	/* One slot at a time, one attempt per turn: its owner freezes it only when asked, so
	 * the pause a slot sees is its own copy, not a queue of others'; and the loop reads
	 * the watch and pushes tables between attempts. */
	if (cl->taking >= 0 && (cl->moves[cl->taking].role != MOVE_TAKE ||
				cl->moves[cl->taking].phase == MOVE_IMPORTED))
		cl->taking = -1;
	if (cl->taking < 0) {
		for (unsigned s = 0; s < DURO_SLOTS && cl->taking < 0; s++)
			if (cl->moves[s].role == MOVE_TAKE && wants_turn(&cl->moves[s], now))
				cl->taking = (int)s;
	}
	if (cl->taking >= 0 && now >= cl->moves[cl->taking].next_try_ms) {
		unsigned s = (unsigned)cl->taking;
		take_tick(cl, s, &cl->moves[s], now);
		int took = cl->moves[s].role != MOVE_TAKE;
		if (took || cl->moves[s].phase == MOVE_IMPORTED ||
		    cl->moves[s].next_try_ms >= now + MOVE_RETRY_MS)
			cl->taking = -1; /* done, or failed: another slot's turn */
		/* Done: the next slot's owner is asked at once (its first answer is "not ready
		 * yet"), so it drains while this turn's table goes out. */
		for (unsigned n = s + 1; took && n < DURO_SLOTS; n++)
			if (cl->moves[n].role == MOVE_TAKE && wants_turn(&cl->moves[n], now)) {
				cl->taking = (int)n;
				take_tick(cl, n, &cl->moves[n], clock_now_ms());
				break;
			}
	}
	cluster_renew_if_due(cl);
	return active;
}
