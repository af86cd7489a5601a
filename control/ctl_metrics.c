/* The metrics and dashboard listener: each connection reads one request head into its
 * own buffer (ctl_http_route decides what it asks for), gets one response written as the
 * socket takes it, then is closed after the client had a moment to read it. */
#include "ctl_metrics.h"
#include "ctl_http.h"
#include "ctl_int.h"
#include "base_assert.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINGER_MS 1000     /* after the response: the client closes, or we do */
#define ACCEPTS_PER_TURN 16
#define CTL_DASH_SQL_ROWS 1000 /* rows of one answer of the SQL view (and 4 MiB of values) */

enum mstate { M_FREE, M_READING, M_WAITING, M_WRITING, M_LINGER };

struct mconn {
	int fd;
	enum mstate state;
	uint64_t deadline_ms;
	size_t in_len;
	char *out;
	size_t out_len, out_sent;
	uint64_t job;  /* M_WAITING: the worker job whose reply it waits for */
	int head_only; /* of the request it waits to answer */
	char in[CTL_HTTP_MAX_HEAD];
};

struct ctl_metrics {
	int fd;
	uint64_t next_job;
	struct mconn conn[CTL_METRICS_MAX_CONNS];
};

int ctl_metrics_open(struct ctl *ctl)
{
	ctl->metrics = NULL;
	if (!ctl->cfg->control.metrics[0])
		return 0;
	struct net_listen nl;
	if (net_parse_addr(ctl->cfg->control.metrics, &nl) < 0)
		return -EINVAL;
	int fd = socket(nl.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&nl.addr, nl.addrlen) < 0 || listen(fd, 64) < 0) {
		int r = -errno;
		log_error("control.metrics %s: %s", nl.text, strerror(-r));
		close(fd);
		return r;
	}
	struct ctl_metrics *m = calloc(1, sizeof(*m));
	if (!m) {
		close(fd);
		return -ENOMEM;
	}
	m->fd = fd;
	ctl->metrics = m;
	return 0;
}

static void conn_close(struct mconn *mc)
{
	close(mc->fd);
	free(mc->out);
	mc->out = NULL;
	mc->fd = -1;
	mc->state = M_FREE;
}

void ctl_metrics_close(struct ctl *ctl)
{
	struct ctl_metrics *m = ctl->metrics;
	if (!m)
		return;
	for (unsigned i = 0; i < CTL_METRICS_MAX_CONNS; i++)
		if (m->conn[i].state != M_FREE)
			conn_close(&m->conn[i]);
	close(m->fd);
	free(m);
	ctl->metrics = NULL;
}

void ctl_metrics_pollfds(struct ctl *ctl, struct pollfd *pfd)
{
	struct ctl_metrics *m = ctl->metrics;
	for (unsigned i = 0; i < CTL_METRICS_POLLFDS; i++)
		pfd[i] = (struct pollfd){ .fd = -1 };
	if (!m)
		return;
	pfd[0] = (struct pollfd){ .fd = m->fd, .events = POLLIN };
	for (unsigned i = 0; i < CTL_METRICS_MAX_CONNS; i++) {
		struct mconn *mc = &m->conn[i];
		if (mc->state != M_FREE) /* M_WAITING: only a hang-up (POLLHUP, POLLERR) */
			pfd[1 + i] = (struct pollfd){ .fd = mc->fd,
						      .events = mc->state == M_WRITING ? POLLOUT
								: mc->state == M_WAITING ? 0 : POLLIN };
	}
}

uint64_t ctl_metrics_deadline(const struct ctl *ctl)
{
	uint64_t d = UINT64_MAX;
	for (unsigned i = 0; ctl->metrics && i < CTL_METRICS_MAX_CONNS; i++)
		if (ctl->metrics->conn[i].state != M_FREE && ctl->metrics->conn[i].deadline_ms < d)
			d = ctl->metrics->conn[i].deadline_ms;
	return d;
}

/* The response, head and body in one buffer the connection owns. */
static void respond(struct mconn *mc, int status, const char *type, const char *body, size_t len,
		    int head_only, uint64_t now)
{
	char head[512];
	int hl = ctl_http_head(head, sizeof(head), status, type, len);
	DURO_ASSERT(hl > 0);
	size_t total = (size_t)hl + (head_only ? 0 : len);
	mc->out = malloc(total);
	if (!mc->out) {
		conn_close(mc);
		return;
	}
	memcpy(mc->out, head, (size_t)hl);
	if (!head_only)
		memcpy(mc->out + hl, body, len);
	mc->out_len = total;
	mc->out_sent = 0;
	mc->state = M_WRITING;
	mc->deadline_ms = now + CTL_METRICS_SEND_MS;
}

static void respond_text(struct mconn *mc, int status, const char *text, uint64_t now)
{
	respond(mc, status, "text/plain; charset=utf-8", text, strlen(text), 0, now);
}

/* A query string's parameter into buf as a JSON string (NULL when absent or not UTF-8);
 * *bad is set when it is malformed or too long. */
static json_t *param(const struct ctl_http_route *rt, const char *key, char *buf, size_t cap, int *bad)
{
	long n = ctl_http_query(rt->query ? rt->query : "", rt->query_len, key, buf, cap);
	if (n == -ENOENT)
		return NULL;
	if (n < 0) {
		*bad = 1;
		return NULL;
	}
	json_t *s = json_stringn(buf, (size_t)n);
	if (!s)
		*bad = 1;
	return s;
}

static void write_some(struct mconn *mc, uint64_t now);

/* The response to a SQL view's request: 200 with the reply when it is ok, else 400 (403
 * when the view is off) with the error, SQLite's message among them. Takes reply. */
static void respond_json(struct mconn *mc, json_t *reply, int head_only, uint64_t now)
{
	int ok = reply && json_is_true(json_object_get(reply, "ok"));
	int status = ok ? 200 : json_integer_value(json_object_get(reply, "status")) == 403 ? 403 : 400;
	if (reply && !ok)
		json_object_del(reply, "status");
	char *text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
	json_decref(reply);
	if (text)
		respond(mc, status, "application/json", text, strlen(text), head_only, now);
	else
		respond_text(mc, 503, "out of memory\n", now);
	free(text);
}

/* GET /api/sql?binding=B&name=N (or id=HEX)&sql=...&limit=N: the statements run as
 * `duroctl sql` runs them without --write (an event on the object's core that may only
 * read; "write" is never set here), at most CTL_DASH_SQL_ROWS rows. The request waits on a
 * control worker, as the control socket's do, so this thread never blocks on a core. */
static void answer_sql(struct ctl *ctl, struct mconn *mc, const struct ctl_http_route *rt, uint64_t now)
{
	if (!ctl->cfg->control.dashboard_sql) {
		json_t *r = ctl_error_reply("the SQL view is off: set control.dashboard_sql to true");
		json_object_set_new(r, "status", json_integer(403));
		respond_json(mc, r, rt->head_only, now);
		return;
	}
	static char text[CTL_HTTP_MAX_HEAD]; /* only the control thread comes here */
	char binding[128], name[1024], id[128], limit[24];
	int bad = 0;
	json_t *req = json_pack("{s:s}", "cmd", "sql");
	json_t *v;
	if ((v = param(rt, "binding", binding, sizeof(binding), &bad)))
		json_object_set_new(req, "binding", v);
	if ((v = param(rt, "name", name, sizeof(name), &bad)))
		json_object_set_new(req, "name", v);
	if ((v = param(rt, "id", id, sizeof(id), &bad)))
		json_object_set_new(req, "id", v);
	if ((v = param(rt, "sql", text, sizeof(text), &bad)))
		json_object_set_new(req, "sql", v);
	long rows = CTL_DASH_SQL_ROWS;
	if ((v = param(rt, "limit", limit, sizeof(limit), &bad))) {
		char *end;
		rows = strtol(limit, &end, 10);
		if (*end || rows < 1 || rows > CTL_DASH_SQL_ROWS)
			rows = CTL_DASH_SQL_ROWS;
		json_decref(v);
	}
	json_object_set_new(req, "limit", json_integer(rows));
	if (bad) {
		json_decref(req);
		respond_json(mc, ctl_error_reply("a parameter is malformed (a bad %%XX escape, not UTF-8, or too long)"),
			     rt->head_only, now);
		return;
	}
	struct ctl_metrics *m = ctl->metrics;
	uint64_t job = CTL_METRICS_CLIENT | ++m->next_job;
	if (ctl_jobs_submit(ctl, job, CTL_REQ_WORKER, req) < 0) { /* req released */
		respond_text(mc, 503, "out of memory\n", now);
		return;
	}
	mc->job = job;
	mc->head_only = rt->head_only;
	mc->state = M_WAITING;
	mc->deadline_ms = now + CTL_METRICS_SQL_MS;
}

void ctl_metrics_reply(struct ctl *ctl, uint64_t client, json_t *reply, uint64_t now)
{
	struct ctl_metrics *m = ctl->metrics;
	for (unsigned i = 0; m && i < CTL_METRICS_MAX_CONNS; i++) {
		struct mconn *mc = &m->conn[i];
		if (mc->state == M_WAITING && mc->job == client) {
			respond_json(mc, reply, mc->head_only, now);
			if (mc->state == M_WRITING)
				write_some(mc, now);
			return;
		}
	}
	json_decref(reply); /* its connection went meanwhile */
}

static void answer(struct ctl *ctl, struct mconn *mc, const struct ctl_http_route *rt, uint64_t now)
{
	atomic_fetch_add(&ctl->ctr.metrics_requests, 1);
	if (rt->status != 200) {
		if (rt->status != 404)
			atomic_fetch_add(&ctl->ctr.metrics_bad, 1);
		char text[128];
		snprintf(text, sizeof(text), "%s%s\n", ctl_http_reason(rt->status),
			 rt->status == 404 ? ": try /metrics, /dashboard, /api/stats or /api/sql"
			 : rt->status == 405 ? ": GET or HEAD only" : "");
		respond_text(mc, rt->status, text, now);
		return;
	}
	if (rt->page == CTL_PAGE_SQL) {
		answer_sql(ctl, mc, rt, now);
		return;
	}
	if (rt->page == CTL_PAGE_DASHBOARD) {
		respond(mc, 200, "text/html; charset=utf-8", ctl_dashboard_html, ctl_dashboard_html_len,
			rt->head_only, now);
		return;
	}
	char *text = NULL;
	size_t len = 0;
	const char *type = "application/json";
	if (rt->page == CTL_PAGE_METRICS) {
		text = ctl_prometheus(ctl, &len);
		type = "text/plain; version=0.0.4; charset=utf-8";
	} else {
		json_t *s = ctl_stats_json(ctl);
		if (s)
			json_object_set_new(s, "status", ctl_status_json(ctl));
		text = s ? json_dumps(s, JSON_COMPACT) : NULL;
		len = text ? strlen(text) : 0;
		json_decref(s);
	}
	if (text)
		respond(mc, 200, type, text, len, rt->head_only, now);
	else
		respond_text(mc, 503, "out of memory\n", now);
	free(text);
}

/* Half-closes, so the client reads everything, then waits a moment for its close: closing
 * with its bytes unread would reset the connection and could destroy the response. */
static void linger(struct mconn *mc, uint64_t now)
{
	free(mc->out);
	mc->out = NULL;
	shutdown(mc->fd, SHUT_WR);
	mc->state = M_LINGER;
	mc->deadline_ms = now + LINGER_MS;
}

static void write_some(struct mconn *mc, uint64_t now)
{
	while (mc->out_sent < mc->out_len) {
		ssize_t w = send(mc->fd, mc->out + mc->out_sent, mc->out_len - mc->out_sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_close(mc);
			return;
		}
		mc->out_sent += (size_t)w;
		mc->deadline_ms = now + CTL_METRICS_SEND_MS; /* progress */
	}
	linger(mc, now);
}

static void read_some(struct ctl *ctl, struct mconn *mc, uint64_t now)
{
	if (mc->state == M_LINGER) {
		char junk[4096];
		ssize_t r = recv(mc->fd, junk, sizeof(junk), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			conn_close(mc);
		return;
	}
	ssize_t r = recv(mc->fd, mc->in + mc->in_len, sizeof(mc->in) - mc->in_len, MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		conn_close(mc); /* gone before asking anything complete */
		return;
	}
	mc->in_len += (size_t)r;
	struct ctl_http_route rt;
	if (ctl_http_route(mc->in, mc->in_len, &rt)) {
		answer(ctl, mc, &rt, now);
		if (mc->state == M_WRITING)
			write_some(mc, now);
	}
}

/* Beyond the cap: told so at once (the socket's buffer takes a short answer). */
static void refuse(struct ctl *ctl, int fd)
{
	atomic_fetch_add(&ctl->ctr.metrics_refused, 1);
	char head[512];
	static const char body[] = "too many metrics clients; try again\n";
	int hl = ctl_http_head(head, sizeof(head), 503, "text/plain; charset=utf-8", sizeof(body) - 1);
	if (send(fd, head, (size_t)hl, MSG_NOSIGNAL | MSG_DONTWAIT) == hl)
		(void)!send(fd, body, sizeof(body) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	/* Take what it sent already, so the close is a FIN rather than a reset. */
	char junk[4096];
	while (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
	shutdown(fd, SHUT_WR);
	close(fd);
}

static void accept_some(struct ctl *ctl, uint64_t now)
{
	struct ctl_metrics *m = ctl->metrics;
	for (unsigned k = 0; k < ACCEPTS_PER_TURN; k++) {
		int fd = accept4(m->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("control.metrics: accept: %s", strerror(errno));
			return;
		}
		struct mconn *mc = NULL;
		for (unsigned i = 0; i < CTL_METRICS_MAX_CONNS && !mc; i++)
			if (m->conn[i].state == M_FREE)
				mc = &m->conn[i];
		if (!mc) {
			refuse(ctl, fd);
			continue;
		}
		mc->fd = fd;
		mc->state = M_READING;
		mc->in_len = 0;
		mc->deadline_ms = now + CTL_METRICS_HEAD_MS;
	}
}

void ctl_metrics_serve(struct ctl *ctl, const struct pollfd *pfd, uint64_t now)
{
	struct ctl_metrics *m = ctl->metrics;
	if (!m)
		return;
	for (unsigned i = 0; i < CTL_METRICS_MAX_CONNS; i++) {
		struct mconn *mc = &m->conn[i];
		short ev = pfd[1 + i].revents;
		if (mc->state == M_FREE || pfd[1 + i].fd != mc->fd || !ev)
			continue;
		if (mc->state == M_WAITING)
			conn_close(mc); /* hung up: the worker's reply will find nobody */
		else if (mc->state != M_WRITING)
			read_some(ctl, mc, now);
		else if (ev & (POLLOUT | POLLERR | POLLHUP))
			write_some(mc, now);
	}
	/* After the connections: a slot freed this turn is taken by a newcomer next. */
	if (pfd[0].revents & POLLIN)
		accept_some(ctl, now);
	for (unsigned i = 0; i < CTL_METRICS_MAX_CONNS; i++) {
		struct mconn *mc = &m->conn[i];
		if (mc->state == M_FREE || now < mc->deadline_ms)
			continue;
		if (mc->state == M_READING) {
			atomic_fetch_add(&ctl->ctr.metrics_timeouts, 1);
			respond_text(mc, 408, "Request Timeout: the request head did not arrive in time\n", now);
			if (mc->state == M_WRITING)
				write_some(mc, now);
		} else {
			if (mc->state == M_WRITING || mc->state == M_WAITING)
				atomic_fetch_add(&ctl->ctr.metrics_timeouts, 1);
			conn_close(mc);
		}
	}
}
