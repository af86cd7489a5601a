/* The etcd gateway client (etcd.h): one short-lived HTTP/1.1 connection per call (loopback
 * or LAN connects are cheap next to a lease TTL, and no stale keep-alive connection can
 * eat a renewal), poll-bounded reads, endpoint failover; the watch keeps its connection. */
#include "etcd.h"
#include "clock.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


int etcd_init(struct etcd_client *e, const char (*urls)[128], unsigned n, unsigned timeout_ms)
{
	memset(e, 0, sizeof(*e));
	if (n == 0 || n > ETCD_MAX_ENDPOINTS)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		struct etcd_endpoint *ep = &e->ep[i];
		const char *u = urls[i];
		if (strncmp(u, "http://", 7) != 0)
			return -EINVAL;
		const char *hp = u + 7, *colon = strrchr(hp, ':');
		if (!colon || colon == hp || strlen(colon + 1) >= sizeof(ep->port))
			return -EINVAL;
		size_t hl = (size_t)(colon - hp);
		/* [v6]:port */
		if (hp[0] == '[' && hl >= 2 && hp[hl - 1] == ']') {
			hp++;
			hl -= 2;
		}
		if (hl >= sizeof(ep->host))
			return -EINVAL;
		memcpy(ep->host, hp, hl);
		ep->host[hl] = 0;
		snprintf(ep->port, sizeof(ep->port), "%s", colon + 1);
		snprintf(ep->text, sizeof(ep->text), "%s", u);
	}
	e->n = n;
	e->timeout_ms = timeout_ms;
	return 0;
}

static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = clock_now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, (int)(deadline - now));
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* A non-blocking connected socket to ep by deadline, or a negative errno. */
static int dial(const struct etcd_endpoint *ep, uint64_t deadline)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai;
	if (getaddrinfo(ep->host, ep->port, &hints, &ai) != 0)
		return -EHOSTUNREACH;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int r = fd < 0 ? -errno : 0;
	if (r == 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		r = errno == EINPROGRESS ? wait_fd(fd, POLLOUT, deadline) : -errno;
		if (r == 0) {
			int err = 0;
			socklen_t sl = sizeof(err);
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl);
			r = -err;
		}
	}
	freeaddrinfo(ai);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t n, uint64_t deadline)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		int r = wait_fd(fd, POLLOUT, deadline);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The request's bytes (head and body); the caller frees them. */
static char *request_text(const struct etcd_endpoint *ep, const char *path, json_t *body,
			  int keep, size_t *len)
{
	char *b = json_dumps(body, JSON_COMPACT);
	if (!b)
		return NULL;
	size_t bl = strlen(b);
	char *out = NULL;
	FILE *f = open_memstream(&out, len);
	if (!f) {
		free(b);
		return NULL;
	}
	fprintf(f, "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
		   "Content-Length: %zu\r\n%s\r\n%s", path, ep->host, ep->port, bl,
		keep ? "" : "Connection: close\r\n", b);
	free(b);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static int grow(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 16384;
	while (c < need)
		c *= 2;
	char *n = realloc(*buf, c);
	if (!n)
		return -ENOMEM;
	*buf = n;
	*cap = c;
	return 0;
}

/* One exchange with one endpoint: the JSON reply in *out, or a negative errno. */
static int call_one(struct etcd_client *e, const struct etcd_endpoint *ep, const char *path,
		    json_t *body, json_t **out)
{
	uint64_t deadline = clock_now_ms() + e->timeout_ms;
	size_t rlen;
	char *req = request_text(ep, path, body, 0, &rlen);
	if (!req)
		return -ENOMEM;
	int fd = dial(ep, deadline);
	if (fd < 0) {
		free(req);
		snprintf(e->last_error, sizeof(e->last_error), "%s: connect: %s", ep->text, strerror(-fd));
		return fd;
	}
	int r = send_all(fd, req, rlen, deadline);
	free(req);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	struct etcd_http h = { 0 };
	while (r == 0) {
		if ((r = grow(&buf, &cap, len + 16384)) < 0)
			break;
		ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			r = wait_fd(fd, POLLIN, deadline);
			continue;
		}
		if (n < 0) {
			r = -errno;
			break;
		}
		len += (size_t)n;
		r = etcd_http_feed(&h, buf, len, n == 0, ETCD_MAX_REPLY);
		if (r == 1) {
			r = 0;
			break;
		}
		if (r == 0 && n == 0)
			r = -ECONNRESET;
	}
	close(fd);
	if (r < 0) {
		free(buf);
		snprintf(e->last_error, sizeof(e->last_error), "%.160s%.40s: %s", ep->text, path,
			 strerror(-r));
		return r == -EPROTO ? -EBADMSG : r; /* a broken reply: try another endpoint */
	}
	json_t *j = json_loadb(buf + h.head_len, h.dst - h.head_len, 0, NULL);
	char msg[200];
	if (!json_is_object(j)) {
		e->ctr.bad_replies++;
		snprintf(e->last_error, sizeof(e->last_error), "%.160s%.40s: HTTP %d, not a JSON object",
			 ep->text, path, h.status);
		r = -EPROTO;
	} else if (h.status != 200 || etcd_parse_error(j, msg, sizeof(msg))) {
		if (etcd_parse_error(j, msg, sizeof(msg)))
			snprintf(e->last_error, sizeof(e->last_error), "%.160s%.40s: HTTP %d: %.200s",
				 ep->text, path, h.status, msg);
		else
			snprintf(e->last_error, sizeof(e->last_error), "%.160s%.40s: HTTP %d", ep->text,
				 path, h.status);
		r = -EPROTO;
	}
	free(buf);
	if (r < 0) {
		json_decref(j);
		return r;
	}
	*out = j;
	return 0;
}

int etcd_call(struct etcd_client *e, const char *path, json_t *body, json_t **out)
{
	e->ctr.requests++;
	int r = -EHOSTUNREACH;
	for (unsigned k = 0; k < e->n; k++) {
		unsigned i = (e->cur + k) % e->n;
		r = call_one(e, &e->ep[i], path, body, out);
		/* An error reply came from a working member: another would say the same. */
		if (r == 0 || r == -EPROTO) {
			if (i != e->cur)
				e->ctr.failovers++;
			e->cur = i;
			break;
		}
	}
	if (r < 0)
		e->ctr.failures++;
	return r;
}

int etcd_watch_open(struct etcd_client *e, struct etcd_watch *w, json_t *req)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	json_t *body = json_pack("{s:O}", "create_request", req);
	if (!body)
		return -ENOMEM;
	int r = -EHOSTUNREACH;
	for (unsigned k = 0; k < e->n; k++) {
		unsigned i = (e->cur + k) % e->n;
		const struct etcd_endpoint *ep = &e->ep[i];
		uint64_t deadline = clock_now_ms() + e->timeout_ms;
		size_t rlen;
		char *text = request_text(ep, "/v3/watch", body, 1, &rlen);
		if (!text) {
			r = -ENOMEM;
			break;
		}
		int fd = dial(ep, deadline);
		r = fd < 0 ? fd : send_all(fd, text, rlen, deadline);
		free(text);
		if (r == 0) {
			w->fd = fd;
			e->cur = i;
			break;
		}
		if (fd >= 0)
			close(fd);
		snprintf(e->last_error, sizeof(e->last_error), "%s/v3/watch: %s", ep->text, strerror(-r));
	}
	json_decref(body);
	w->opened_ms = clock_now_ms();
	return r;
}

void etcd_watch_close(struct etcd_watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->buf);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}

int etcd_watch_read(struct etcd_client *e, struct etcd_watch *w,
		    void (*fn)(void *arg, json_t *msg), void *arg)
{
	for (;;) {
		if (grow(&w->buf, &w->cap, w->len + 65536) < 0)
			return -ENOMEM;
		ssize_t n = recv(w->fd, w->buf + w->len, w->cap - w->len, MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		w->len += (size_t)n;
		int r = etcd_http_feed(&w->http, w->buf, w->len, n == 0, UINT64_MAX);
		if (r < 0)
			return r;
		if (w->http.head_len && w->http.status != 200)
			return -EPROTO;
		/* Whole messages, one a line, from the start of the body. */
		size_t used = 0;
		for (;;) {
			const char *p = w->buf + w->http.head_len + used;
			long l = etcd_stream_line(p, w->http.dst - w->http.head_len - used,
						  ETCD_MAX_WATCH_LINE);
			if (l < 0)
				return -E2BIG;
			if (l == 0)
				break;
			json_t *m = json_loadb(p, (size_t)l, 0, NULL);
			used += (size_t)l;
			if (!m) {
				e->ctr.watch_bad++;
				continue;
			}
			e->ctr.watch_messages++;
			fn(arg, m);
			json_decref(m);
		}
		if (used)
			w->len = etcd_http_consume(&w->http, w->buf, w->len, used);
		if (r == 1 || n == 0)
			return -EPIPE; /* the stream ended */
	}
}
