/* Cluster membership (cluster.h): the cluster thread's loop, joining (a lease, then
 * members/<box> created with CREATE == 0 so two boxes never share a name), renewing the
 * lease, and self-fencing. The fence is the clock's side of safety: the box stops serving
 * a margin before etcd can expire its lease, and the cores check the same deadline
 * themselves, so a stuck cluster thread cannot keep them serving. */
#include "cluster_int.h"
#include "cluster_ship.h"
#include "base_assert.h"
#include "clock.h"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define CLUSTER_TICK_MS 50           /* the loop's longest sleep */
#define CLUSTER_JOIN_RETRY_MS 1000   /* between join attempts */
#define CLUSTER_JOIN_LOG_MS 30000    /* an unchanged join failure is logged this often */
#define CLUSTER_WATCH_RETRY_MS 200   /* between attempts to restore a broken watch */
#define CLUSTER_MOVE_TICK_MS 2       /* the loop's longest sleep while a move runs */

json_t *cluster_b64(const char *text, size_t n)
{
	char out[4 * ((ETCD_MAX_VALUE + 2) / 3) + 8];
	if (etcd_b64_encode(text, n, out, sizeof(out)) < 0)
		return NULL;
	return json_string(out);
}

json_t *cluster_key_json(const struct cluster *cl, const char *suffix)
{
	char key[ETCD_MAX_KEY];
	int n = snprintf(key, sizeof(key), "%s%s", cl->prefix, suffix);
	DURO_ASSERT(n > 0 && (size_t)n < sizeof(key));
	return cluster_b64(key, (size_t)n);
}

json_t *cluster_i64_json(int64_t v)
{
	char t[24];
	snprintf(t, sizeof(t), "%lld", (long long)v);
	return json_string(t);
}

int cluster_txn(struct cluster *cl, json_t *txn, int *succeeded, int64_t *rev, json_t **reply)
{
	json_t *r;
	int e = etcd_call(&cl->etcd, "/v3/kv/txn", txn, &r);
	if (e < 0)
		return e;
	*succeeded = json_is_true(json_object_get(r, "succeeded"));
	if (etcd_parse_revision(r, rev) < 0) {
		json_decref(r);
		cl->etcd.ctr.bad_replies++;
		return -EPROTO;
	}
	if (reply)
		*reply = r;
	else
		json_decref(r);
	return 0;
}

static void lease_revoke(struct cluster *cl, int64_t lease)
{
	json_t *body = json_pack("{s:o}", "ID", cluster_i64_json(lease)), *r = NULL;
	if (body && etcd_call(&cl->etcd, "/v3/lease/revoke", body, &r) == 0)
		json_decref(r);
	json_decref(body);
}

void cluster_fence(struct cluster *cl, const char *why)
{
	if (cl->state == CLUSTER_JOINED)
		log_warn("cluster %s: box %s fenced: %s; it serves no object until it rejoins as a "
			 "new incarnation", cl->cfg->cluster.name, cl->me, why);
	snprintf(cl->why, sizeof(cl->why), "this box is fenced from cluster %s (%s); it is "
		 "rejoining", cl->cfg->cluster.name, why);
	cl->state = CLUSTER_JOINING;
	cl->f.fences++;
	cl->my_rebalancer_rev = 0;
	etcd_watch_close(&cl->watch);
	cl->lease_dirty = 1;
	cluster_push(cl); /* at once: the cores stop before anything else happens */
	if (cl->lease)
		cl->old_lease = cl->lease;
	cl->lease = 0;
	cl->next_join_ms = clock_now_ms();
	cluster_publish_status(cl);
}

/* Logs a failed join: the first, a changed reason, and then every CLUSTER_JOIN_LOG_MS. */
static void join_failed(struct cluster *cl, const char *what)
{
	uint64_t now = clock_now_ms();
	char text[256];
	snprintf(text, sizeof(text), "%s", what);
	cl->f.join_failures++;
	snprintf(cl->why, sizeof(cl->why), "this box has not joined cluster %.40s: %.100s",
		 cl->cfg->cluster.name, text);
	if (strcmp(text, cl->last_join_error) || now - cl->last_join_log_ms >= CLUSTER_JOIN_LOG_MS) {
		log_warn("cluster %s: box %s cannot join: %s; serving no objects, retrying every %u ms",
			 cl->cfg->cluster.name, cl->me, text, CLUSTER_JOIN_RETRY_MS);
		snprintf(cl->last_join_error, sizeof(cl->last_join_error), "%s", text);
		cl->last_join_log_ms = now;
	}
	cl->next_join_ms = now + CLUSTER_JOIN_RETRY_MS;
	cl->lease_dirty = 1;
	cluster_publish_status(cl);
}

static unsigned ttl_seconds(const struct cluster *cl)
{
	return (cl->cfg->cluster.lease_ttl_ms + 999) / 1000;
}

/* From a renewal sent at t_send that came back with ttl_s: serve until a margin before
 * etcd could expire the lease (etcd counts from when it received the renewal, later than
 * t_send). */
static void set_deadline(struct cluster *cl, uint64_t t_send, int64_t ttl_s)
{
	uint64_t ttl = (uint64_t)ttl_s * 1000, margin = ttl / 10 > 100 ? ttl / 10 : 100;
	cl->deadline_ms = t_send + ttl - margin;
	cl->renew_due_ms = t_send + ttl / 3;
	cl->lease_dirty = 1;
}

static void join(struct cluster *cl)
{
	char err[300];
	/* The previous incarnation's lease: revoked first, so its member key (and any
	 * rebalancer key) goes now rather than when etcd expires it. */
	if (cl->old_lease) {
		json_t *body = json_pack("{s:o}", "ID", cluster_i64_json(cl->old_lease)), *r = NULL;
		int e = etcd_call(&cl->etcd, "/v3/lease/revoke", body, &r);
		json_decref(body);
		json_decref(r);
		if (e < 0 && e != -EPROTO) { /* -EPROTO: etcd answered (the lease is gone already) */
			snprintf(err, sizeof(err), "etcd unreachable (%.250s)", cl->etcd.last_error);
			join_failed(cl, err);
			return;
		}
		cl->old_lease = 0;
	}
	/* Once: the same names must be the same IDs (and slots) on every box. */
	if (!cl->secrets_shared) {
		if (cluster_share_secrets(cl, err, sizeof(err)) < 0) {
			join_failed(cl, err);
			return;
		}
		cl->secrets_shared = 1;
		cluster_peer_key(cl);
	}
	uint64_t t_send = clock_now_ms();
	json_t *body = json_pack("{s:I, s:I}", "TTL", (json_int_t)ttl_seconds(cl), "ID", (json_int_t)0);
	json_t *r = NULL;
	int e = etcd_call(&cl->etcd, "/v3/lease/grant", body, &r);
	json_decref(body);
	int64_t id = 0, ttl = 0;
	if (e == 0 && etcd_parse_lease(r, &id, &ttl) < 0)
		e = -EPROTO;
	json_decref(r);
	if (e < 0) {
		snprintf(err, sizeof(err), "etcd unreachable (%.250s)", cl->etcd.last_error);
		join_failed(cl, err);
		return;
	}
	cl->lease = id;
	set_deadline(cl, t_send, ttl);

	/* members/<box>, created only if absent: its create_revision is the incarnation. */
	char suffix[96];
	snprintf(suffix, sizeof(suffix), "members/%s", cl->me);
	struct cluster_member_value m = { .cores = cl->group->ncores };
	snprintf(m.address, sizeof(m.address), "%s", cl->advertise);
	snprintf(m.version, sizeof(m.version), "%s", cl->version);
	snprintf(m.peer, sizeof(m.peer), "%s", cl->peer_addr);
	char val[512];
	long vn = cluster_member_format(&m, val, sizeof(val));
	DURO_ASSERT(vn > 0);
	json_t *txn = json_pack(
		"{s:[{s:o, s:s, s:s, s:s}], s:[{s:{s:o, s:o, s:o}}], s:[{s:{s:o}}]}",
		"compare", "key", cluster_key_json(cl, suffix), "target", "CREATE", "create_revision", "0",
		"result", "EQUAL",
		"success", "request_put", "key", cluster_key_json(cl, suffix), "value",
		cluster_b64(val, (size_t)vn), "lease", cluster_i64_json(id),
		"failure", "request_range", "key", cluster_key_json(cl, suffix));
	int ok = 0;
	int64_t rev = 0;
	e = txn ? cluster_txn(cl, txn, &ok, &rev, NULL) : -ENOMEM;
	json_decref(txn);
	if (e < 0 || !ok) {
		lease_revoke(cl, id);
		cl->lease = 0;
		if (e < 0)
			snprintf(err, sizeof(err), "etcd unreachable (%.250s)", cl->etcd.last_error);
		else
			snprintf(err, sizeof(err), "members/%s exists: another live box has this name, or "
				 "this box's previous incarnation whose lease has not expired yet", cl->me);
		join_failed(cl, err);
		return;
	}
	cl->incarnation = rev;
	/* The value repeats the incarnation for people reading etcd (same lease). */
	m.incarnation = rev;
	vn = cluster_member_format(&m, val, sizeof(val));
	json_t *put = json_pack("{s:o, s:o, s:o}", "key", cluster_key_json(cl, suffix), "value",
				cluster_b64(val, (size_t)vn), "lease", cluster_i64_json(id));
	if (put && etcd_call(&cl->etcd, "/v3/kv/put", put, &r) == 0)
		json_decref(r);
	json_decref(put);

	e = cluster_table_load(cl);
	if (e == 0)
		e = cluster_watch_open(cl);
	if (e < 0) {
		snprintf(err, sizeof(err), "reading the slot table: %.250s", cl->etcd.last_error);
		cl->old_lease = cl->lease;
		cl->lease = 0;
		join_failed(cl, err);
		return;
	}
	cl->state = CLUSTER_JOINED;
	cl->f.joins++;
	cl->why[0] = 0;
	cl->last_join_error[0] = 0;
	cl->members_changed_ms = clock_now_ms();
	cl->next_round_ms = cl->members_changed_ms;
	cl->table_dirty = 1;
	unsigned live = 0;
	for (unsigned i = 0; i < cl->nboxes; i++)
		live += cl->boxes[i].live;
	log_info("cluster %s: box %s joined as incarnation %lld (lease %llx, TTL %lld s, etcd %s); "
		 "%u live boxes", cl->cfg->cluster.name, cl->me, (long long)rev, (unsigned long long)id,
		 (long long)ttl, cl->etcd.ep[cl->etcd.cur].text, live);
	cluster_publish_status(cl);
}

static void renew(struct cluster *cl)
{
	uint64_t t_send = clock_now_ms();
	json_t *body = json_pack("{s:o}", "ID", cluster_i64_json(cl->lease)), *r = NULL;
	int e = etcd_call(&cl->etcd, "/v3/lease/keepalive", body, &r);
	json_decref(body);
	int64_t id, ttl = 0;
	if (e == 0)
		e = etcd_parse_lease(r, &id, &ttl);
	json_decref(r);
	if (e == -ENOENT) {
		cluster_fence(cl, "etcd says its lease is gone");
		return;
	}
	if (e < 0) {
		cl->f.renew_failures++;
		/* Again soon: the deadline decides when it is too late. */
		cl->renew_due_ms = clock_now_ms() + 200;
		if (cl->f.renew_failures % 5 == 1)
			log_warn("cluster %s: lease renewal failed (%s); fenced in %lld ms unless one "
				 "succeeds", cl->cfg->cluster.name, cl->etcd.last_error,
				 (long long)cl->deadline_ms - (long long)clock_now_ms());
		return;
	}
	cl->f.renewals++;
	set_deadline(cl, t_send, ttl);
}

void cluster_renew_if_due(struct cluster *cl)
{
	if (cl->state == CLUSTER_JOINED && clock_now_ms() >= cl->renew_due_ms)
		renew(cl);
}

/* What `duroctl cluster drain` and `rebalance` asked for, carried out on this thread. */
static void requests(struct cluster *cl)
{
	char box[CLUSTER_NAME_MAX];
	pthread_mutex_lock(&cl->lock);
	snprintf(box, sizeof(box), "%s", cl->drain_req);
	int undo = cl->drain_undo;
	cl->drain_req[0] = 0;
	pthread_mutex_unlock(&cl->lock);
	if (atomic_exchange(&cl->rebalance_now, 0)) {
		cl->next_round_ms = 0;
		/* Through etcd, so the elected rebalancer (maybe another box) hears it. */
		json_t *body = json_pack("{s:o, s:o}", "key", cluster_key_json(cl, "rebalance"),
					 "value", cluster_b64(cl->me, strlen(cl->me)));
		json_t *r = NULL;
		if (!body || etcd_call(&cl->etcd, "/v3/kv/put", body, &r) < 0)
			log_warn("cluster %s: asking for a rebalance round: %s", cl->cfg->cluster.name,
				 cl->etcd.last_error);
		json_decref(body);
		json_decref(r);
	}
	if (!box[0])
		return;
	char suffix[96];
	snprintf(suffix, sizeof(suffix), "drain/%s", box);
	json_t *body = undo ? json_pack("{s:o}", "key", cluster_key_json(cl, suffix))
			    : json_pack("{s:o, s:o}", "key", cluster_key_json(cl, suffix), "value",
					cluster_b64("1", 1));
	json_t *r = NULL;
	int e = body ? etcd_call(&cl->etcd, undo ? "/v3/kv/deleterange" : "/v3/kv/put", body, &r)
		     : -ENOMEM;
	json_decref(body);
	json_decref(r);
	if (e < 0)
		log_warn("cluster %s: marking box %s %s: %s", cl->cfg->cluster.name, box,
			 undo ? "not draining" : "draining", cl->etcd.last_error);
	else
		log_info("cluster %s: box %s %s", cl->cfg->cluster.name, box,
			 undo ? "is no longer draining" : "is draining: its slots move away");
	cl->next_round_ms = 0;
}

int cluster_request_drain(struct cluster *cl, const char *box, int undo)
{
	if (!box[0] || strlen(box) >= CLUSTER_NAME_MAX)
		return -EINVAL;
	pthread_mutex_lock(&cl->lock);
	snprintf(cl->drain_req, sizeof(cl->drain_req), "%s", box);
	cl->drain_undo = undo;
	pthread_mutex_unlock(&cl->lock);
	return 0;
}

void cluster_request_rebalance(struct cluster *cl)
{
	atomic_store(&cl->rebalance_now, 1);
}

static void *cluster_main(void *arg)
{
	struct cluster *cl = arg;
	log_info("cluster %s: box %s (%s) joining through etcd %s%s", cl->cfg->cluster.name, cl->me,
		 cl->advertise, cl->etcd.ep[0].text, cl->etcd.n > 1 ? " and others" : "");
	while (!atomic_load(&cl->stop)) {
		uint64_t now = clock_now_ms();
		if (cl->state == CLUSTER_JOINED && now >= cl->deadline_ms)
			cluster_fence(cl, "its etcd lease was not renewed within the TTL");
		if (cl->state == CLUSTER_JOINING && now >= cl->next_join_ms)
			join(cl);
		cluster_renew_if_due(cl);
		if (cl->state == CLUSTER_JOINED && cl->watch.fd < 0 && clock_now_ms() >= cl->next_watch_ms) {
			/* The watch broke: read the table again and watch from there. */
			cl->f.watch_restarts++;
			if (cluster_table_load(cl) < 0 || cluster_watch_open(cl) < 0) {
				etcd_watch_close(&cl->watch);
				cl->next_watch_ms = clock_now_ms() + CLUSTER_WATCH_RETRY_MS;
			}
			if (cl->fence_why) {
				cluster_fence(cl, cl->fence_why);
				cl->fence_why = NULL;
			}
		}
		if (cl->state == CLUSTER_JOINED) {
			requests(cl);
			cluster_rebalance_tick(cl, clock_now_ms());
			cluster_load_tick(cl, clock_now_ms());
		}
		unsigned moves = cluster_move_tick(cl);
		cluster_push(cl);
		struct pollfd p[3] = { { .fd = cl->wake_fd, .events = POLLIN },
				       { .fd = cl->poke_fd, .events = POLLIN },
				       { .fd = cl->watch.fd, .events = POLLIN } };
		/* A move in progress waits on the cores and its peer: turn quickly. */
		int timeout = moves ? CLUSTER_MOVE_TICK_MS : CLUSTER_TICK_MS;
		if (poll(p, cl->watch.fd >= 0 ? 3 : 2, timeout) > 0) {
			uint64_t v;
			if ((p[1].revents & POLLIN) && read(cl->poke_fd, &v, sizeof(v)) < 0)
				v = 0; /* nonblocking: another turn reads it */
			if (cl->watch.fd >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    cluster_watch_poll(cl) < 0)
				etcd_watch_close(&cl->watch);
		}
		if (cl->fence_why) {
			const char *why = cl->fence_why;
			cl->fence_why = NULL;
			if (cl->state == CLUSTER_JOINED)
				cluster_fence(cl, why);
		}
	}
	if (cl->state == CLUSTER_JOINED && cl->lease) {
		/* Leaving: the others take this box's slots without waiting for the TTL. */
		lease_revoke(cl, cl->lease);
		log_info("cluster %s: box %s left (lease revoked)", cl->cfg->cluster.name, cl->me);
	}
	etcd_watch_close(&cl->watch);
	return NULL;
}

int cluster_start(struct cluster **out, const struct duro_config *cfg, struct ctl_mailbox *mb,
		  struct core_group *group, const char *version)
{
	struct cluster *cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	cl->cfg = cfg;
	cl->mb = mb;
	cl->group = group;
	cl->version = version;
	cl->wake_fd = -1;
	cl->watch.fd = -1;
	pthread_mutex_init(&cl->lock, NULL);
	snprintf(cl->prefix, sizeof(cl->prefix), "/duro/%s/", cfg->cluster.name);
	snprintf(cl->advertise, sizeof(cl->advertise), "%s",
		 cfg->cluster.advertise[0] ? cfg->cluster.advertise : cfg->net.listen[0].text);
	snprintf(cl->me, sizeof(cl->me), "%.63s", cfg->cluster.box[0] ? cfg->cluster.box : cl->advertise);
	/* Derived from an address: only the characters a key component may hold ([v6]). */
	for (char *c = cl->me; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      *c == '-' || *c == '_' || *c == '.' || *c == ':'))
			*c = '_';
	for (unsigned s = 0; s < DURO_SLOTS; s++)
		cl->slots[s].owner = cl->slots[s].target = -1;
	cl->taking = -1;
	snprintf(cl->why, sizeof(cl->why), "this box has not joined cluster %s yet", cfg->cluster.name);
	int r = etcd_init(&cl->etcd, cfg->cluster.etcd, cfg->cluster.netcd, cfg->cluster.etcd_timeout_ms);
	if (r < 0) {
		log_error("cluster.etcd: bad endpoint list");
		free(cl);
		return r;
	}
	cl->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	cl->poke_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (cl->wake_fd < 0 || cl->poke_fd < 0) {
		r = -errno;
		if (cl->wake_fd >= 0)
			close(cl->wake_fd);
		if (cl->poke_fd >= 0)
			close(cl->poke_fd);
		free(cl);
		return r;
	}
	cluster_publish_status(cl);
	if (cluster_peer_start(cl) < 0)
		log_warn("cluster %s: box %s cannot serve its slots' data to other boxes: slots "
			 "will not move away from it", cfg->cluster.name, cl->me);
	if (cfg->obj.replicate && cluster_repl_start(cl) < 0)
		log_warn("cluster %s: box %s cannot start its replicator: its slots' writes stay "
			 "on this box", cfg->cluster.name, cl->me);
	r = -pthread_create(&cl->thread, NULL, cluster_main, cl);
	if (r < 0) {
		log_error("cluster: thread: %s", strerror(-r));
		atomic_store(&cl->stop, 1);
		cluster_repl_stop(cl);
		cluster_peer_stop(cl);
		close(cl->wake_fd);
		close(cl->poke_fd);
		free(cl);
		return r;
	}
	*out = cl;
	return 0;
}

void cluster_stop(struct cluster *cl)
{
	if (!cl)
		return;
	atomic_store(&cl->stop, 1);
	uint64_t one = 1;
	if (write(cl->wake_fd, &one, sizeof(one)) < 0)
		log_warn("cluster: wake: %s", strerror(errno));
	pthread_join(cl->thread, NULL);
	cluster_repl_stop(cl);
	cluster_peer_stop(cl);
	close(cl->wake_fd);
	close(cl->poke_fd);
	free(cl->status_text);
	free(cl->repl_view);
	pthread_mutex_destroy(&cl->lock);
	free(cl);
}

json_t *cluster_status_json(struct cluster *cl)
{
	pthread_mutex_lock(&cl->lock);
	json_t *j = cl->status_text ? json_loads(cl->status_text, 0, NULL) : NULL;
	pthread_mutex_unlock(&cl->lock);
	return j;
}

void cluster_prometheus(struct cluster *cl, FILE *f)
{
	json_t *st = cluster_status_json(cl);
	if (!st)
		return;
	struct cluster_figures fig;
	pthread_mutex_lock(&cl->lock);
	fig = cl->fig;
	pthread_mutex_unlock(&cl->lock);
	const char *me = json_string_value(json_object_get(st, "box"));
	const char *state = json_string_value(json_object_get(st, "state"));
	fprintf(f, "# HELP duro_cluster_serving 1 while this box is joined and unfenced.\n"
		   "# TYPE duro_cluster_serving gauge\nduro_cluster_serving{box=\"%s\"} %d\n", me,
		state && !strcmp(state, "serving"));
	fprintf(f, "# HELP duro_cluster_rebalancer 1 while this box is the elected rebalancer.\n"
		   "# TYPE duro_cluster_rebalancer gauge\nduro_cluster_rebalancer{box=\"%s\"} %d\n", me,
		json_is_true(json_object_get(st, "is_rebalancer")));
	fprintf(f, "# HELP duro_cluster_incarnation This box's incarnation (its member key's create revision).\n"
		   "# TYPE duro_cluster_incarnation gauge\nduro_cluster_incarnation{box=\"%s\"} %lld\n", me,
		(long long)json_integer_value(json_object_get(st, "incarnation")));
	fprintf(f, "# HELP duro_cluster_revision The etcd revision this box's slot table reflects.\n"
		   "# TYPE duro_cluster_revision gauge\nduro_cluster_revision{box=\"%s\"} %lld\n", me,
		(long long)json_integer_value(json_object_get(st, "revision")));
	fprintf(f, "# HELP duro_cluster_slots Slots per box, as this box's table has them.\n"
		   "# TYPE duro_cluster_slots gauge\n");
	size_t i;
	json_t *b;
	json_array_foreach(json_object_get(st, "boxes"), i, b)
		fprintf(f, "duro_cluster_slots{box=\"%s\",live=\"%d\"} %lld\n",
			json_string_value(json_object_get(b, "name")),
			json_is_true(json_object_get(b, "live")),
			(long long)json_integer_value(json_object_get(b, "slots")));
	fprintf(f, "duro_cluster_slots{box=\"\",live=\"0\"} %lld\n",
		(long long)json_integer_value(json_object_get(st, "unowned")));
	static const char *const load_help[][2] = {
		{ "rps", "HTTP requests per second each box answered, as it last published (load/<box>)." },
		{ "active", "Objects in memory on each box, as it last published." },
		{ "sockets", "WebSockets and event streams open on each box, as it last published." },
	};
	for (size_t k = 0; k < 3; k++) {
		fprintf(f, "# HELP duro_cluster_box_%s %s\n# TYPE duro_cluster_box_%s gauge\n",
			load_help[k][0], load_help[k][1], load_help[k][0]);
		json_array_foreach(json_object_get(st, "boxes"), i, b) {
			json_t *load = json_object_get(b, "load");
			if (load)
				fprintf(f, "duro_cluster_box_%s{box=\"%s\"} %lld\n", load_help[k][0],
					json_string_value(json_object_get(b, "name")),
					(long long)json_integer_value(json_object_get(load, load_help[k][0])));
		}
	}
	fprintf(f, "# HELP duro_cluster_epoch_max Newest epoch (mod revision) of any slot.\n"
		   "# TYPE duro_cluster_epoch_max gauge\nduro_cluster_epoch_max %lld\n",
		(long long)json_integer_value(json_object_get(st, "epoch_max")));
	fprintf(f, "# HELP duro_cluster_move_pause_ms How long the last slot this box gave away served nobody (drain, copy, etcd txn, watch).\n"
		   "# TYPE duro_cluster_move_pause_ms gauge\nduro_cluster_move_pause_ms{box=\"%s\"} %llu\n",
		me, (unsigned long long)fig.last_pause_ms);
	fprintf(f, "# HELP duro_cluster_moves_in_flight Slots moving now, as this box's table has them.\n"
		   "# TYPE duro_cluster_moves_in_flight gauge\nduro_cluster_moves_in_flight %zu\n",
		json_array_size(json_object_get(st, "moves")));
	fprintf(f, "# HELP duro_cluster_moves_wanted Slots whose rendezvous target is another live box (the rebalancer moves them).\n"
		   "# TYPE duro_cluster_moves_wanted gauge\nduro_cluster_moves_wanted %lld\n",
		(long long)json_integer_value(json_object_get(st, "moves_wanted")));
	json_t *rp = json_object_get(st, "replication");
	fprintf(f, "# HELP duro_cluster_under_replicated Owned slots with fewer live voters than cluster.replicas + 1, as this box's table has them.\n"
		   "# TYPE duro_cluster_under_replicated gauge\nduro_cluster_under_replicated %lld\n",
		(long long)json_integer_value(json_object_get(rp, "under_replicated")));
	static const struct {
		const char *name, *help;
		size_t off;
	} ctrs[] = {
		{ "joins", "Times this box joined (each a new incarnation).", offsetof(struct cluster_figures, joins) },
		{ "fences", "Times this box fenced itself.", offsetof(struct cluster_figures, fences) },
		{ "join_failures", "Join attempts that failed.", offsetof(struct cluster_figures, join_failures) },
		{ "renewals", "Lease renewals.", offsetof(struct cluster_figures, renewals) },
		{ "renew_failures", "Lease renewals that failed.", offsetof(struct cluster_figures, renew_failures) },
		{ "watch_restarts", "Times the table was read again after the watch broke.", offsetof(struct cluster_figures, watch_restarts) },
		{ "assigned", "Slots this box assigned as the rebalancer.", offsetof(struct cluster_figures, assigned) },
		{ "bad_values", "Member or slot values in etcd that could not be read.", offsetof(struct cluster_figures, bad_values) },
		{ "moves_begun", "Slot moves this box began as the rebalancer.", offsetof(struct cluster_figures, moves_begun) },
		{ "moves_done", "Slots this box gave away to another box with their data.", offsetof(struct cluster_figures, moves_done) },
		{ "moves_failed", "Slot moves this box took part in that failed (rolled back, or given up as the target).", offsetof(struct cluster_figures, moves_failed) },
		{ "moves_rolled_back", "Slot moves away from this box that were rolled back (it kept the slot).", offsetof(struct cluster_figures, moves_rolled_back) },
		{ "moved_bytes", "Bytes of slot data this box pulled from other boxes.", offsetof(struct cluster_figures, bytes_moved) },
		{ "refused_rounds", "Rebalancer rounds that left slots unassigned: fewer live boxes than cluster.replicas + 1.", offsetof(struct cluster_figures, refused_rounds) },
		{ "failovers", "Slots this box, as the rebalancer, gave to a live voter of their dead owner.", offsetof(struct cluster_figures, failovers) },
		{ "copies_lost", "Slots this box, as the rebalancer, reassigned with no live copy left (they start empty).", offsetof(struct cluster_figures, copies_lost) },
		{ "etcd_requests", "Requests to etcd.", offsetof(struct cluster_figures, etcd.requests) },
		{ "etcd_failures", "Requests no etcd endpoint answered.", offsetof(struct cluster_figures, etcd.failures) },
		{ "etcd_failovers", "Requests answered by another endpoint than the last.", offsetof(struct cluster_figures, etcd.failovers) },
	};
	for (size_t k = 0; k < sizeof(ctrs) / sizeof(ctrs[0]); k++) {
		uint64_t v;
		memcpy(&v, (const char *)&fig + ctrs[k].off, sizeof(v));
		fprintf(f, "# HELP duro_cluster_%s_total %s\n# TYPE duro_cluster_%s_total counter\n"
			   "duro_cluster_%s_total{box=\"%s\"} %llu\n", ctrs[k].name, ctrs[k].help,
			ctrs[k].name, ctrs[k].name, me, (unsigned long long)v);
	}
	/* Replication (cluster.replication), counted by the replicator and peer threads. */
	const struct {
		const char *name, *help;
		uint64_t v;
	} repl[] = {
		{ "repl_appends_sent", "Append frames this box sent to followers as an owner.", atomic_load(&cl->repl_sent) },
		{ "repl_records_acked", "Records followers acknowledged durable to this box.", atomic_load(&cl->repl_acked) },
		{ "repl_records_received", "Records this box took into its replica logs as a follower.", atomic_load(&cl->repl_received) },
		{ "repl_failures", "Appends that failed: a follower not answering or refusing, a broken frame, a log write.", atomic_load(&cl->repl_failed) },
		{ "repl_stale", "Appends refused because a newer owner sealed the slot.", atomic_load(&cl->repl_stale) },
		{ "repl_skipped", "Appends not sent to a follower that had not answered within cluster.follower_timeout_ms.", atomic_load(&cl->repl_skipped) },
		{ "repl_unreplicated", "Records a majority of their slot's copies did not acknowledge: their answers left as of unknown outcome (503).", atomic_load(&cl->repl_unreplicated) },
		{ "repl_applied", "Writes this box applied from its replica logs when it took slots over.", atomic_load(&cl->repl_applied) },
		{ "repl_dropped", "Commit batches the cores could not queue for the replicator (queue full): answered as of unknown outcome.", obj_cluster_ship_dropped() },
	};
	for (size_t k = 0; k < sizeof(repl) / sizeof(repl[0]); k++)
		fprintf(f, "# HELP duro_cluster_%s_total %s\n# TYPE duro_cluster_%s_total counter\n"
			   "duro_cluster_%s_total{box=\"%s\"} %llu\n", repl[k].name, repl[k].help,
			repl[k].name, repl[k].name, me, (unsigned long long)repl[k].v);
	json_decref(st);
}
