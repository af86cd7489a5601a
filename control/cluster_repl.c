/* Replication between boxes (cluster_int.h; issue 19, cluster.replication): the owner's
 * replicator thread, which ships what the cores queue to the slots' followers, and a
 * follower's answer to one append, both over the peer listener (MAC'd as its moves are).
 *
 * This stage: the owner keeps its own replica log of each slot it ships (storage/
 * store_repl.h, the same log a follower keeps: the source of resends and, later, of
 * recovery) and sends each batch of records to every live follower, one connection per
 * append; a follower takes it with obj_repl_follow and answers with its durable lsn. A
 * follower that answers MISMATCH is sent the owner's log from where it asks. Nothing
 * waits for the answers yet: the output gate opens on local durability, and failover
 * does not apply the copy (tests/model/README.md's table says what is left). */
#include "cluster_int.h"
#include "cluster_follow.h"
#include "cluster_repl_wire.h"
#include "cluster_ship.h"
#include "log.h"
#include "obj.h"
#include "store.h"
#include "store_repl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REPL_MAX_BODY (64u << 20)   /* bytes of one append frame */
#define REPL_WAIT_MS 200            /* the replicator looks at stop this often */

static unsigned repl_io_ms(const struct cluster *cl)
{
	unsigned ms = cl->cfg->cluster.lease_ttl_ms / 5;
	return ms < 100 ? 100 : ms;
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
		int64_t e = store_repl_epoch_at(st, s->slot, from);
		if (e <= 0)
			return e < 0 ? (int)e : -ENOENT; /* trimmed: a snapshot's work (not yet) */
		s->prev_epoch = e;
	}
	int r = store_repl_read(st, s->slot, from + 1, ship_add, s);
	return r < 0 ? r : 0;
}

/* Brings one follower up to the owner's log end: the append, then resends from where it
 * says its log matches, a few rounds at most. */
static void ship_to(struct cluster *cl, const char *peer, struct ship *first, uint64_t end)
{
	struct store *st = obj_runtime_store();
	struct ship again = { .slot = first->slot, .epoch = first->epoch };
	const struct ship *s = first;
	for (int round = 0; round < 8; round++) {
		struct obj_repl_hdr ans;
		int r = send_append(cl, peer, s, &ans);
		atomic_fetch_add(&cl->repl_sent, 1);
		if (r < 0) {
			atomic_fetch_add(&cl->repl_failed, 1);
			log_debug("cluster %s: slot %u: append to %s: %s", cl->cfg->cluster.name,
				  s->slot, peer, strerror(-r));
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
			if (ans.lsn >= end)
				break;
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
}

/* Ships items[0..n) of one slot (commit order): into the owner's own log, then to each
 * follower. */
static void ship_slot(struct cluster *cl, struct obj_ship_item **items, unsigned n)
{
	struct store *st = obj_runtime_store();
	unsigned slot = items[0]->slot;
	int64_t epoch = 0;
	for (unsigned i = 0; i < n; i++)
		epoch = items[i]->epoch > epoch ? items[i]->epoch : epoch;
	struct store_repl_state rs;
	if (epoch <= 0 || store_repl_state(st, slot, &rs) < 0) {
		atomic_fetch_add(&cl->repl_failed, 1);
		return;
	}
	if (epoch < rs.max_epoch) {
		/* A newer owner sealed this box's copy: these writes are of a tenure that
		 * is over. */
		atomic_fetch_add(&cl->repl_stale, 1);
		return;
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
			return;
		}
	}
	int r = store_repl_append(st, slot, epoch, rs.end, recs, n);
	if (r < 0) {
		atomic_fetch_add(&cl->repl_failed, 1);
		log_warn("cluster %s: slot %u: the owner's replica log: %s", cl->cfg->cluster.name, slot,
			 strerror(-r));
		free(s.body);
		return;
	}
	uint64_t end = rs.end + n;
	char peers[CLUSTER_MAX_VOTERS][CLUSTER_ADDR_MAX];
	unsigned np = 0;
	pthread_mutex_lock(&cl->lock);
	const struct cluster_repl_view *v = cl->repl_view;
	for (unsigned i = 0; v && i < v->nfollowers[slot]; i++)
		if (v->peer[v->followers[slot][i]][0])
			memcpy(peers[np++], v->peer[v->followers[slot][i]], CLUSTER_ADDR_MAX);
	pthread_mutex_unlock(&cl->lock);
	for (unsigned i = 0; i < np; i++)
		ship_to(cl, peers[i], &s, end);
	free(s.body);
}

static void *repl_main(void *arg)
{
	struct cluster *cl = arg;
	while (!atomic_load(&cl->stop)) {
		struct obj_ship_item *list = obj_cluster_ship_take(REPL_WAIT_MS);
		/* Per slot, in commit order: the items of the first slot left, up to an
		 * append's worth, then the next. */
		while (list) {
			struct obj_ship_item *group[OBJ_REPL_MAX_RECS], **pp = &list;
			unsigned n = 0, slot = list->slot;
			while (*pp && n < OBJ_REPL_MAX_RECS) {
				struct obj_ship_item *it = *pp;
				if (it->slot == slot) {
					*pp = it->next;
					group[n++] = it;
				} else {
					pp = &it->next;
				}
			}
			ship_slot(cl, group, n);
			for (unsigned i = 0; i < n; i++)
				free(group[i]);
		}
	}
	/* Stopping: what is queued is not sent (the followers catch up from the log). */
	for (struct obj_ship_item *it = obj_cluster_ship_take(0), *next; it; it = next) {
		next = it->next;
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
