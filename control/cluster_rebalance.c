/* The rebalancer (cluster_int.h): one box at a time, elected by creating the lease-bound
 * key `rebalancer` (CREATE == 0); every write it makes compares that key's create_revision
 * with its own, so a box that lost the election (its lease expired) writes nothing. Its
 * target for each slot is the live box of highest rendezvous weight. It acts only when
 * membership has been unchanged for cluster.settle_ms. Part 1 assigns the slots that serve
 * nobody (unassigned, or owned by a box that left or rejoined as a new incarnation), each
 * with a compare-and-swap on the slot's mod_revision; a slot whose owner is live but not
 * its target needs its data moved first, which is later work: such slots are only counted
 * (moves_wanted) and max_moves_per_round will pace them. */
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
	unsigned nlive = 0, moves = 0;
	for (unsigned i = 0; i < cl->nboxes; i++)
		if (cl->boxes[i].live && cl->boxes[i].incarnation)
			live[nlive++] = (int)i;
	for (unsigned s = 0; nlive && s < DURO_SLOTS; s++)
		if (cluster_slot_live(cl, s) && cl->slots[s].owner != target_of(cl, s, live, nlive))
			moves++;
	return moves;
}

/* One txn assigning slots[0..n) to targets, guarded by the election and by each slot's
 * epoch. Returns the count assigned (n, or 0 when a compare failed), or a negative errno. */
static int assign(struct cluster *cl, const unsigned *slots, const int *targets, unsigned n)
{
	json_t *cmp = json_array(), *ops = json_array();
	json_array_append_new(cmp, json_pack("{s:o, s:s, s:o, s:s}", "key", cluster_key_json(cl, "rebalancer"),
					     "target", "CREATE", "create_revision",
					     cluster_i64_json(cl->my_rebalancer_rev), "result", "EQUAL"));
	for (unsigned i = 0; i < n; i++) {
		char suffix[32], val[256];
		snprintf(suffix, sizeof(suffix), "slots/%u", slots[i]);
		const struct cluster_box *b = &cl->boxes[targets[i]];
		struct cluster_slot_value v = { .incarnation = b->incarnation,
						.state = CLUSTER_SLOT_ACTIVE };
		snprintf(v.owner, sizeof(v.owner), "%s", b->name);
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
		sl->owner = (int16_t)targets[i];
		sl->incarnation = cl->boxes[targets[i]].incarnation;
		sl->epoch = rev;
		sl->state = CLUSTER_SLOT_ACTIVE;
	}
	cl->table_dirty = 1;
	return (int)n;
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
	unsigned nlive = 0;
	for (unsigned i = 0; i < cl->nboxes; i++)
		if (cl->boxes[i].live && cl->boxes[i].incarnation)
			live[nlive++] = (int)i;
	if (!nlive)
		return;
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
			int r = assign(cl, batch, targets, nb);
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
	if (assigned)
		log_info("cluster %s: rebalancer %s assigned %u of %u slots without a live owner over "
			 "%u live boxes; %u slots would move to their target box (moving a live "
			 "box's slot is later work)", cl->cfg->cluster.name, cl->me, assigned, orphans,
			 nlive, moves);
}
