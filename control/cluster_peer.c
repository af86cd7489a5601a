/* The peer listener and its client (cluster_int.h): how a slot's data travels between
 * boxes during a move (cluster_move.c tells when). The owner serves snapshots, tails of
 * captured writes and the rest after the freeze on an ephemeral port; the taker pulls and
 * imports them. Requests carry a MAC keyed from the namespace secrets the boxes share.
 * The request line and the stream's records are cluster_peer_wire.h's (family names:
 * "meta", "alarms", "sql", "history" or "class/<Class>"). A stream without its end is
 * void. */
#include "cluster_int.h"
#include "clock.h"
#include "cluster_capture.h"
#include "cluster_move.h"
#include "cluster_peer_wire.h"
#include "hex.h"
#include "log.h"
#include "net.h"
#include "obj.h"
#include "siphash.h"
#include "store.h"
#include "store_slot.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MOVE_PEER_IO_MS 5000          /* one read or write of the peer stream (A's side) */
#define MOVE_MAX_FAMILIES 128         /* family indexes of the stream (a box's own) */
#define MOVE_MAX_RECORD (64u << 20)   /* a key and value of the stream */
#define MOVE_OUT_BUF (256u << 10)

/* ---- addresses and MACs ---- */

/* host:port (net_parse_addr's) into ss and len. */
static int parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct net_listen nl;
	if (net_parse_addr(s, &nl) < 0)
		return -EINVAL;
	memcpy(ss, &nl.addr, sizeof(*ss));
	*len = nl.addrlen;
	return 0;
}

void cluster_peer_key(struct cluster *cl)
{
	/* Every box of the cluster holds the same namespace secrets (cluster_secrets.c) and
	 * nobody else does: the first class's, hashed, keys the peer requests' MACs. */
	uint8_t secret[32];
	int cf;
	if (!obj_namespaces() || store_class(obj_runtime_store(), obj_namespace_class(0), &cf, secret,
					     NULL) < 0)
		return;
	static const uint8_t k0[16] = "duro-peer-key-v1";
	uint64_t a = siphash64(k0, secret, sizeof(secret));
	uint64_t b = siphash64(k0, secret + 8, sizeof(secret) - 8);
	memcpy(cl->peer_key, &a, 8);
	memcpy(cl->peer_key + 8, &b, 8);
	atomic_store(&cl->peer_key_set, 1);
}

void cluster_peer_mac(const struct cluster *cl, const char *kind, unsigned slot, int64_t epoch,
		     char out[17])
{
	char text[64];
	int n = snprintf(text, sizeof(text), "%s %u %lld", kind, slot, (long long)epoch);
	uint64_t m = siphash64(cl->peer_key, text, (size_t)n);
	hex_encode((const uint8_t *)&m, 8, out);
	out[16] = 0;
}

/* ---- A: the peer listener ---- */

struct out {
	int fd;
	size_t len;
	int err;
	uint64_t bytes;
	char buf[MOVE_OUT_BUF];
};

static void out_flush(struct out *o)
{
	size_t off = 0;
	while (!o->err && off < o->len) {
		ssize_t w = send(o->fd, o->buf + off, o->len - off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			o->err = -errno;
			break;
		}
		off += (size_t)w;
	}
	o->bytes += o->len;
	o->len = 0;
}

static void out_put(struct out *o, const void *p, size_t n)
{
	while (n && !o->err) {
		size_t room = sizeof(o->buf) - o->len, k = n < room ? n : room;
		memcpy(o->buf + o->len, p, k);
		o->len += k;
		p = (const char *)p + k;
		n -= k;
		if (o->len == sizeof(o->buf))
			out_flush(o);
	}
}

struct fam {
	int cf;
	char name[80];
};

/* The families a slot's data lives in, named so the other box finds its own. History
 * moves too: its records hold what each commit wrote (storage/history.h), and bookmarks
 * are keyed by the namespace secrets every box shares, so an object keeps its
 * point-in-time window on its new box. */
static unsigned families(struct fam *f)
{
	unsigned n = 0;
	f[n++] = (struct fam){ STORE_CF_META, "meta" };
	f[n++] = (struct fam){ STORE_CF_ALARMS, "alarms" };
	f[n++] = (struct fam){ STORE_CF_SQL, "sql" };
	f[n++] = (struct fam){ STORE_CF_HISTORY, "history" };
	unsigned nns = obj_namespaces();
	for (unsigned i = 0; i < nns && n < MOVE_MAX_FAMILIES; i++) {
		int cf = obj_namespace_cf(i), dup = 0;
		for (unsigned k = 0; k < n; k++)
			dup |= f[k].cf == cf;
		if (dup)
			continue;
		f[n].cf = cf;
		snprintf(f[n].name, sizeof(f[n].name), "class/%s", obj_namespace_class(i));
		n++;
	}
	return n;
}

struct export_ctx {
	struct out *o;
	const struct fam *f;
	unsigned nf;
};

static int export_record(void *arg, int cf, const char *key, size_t klen, const char *val,
			 size_t vlen)
{
	struct export_ctx *x = arg;
	uint8_t head[10] = { 'R', (uint8_t)cf };
	uint32_t kl = (uint32_t)klen, vl = (uint32_t)vlen;
	memcpy(head + 2, &kl, 4);
	memcpy(head + 6, &vl, 4);
	out_put(x->o, head, sizeof(head));
	out_put(x->o, key, klen);
	out_put(x->o, val, vlen);
	return x->o->err;
}

static void answer_status(int fd, const char *status)
{
	char h[160];
	int n = snprintf(h, sizeof(h), "HTTP/1.0 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			 status);
	if (send(fd, h, (size_t)n, MSG_NOSIGNAL) < 0)
		return;
}

/* How long a final request may wait for the freeze: within the taker's read timeout. */
static unsigned peer_hold_ms(const struct cluster *cl)
{
	return cl->cfg->cluster.lease_ttl_ms / 10;
}

/* The core that runs slot's objects here. */
static unsigned core_of_slot(unsigned slot)
{
	struct duro_id id = { 0 };
	id.bytes[0] = (uint8_t)(slot >> 4);
	id.bytes[1] = (uint8_t)(slot << 4);
	return obj_owner(&id);
}

struct take_payload {
	char *buf;
	size_t len;
};

static void take_payload_free(void *p)
{
	struct take_payload *t = p;
	free(t->buf);
	free(t);
}

static int do_capture_start(struct core *c, struct ctl_cmd *cmd)
{
	cmd->result = obj_cluster_capture_start(c, cmd->ns);
	return 1;
}

/* cmd->result: records, or the error; cmd->info.sockets: 1 to stop the capture after. */
static int do_capture_take(struct core *c, struct ctl_cmd *cmd)
{
	struct take_payload *t = cmd->payload;
	long n = obj_cluster_capture_take(c, cmd->ns, &t->buf, &t->len);
	cmd->result = n > INT32_MAX ? INT32_MAX : (int)n;
	if (cmd->info.sockets)
		obj_cluster_capture_stop(c, cmd->ns);
	return 1;
}

static int do_capture_stop(struct core *c, struct ctl_cmd *cmd)
{
	obj_cluster_capture_stop(c, cmd->ns);
	return 1;
}

/* Runs a capture command for slot on its core: the command's result, or a negative errno.
 * take: the captured bytes into *buf, *len (the caller frees). */
static int capture_call(struct cluster *cl, int (*fn)(struct core *, struct ctl_cmd *),
			unsigned slot, int stop, char **buf, size_t *len)
{
	struct ctl_cmd *cmd = ctl_cmd_new(fn);
	struct take_payload *t = calloc(1, sizeof(*t));
	if (!cmd || !t) {
		free(cmd);
		free(t);
		return -ENOMEM;
	}
	cmd->ns = slot;
	cmd->info.sockets = (unsigned)stop;
	cmd->payload = t;
	cmd->payload_free = take_payload_free;
	int r = ctl_mailbox_call(cl->mb, core_of_slot(slot), cmd);
	if (r < 0)
		return r; /* the command is freed by whoever holds it */
	r = cmd->result;
	if (buf) {
		*buf = t->buf;
		*len = t->len;
		t->buf = NULL;
	}
	ctl_cmd_free(cmd);
	return r;
}

static void put_families(struct out *o, const struct fam *f, unsigned nf)
{
	for (unsigned i = 0; i < nf; i++) {
		uint8_t h[2] = { 'F', (uint8_t)f[i].cf };
		uint8_t nl = (uint8_t)strlen(f[i].name);
		out_put(o, h, 2);
		out_put(o, &nl, 1);
		out_put(o, f[i].name, nl);
	}
}

static const char stream_head[] = "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"
				  "Connection: close\r\n\r\n";

/* One request on a fresh connection: GET /<kind>/<slot>/<epoch>/<mac>, kind one of
 *   snap   capture starts (again) on the slot's core, then a snapshot of its ranges;
 *   tail   what the capture holds since the last snap or tail (410: void, start over);
 *   final  409 until the slot is frozen and drained (asking for that), then the rest of
 *          the capture, which ends. */
static void serve_peer(struct cluster *cl, int fd)
{
	char req[1024];
	size_t got = 0;
	while (got < sizeof(req) - 1) {
		ssize_t r = recv(fd, req + got, sizeof(req) - 1 - got, 0);
		if (r <= 0)
			return;
		got += (size_t)r;
		req[got] = 0;
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	unsigned slot;
	int64_t epoch;
	char kind[CLUSTER_PEER_KIND_MAX], mac[CLUSTER_PEER_MAC_HEX + 1], want[CLUSTER_PEER_MAC_HEX + 1];
	if (cluster_peer_parse_request(req, got, DURO_SLOTS, kind, &slot, &epoch, mac) < 0) {
		answer_status(fd, "400 Bad Request");
		return;
	}
	if (!atomic_load(&cl->peer_key_set)) {
		answer_status(fd, "503 Service Unavailable");
		return;
	}
	cluster_peer_mac(cl, kind, slot, epoch, want);
	if (!cluster_peer_mac_equal(mac, want)) {
		answer_status(fd, "403 Forbidden");
		return;
	}
	if (!strcmp(kind, "repl")) {
		/* An owner's append (cluster.replication): the frame follows the request. */
		char *end = strstr(req, "\r\n\r\n") + 4;
		cluster_repl_serve(cl, fd, slot, epoch, end, got - (size_t)(end - req));
		return;
	}
	int final = !strcmp(kind, "final"), snap = !strcmp(kind, "snap");
	pthread_mutex_lock(&cl->lock);
	int moving = cl->moving_epoch[slot] == epoch;
	int ready = cl->export_epoch[slot] == epoch;
	if (final && moving && !ready)
		cl->freeze_req[slot] = epoch; /* the cluster thread freezes it */
	pthread_mutex_unlock(&cl->lock);
	if (final && moving && !ready) {
		/* Woken at once, the cluster thread freezes and drains it; the answer waits
		 * for that (shorter than the taker's patience), which spares the taker a
		 * round of asking again. */
		uint64_t one = 1, until = clock_now_ms() + peer_hold_ms(cl);
		if (write(cl->poke_fd, &one, sizeof(one)) < 0)
			one = 0; /* full: it is awake anyway */
		while (!ready && moving && clock_now_ms() < until) {
			usleep(200);
			pthread_mutex_lock(&cl->lock);
			moving = cl->moving_epoch[slot] == epoch;
			ready = cl->export_epoch[slot] == epoch;
			pthread_mutex_unlock(&cl->lock);
		}
	}
	if (!moving || (final && !ready)) {
		/* Not moving from here at that epoch (yet), or not drained yet: asked again. */
		answer_status(fd, "409 Conflict");
		return;
	}
	struct out *o = malloc(sizeof(*o));
	if (!o) {
		answer_status(fd, "503 Service Unavailable");
		return;
	}
	o->fd = fd;
	o->len = 0;
	o->err = 0;
	o->bytes = 0;
	struct fam f[MOVE_MAX_FAMILIES];
	unsigned nf = families(f);
	long n;
	if (snap) {
		int r = capture_call(cl, do_capture_start, slot, 0, NULL, NULL);
		if (r < 0) {
			answer_status(fd, "503 Service Unavailable");
			free(o);
			return;
		}
		out_put(o, stream_head, sizeof(stream_head) - 1);
		put_families(o, f, nf);
		int cfs[MOVE_MAX_FAMILIES];
		for (unsigned i = 0; i < nf; i++)
			cfs[i] = f[i].cf;
		struct store *st = obj_runtime_store();
		struct store_snapshot *snapshot = store_snapshot_take(st);
		struct export_ctx x = { o, f, nf };
		n = snapshot ? store_slot_export(st, snapshot, slot, cfs, nf, export_record, &x) : -ENOMEM;
		if (snapshot)
			store_snapshot_release(st, snapshot);
	} else {
		char *buf = NULL;
		size_t len = 0;
		int r = capture_call(cl, do_capture_take, slot, final, &buf, &len);
		if (r < 0) {
			answer_status(fd, r == -ENOENT || r == -EOVERFLOW ? "410 Gone"
									   : "503 Service Unavailable");
			free(buf);
			free(o);
			return;
		}
		out_put(o, stream_head, sizeof(stream_head) - 1);
		put_families(o, f, nf);
		out_put(o, buf, len);
		free(buf);
		n = r;
	}
	if (n >= 0) {
		uint8_t e = 'E';
		uint64_t cnt = (uint64_t)n;
		out_put(o, &e, 1);
		out_put(o, &cnt, 8);
		out_flush(o);
	}
	if (n < 0 || o->err)
		log_warn("cluster %s: serving slot %u (%s) to a peer: %s", cl->cfg->cluster.name, slot,
			 kind, strerror(n < 0 ? (int)-n : -o->err));
	free(o);
}

static void *peer_main(void *arg)
{
	struct cluster *cl = arg;
	while (!atomic_load(&cl->stop)) {
		struct pollfd p = { .fd = cl->peer_fd, .events = POLLIN };
		if (poll(&p, 1, 200) <= 0)
			continue;
		int fd = accept4(cl->peer_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		struct timeval tv = { MOVE_PEER_IO_MS / 1000, (MOVE_PEER_IO_MS % 1000) * 1000 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		serve_peer(cl, fd);
		close(fd);
	}
	return NULL;
}

int cluster_peer_start(struct cluster *cl)
{
	/* On the advertised host, a port of the kernel's choosing: published in members/. */
	struct sockaddr_storage ss;
	socklen_t len;
	cl->peer_fd = -1;
	if (parse_hostport(cl->advertise, &ss, &len) < 0) {
		log_error("cluster: advertise %s: not host:port; slot moves need it", cl->advertise);
		return -EINVAL;
	}
	((struct sockaddr_in *)&ss)->sin_port = 0; /* same offset in sockaddr_in6 */
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		int e = -errno;
		log_error("cluster: peer listener on %s: %s", cl->advertise, strerror(-e));
		close(fd);
		return e;
	}
	char host[INET6_ADDRSTRLEN];
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(cl->peer_addr, sizeof(cl->peer_addr), "[%s]:%u", host, ntohs(a->sin6_port));
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(cl->peer_addr, sizeof(cl->peer_addr), "%s:%u", host, ntohs(a->sin_port));
	}
	cl->peer_fd = fd;
	int r = -pthread_create(&cl->peer_thread, NULL, peer_main, cl);
	if (r < 0) {
		close(fd);
		cl->peer_fd = -1;
		return r;
	}
	cl->peer_started = 1;
	return 0;
}

void cluster_peer_stop(struct cluster *cl)
{
	if (cl->peer_started)
		pthread_join(cl->peer_thread, NULL);
	if (cl->peer_fd >= 0)
		close(cl->peer_fd);
	cl->peer_started = 0;
	cl->peer_fd = -1;
}

/* ---- C: pulling a slot ---- */

struct in {
	struct cluster *cl;
	unsigned reads;
	int fd;
	char *buf;
	size_t cap, start, end;
	uint64_t bytes;
};

/* Makes n bytes readable at in->buf + in->start: 0, or -EPROTO at the end, or errno. */
static int in_need(struct in *in, size_t n)
{
	if (in->end - in->start >= n)
		return 0;
	if (n > in->cap) {
		if (n > MOVE_MAX_RECORD + 16)
			return -EPROTO;
		size_t cap = in->cap;
		while (cap < n)
			cap *= 2;
		char *b = realloc(in->buf, cap);
		if (!b)
			return -ENOMEM;
		in->buf = b;
		in->cap = cap;
	}
	if (in->cap - in->start < n) {
		memmove(in->buf, in->buf + in->start, in->end - in->start);
		in->end -= in->start;
		in->start = 0;
	}
	while (in->end - in->start < n) {
		ssize_t r = recv(in->fd, in->buf + in->end, in->cap - in->end, 0);
		if (r == 0)
			return -EPROTO;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		in->end += (size_t)r;
		in->bytes += (uint64_t)r;
		/* A long copy runs on the cluster thread: the lease must not wait for it. */
		if (++in->reads % 64 == 0)
			cluster_renew_if_due(in->cl);
	}
	return 0;
}

/* The taker's timeouts are short: it pulls on the cluster thread, which renews the lease
 * (a peer that accepts and then says nothing, a stopped process, must not fence it). */
static unsigned taker_io_ms(const struct cluster *cl)
{
	unsigned ms = cl->cfg->cluster.lease_ttl_ms / 5;
	return ms < 100 ? 100 : ms;
}

int cluster_peer_dial(const char *addr, unsigned io_ms)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (parse_hostport(addr, &ss, &len) < 0)
		return -EINVAL;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
		int e = -errno;
		close(fd);
		return e;
	}
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int err = 0;
	socklen_t el = sizeof(err);
	if (poll(&p, 1, (int)io_ms) <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
		close(fd);
		return err ? -err : -ETIMEDOUT;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	struct timeval tv = { io_ms / 1000, (io_ms % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Pulls kind ("snap", "tail", "final") of slot at epoch from the owner's peer address and
 * imports it (a snap over a fresh copy of the slot's ranges). 0 when all of it is durable
 * here; -EAGAIN when the owner is not ready yet (409), -ESTALE when its capture is void
 * (410: start over); else a negative errno, with nothing of the slot left here. */
int cluster_peer_pull(struct cluster *cl, const char *kind, unsigned slot, int64_t epoch,
		      const char *peer, uint64_t *bytes, uint64_t *records)
{
	int fd = cluster_peer_dial(peer, taker_io_ms(cl));
	if (fd < 0)
		return fd;
	char mac[17], req[200];
	cluster_peer_mac(cl, kind, slot, epoch, mac);
	int n = snprintf(req, sizeof(req), "GET /%s/%u/%lld/%s HTTP/1.0\r\n\r\n", kind, slot,
			 (long long)epoch, mac);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		close(fd);
		return -EIO;
	}
	struct in in = { .cl = cl, .fd = fd, .cap = 1u << 20 };
	in.buf = malloc(in.cap);
	struct store *st = obj_runtime_store();
	struct store_slot_import *im = NULL;
	int r = in.buf ? 0 : -ENOMEM;
	/* The head: its status line, up to the blank line. */
	size_t hl = 0;
	while (r == 0) {
		r = in_need(&in, hl + 1);
		if (r < 0)
			break;
		hl = in.end - in.start;
		char *e = memmem(in.buf + in.start, hl, "\r\n\r\n", 4);
		if (e) {
			if (hl < 12 || memcmp(in.buf + in.start + 9, "200", 3))
				r = !memcmp(in.buf + in.start + 9, "409", 3)   ? -EAGAIN
				    : !memcmp(in.buf + in.start + 9, "410", 3) ? -ESTALE
									       : -EPROTO;
			in.start = (size_t)(e + 4 - in.buf);
			break;
		}
		if (hl > 4096)
			r = -EPROTO;
	}
	int map[MOVE_MAX_FAMILIES];
	for (unsigned i = 0; i < MOVE_MAX_FAMILIES; i++)
		map[i] = -1;
	if (r == 0) {
		im = store_slot_import_begin(st, slot, !strcmp(kind, "snap"));
		if (!im)
			r = -ENOMEM;
	}
	int ended = 0;
	while (r == 0 && !ended) {
		struct cluster_peer_rec rec;
		long used = cluster_peer_next_record(in.buf + in.start, in.end - in.start,
						     MOVE_MAX_RECORD, &rec);
		if (used == 0) {
			r = in_need(&in, rec.need);
			continue;
		}
		if (used < 0) {
			r = -EPROTO;
			break;
		}
		in.start += (size_t)used;
		if (rec.tag == 'F') {
			char name[256];
			memcpy(name, rec.name, rec.name_len);
			name[rec.name_len] = 0;
			int cf = -1;
			uint8_t secret[32];
			if (!strcmp(name, "meta"))
				cf = STORE_CF_META;
			else if (!strcmp(name, "alarms"))
				cf = STORE_CF_ALARMS;
			else if (!strcmp(name, "sql"))
				cf = STORE_CF_SQL;
			else if (!strcmp(name, "history"))
				cf = STORE_CF_HISTORY;
			else if (!strncmp(name, "class/", 6) && store_class(st, name + 6, &cf, secret, NULL) < 0)
				cf = -1;
			if (rec.family >= MOVE_MAX_FAMILIES)
				r = -EPROTO;
			else
				map[rec.family] = cf; /* -1: a class this box lacks; its records refuse the move */
		} else if (rec.tag == 'E') {
			if (rec.count != store_slot_import_records(im))
				r = -EPROTO;
			else
				r = store_slot_import_flush(im);
			ended = 1;
		} else if (rec.family >= MOVE_MAX_FAMILIES || map[rec.family] < 0) {
			r = -EPROTO;
		} else if (rec.tag == 'X') {
			r = store_slot_import_range(im, map[rec.family], rec.key, rec.key_len, rec.val,
						    rec.val_len);
		} else {
			r = store_slot_import_record(im, map[rec.family], rec.key, rec.key_len,
						     rec.tag == 'R' ? rec.val : NULL, rec.val_len);
		}
	}
	close(fd);
	free(in.buf);
	if (im) {
		*bytes = in.bytes;
		*records = store_slot_import_records(im);
		store_slot_import_end(im);
	}
	if (r < 0 && im && store_slot_drop(st, slot) < 0)
		log_error("cluster %s: slot %u: dropping a failed import failed; the slot's data "
			  "here is stale", cl->cfg->cluster.name, slot);
	return r;
}

void cluster_peer_capture_stop(struct cluster *cl, unsigned slot)
{
	capture_call(cl, do_capture_stop, slot, 0, NULL, NULL);
}
