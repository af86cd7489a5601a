/* The rebalancer (cluster_int.h): one box at a time, elected by creating the lease-bound
 * key `rebalancer` (CREATE == 0); every write it makes compares that key's create_revision
 * with its own, so a box that lost the election (its lease expired) writes nothing. Its
 * target for each slot is the live box of highest rendezvous weight. It acts only when
 * membership has been unchanged for cluster.settle_ms. It assigns the slots that serve
 * nobody (unassigned, or owned by a box that left or rejoined as a new incarnation) at
 * once, each with a compare-and-swap on the slot's mod_revision; a slot whose owner is
 * live but not its target (or draining) is moved with its data (cluster_move.c): at most
 * max_moves_per_round moves in flight, each begun and, when it stalls, rolled back by a
 * compare-and-swap on the epoch it is moving at. Draining boxes are nobody's target. */
#include "cluster_int.h"
#include "base_assert.h"
#include "clock.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Stands for election: creates the key if nobody holds it. */
static void elect(struct cluster *cl)
{
	json_t *txn = json_pack(
		"{s:[{s:o, s:s, s:s, s:s}], s:[{s:{s:o, s:o, s:o}}]}",
		"compare", "key", cluster_key_json(cl, "rebalancer"), "target", "CREATE", "create_revision", "0",
		"result", "EQUAL",
		"success", "request_put", "key", cluster_key_json(cl, "rebalancer"), "value",
		cluster_b64(cl->me, strlen(cl->me)), "lease", cluster_i64_json(cl->lease));
	int ok = 0;
	int64_t rev = 0;
	if (txn && cluster_txn(cl, txn, &ok, &rev, NULL) == 0 && ok) {
		cl->my_rebalancer_rev = rev;
		snprintf(cl->rebalancer, sizeof(cl->rebalancer), "%s", cl->me);
		cl->rebalancer_rev = rev;
		log_info("cluster %s: box %s is the rebalancer (elected at revision %lld)",
			 cl->cfg->cluster.name, cl->me, (long long)rev);
	}
	json_decref(txn);
}

#define MOVE_TIMEOUT_MS 10000 /* a move not done by then is rolled back */

/* The boxes slots may go to: live, and not draining unless all are. */
static unsigned targets_list(const struct cluster *cl, int *live)
{
	unsigned n = 0;
	for (unsigned i = 0; i < cl->nboxes; i++)
		if (cl->boxes[i].live && cl->boxes[i].incarnation && !cl->boxes[i].draining)
			live[n++] = (int)i;
	if (n)
		return n;
	for (unsigned i = 0; i < cl->nboxes; i++)
		if (cl->boxes[i].live && cl->boxes[i].incarnation)
			live[n++] = (int)i;
	return n;
}

/* The live box of highest weight for slot s, or -1. */
static int target_of(const struct cluster *cl, unsigned s, const int *live, unsigned nlive)
{
	int best = -1;
	uint64_t bw = 0;
	for (unsigned k = 0; k < nlive; k++) {
		uint64_t w = cluster_weight(cl->boxes[live[k]].name, s);
		if (best < 0 || w > bw || (w == bw && strcmp(cl->boxes[live[k]].name, cl->boxes[best].name) < 0)) {
			best = live[k];
			bw = w;
		}
	}
	return best;
}

unsigned cluster_moves_wanted(const struct cluster *cl)
{
	int live[CLUSTER_MAX_BOXES];
	unsigned nlive = targets_list(cl, live), moves = 0;
	for (unsigned s = 0; nlive && s < DURO_SLOTS; s++)
		if (cluster_slot_live(cl, s) && cl->slots[s].owner != target_of(cl, s, live, nlive))
			moves++;
	return moves;
}

/* One txn writing slots[0..n): owned by targets[i] (moving: owned by their owner, moving
 * to targets[i]; rollback: active again at their owner), guarded by the election and by
 * each slot's epoch. Returns the count written (n, or 0 when a compare failed), or a
 * negative errno. */
enum write_kind { WRITE_ASSIGN, WRITE_BEGIN_MOVE, WRITE_ROLLBACK };
static int write_slots(struct cluster *cl, const unsigned *slots, const int *targets, unsigned n,
		       enum write_kind kind)
{
	json_t *cmp = json_array(), *ops = json_array();
	json_array_append_new(cmp, json_pack("{s:o, s:s, s:o, s:s}", "key", cluster_key_json(cl, "rebalancer"),
					     "target", "CREATE", "create_revision",
					     cluster_i64_json(cl->my_rebalancer_rev), "result", "EQUAL"));
	for (unsigned i = 0; i < n; i++) {
		char suffix[32], val[256];
		snprintf(suffix, sizeof(suffix), "slots/%u", slots[i]);
		const struct cluster_slot *sl = &cl->slots[slots[i]];
		const struct cluster_box *b = &cl->boxes[kind == WRITE_ASSIGN ? targets[i] : sl->owner];
		struct cluster_slot_value v = { .incarnation = b->incarnation,
						.state = CLUSTER_SLOT_ACTIVE };
		snprintf(v.owner, sizeof(v.owner), "%s", b->name);
		if (kind == WRITE_BEGIN_MOVE) {
			const struct cluster_box *t = &cl->boxes[targets[i]];
			v.state = CLUSTER_SLOT_MOVING;
			snprintf(v.target, sizeof(v.target), "%s", t->name);
			v.target_incarnation = t->incarnation;
		}
		long vn = cluster_slot_format(&v, val, sizeof(val));
		DURO_ASSERT(vn > 0);
		/* MOD == 0 holds for a key that does not exist. */
		json_array_append_new(cmp, json_pack("{s:o, s:s, s:o, s:s}", "key", cluster_key_json(cl, suffix),
						     "target", "MOD", "mod_revision",
						     cluster_i64_json(cl->slots[slots[i]].epoch), "result", "EQUAL"));
		json_array_append_new(ops, json_pack("{s:{s:o, s:o}}", "request_put", "key",
						     cluster_key_json(cl, suffix), "value",
						     cluster_b64(val, (size_t)vn)));
	}
	json_t *txn = json_pack("{s:o, s:o}", "compare", cmp, "success", ops);
	int ok = 0;
	int64_t rev = 0;
	int r = txn ? cluster_txn(cl, txn, &ok, &rev, NULL) : -ENOMEM;
	json_decref(txn);
	if (r < 0)
		return r;
	if (!ok)
		return 0;
	/* The watch brings the same; applied now so the next batch sees it. */
	for (unsigned i = 0; i < n; i++) {
		struct cluster_slot *sl = &cl->slots[slots[i]];
		if (kind == WRITE_ASSIGN) {
			sl->owner = (int16_t)targets[i];
			sl->incarnation = cl->boxes[targets[i]].incarnation;
		}
		sl->target = -1;
		sl->target_incarnation = 0;
		sl->state = CLUSTER_SLOT_ACTIVE;
		if (kind == WRITE_BEGIN_MOVE) {
			sl->state = CLUSTER_SLOT_MOVING;
			sl->target = (int16_t)targets[i];
			sl->target_incarnation = cl->boxes[targets[i]].incarnation;
		}
		sl->epoch = rev;
	}
	cl->table_dirty = 1;
	return (int)n;
}

/* Moves that stall are rolled back: the target left or rejoined, or the move outlived
 * MOVE_TIMEOUT_MS (the owner never drained it, or the target cannot pull it). A moving
 * slot whose owner is gone is an orphan, assigned as any other. */
static void rollback_stalled(struct cluster *cl, uint64_t now)
{
	unsigned batch[CLUSTER_TXN_SLOTS], nb = 0;
	int dummy[CLUSTER_TXN_SLOTS] = { 0 };
	for (unsigned s = 0; s < DURO_SLOTS; s++) {
		const struct cluster_slot *sl = &cl->slots[s];
		if (sl->state != CLUSTER_SLOT_MOVING) {
			cl->moving_seen_epoch[s] = 0;
			continue;
		}
		if (cl->moving_seen_epoch[s] != sl->epoch) {
			cl->moving_seen_epoch[s] = sl->epoch;
			cl->moving_seen_ms[s] = now;
		}
		if (!cluster_slot_live(cl, s))
			continue;
		const struct cluster_box *t = sl->target >= 0 ? &cl->boxes[sl->target] : NULL;
		int stalled = !t || !t->live || t->incarnation != sl->target_incarnation ||
			      now - cl->moving_seen_ms[s] >= MOVE_TIMEOUT_MS;
		if (stalled && nb < CLUSTER_TXN_SLOTS)
			batch[nb++] = s;
	}
	for (unsigned i = 0; i < nb; i++) {
		/* One by one: each is its own compare, and one that moved on spoils no other. */
		if (write_slots(cl, &batch[i], dummy, 1, WRITE_ROLLBACK) == 1) {
			cl->f.moves_failed++;
			log_warn("cluster %s: rebalancer %s rolled back the move of slot %u (its "
				 "target is gone or it took over %u ms)", cl->cfg->cluster.name,
				 cl->me, batch[i], MOVE_TIMEOUT_MS);
		}
	}
}

/* Begins moves of slots whose live owner is not their target (or is draining), keeping at
 * most max_moves_per_round in flight. */
static void begin_moves(struct cluster *cl, const int *live, unsigned nlive)
{
	unsigned inflight = 0;
	for (unsigned s = 0; s < DURO_SLOTS; s++)
		inflight += cl->slots[s].state == CLUSTER_SLOT_MOVING;
	unsigned budget = cl->cfg->cluster.max_moves_per_round;
	if (inflight >= budget)
		return;
	budget -= inflight;
	unsigned batch[CLUSTER_TXN_SLOTS], nb = 0;
	int targets[CLUSTER_TXN_SLOTS];
	for (unsigned s = 0; s < DURO_SLOTS && nb < budget && nb < CLUSTER_TXN_SLOTS; s++) {
		const struct cluster_slot *sl = &cl->slots[s];
		if (sl->state != CLUSTER_SLOT_ACTIVE || !cluster_slot_live(cl, s))
			continue;
		int t = target_of(cl, s, live, nlive);
		if (t < 0 || t == sl->owner || !cl->boxes[t].v.peer[0] ||
		    !cl->boxes[sl->owner].v.peer[0])
			continue; /* a box of an older version cannot move data */
		batch[nb] = s;
		targets[nb++] = t;
	}
	if (!nb)
		return;
	int r = write_slots(cl, batch, targets, nb, WRITE_BEGIN_MOVE);
	if (r > 0) {
		cl->f.moves_begun += (unsigned)r;
		log_info("cluster %s: rebalancer %s began %d slot moves (%u were in flight)",
			 cl->cfg->cluster.name, cl->me, r, inflight);
	} else if (r < 0) {
		log_warn("cluster %s: rebalancer: beginning moves: %s", cl->cfg->cluster.name,
			 cl->etcd.last_error);
	}
}

void cluster_rebalance_tick(struct cluster *cl, uint64_t now)
{
	if (now < cl->next_round_ms)
		return;
	cl->next_round_ms = now + cl->cfg->cluster.rebalance_interval_ms;
	if (!cl->my_rebalancer_rev) {
		if (!cl->rebalancer[0])
			elect(cl);
		if (!cl->my_rebalancer_rev)
			return;
	}
	if (now - cl->members_changed_ms < cl->cfg->cluster.settle_ms)
		return; /* membership is changing: no writes until it settles */
	cl->f.rounds++;
	int live[CLUSTER_MAX_BOXES];
	unsigned nlive = targets_list(cl, live);
	if (!nlive)
		return;
	rollback_stalled(cl, now);
	unsigned batch[CLUSTER_TXN_SLOTS], orphans = 0, assigned = 0, moves = 0;
	int targets[CLUSTER_TXN_SLOTS];
	unsigned nb = 0;
	int failed = 0;
	/* A round that takes long (a slow etcd) stops and resumes next round. */
	uint64_t stop_at = now + cl->cfg->cluster.lease_ttl_ms / 3;
	for (unsigned s = 0; s <= DURO_SLOTS && !failed; s++) {
		if (s < DURO_SLOTS) {
			int t = target_of(cl, s, live, nlive);
			if (cluster_slot_live(cl, s)) {
				moves += cl->slots[s].owner != t;
				continue;
			}
			orphans++;
			batch[nb] = s;
			targets[nb++] = t;
		}
		if (nb == CLUSTER_TXN_SLOTS || (s == DURO_SLOTS && nb)) {
			int r = write_slots(cl, batch, targets, nb, WRITE_ASSIGN);
			if (r <= 0) {
				/* Lost the election, or a slot changed under us: the watch tells. */
				failed = 1;
				if (r < 0)
					log_warn("cluster %s: rebalancer: assigning slots: %s",
						 cl->cfg->cluster.name, cl->etcd.last_error);
			}
			assigned += (unsigned)(r > 0 ? r : 0);
			nb = 0;
			/* The lease must not wait for the round, nor the round outlive the lease. */
			cluster_renew_if_due(cl);
			if (cl->state != CLUSTER_JOINED || clock_now_ms() >= stop_at)
				failed = 1;
		}
	}
	cl->moves_wanted = moves;
	cl->f.assigned += assigned;
	if (!failed && cl->state == CLUSTER_JOINED)
		begin_moves(cl, live, nlive);
	if (assigned)
		log_info("cluster %s: rebalancer %s assigned %u of %u slots without a live owner over "
			 "%u live boxes; %u slots would move to their target box (moving a live "
			 "box's slot is later work)", cl->cfg->cluster.name, cl->me, assigned, orphans,
			 nlive, moves);
}
