/* The control thread: line-delimited JSON over a Unix socket for duroctl, and the optional
 * metrics listener, on one poll loop that never blocks on a client: sockets are
 * non-blocking, every client has its own buffers and deadlines, and commands that wait on
 * cores, storage or files go to worker threads. It never touches a core's state: figures
 * come from snapshots, actions go to the owning core through its mailbox. */
#include "ctl_int.h"
#include "ctl_metrics.h"
#include "base_assert.h"
#include "clock.h"
#include "crash.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_MAX_CLIENTS 32      /* the 33rd is told so and closed */
#define CTL_MAX_LINE (64 * 1024) /* one request line */
/* Reply bytes a client may leave unread; one that leaves more when its next reply is due
 * is not reading, and is disconnected (it alone pays for it). */
#define CTL_OUT_CAP (1024 * 1024)
#define CTL_LINES_PER_TURN 16   /* then the other clients' turn */
#define CTL_REQUEST_MS 5000     /* a request line, once started, must end within this */
#define CTL_IDLE_MS 60000       /* a client with nothing asked and nothing to read */
#define CTL_STALL_MS 10000      /* replies waiting and none of it read */
#define CTL_ACCEPTS_PER_TURN 16

struct client {
	int fd;             /* -1: a free slot */
	uid_t uid;          /* the peer's, by SO_PEERCRED */
	uint64_t id;        /* how a worker's reply finds its client again */
	int busy;           /* a request on a worker: later lines wait for its reply */
	int ready;          /* a complete line is waiting to be handled */
	int eof;            /* the client sent all it will send */
	int hup;            /* it closed: read what it sent, but poll would say so forever */
	char *in;           /* CTL_MAX_LINE bytes: in[in_off..in_len) not handled yet */
	size_t in_off, in_len;
	char *out;          /* out[out_sent..out_len) not sent yet */
	size_t out_sent, out_len, out_cap;
	uint64_t line_since_ms, idle_since_ms, stall_since_ms;
};

struct ctl_server {
	struct client c[CTL_MAX_CLIENTS];
	unsigned n;
	uint64_t next_id;
};

/* Poll slots: fixed positions, fd -1 where nothing is watched. */
enum { P_STOP, P_UNIX, P_WAKE, P_CLIENTS, P_METRICS = P_CLIENTS + CTL_MAX_CLIENTS,
       P_COUNT = P_METRICS + CTL_METRICS_POLLFDS };

void ctl_core_tick(struct ctl *ctl, struct core *c)
{
	atomic_store_explicit(&ctl->beat[c->index], c->now_ms, memory_order_relaxed);
	if (ctl_snapshot_due(ctl, c))
		ctl_publish(ctl, c);
	ctl_mailbox_run(&ctl->mb, c);
}

void ctl_request_tls_reload(struct ctl *ctl)
{
	atomic_store(&ctl->reload_pending, 1);
	uint64_t one = 1;
	if (write(ctl->wake_fd, &one, sizeof(one)) != sizeof(one))
		log_warn("control: wake: %s", strerror(errno));
}

/* ---- one client ---- */

static size_t unsent(const struct client *cl)
{
	return cl->out_len - cl->out_sent;
}

static int queue_reply(struct client *cl, json_t *r, uint64_t now)
{
	if (!r)
		r = ctl_error_reply("out of memory");
	char *text = r ? json_dumps(r, JSON_COMPACT) : NULL;
	json_decref(r);
	if (!text)
		return -ENOMEM;
	size_t n = strlen(text);
	if (cl->out_sent == cl->out_len) {
		cl->out_sent = cl->out_len = 0;
		cl->stall_since_ms = now;
	}
	if (cl->out_len + n + 1 > cl->out_cap) {
		/* Drop what was sent, then grow. */
		if (cl->out_sent) {
			memmove(cl->out, cl->out + cl->out_sent, unsent(cl));
			cl->out_len -= cl->out_sent;
			cl->out_sent = 0;
		}
		size_t cap = cl->out_cap ? cl->out_cap : 4096;
		while (cap < cl->out_len + n + 1)
			cap *= 2;
		char *o = realloc(cl->out, cap);
		if (!o) {
			free(text);
			return -ENOMEM;
		}
		cl->out = o;
		cl->out_cap = cap;
	}
	memcpy(cl->out + cl->out_len, text, n);
	cl->out[cl->out_len + n] = '\n';
	cl->out_len += n + 1;
	free(text);
	return 0;
}

/* Sends what the socket takes. Returns 0, or -1 when the client is gone. */
static int flush_out(struct client *cl, uint64_t now)
{
	while (unsent(cl)) {
		ssize_t w = send(cl->fd, cl->out + cl->out_sent, unsent(cl), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		cl->out_sent += (size_t)w;
		cl->stall_since_ms = cl->idle_since_ms = now;
	}
	cl->out_sent = cl->out_len = 0;
	return 0;
}

/* Closes the client; `last` (may be NULL) is a last reply it is sent if its socket takes it. */
static void client_close(struct ctl *ctl, struct client *cl, const char *last, uint64_t now)
{
	if (last && queue_reply(cl, ctl_error_reply("%s", last), now) == 0)
		flush_out(cl, now);
	close(cl->fd);
	free(cl->in);
	free(cl->out);
	*cl = (struct client){ .fd = -1 };
	ctl->server->n--;
}

static void handle_line(struct ctl *ctl, struct client *cl, const char *line, size_t len, uint64_t now)
{
	if (len && line[len - 1] == '\r')
		len--;
	atomic_fetch_add(&ctl->ctr.requests, 1);
	if (len == 0)
		return; /* a blank line: nothing */
	json_error_t jerr;
	json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req || !json_is_object(req)) {
		atomic_fetch_add(&ctl->ctr.errors, 1);
		queue_reply(cl, req ? ctl_error_reply("want a JSON object")
				    : ctl_error_reply("bad JSON at %d:%d: %s", jerr.line, jerr.column, jerr.text),
			    now);
		json_decref(req);
		return;
	}
	if (ctl_request_privileged(req) && cl->uid != geteuid() && cl->uid != 0) {
		/* Deploying runs a file's code as durod: the control group may not. */
		atomic_fetch_add(&ctl->ctr.refused_peer, 1);
		log_warn("control: %s by uid %u refused: only durod's user (uid %u) or root may",
			 json_string_value(json_object_get(req, "cmd")), (unsigned)cl->uid,
			 (unsigned)geteuid());
		queue_reply(cl, ctl_error_reply("permission denied: %s runs code as durod, so only its user (uid %u) or root may",
						json_string_value(json_object_get(req, "cmd")),
						(unsigned)geteuid()), now);
		json_decref(req);
		return;
	}
	enum ctl_request_kind kind = ctl_request_kind(req);
	if (kind == CTL_REQ_INLINE) {
		queue_reply(cl, ctl_request(ctl, req), now);
		json_decref(req);
		return;
	}
	int r = ctl_jobs_submit(ctl, cl->id, kind, req);
	if (r == -EBUSY)
		queue_reply(cl, ctl_error_reply("an export or import is already running; try again once it is done"), now);
	else if (r < 0)
		queue_reply(cl, ctl_error_reply("out of memory"), now);
	else
		cl->busy = 1;
}

/* Handles up to CTL_LINES_PER_TURN complete lines. Returns -1 when the client was closed. */
static int handle_lines(struct ctl *ctl, struct client *cl, uint64_t now)
{
	for (unsigned k = 0; k < CTL_LINES_PER_TURN && !cl->busy; k++) {
		char *start = cl->in + cl->in_off;
		size_t avail = cl->in_len - cl->in_off;
		char *nl = memchr(start, '\n', avail);
		if (!nl && !(cl->eof && avail))
			break;
		if (unsent(cl) >= CTL_OUT_CAP) {
			atomic_fetch_add(&ctl->ctr.dropped_slow, 1);
			log_warn("control: a client left %zu bytes of replies unread; disconnected", unsent(cl));
			client_close(ctl, cl, NULL, now);
			return -1;
		}
		size_t len = nl ? (size_t)(nl - start) : avail; /* at EOF the last line needs no \n */
		cl->in_off += len + (nl ? 1 : 0);
		cl->line_since_ms = now;
		handle_line(ctl, cl, start, len, now);
	}
	/* Keep the partial line at the front, for the next receive. */
	if (cl->in_off) {
		memmove(cl->in, cl->in + cl->in_off, cl->in_len - cl->in_off);
		cl->in_len -= cl->in_off;
		cl->in_off = 0;
	}
	cl->ready = memchr(cl->in, '\n', cl->in_len) != NULL || (cl->eof && cl->in_len);
	if (!cl->ready && cl->in_len == CTL_MAX_LINE) {
		atomic_fetch_add(&ctl->ctr.errors, 1);
		client_close(ctl, cl, "request line over 65536 bytes", now);
		return -1;
	}
	return 0;
}

/* Reads what is there. Returns -1 when the client was closed. */
static int read_in(struct ctl *ctl, struct client *cl, uint64_t now)
{
	ssize_t r = recv(cl->fd, cl->in + cl->in_len, CTL_MAX_LINE - cl->in_len, MSG_DONTWAIT);
	if (r < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		client_close(ctl, cl, NULL, now);
		return -1;
	}
	if (r == 0) {
		cl->eof = 1;
	} else {
		if (cl->in_len == 0)
			cl->line_since_ms = now;
		cl->in_len += (size_t)r;
	}
	cl->idle_since_ms = now;
	return 0;
}

static uint64_t client_deadline(const struct client *cl)
{
	if (cl->busy)
		return UINT64_MAX; /* a worker's command: bounded there */
	if (unsent(cl))
		return cl->stall_since_ms + CTL_STALL_MS;
	if (cl->in_len)
		return cl->line_since_ms + CTL_REQUEST_MS;
	return cl->idle_since_ms + CTL_IDLE_MS;
}

static void client_timers(struct ctl *ctl, struct client *cl, uint64_t now)
{
	if (now < client_deadline(cl))
		return;
	if (unsent(cl)) {
		atomic_fetch_add(&ctl->ctr.dropped_slow, 1);
		log_warn("control: a client read none of its replies for %d ms; disconnected", CTL_STALL_MS);
		client_close(ctl, cl, NULL, now);
	} else if (cl->in_len) {
		atomic_fetch_add(&ctl->ctr.timed_out, 1);
		client_close(ctl, cl, "request not complete within 5 s; closing", now);
	} else {
		atomic_fetch_add(&ctl->ctr.timed_out, 1);
		client_close(ctl, cl, "idle for 60 s; closing", now);
	}
}

static int may_read(const struct client *cl)
{
	return !cl->busy && !cl->ready && !cl->eof && cl->in_len < CTL_MAX_LINE;
}

/* Everything one client may do this turn, after poll said `revents`. */
static void client_step(struct ctl *ctl, struct client *cl, short revents, uint64_t now)
{
	if (revents & POLLERR) {
		client_close(ctl, cl, NULL, now);
		return;
	}
	if (revents & POLLHUP)
		cl->hup = 1;
	if (((revents & POLLIN) || cl->hup) && may_read(cl) && read_in(ctl, cl, now) < 0)
		return;
	if (handle_lines(ctl, cl, now) < 0)
		return;
	if (unsent(cl) && flush_out(cl, now) < 0) {
		client_close(ctl, cl, NULL, now);
		return;
	}
	if (cl->eof && !cl->busy && !cl->ready && !unsent(cl)) {
		client_close(ctl, cl, NULL, now); /* answered everything it asked */
		return;
	}
	client_timers(ctl, cl, now);
}

/* What to poll for: nothing while a worker has its request, or once it hung up (then
 * client_step reads without asking). */
static struct pollfd client_pollfd(const struct client *cl)
{
	if (cl->fd < 0 || cl->hup)
		return (struct pollfd){ .fd = -1 };
	short ev = 0;
	if (may_read(cl))
		ev |= POLLIN;
	if (unsent(cl))
		ev |= POLLOUT;
	return (struct pollfd){ .fd = cl->fd, .events = ev };
}

/* ---- accepting ---- */

static int peer_allowed(struct ctl *ctl, int fd, uid_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return 0;
	*uid = cred.uid;
	if (cred.uid == 0 || cred.uid == geteuid())
		return 1;
	if (!ctl->cfg->control.group[0])
		return 0;
	struct group *gr = getgrnam(ctl->cfg->control.group);
	if (!gr)
		return 0;
	if (cred.gid == gr->gr_gid)
		return 1;
	struct passwd *pw = getpwuid(cred.uid);
	gid_t groups[64];
	int n = 64;
	if (pw && getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) >= 0)
		for (int i = 0; i < n; i++)
			if (groups[i] == gr->gr_gid)
				return 1;
	return 0;
}

/* One error line, then closed. The line stays readable for the client even after the
 * close (a Unix socket keeps what it was sent), also when its own send then fails. */
static void refuse(int fd, const char *why)
{
	json_t *r = ctl_error_reply("%s", why);
	char *text = r ? json_dumps(r, JSON_COMPACT) : NULL;
	json_decref(r);
	if (text) {
		size_t n = strlen(text);
		text[n] = '\n'; /* over the NUL: sent by length */
		(void)!send(fd, text, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		free(text);
	}
	close(fd);
}

static void accept_some(struct ctl *ctl, uint64_t now)
{
	struct ctl_server *sv = ctl->server;
	for (unsigned k = 0; k < CTL_ACCEPTS_PER_TURN; k++) {
		int fd = accept4(ctl->unix_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("control: accept: %s", strerror(errno));
			return;
		}
		uid_t uid = (uid_t)-1;
		if (!peer_allowed(ctl, fd, &uid)) {
			atomic_fetch_add(&ctl->ctr.refused_peer, 1);
			log_warn("control: a client of another user was refused");
			refuse(fd, "permission denied");
			continue;
		}
		if (sv->n == CTL_MAX_CLIENTS) {
			uint64_t n = atomic_fetch_add(&ctl->ctr.refused_limit, 1) + 1;
			if ((n & (n - 1)) == 0) /* 1, 2, 4, 8 ...: a flood does not flood the log */
				log_warn("control: a client was refused: %d clients already (%llu refused so far)",
					 CTL_MAX_CLIENTS, (unsigned long long)n);
			refuse(fd, "too many control clients (32 connected); try again later");
			continue;
		}
		struct client *cl = NULL;
		for (unsigned i = 0; i < CTL_MAX_CLIENTS && !cl; i++)
			if (sv->c[i].fd < 0)
				cl = &sv->c[i];
		DURO_ASSERT(cl);
		char *in = malloc(CTL_MAX_LINE);
		if (!in) {
			refuse(fd, "out of memory");
			continue;
		}
		*cl = (struct client){ .fd = fd, .uid = uid, .id = ++sv->next_id, .in = in,
				       .idle_since_ms = now };
		sv->n++;
	}
}

/* ---- the thread ---- */

static void deliver_replies(struct ctl *ctl, uint64_t now)
{
	struct ctl_job *job;
	while ((job = ctl_jobs_done(ctl))) {
		if (job->client & CTL_METRICS_CLIENT) { /* the dashboard's SQL view */
			ctl_metrics_reply(ctl, job->client, job->reply, now);
			job->reply = NULL;
			ctl_job_free(job);
			continue;
		}
		struct client *cl = NULL;
		for (unsigned i = 0; i < CTL_MAX_CLIENTS && !cl; i++)
			if (ctl->server->c[i].fd >= 0 && ctl->server->c[i].id == job->client)
				cl = &ctl->server->c[i];
		if (cl) { /* else it left meanwhile: the reply has nobody to go to */
			json_t *reply = job->reply;
			job->reply = NULL;
			cl->busy = 0;
			queue_reply(cl, reply, now);
		}
		ctl_job_free(job);
	}
}

static void on_wake(struct ctl *ctl, uint64_t now)
{
	uint64_t v;
	if (read(ctl->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("control: wake: %s", strerror(errno));
	if (atomic_exchange(&ctl->reload_pending, 0))
		json_decref(ctl_tls_reload(ctl));
	deliver_replies(ctl, now);
}

/* How often the watchdog looks at the cores. */
#define CTL_WATCHDOG_TICK_MS 100
/* A gap this long between two of its looks means the control thread did not run either:
 * the whole process was paused (SIGSTOP, a debugger, a frozen container or VM). */
#define CTL_WATCHDOG_PAUSE_MS 1000

/* A core that has not finished a loop turn for watchdog_ms runs something that does not
 * return (a class's handler in a loop): durod aborts, naming it, rather than serve with a
 * core gone (its objects, sockets and commits would all wait forever). */
static void watchdog(struct ctl *ctl, uint64_t now)
{
	unsigned limit = ctl->cfg->watchdog_ms;
	struct core_group *g = ctl->group;
	if (!limit || now < ctl->watchdog_checked_ms + CTL_WATCHDOG_TICK_MS)
		return;
	/* After a pause every core's last turn looks as old as the pause, though none is
	 * stuck: stalls are measured from the moment the watchdog runs again (and from its
	 * first look, which a pause may delay too). */
	if (now > ctl->watchdog_checked_ms + CTL_WATCHDOG_PAUSE_MS)
		ctl->watchdog_since_ms = now;
	ctl->watchdog_checked_ms = now;
	if (atomic_load(&g->serving) < g->ncores || atomic_load(&g->stop_now))
		return; /* starting (replaying logs) or tearing down: turns may be long */
	for (unsigned i = 0; i < g->ncores; i++) {
		uint64_t beat = atomic_load_explicit(&ctl->beat[i], memory_order_relaxed);
		uint64_t from = beat > ctl->watchdog_since_ms ? beat : ctl->watchdog_since_ms;
		if (beat && now > from + limit)
			crash_hang(i, now - beat);
	}
}

static int poll_timeout(struct ctl *ctl, uint64_t now)
{
	uint64_t next = ctl_metrics_deadline(ctl);
	if (ctl->cfg->watchdog_ms && now + CTL_WATCHDOG_TICK_MS < next)
		next = now + CTL_WATCHDOG_TICK_MS;
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++) {
		const struct client *cl = &ctl->server->c[i];
		if (cl->fd < 0)
			continue;
		if ((cl->ready || cl->hup) && !cl->busy)
			return 0;
		uint64_t d = client_deadline(cl);
		if (d < next)
			next = d;
	}
	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : next - now > 60000 ? 60000 : (int)(next - now);
}

static void *ctl_main(void *arg)
{
	struct ctl *ctl = arg;
	struct ctl_server *sv = ctl->server;
	struct pollfd pfd[P_COUNT];
	for (;;) {
		uint64_t now = clock_now_ms();
		pfd[P_STOP] = (struct pollfd){ .fd = ctl->stop_fd, .events = POLLIN };
		pfd[P_UNIX] = (struct pollfd){ .fd = ctl->unix_fd, .events = POLLIN };
		pfd[P_WAKE] = (struct pollfd){ .fd = ctl->wake_fd, .events = POLLIN };
		for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++)
			pfd[P_CLIENTS + i] = client_pollfd(&sv->c[i]);
		ctl_metrics_pollfds(ctl, pfd + P_METRICS);
		if (poll(pfd, P_COUNT, poll_timeout(ctl, now)) < 0) {
			if (errno == EINTR)
				continue;
			log_error("control: poll: %s", strerror(errno));
			break;
		}
		if (pfd[P_STOP].revents)
			break;
		now = clock_now_ms();
		watchdog(ctl, now);
		if (pfd[P_WAKE].revents & POLLIN)
			on_wake(ctl, now);
		for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++) {
			struct client *cl = &sv->c[i];
			/* Slots are taken only after this loop: the events are this client's. */
			if (cl->fd >= 0)
				client_step(ctl, cl, pfd[P_CLIENTS + i].revents, now);
		}
		if (pfd[P_UNIX].revents & POLLIN)
			accept_some(ctl, now);
		ctl_metrics_serve(ctl, pfd + P_METRICS, now);
	}
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++)
		if (sv->c[i].fd >= 0)
			client_close(ctl, &sv->c[i], NULL, 0);
	return NULL;
}

static int listen_unix(struct ctl *ctl)
{
	const struct duro_config *cfg = ctl->cfg;
	if (cfg->control.socket[0])
		snprintf(ctl->socket_path, sizeof(ctl->socket_path), "%s", cfg->control.socket);
	else
		snprintf(ctl->socket_path, sizeof(ctl->socket_path), "%s/control.sock", cfg->obj.data_dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(ctl->socket_path) >= sizeof(sa.sun_path)) {
		log_error("control.socket: \"%s\" is longer than a Unix socket path may be (%zu bytes)",
			  ctl->socket_path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, ctl->socket_path, strlen(ctl->socket_path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A socket left by a durod that died: this one holds the data directory's lock. */
	unlink(ctl->socket_path);
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, 64) < 0) {
		r = -errno;
		log_error("control socket %s: %s", ctl->socket_path, strerror(-r));
		close(fd);
		return r;
	}
	if (cfg->control.group[0]) {
		struct group *gr = getgrnam(cfg->control.group);
		if (!gr || chown(ctl->socket_path, (uid_t)-1, gr->gr_gid) < 0 ||
		    chmod(ctl->socket_path, 0660) < 0) {
			r = -errno;
			log_error("control socket %s: group %s: %s", ctl->socket_path, cfg->control.group,
				  strerror(errno ? errno : ENOENT));
			close(fd);
			return r ? r : -ENOENT;
		}
	} else if (chmod(ctl->socket_path, 0600) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	ctl->unix_fd = fd;
	return 0;
}

int ctl_init(struct ctl *ctl, const struct duro_config *cfg, struct core_group *group,
	     const char *version, const char *backend)
{
	ctl->cfg = cfg;
	ctl->group = group;
	ctl->version = version;
	ctl->backend = backend;
	ctl->started_wall_ms = clock_wall_ms();
	ctl->started_mono_ms = clock_now_ms();
	ctl->unix_fd = ctl->stop_fd = ctl->wake_fd = -1;
	ctl->server = calloc(1, sizeof(*ctl->server));
	if (!ctl->server)
		return -ENOMEM;
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++)
		ctl->server->c[i].fd = -1;
	int r = ctl_mailbox_init(&ctl->mb, group);
	if (r == 0)
		r = listen_unix(ctl);
	if (r == 0)
		r = ctl_metrics_open(ctl);
	if (r == 0 && (ctl->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0)
		r = -errno;
	if (r == 0 && (ctl->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		r = -errno;
	return r;
}

int ctl_start(struct ctl *ctl)
{
	int r = ctl_jobs_start(ctl);
	if (r < 0)
		return r;
	r = pthread_create(&ctl->thread, NULL, ctl_main, ctl);
	if (r)
		return -r;
	/* Created from the main lcore, it would share core 0's CPU: let it run anywhere (the
	 * workers, created the same way, too). */
	cpu_set_t all;
	CPU_ZERO(&all);
	for (long i = 0, n = sysconf(_SC_NPROCESSORS_ONLN); i < n && i < CPU_SETSIZE; i++)
		CPU_SET((int)i, &all);
	pthread_setaffinity_np(ctl->thread, sizeof(all), &all);
	pthread_setname_np(ctl->thread, "duro-ctl");
	ctl->running = 1;
	return 0;
}

void ctl_stop(struct ctl *ctl)
{
	if (ctl->running) {
		uint64_t one = 1;
		if (write(ctl->stop_fd, &one, sizeof(one)) != sizeof(one))
			log_warn("control: stop: %s", strerror(errno));
		pthread_join(ctl->thread, NULL);
		ctl->running = 0;
	}
	ctl_jobs_stop(ctl);
	if (ctl->unix_fd >= 0) {
		close(ctl->unix_fd);
		unlink(ctl->socket_path);
		ctl->unix_fd = -1;
	}
	ctl_metrics_close(ctl);
	if (ctl->stop_fd >= 0)
		close(ctl->stop_fd);
	if (ctl->wake_fd >= 0)
		close(ctl->wake_fd);
	ctl->stop_fd = ctl->wake_fd = -1;
	ctl_mailbox_fini(&ctl->mb);
	free(ctl->server);
	ctl->server = NULL;
}
