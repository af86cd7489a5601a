/* Outbound HTTP from objects: duro_fetch checks the URL against outbound.allow before
 * anything is sent (a destination it does not name is refused, no connection attempted),
 * then makes a call (call.c) whose far end is an origin rather than an object: it waits
 * for the event's writes like any call (the output gate), and once its gate opens it runs
 * on this core's HTTP client (dataplane/http/http_client.c, keep-alive pool per core); the
 * answer comes back through call_return and runs done() as an event of the caller.
 * Host names are resolved once at start, those outbound.allow names exactly (a reactor
 * never waits on a lookup); names only a wildcard pattern covers are refused. */
#include "fetch.h"
#include "base_assert.h"
#include "core.h"
#include "http.h"
#include "log.h"
#include "obj.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct fetch_core {
	struct http_client_config hcfg;
	const struct obj_outbound_config *cfg;
	struct obj_allow allow[OBJ_MAX_ALLOW];
	unsigned nallow;
	int have_client;
	uint64_t refused_logged_ms;
};

struct url {
	int tls;
	int ws; /* ws:// or wss:// */
	char host[OBJ_OUTBOUND_HOST_MAX]; /* lower case; IPv6 without brackets */
	int ipv6;
	uint16_t port;
	int port_given;
	const char *rest; /* path and query, or "" */
};

static int parse_port(const char *p, size_t n, uint16_t *out)
{
	if (n == 0 || n > 5)
		return -EINVAL;
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

/* scheme "://" authority [path-abempty] ["?" query]; no userinfo, no fragment. */
static int parse_url(const char *s, struct url *u, int allow_wild)
{
	memset(u, 0, sizeof(*u));
	if (!strncasecmp(s, "http://", 7)) {
		s += 7;
	} else if (!strncasecmp(s, "https://", 8)) {
		u->tls = 1;
		s += 8;
	} else if (!strncasecmp(s, "ws://", 5)) {
		u->ws = 1;
		s += 5;
	} else if (!strncasecmp(s, "wss://", 6)) {
		u->ws = 1;
		u->tls = 1;
		s += 6;
	} else {
		return -EINVAL;
	}
	size_t alen = strcspn(s, "/?#");
	const char *a = s, *aend = s + alen;
	u->rest = aend;
	if (strchr(u->rest, '#') || memchr(a, '@', alen))
		return -EINVAL;
	const char *hend;
	const char *colon;
	if (alen && a[0] == '[') {
		const char *rb = memchr(a, ']', alen);
		if (!rb)
			return -EINVAL;
		u->ipv6 = 1;
		a++;
		hend = rb;
		colon = rb + 1 < aend ? rb + 1 : NULL;
		if (colon && *colon != ':')
			return -EINVAL;
	} else {
		colon = memchr(a, ':', alen);
		hend = colon ? colon : aend;
	}
	size_t hl = (size_t)(hend - a);
	if (hl == 0 || hl >= sizeof(u->host))
		return -EINVAL;
	for (size_t i = 0; i < hl; i++) {
		char ch = (char)tolower((unsigned char)a[i]);
		if (!(isalnum((unsigned char)ch) || ch == '.' || ch == '-' || (u->ipv6 && ch == ':') ||
		      (allow_wild && ch == '*')))
			return -EINVAL;
		u->host[i] = ch;
	}
	u->port = u->tls ? 443 : 80;
	if (colon) {
		size_t pl = (size_t)(aend - colon - 1);
		if (allow_wild && pl == 1 && colon[1] == '*') {
			u->port = 0;
		} else if (parse_port(colon + 1, pl, &u->port) < 0) {
			return -EINVAL;
		}
		u->port_given = 1;
	}
	for (const char *p = u->rest; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return -EINVAL;
	return 0;
}

int obj_allow_parse(const char *pattern, struct obj_allow *out, const char **why)
{
	struct url u;
	memset(out, 0, sizeof(*out));
	if (parse_url(pattern, &u, 1) < 0) {
		*why = "want scheme://host[:port] (http, https, ws or wss; host an address, a name, "
		       "*.suffix or *; port a number or *)";
		return -EINVAL;
	}
	if (*u.rest && strcmp(u.rest, "/")) {
		*why = "a pattern names a destination, not a path";
		return -EINVAL;
	}
	const char *star = strchr(u.host, '*');
	if (star && !(!strcmp(u.host, "*") || (star == u.host && u.host[1] == '.' && !strchr(u.host + 1, '*')))) {
		*why = "a wildcard is the whole host (*) or its first label (*.example.com)";
		return -EINVAL;
	}
	out->tls = (uint8_t)u.tls;
	out->any_host = !strcmp(u.host, "*");
	out->suffix = star && !out->any_host;
	out->port = u.port;
	const char *h = out->suffix ? u.host + 1 : u.host;
	size_t hl = strlen(h);
	DURO_ASSERT(hl < sizeof(out->host));
	memcpy(out->host, h, hl + 1);
	return 0;
}

int obj_outbound_check(const char *pattern, const char **why)
{
	struct obj_allow a;
	return obj_allow_parse(pattern, &a, why);
}

static int allowed(const struct fetch_core *fc, const struct url *u)
{
	size_t hl = strlen(u->host);
	for (unsigned i = 0; i < fc->nallow; i++) {
		const struct obj_allow *a = &fc->allow[i];
		if (a->tls != u->tls || (a->port && a->port != u->port))
			continue;
		if (a->any_host || !strcmp(a->host, u->host))
			return 1;
		size_t sl = strlen(a->host);
		if (a->suffix && hl > sl && !strcmp(u->host + hl - sl, a->host))
			return 1;
	}
	return 0;
}

/* The names outbound.allow spells out, resolved at start (obj_outbound_resolve), then
 * read-only: IPv4 preferred (the listeners and tests here are IPv4). */
static struct resolved_name {
	char host[OBJ_OUTBOUND_HOST_MAX];
	struct in_addr in4;
	struct in6_addr in6;
	uint8_t have4, have6;
} resolved[OBJ_MAX_ALLOW];
static unsigned nnames;

int obj_outbound_resolve(const struct obj_outbound_config *cfg)
{
	nnames = 0;
	for (unsigned i = 0; i < cfg->nallow && i < OBJ_MAX_ALLOW; i++) {
		struct obj_allow a;
		const char *why;
		struct in6_addr tmp;
		if (obj_allow_parse(cfg->allow[i], &a, &why) < 0 || a.any_host || a.suffix ||
		    inet_pton(AF_INET, a.host, &tmp) == 1 || inet_pton(AF_INET6, a.host, &tmp) == 1)
			continue; /* addresses need no lookup; wildcards cannot have one */
		int dup = 0;
		for (unsigned k = 0; k < nnames; k++)
			dup |= !strcmp(resolved[k].host, a.host);
		if (dup)
			continue;
		struct resolved_name *n = &resolved[nnames];
		memset(n, 0, sizeof(*n));
		memcpy(n->host, a.host, sizeof(n->host));
		struct addrinfo hints, *res = NULL;
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		int r = getaddrinfo(a.host, NULL, &hints, &res);
		if (r != 0) {
			log_warn("outbound.allow[%u]: %s: %s: fetches to it fail (-EHOSTUNREACH) until a restart",
				 i, a.host, gai_strerror(r));
			continue;
		}
		for (struct addrinfo *p = res; p; p = p->ai_next) {
			if (p->ai_family == AF_INET && !n->have4) {
				n->in4 = ((struct sockaddr_in *)p->ai_addr)->sin_addr;
				n->have4 = 1;
			} else if (p->ai_family == AF_INET6 && !n->have6) {
				n->in6 = ((struct sockaddr_in6 *)p->ai_addr)->sin6_addr;
				n->have6 = 1;
			}
		}
		freeaddrinfo(res);
		nnames++;
	}
	return 0;
}

/* IP literals, and the names resolved at start. */
static int resolve(const struct url *u, struct net_dial *d)
{
	memset(d, 0, sizeof(*d));
	struct sockaddr_in *in4 = (struct sockaddr_in *)&d->addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&d->addr;
	if (u->ipv6) {
		if (inet_pton(AF_INET6, u->host, &in6->sin6_addr) != 1)
			return -EINVAL;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(u->port);
		d->addrlen = sizeof(*in6);
		return 0;
	}
	if (inet_pton(AF_INET, u->host, &in4->sin_addr) != 1) {
		const struct resolved_name *n = NULL;
		for (unsigned k = 0; k < nnames && !n; k++)
			if (!strcmp(resolved[k].host, u->host))
				n = &resolved[k];
		if (!n || (!n->have4 && !n->have6))
			return -EHOSTUNREACH;
		if (!n->have4) {
			in6->sin6_family = AF_INET6;
			in6->sin6_addr = n->in6;
			in6->sin6_port = htons(u->port);
			d->addrlen = sizeof(*in6);
			return 0;
		}
		in4->sin_addr = n->in4;
	}
	in4->sin_family = AF_INET;
	in4->sin_port = htons(u->port);
	d->addrlen = sizeof(*in4);
	return 0;
}

/* Fields the client writes itself, or that would change how the connection is framed. */
static int forbidden_header(const struct duro_str *name)
{
	static const char *const names[] = { "host", "content-length", "transfer-encoding",
					     "connection", "upgrade", "te", "keep-alive", NULL };
	for (unsigned i = 0; names[i]; i++)
		if (name->len == strlen(names[i]) && !strncasecmp(name->ptr, names[i], name->len))
			return 1;
	return 0;
}

static unsigned fetches_of(const struct object *obj)
{
	unsigned n = 0;
	const struct list_node *heads[2] = { &obj->calls_made, &obj->calls_pending };
	for (int k = 0; k < 2; k++)
		for (const struct list_node *p = heads[k]->next; p != heads[k]; p = p->next)
			n += LIST_CONTAINER(p, const struct obj_call, node)->is_fetch;
	return n;
}

int obj_outbound_target(struct core *c, unsigned ns, const char *url, int ws,
			struct obj_target *t)
{
	struct fetch_core *fc = c->obj->fetch;
	struct obj_call_counters *ctr = call_counters_ns(c, ns);
	if (!fc)
		return -EOPNOTSUPP;
	struct url u;
	if (!url || parse_url(url, &u, 0) < 0 || u.ws != ws)
		return -EINVAL;
	if (!allowed(fc, &u)) {
		ctr->fetch_refused++;
		if (c->now_ms >= fc->refused_logged_ms + 1000) {
			fc->refused_logged_ms = c->now_ms;
			log_warn("class %s: %s to %s://%s:%u refused: outbound.allow does not name it "
				 "(%llu refused on core %u so far)", c->obj->view.ns[ns].cls->name,
				 ws ? "a WebSocket" : "a fetch", ws ? (u.tls ? "wss" : "ws") : (u.tls ? "https" : "http"),
				 u.host, u.port, (unsigned long long)ctr->fetch_refused, c->index);
		}
		return -EACCES;
	}
	int r = resolve(&u, &t->dial);
	if (r < 0)
		return r;
	t->dial.tls = u.tls;
	size_t hl = strlen(u.host);
	memcpy(t->name, u.host, hl + 1);
	t->dial.server_name = t->name;
	int n = u.port_given && u.port != (u.tls ? 443 : 80)
			? snprintf(t->host, sizeof(t->host), u.ipv6 ? "[%s]:%u" : "%s:%u", u.host, u.port)
			: snprintf(t->host, sizeof(t->host), u.ipv6 ? "[%s]" : "%s", u.host);
	int pl = snprintf(t->target, sizeof(t->target), "%s%s", u.rest[0] == '/' ? "" : "/", u.rest);
	if (n < 0 || (size_t)n >= sizeof(t->host) || pl < 0 || (size_t)pl >= sizeof(t->target))
		return -EINVAL;
	return 0;
}

int duro_fetch(struct duro_object *o, const char *url, const char *method,
	       const struct duro_kv *hdrs, size_t nh, const void *body, size_t len,
	       const struct duro_call_opts *opt, duro_call_fn *done, void *arg)
{
	struct object *obj = (struct object *)o;
	struct core *c = obj->core;
	struct fetch_core *fc = c->obj->fetch;
	struct obj_call_counters *ctr = call_counters_ns(c, obj->ns->index);
	DURO_ASSERT(obj->running);
	struct url u;
	struct net_dial d;
	if (!url || parse_url(url, &u, 0) < 0 || u.ws) {
		ctr->refused++;
		return -EINVAL;
	}
	if (!allowed(fc, &u)) {
		ctr->fetch_refused++;
		if (c->now_ms >= fc->refused_logged_ms + 1000) {
			fc->refused_logged_ms = c->now_ms;
			log_warn("class %s: a fetch to %s://%s:%u refused: outbound.allow does not name it "
				 "(%llu refused on core %u so far)", obj->cls->name, u.tls ? "https" : "http",
				 u.host, u.port, (unsigned long long)ctr->fetch_refused, c->index);
		}
		return -EACCES;
	}
	int r = resolve(&u, &d);
	if (r < 0) {
		ctr->refused++;
		return r;
	}
	for (size_t i = 0; i < nh; i++)
		if (hdrs && forbidden_header(&hdrs[i].key)) {
			ctr->refused++;
			return -EINVAL;
		}
	if (fetches_of(obj) >= fc->cfg->max_per_object) {
		ctr->overloaded++;
		return -EBUSY;
	}
	/* The request's target: the URL's path and query ("/" when it has none). */
	char path[4096];
	int pl = snprintf(path, sizeof(path), "%s%s", u.rest[0] == '/' ? "" : "/", u.rest);
	if (pl < 0 || (size_t)pl >= sizeof(path)) {
		ctr->refused++;
		return -EINVAL;
	}
	struct obj_call *call = call_make(obj, method ? method : "GET", path, hdrs, nh, body, len,
					  opt, done, arg, fc->cfg->timeout_ms, &r);
	if (!call)
		return r;
	call->is_fetch = 1;
	struct http_fetch *f = &call->fetch;
	memset(f, 0, sizeof(*f));
	f->dial = d;
	f->dial.tls = u.tls;
	/* fetch_host: the name (for TLS), a NUL, then the Host field's value. */
	size_t hl = strlen(u.host);
	memcpy(call->fetch_host, u.host, hl + 1);
	char *hv = call->fetch_host + hl + 1;
	size_t room = sizeof(call->fetch_host) - hl - 1;
	int n = u.port_given && u.port != (u.tls ? 443 : 80)
			? snprintf(hv, room, u.ipv6 ? "[%s]:%u" : "%s:%u", u.host, u.port)
			: snprintf(hv, room, u.ipv6 ? "[%s]" : "%s", u.host);
	f->dial.server_name = call->fetch_host;
	f->host = hv;
	f->host_len = (size_t)n;
	ctr->made++;
	ctr->fetches++;
	return 0;
}

/* The client's answer: done() runs now. The client touches nothing of the request after
 * this (its connection is back in the pool or closing), so done() may fetch again. */
static void fetch_done(struct core *c, void *arg, int err)
{
	call_done_here(c, arg, err);
}

void fetch_start(struct core *c, struct obj_call *call)
{
	struct fetch_core *fc = c->obj->fetch;
	struct http_fetch *f = &call->fetch;
	f->req = &call->ex.req;
	f->out = &call->ex;
	f->max_response_bytes = fc->cfg->max_response_bytes;
	f->deadline_ms = call->t0_ns / 1000000 + call->timeout_ms;
	f->done = fetch_done;
	f->arg = call;
	int r = fc->have_client ? http_client_fetch(c, f) : -EOPNOTSUPP;
	if (r < 0)
		call_return(c, call, r);
}

int fetch_core_init(struct core *c)
{
	struct fetch_core *fc = calloc(1, sizeof(*fc));
	if (!fc)
		return -ENOMEM;
	c->obj->fetch = fc;
	fc->cfg = &c->obj->rt->cfg->outbound;
	for (unsigned i = 0; i < fc->cfg->nallow && i < OBJ_MAX_ALLOW; i++) {
		const char *why;
		if (obj_allow_parse(fc->cfg->allow[i], &fc->allow[fc->nallow], &why) == 0)
			fc->nallow++;
		else /* the config was checked: only a test's own runtime gets here */
			log_warn("outbound.allow[%u]: %s", i, why);
	}
	fc->hcfg.connect_timeout_ms = fc->cfg->connect_timeout_ms;
	fc->hcfg.idle_timeout_ms = fc->cfg->idle_timeout_ms;
	fc->hcfg.max_idle_per_core = fc->cfg->max_idle_per_core;
	fc->hcfg.max_head_bytes = 64 * 1024;
	if (c->http) { /* cores without a network (unit tests) fetch nothing */
		int r = http_client_core_init(c, &fc->hcfg, http_backend(c));
		if (r < 0)
			return r;
		fc->have_client = 1;
	}
	return 0;
}

void fetch_core_fini(struct core *c)
{
	struct fetch_core *fc = c->obj ? c->obj->fetch : NULL;
	if (!fc)
		return;
	if (fc->have_client)
		http_client_core_fini(c);
	free(fc);
	c->obj->fetch = NULL;
}
