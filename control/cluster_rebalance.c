/* The rebalancer (cluster_int.h): one box at a time, elected by creating the lease-bound
 * key `rebalancer` (CREATE == 0); every write it makes compares that key's create_revision
 * with its own, so a box that lost the election (its lease expired) writes nothing. Its
 * target for each slot is the live box of highest rendezvous weight. It acts only when
 * membership has been unchanged for cluster.settle_ms. It assigns the slots that serve
 * nobody (unassigned, or owned by a box that left or rejoined as a new incarnation) at
 * once, each with a compare-and-swap on the slot's mod_revision; a slot whose owner is
 * live but not its target (or draining) is moved with its data (cluster_move.c): at most
 * max_moves_per_round moves in flight, each begun and, when it stalls, rolled back by a
 * compare-and-swap on the epoch it is moving at. Draining boxes are nobody's target.
 *
 * Each slot has voters (issue 19): the boxes holding its copies, the owner and
 * cluster.replicas (K) followers, the K+1 live boxes of highest weight when the slot is
 * first assigned. With fewer than K+1 live boxes a slot is not assigned at all (the
 * operator sees why in the log and `duroctl cluster status`) unless
 * cluster.allow_fewer_copies is set. A slot whose owner is gone goes to a live voter and
 * keeps its voters (failover: the copies are there; research/cluster.md §3.5, and
 * tests/model/README.md point 5 on why the voter set must not change here). */
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

/* config_keys.c bounds cluster.replicas to 4: the voters a slot value holds, less one. */
_Static_assert(CLUSTER_MAX_VOTERS == 5, "cluster.replicas' maximum is CLUSTER_MAX_VOTERS - 1");

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

/* The k boxes of highest weight for slot s among live[0..nlive) into out, best first;
 * returns how many (min(k, nlive)). Ties go to the smaller name, as in target_of. */
static unsigned ranked(const struct cluster *cl, unsigned s, const int *live, unsigned nlive,
		       int16_t *out, unsigned k)
{
	uint64_t w[CLUSTER_MAX_BOXES];
	uint8_t taken[CLUSTER_MAX_BOXES] = { 0 };
	DURO_ASSERT(nlive <= CLUSTER_MAX_BOXES);
	for (unsigned i = 0; i < nlive; i++)
		w[i] = cluster_weight(cl->boxes[live[i]].name, s);
	unsigned n = 0;
	for (; n < k && n < nlive; n++) {
		int best = -1;
		for (unsigned i = 0; i < nlive; i++) {
			if (taken[i])
				continue;
			if (best < 0 || w[i] > w[best] ||
			    (w[i] == w[best] &&
			     strcmp(cl->boxes[live[i]].name, cl->boxes[live[best]].name) < 0))
				best = (int)i;
		}
		taken[best] = 1;
		out[n] = (int16_t)live[best];
	}
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

/* A slot's voters as the rebalancer writes them, the owner first. */
struct voter_set {
	uint8_t n;
	int16_t box[CLUSTER_MAX_VOTERS];
};

/* One txn writing slots[0..n): owned by targets[i] with voters vs[i] (moving: owned by
 * their owner, moving to targets[i]; rollback: active again at their owner; both keep
 * their voters, and vs is NULL), guarded by the election and by each slot's epoch.
 * Returns the count written (n, or 0 when a compare failed), or a negative errno. */
enum write_kind { WRITE_ASSIGN, WRITE_BEGIN_MOVE, WRITE_ROLLBACK };
static int write_slots(struct cluster *cl, const unsigned *slots, const int *targets, unsigned n,
		       enum write_kind kind, const struct voter_set *vs)
{
	DURO_ASSERT((kind == WRITE_ASSIGN) == (vs != NULL));
	json_t *cmp = json_array(), *ops = json_array();
	json_array_append_new(cmp, json_pack("{s:o, s:s, s:o, s:s}", "key", cluster_key_json(cl, "rebalancer"),
					     "target", "CREATE", "create_revision",
					     cluster_i64_json(cl->my_rebalancer_rev), "result", "EQUAL"));
	for (unsigned i = 0; i < n; i++) {
		char suffix[32], val[CLUSTER_SLOT_VALUE_MAX];
		snprintf(suffix, sizeof(suffix), "slots/%u", slots[i]);
		const struct cluster_slot *sl = &cl->slots[slots[i]];
		const struct cluster_box *b = &cl->boxes[kind == WRITE_ASSIGN ? targets[i] : sl->owner];
		struct cluster_slot_value v = { .incarnation = b->incarnation,
						.state = CLUSTER_SLOT_ACTIVE };
		snprintf(v.owner, sizeof(v.owner), "%s", b->name);
		const int16_t *vb = vs ? vs[i].box : sl->voters;
		unsigned vn = vs ? vs[i].n : sl->nvoters;
		for (unsigned k = 0; k < vn; k++)
			snprintf(v.voters[v.nvoters++], sizeof(v.voters[0]), "%s", cl->boxes[vb[k]].name);
		if (kind == WRITE_BEGIN_MOVE) {
			const struct cluster_box *t = &cl->boxes[targets[i]];
			v.state = CLUSTER_SLOT_MOVING;
			snprintf(v.target, sizeof(v.target), "%s", t->name);
			v.target_incarnation = t->incarnation;
		}
		long len = cluster_slot_format(&v, val, sizeof(val));
		DURO_ASSERT(len > 0);
		/* MOD == 0 holds for a key that does not exist. */
		json_array_append_new(cmp, json_pack("{s:o, s:s, s:o, s:s}", "key", cluster_key_json(cl, suffix),
						     "target", "MOD", "mod_revision",
						     cluster_i64_json(cl->slots[slots[i]].epoch), "result", "EQUAL"));
		json_array_append_new(ops, json_pack("{s:{s:o, s:o}}", "request_put", "key",
						     cluster_key_json(cl, suffix), "value",
						     cluster_b64(val, (size_t)len)));
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
			sl->nvoters = vs[i].n;
			memcpy(sl->voters, vs[i].box, sizeof(sl->voters));
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
		if (write_slots(cl, &batch[i], dummy, 1, WRITE_ROLLBACK, NULL) == 1) {
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
	int r = write_slots(cl, batch, targets, nb, WRITE_BEGIN_MOVE, NULL);
	if (r > 0) {
		cl->f.moves_begun += (unsigned)r;
		log_info("cluster %s: rebalancer %s began %d slot moves (%u were in flight)",
			 cl->cfg->cluster.name, cl->me, r, inflight);
	} else if (r < 0) {
		log_warn("cluster %s: rebalancer: beginning moves: %s", cl->cfg->cluster.name,
			 cl->etcd.last_error);
	}
}

/* What the rebalancer does with a slot that serves nobody. */
enum plan {
	PLAN_FRESH,    /* never assigned: the K+1 live boxes of highest weight */
	PLAN_FAILOVER, /* its owner is gone: a live voter owns it, the voters stay */
	PLAN_LOST,     /* its owner and every voter are gone: assigned fresh, empty */
	PLAN_REFUSED,  /* never assigned, fewer live boxes than K+1, fewer copies not allowed */
};

static enum plan plan(const struct cluster *cl, unsigned s, const int *live, unsigned nlive,
		      int *owner, struct voter_set *vs)
{
	const struct cluster_slot *sl = &cl->slots[s];
	/* Failover: the live voter of highest weight, a draining one only when it is the
	 * last (its copy is better than none; the drain moves the slot on later). The old
	 * owner back as a new incarnation is a voter like the others: its copy is a log
	 * like theirs, and the new epoch is what fences its old tenure (tests/model: the
	 * rebalancer picks any live voter). */
	int best = -1, best_draining = 1;
	uint64_t bw = 0;
	for (unsigned i = 0; i < sl->nvoters; i++) {
		const struct cluster_box *b = &cl->boxes[sl->voters[i]];
		if (!b->live || !b->incarnation)
			continue;
		uint64_t w = cluster_weight(b->name, s);
		if (best < 0 || (best_draining && !b->draining) ||
		    (best_draining == b->draining && w > bw)) {
			best = sl->voters[i];
			best_draining = b->draining;
			bw = w;
		}
	}
	if (best >= 0) {
		*owner = best;
		vs->n = 0;
		vs->box[vs->n++] = (int16_t)best;
		for (unsigned i = 0; i < sl->nvoters; i++)
			if (sl->voters[i] != best)
				vs->box[vs->n++] = sl->voters[i];
		return PLAN_FAILOVER;
	}
	/* No live copy of a slot that had an owner: assigned over the boxes there are, as
	 * refusing would keep it down for no copy to protect. (Once records replicate, such
	 * a slot must wait for a voter to come back instead: its copies are on their disks.) */
	int lost = sl->epoch && sl->owner >= 0;
	unsigned want = cl->cfg->cluster.replicas + 1;
	if (!lost && nlive < want && !cl->cfg->cluster.allow_fewer_copies)
		return PLAN_REFUSED;
	vs->n = (uint8_t)ranked(cl, s, live, nlive, vs->box, want);
	DURO_ASSERT(vs->n >= 1);
	*owner = vs->box[0];
	return lost ? PLAN_LOST : PLAN_FRESH;
}

/* Says (once per change) why slots stay unassigned, for the log and the status. */
static void note_refused(struct cluster *cl, unsigned refused, unsigned nlive)
{
	char why[sizeof(cl->refused)] = "";
	if (refused)
		snprintf(why, sizeof(why),
			 "cluster.replicas is %u, so a slot needs %u live boxes and %u are live: %u "
			 "slots stay unassigned (set cluster.allow_fewer_copies to run with fewer "
			 "copies)", cl->cfg->cluster.replicas, cl->cfg->cluster.replicas + 1, nlive,
			 refused);
	if (strcmp(why, cl->refused)) {
		if (refused)
			log_warn("cluster %s: rebalancer %s: %s", cl->cfg->cluster.name, cl->me, why);
		else if (cl->refused[0])
			log_info("cluster %s: rebalancer %s: enough live boxes for cluster.replicas "
				 "again", cl->cfg->cluster.name, cl->me);
		snprintf(cl->refused, sizeof(cl->refused), "%s", why);
	}
	if (refused)
		cl->f.refused_rounds++;
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
	unsigned refused = 0, failovers = 0, lost = 0, bfail = 0, blost = 0;
	int targets[CLUSTER_TXN_SLOTS];
	struct voter_set vs[CLUSTER_TXN_SLOTS];
	unsigned nb = 0;
	int failed = 0;
	/* A round that takes long (a slow etcd) stops and resumes next round. */
	uint64_t stop_at = now + cl->cfg->cluster.lease_ttl_ms / 3;
	for (unsigned s = 0; s <= DURO_SLOTS && !failed; s++) {
		if (s < DURO_SLOTS) {
			if (cluster_slot_live(cl, s)) {
				moves += cl->slots[s].owner != target_of(cl, s, live, nlive);
				continue;
			}
			orphans++;
			enum plan p = plan(cl, s, live, nlive, &targets[nb], &vs[nb]);
			if (p == PLAN_REFUSED) {
				refused++;
				continue;
			}
			bfail += p == PLAN_FAILOVER;
			blost += p == PLAN_LOST;
			batch[nb++] = s;
		}
		if (nb == CLUSTER_TXN_SLOTS || (s == DURO_SLOTS && nb)) {
			int r = write_slots(cl, batch, targets, nb, WRITE_ASSIGN, vs);
			if (r <= 0) {
				/* Lost the election, or a slot changed under us: the watch tells. */
				failed = 1;
				if (r < 0)
					log_warn("cluster %s: rebalancer: assigning slots: %s",
						 cl->cfg->cluster.name, cl->etcd.last_error);
			}
			assigned += (unsigned)(r > 0 ? r : 0);
			if (r > 0) {
				failovers += bfail;
				lost += blost;
			}
			nb = bfail = blost = 0;
			/* The lease must not wait for the round, nor the round outlive the lease. */
			cluster_renew_if_due(cl);
			if (cl->state != CLUSTER_JOINED || clock_now_ms() >= stop_at)
				failed = 1;
		}
	}
	note_refused(cl, refused, nlive);
	/* Counted as written: a batch whose compare failed is tried again next round. */
	cl->f.failovers += failovers;
	cl->f.copies_lost += lost;
	if (lost)
		log_warn("cluster %s: rebalancer %s reassigned %u slots that have no live copy "
			 "left (their owner and every voter are gone): they start empty",
			 cl->cfg->cluster.name, cl->me, lost);
	cl->moves_wanted = moves;
	cl->f.assigned += assigned;
	if (!failed && cl->state == CLUSTER_JOINED)
		begin_moves(cl, live, nlive);
	if (assigned)
		log_info("cluster %s: rebalancer %s assigned %u of %u slots without a live owner over "
			 "%u live boxes (%u to a live voter of their dead owner); %u slots would move "
			 "to their target box", cl->cfg->cluster.name, cl->me, assigned, orphans,
			 nlive, failovers, moves);
}
