/* Replication between boxes (cluster_int.h; issue 19, cluster.replication): the owner's
 * replicator thread, which ships what the cores queue to the slots' followers, and a
 * follower's answer to one append, both over the peer listener (MAC'd as its moves are).
 *
 * This stage: the owner keeps its own replica log of each slot it ships (storage/
 * store_repl.h, the same log a follower keeps: the source of resends and of recovery) and
 * sends each batch of records to every live follower in turn, one connection per append;
 * a follower takes it with obj_repl_follow and answers with its durable lsn. A follower
 * that answers MISMATCH is sent the owner's log from where it asks. The cores hear, per
 * commit batch, whether a majority of copies holds it (their output gate waits for that),
 * and a box that takes a slot over applies its log first. No SEAL round yet: recovery uses
 * this box's own log (tests/model/README.md's table says what is left). */
#include "cluster_int.h"
#include "cluster_follow.h"
#include "cluster_move.h"
#include "ctl_mailbox.h"
#include "cluster_repl_wire.h"
#include "cluster_ship.h"
#include "clock.h"
#include "log.h"
#include "obj.h"
#include "store.h"
#include "store_repl.h"
#include "store_slot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REPL_MAX_BODY (64u << 20)   /* bytes of one append frame */
#define REPL_WAIT_MS 200            /* the replicator looks at stop this often */

static unsigned repl_io_ms(const struct cluster *cl)
{
	return cl->cfg->cluster.follower_timeout_ms;
}

/* Followers that did not answer in time, not waited for again until until_ms (the owner's
 * answers then need the other followers): the replicator's own. */
#define REPL_SKIP_MAX 64
static struct repl_skip {
	char peer[CLUSTER_ADDR_MAX];
	uint64_t until_ms;
} skips[REPL_SKIP_MAX];

static struct repl_skip *skip_of(const char *peer, int make)
{
	struct repl_skip *free_one = NULL;
	uint64_t now = clock_now_ms();
	for (unsigned i = 0; i < REPL_SKIP_MAX; i++) {
		if (skips[i].peer[0] && !strcmp(skips[i].peer, peer))
			return &skips[i];
		if (!free_one && (!skips[i].peer[0] || skips[i].until_ms < now))
			free_one = &skips[i];
	}
	if (!make || !free_one)
		return NULL;
	snprintf(free_one->peer, sizeof(free_one->peer), "%s", peer);
	free_one->until_ms = 0;
	return free_one;
}

static int send_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
	return 0;
}

static int recv_all(int fd, void *p, size_t n)
{
	while (n) {
		ssize_t r = recv(fd, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EPROTO;
		p = (char *)p + r;
		n -= (size_t)r;
	}
	return 0;
}

/* ---- the follower ---- */

void cluster_repl_serve(struct cluster *cl, int fd, unsigned slot, int64_t epoch,
			const char *have, size_t nhave)
{
	unsigned char hb[OBJ_REPL_HDR];
	size_t k = nhave < sizeof(hb) ? nhave : sizeof(hb);
	memcpy(hb, have, k);
	if (recv_all(fd, hb + k, sizeof(hb) - k) < 0)
		return;
	struct obj_repl_hdr h;
	if (obj_repl_parse_hdr(hb, sizeof(hb), DURO_SLOTS, REPL_MAX_BODY, &h) <= 0 ||
	    h.type != OBJ_REPL_APPEND || h.slot != slot || h.epoch != epoch) {
		atomic_fetch_add(&cl->repl_failed, 1);
		return; /* the MAC covered slot and epoch: a frame for others is a broken peer */
	}
	unsigned char *body = malloc(h.body_len ? h.body_len : 1);
	if (!body)
		return;
	size_t extra = nhave - k;
	if (extra > h.body_len)
		extra = h.body_len;
	memcpy(body, have + k, extra);
	struct obj_repl_hdr ans;
	int r = recv_all(fd, body + extra, h.body_len - extra);
	if (r == 0)
		r = obj_repl_follow(obj_runtime_store(), &h, body, &ans);
	free(body);
	if (r < 0) {
		/* Nothing acknowledged: the owner counts this follower as not answering. */
		atomic_fetch_add(&cl->repl_failed, 1);
		log_warn("cluster %s: slot %u: replica append at epoch %lld: %s", cl->cfg->cluster.name,
			 slot, (long long)epoch, strerror(-r));
		return;
	}
	if (ans.status == OBJ_REPL_OK)
		atomic_fetch_add(&cl->repl_received, h.count);
	unsigned char ab[OBJ_REPL_HDR];
	obj_repl_put_hdr(ab, &ans);
	(void)send_all(fd, ab, sizeof(ab));
}

/* ---- the owner ---- */

/* One slot's records to ship: the owner's log from lsn from on (their epochs, data). */
struct ship {
	unsigned slot;
	int64_t epoch;
	uint64_t prev_lsn;
	int64_t prev_epoch;
	unsigned char *body;
	size_t len, cap;
	uint32_t count;
};

static int ship_add(void *arg, uint64_t lsn, int64_t epoch, const void *data, uint32_t len)
{
	struct ship *s = arg;
	(void)lsn;
	if (s->count == OBJ_REPL_MAX_RECS || s->len + OBJ_REPL_REC_HDR + len > REPL_MAX_BODY)
		return 1; /* the rest goes in the next append */
	size_t need = s->len + OBJ_REPL_REC_HDR + len;
	if (need > s->cap) {
		size_t cap = s->cap ? s->cap : 64 * 1024;
		while (cap < need)
			cap *= 2;
		unsigned char *b = realloc(s->body, cap);
		if (!b)
			return -ENOMEM;
		s->body = b;
		s->cap = cap;
	}
	s->len += obj_repl_put_rec(s->body + s->len, s->cap - s->len, epoch, data, len);
	s->count++;
	return 0;
}

/* Sends one append to peer and reads its answer into ans. 0 or a negative errno. */
static int send_append(struct cluster *cl, const char *peer, const struct ship *s,
		       struct obj_repl_hdr *ans)
{
	int fd = cluster_peer_dial(peer, repl_io_ms(cl));
	if (fd < 0)
		return fd;
	char mac[17], line[160];
	cluster_peer_mac(cl, "repl", s->slot, s->epoch, mac);
	int n = snprintf(line, sizeof(line), "GET /repl/%u/%lld/%s HTTP/1.0\r\n\r\n", s->slot,
			 (long long)s->epoch, mac);
	struct obj_repl_hdr h = {
		.type = OBJ_REPL_APPEND, .slot = (uint16_t)s->slot, .count = s->count,
		.body_len = (uint32_t)s->len, .epoch = s->epoch, .prev_epoch = s->prev_epoch,
		.prev_lsn = s->prev_lsn, .lsn = s->prev_lsn + s->count,
	};
	unsigned char hb[OBJ_REPL_HDR];
	obj_repl_put_hdr(hb, &h);
	int r = send_all(fd, line, (size_t)n);
	if (r == 0)
		r = send_all(fd, hb, sizeof(hb));
	if (r == 0 && s->len)
		r = send_all(fd, s->body, s->len);
	if (r == 0)
		r = recv_all(fd, hb, sizeof(hb));
	close(fd);
	if (r < 0)
		return r;
	if (obj_repl_parse_hdr(hb, sizeof(hb), DURO_SLOTS, 0, ans) <= 0 || ans->type != OBJ_REPL_ACK ||
	    ans->slot != s->slot)
		return -EPROTO;
	return 0;
}

/* The owner's log of slot from lsn from + 1 into s (as much as one append holds). */
static int load_from(struct store *st, struct ship *s, uint64_t from)
{
	s->len = 0;
	s->count = 0;
	s->prev_lsn = from;
	s->prev_epoch = 0;
	if (from > 0) {
		struct store_repl_state rs;
		int64_t e = store_repl_epoch_at(st, s->slot, from);
		if (e == 0 && store_repl_state(st, s->slot, &rs) == 0 && rs.trimmed == from)
			e = rs.trimmed_epoch;
		if (e <= 0)
			return e < 0 ? (int)e : -ENOENT; /* trimmed: a snapshot's work (not yet) */
		s->prev_epoch = e;
	}
	int r = store_repl_read(st, s->slot, from + 1, ship_add, s);
	return r < 0 ? r : 0;
}

/* Brings one follower up to the owner's log end: the append, then resends from where it
 * says its log matches, a few rounds at most. 1 when it acknowledged the log up to end
 * durable, else 0. A follower that does not answer (in follower_timeout_ms) or fails is
 * not asked again for as long (logged, counted): the gate then needs the others. */
static int ship_to(struct cluster *cl, const char *peer, struct ship *first, uint64_t end)
{
	struct repl_skip *sk = skip_of(peer, 0);
	if (sk && clock_now_ms() < sk->until_ms) {
		atomic_fetch_add(&cl->repl_skipped, 1);
		return 0;
	}
	int durable = 0;
	struct store *st = obj_runtime_store();
	struct ship again = { .slot = first->slot, .epoch = first->epoch };
	const struct ship *s = first;
	for (int round = 0; round < 8; round++) {
		struct obj_repl_hdr ans;
		int r = send_append(cl, peer, s, &ans);
		atomic_fetch_add(&cl->repl_sent, 1);
		if (r < 0) {
			atomic_fetch_add(&cl->repl_failed, 1);
			sk = skip_of(peer, 1);
			if (sk && sk->until_ms < clock_now_ms())
				log_warn("cluster %s: follower %s did not take slot %u's append (%s): "
					 "not waited for during %u ms", cl->cfg->cluster.name, peer,
					 s->slot, strerror(-r), repl_io_ms(cl));
			if (sk)
				sk->until_ms = clock_now_ms() + repl_io_ms(cl);
			break;
		}
		if (ans.status == OBJ_REPL_STALE) {
			/* A newer owner sealed it: this box's tenure is over (it steps down
			 * when the table says so). */
			atomic_fetch_add(&cl->repl_stale, 1);
			break;
		}
		if (ans.status == OBJ_REPL_OK) {
			atomic_fetch_add(&cl->repl_acked, s->count);
			if (ans.lsn >= end) {
				durable = 1;
				break;
			}
			r = load_from(st, &again, ans.lsn);
		} else {
			r = load_from(st, &again, ans.lsn); /* MISMATCH: from its log end */
		}
		if (r < 0 || again.count == 0) {
			atomic_fetch_add(&cl->repl_failed, 1);
			break;
		}
		s = &again;
	}
	free(again.body);
	return durable;
}

/* Ships items[0..n) of one slot (commit order): into the owner's own log, then to each
 * follower. 1 when they are durable on a majority of the slot's copies (the owner's
 * included), else 0. */
static int ship_slot(struct cluster *cl, struct obj_ship_item **items, unsigned n)
{
	struct store *st = obj_runtime_store();
	unsigned slot = items[0]->slot;
	int64_t epoch = 0;
	for (unsigned i = 0; i < n; i++)
		epoch = items[i]->epoch > epoch ? items[i]->epoch : epoch;
	struct store_repl_state rs;
	if (epoch <= 0 || store_repl_state(st, slot, &rs) < 0) {
		atomic_fetch_add(&cl->repl_failed, 1);
		return 0;
	}
	if (epoch < rs.max_epoch) {
		/* A newer owner sealed this box's copy: these writes are of a tenure that
		 * is over. */
		atomic_fetch_add(&cl->repl_stale, 1);
		return 0;
	}
	struct store_repl_rec recs[OBJ_REPL_MAX_RECS];
	struct ship s = { .slot = slot, .epoch = epoch, .prev_lsn = rs.end,
			  .prev_epoch = rs.end_epoch };
	for (unsigned i = 0; i < n; i++) {
		recs[i] = (struct store_repl_rec){ items[i]->epoch, items[i]->data,
						   (uint32_t)items[i]->len };
		if (ship_add(&s, 0, items[i]->epoch, items[i]->data, (uint32_t)items[i]->len) != 0) {
			atomic_fetch_add(&cl->repl_failed, 1);
			free(s.body);
			return 0;
		}
	}
	int r = store_repl_append(st, slot, epoch, rs.end, recs, n);
	if (r < 0) {
		atomic_fetch_add(&cl->repl_failed, 1);
		log_warn("cluster %s: slot %u: the owner's replica log: %s", cl->cfg->cluster.name, slot,
			 strerror(-r));
		free(s.body);
		return 0;
	}
	uint64_t end = rs.end + n;
	char peers[CLUSTER_MAX_VOTERS][CLUSTER_ADDR_MAX];
	unsigned np = 0, nvoters = 1;
	pthread_mutex_lock(&cl->lock);
	const struct cluster_repl_view *v = cl->repl_view;
	for (unsigned i = 0; v && i < v->nfollowers[slot]; i++) {
		nvoters++; /* a follower not live is a copy that does not answer */
		if (v->peer[v->followers[slot][i]][0])
			memcpy(peers[np++], v->peer[v->followers[slot][i]], CLUSTER_ADDR_MAX);
	}
	pthread_mutex_unlock(&cl->lock);
	unsigned copies = 1; /* the owner's */
	for (unsigned i = 0; i < np; i++)
		copies += (unsigned)ship_to(cl, peers[i], &s, end);
	free(s.body);
	if (copies < obj_repl_quorum(nvoters)) {
		atomic_fetch_add(&cl->repl_unreplicated, n);
		return 0;
	}
	return 1;
}

static void *repl_main(void *arg)
{
	struct cluster *cl = arg;
	while (!atomic_load(&cl->stop)) {
		struct obj_ship_item *list = obj_cluster_ship_take(REPL_WAIT_MS);
		if (!list)
			continue;
		/* Per slot, in commit order: the items of the first slot left, up to an
		 * append's worth, then the next; the outcomes go back in the cores' order. */
		size_t ntodo = 0, k = 0;
		for (struct obj_ship_item *it = list; it; it = it->next, ntodo++)
			it->ok = 0;
		struct obj_ship_item **todo = malloc(ntodo * sizeof(*todo));
		for (struct obj_ship_item *it = list; todo && it; it = it->next)
			todo[k++] = it;
		for (size_t i = 0; todo && i < ntodo; i++) {
			if (!todo[i])
				continue;
			struct obj_ship_item *group[OBJ_REPL_MAX_RECS];
			unsigned n = 0, slot = todo[i]->slot;
			for (size_t j = i; j < ntodo && n < OBJ_REPL_MAX_RECS; j++)
				if (todo[j] && todo[j]->slot == slot) {
					group[n++] = todo[j];
					todo[j] = NULL;
				}
			int ok = ship_slot(cl, group, n);
			for (unsigned g = 0; g < n; g++)
				group[g]->ok = (uint8_t)ok;
		}
		free(todo);
		/* A batch is through when each of its items is (none is left out: without
		 * memory for the order above, every item counts as not replicated). */
		int all = 1;
		for (struct obj_ship_item *it = list, *next; it; it = next) {
			next = it->next;
			all &= it->ok;
			if (it->last) {
				obj_cluster_ship_done(it->core, it->seq, all);
				all = 1;
			}
			free(it);
		}
	}
	/* Stopping: what is queued is not sent (the followers catch up from the log); its
	 * batches' answers leave as of unknown outcome if their cores still run. */
	for (struct obj_ship_item *it = obj_cluster_ship_take(0), *next; it; it = next) {
		next = it->next;
		if (it->last)
			obj_cluster_ship_done(it->core, it->seq, 0);
		free(it);
	}
	return NULL;
}

int cluster_repl_start(struct cluster *cl)
{
	int r = -pthread_create(&cl->repl_thread, NULL, repl_main, cl);
	if (r == 0)
		cl->repl_started = 1;
	return r;
}

void cluster_repl_stop(struct cluster *cl)
{
	if (cl->repl_started)
		pthread_join(cl->repl_thread, NULL);
	cl->repl_started = 0;
}

/* ---- taking a slot over ---- */

struct apply_ctx {
	struct store_slot_import *im;
	uint64_t last;
	long records;
};

/* One replica-log record: a commit batch's writes of the slot (cluster_capture.h's
 * format, written by a box of the same configuration: family indexes are the same). */
static int apply_rec(void *arg, uint64_t lsn, int64_t epoch, const void *data, uint32_t len)
{
	struct apply_ctx *a = arg;
	const unsigned char *p = data;
	(void)epoch;
	size_t at = 0;
	while (at < len) {
		if (len - at < 10)
			return -EPROTO;
		uint32_t kl, vl;
		memcpy(&kl, p + at + 2, 4);
		memcpy(&vl, p + at + 6, 4);
		if (len - at - 10 < (size_t)kl + vl)
			return -EPROTO;
		const unsigned char *key = p + at + 10, *val = key + kl;
		int r;
		switch (p[at]) {
		case 'R':
			r = store_slot_import_record(a->im, p[at + 1], key, kl, val, vl);
			break;
		case 'D':
			r = store_slot_import_record(a->im, p[at + 1], key, kl, NULL, 0);
			break;
		case 'X':
			r = store_slot_import_range(a->im, p[at + 1], key, kl, val, vl);
			break;
		default:
			r = -EPROTO;
		}
		if (r < 0)
			return r;
		at += 10 + (size_t)kl + vl;
		a->records++;
	}
	a->last = lsn;
	return 0;
}

/* On each core, after a slot's log was applied: objects of the slot it still holds from
 * an earlier tenure are evicted (their memory predates the applied writes) and the slot's
 * stored alarms are scheduled. */
static int do_took_over(struct core *c, struct ctl_cmd *cmd)
{
	obj_cluster_quiesce(c, cmd->ns, 0);
	cmd->result = (int)obj_cluster_slot_arrived(c, cmd->ns);
	return 1;
}

/* Slot s is this box's now (a failover: it was a follower, or an owner before): the
 * records of its replica log not yet in its data families are written there, durably,
 * before the cores serve it; the log is then trimmed to its end (those records are in
 * the data, which is what trimmed means). Re-applying records this box applied before
 * (as the owner of an earlier tenure) is harmless: they are writes in commit order. */
static void take_over(struct cluster *cl, unsigned s)
{
	struct store *st = obj_runtime_store();
	struct store_repl_state rs;
	if (store_repl_state(st, s, &rs) < 0 || rs.end <= rs.trimmed)
		return;
	struct apply_ctx a = { .im = store_slot_import_begin(st, s, 0) };
	int r = a.im ? store_repl_read(st, s, rs.trimmed + 1, apply_rec, &a) : -ENOMEM;
	if (r == 0)
		r = store_slot_import_flush(a.im);
	if (a.im)
		store_slot_import_end(a.im);
	if (r == 0)
		r = store_repl_trim(st, s, rs.end);
	if (r < 0) {
		log_error("cluster %s: slot %u: applying its replica log (lsn %llu to %llu) failed: "
			  "%s; it serves what its data holds", cl->cfg->cluster.name, s,
			  (unsigned long long)rs.trimmed + 1, (unsigned long long)rs.end,
			  strerror(-r));
		return;
	}
	atomic_fetch_add(&cl->repl_applied, (uint64_t)a.records);
	if (cluster_on_cores(cl, do_took_over, s) < 0)
		log_warn("cluster %s: slot %u: the cores could not be told its log was applied: "
			 "its alarms wait for its objects' next event", cl->cfg->cluster.name, s);
	log_info("cluster %s: slot %u: took over with its replica log, lsn %llu to %llu (%ld "
		 "writes)", cl->cfg->cluster.name, s, (unsigned long long)rs.trimmed + 1,
		 (unsigned long long)rs.end, a.records);
}

void cluster_repl_take_over(struct cluster *cl, const uint64_t *owned)
{
	if (!cl->cfg->obj.replicate)
		return;
	for (unsigned s = 0; s < DURO_SLOTS; s++) {
		int now = owned[s / 64] >> (s % 64) & 1, was = cl->repl_owned[s / 64] >> (s % 64) & 1;
		if (now && !was)
			take_over(cl, s);
	}
	memcpy(cl->repl_owned, owned, sizeof(cl->repl_owned));
}

void cluster_repl_moved_in(struct cluster *cl, unsigned s)
{
	struct store *st = obj_runtime_store();
	struct store_repl_state rs;
	if (!cl->cfg->obj.replicate || store_repl_state(st, s, &rs) < 0 || rs.end <= rs.trimmed)
		return;
	if (store_repl_trim(st, s, rs.end) < 0)
		log_warn("cluster %s: slot %u: trimming its replica log after the move failed",
			 cl->cfg->cluster.name, s);
}

void cluster_repl_publish(struct cluster *cl)
{
	if (!cl->cfg->obj.replicate)
		return;
	struct cluster_repl_view *v = cl->repl_view ? NULL : calloc(1, sizeof(*v));
	pthread_mutex_lock(&cl->lock);
	if (!cl->repl_view)
		cl->repl_view = v;
	v = cl->repl_view;
	if (v) {
		for (unsigned b = 0; b < cl->nboxes && b < CLUSTER_MAX_BOXES; b++)
			snprintf(v->peer[b], sizeof(v->peer[b]), "%s",
				 cl->boxes[b].live ? cl->boxes[b].v.peer : "");
		for (unsigned s = 0; s < DURO_SLOTS; s++) {
			const struct cluster_slot *sl = &cl->slots[s];
			v->epoch[s] = sl->epoch;
			v->nfollowers[s] = 0;
			/* voters[0] is the owner. */
			for (unsigned i = 1; i < sl->nvoters; i++)
				if (sl->voters[i] >= 0)
					v->followers[s][v->nfollowers[s]++] = (uint8_t)sl->voters[i];
		}
	}
	pthread_mutex_unlock(&cl->lock);
}
