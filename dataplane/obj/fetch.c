/* Outbound HTTP from objects: duro_fetch checks the URL against outbound.allow before
 * anything is sent (a destination it does not name is refused, no connection attempted),
 * then makes a call (call.c) whose far end is an origin rather than an object: it waits
 * for the event's writes like any call (the output gate), and once its gate opens it runs
 * on this core's HTTP client (dataplane/http/http_client.c, keep-alive pool per core); the
 * answer comes back through call_return and runs done() as an event of the caller.
 * Host names are those outbound.allow spells out, kept resolved by a thread off the cores
 * (fetch_resolve.c: a reactor never waits on a lookup); names only a wildcard pattern
 * covers are refused. */
#include "fetch.h"
#include "base_assert.h"
#include "core.h"
#include "http.h"
#include "log.h"
#include "obj.h"

#include <arpa/inet.h>
#include <ctype.h>
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

int obj_outbound_resolve(const struct obj_outbound_config *cfg)
{
	char names[OBJ_MAX_ALLOW][OBJ_OUTBOUND_HOST_MAX];
	unsigned n = 0;
	for (unsigned i = 0; i < cfg->nallow && i < OBJ_MAX_ALLOW; i++) {
		struct obj_allow a;
		const char *why;
		struct in6_addr tmp;
		if (obj_allow_parse(cfg->allow[i], &a, &why) < 0 || a.any_host || a.suffix ||
		    inet_pton(AF_INET, a.host, &tmp) == 1 || inet_pton(AF_INET6, a.host, &tmp) == 1)
			continue; /* addresses need no lookup; wildcards cannot have one */
		int dup = 0;
		for (unsigned k = 0; k < n; k++)
			dup |= !strcmp(names[k], a.host);
		if (!dup)
			memcpy(names[n++], a.host, sizeof(names[0]));
	}
	return fetch_resolve_start(cfg, (const char (*)[OBJ_OUTBOUND_HOST_MAX])names, n);
}

void obj_outbound_resolve_stop(void) { fetch_resolve_stop(); }

/* IP literals, and the names the resolver thread keeps (fetch_resolve.c). */
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
	if (inet_pton(AF_INET, u->host, &in4->sin_addr) != 1)
		return fetch_resolve(u->host, u->port, d);
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
	if (obj->nfetches >= fc->cfg->max_per_object) {
		ctr->overloaded++;
		return -EBUSY;
	}
	/* The request's target: the URL's path and query ("/" when it has none). */
	char path[4096];
	size_t rl = strlen(u.rest), slash = u.rest[0] != '/';
	if (slash + rl >= sizeof(path)) {
		ctr->refused++;
		return -EINVAL;
	}
	path[0] = '/';
	memcpy(path + slash, u.rest, rl + 1);
	struct obj_call *call = call_make(obj, method ? method : "GET", path, hdrs, nh, body, len,
					  opt, done, arg, fc->cfg->timeout_ms, &r);
	if (!call)
		return r;
	call->is_fetch = 1;
	obj->nfetches++;
	struct http_fetch *f = &call->fetch;
	memset(f, 0, sizeof(*f));
	f->dial = d;
	f->dial.tls = u.tls;
	/* fetch_host: the name (for TLS), a NUL, then the Host field's value. */
	size_t hl = strlen(u.host);
	memcpy(call->fetch_host, u.host, hl + 1);
	char *hv = call->fetch_host + hl + 1, *w = hv;
	/* Room: a name twice, brackets, ":65535" and the NULs (no printf on every fetch). */
	_Static_assert(sizeof(call->fetch_host) >= 2 * OBJ_OUTBOUND_HOST_MAX + 8, "fetch_host");
	if (u.ipv6)
		*w++ = '[';
	memcpy(w, u.host, hl);
	w += hl;
	if (u.ipv6)
		*w++ = ']';
	if (u.port_given && u.port != (u.tls ? 443 : 80)) {
		char digits[5];
		unsigned nd = 0;
		for (unsigned v = u.port; v; v /= 10)
			digits[nd++] = (char)('0' + v % 10);
		*w++ = ':';
		while (nd)
			*w++ = digits[--nd];
	}
	*w = 0;
	f->dial.server_name = call->fetch_host;
	f->host = hv;
	f->host_len = (size_t)(w - hv);
	ctr->made++;
	ctr->fetches++;
	return 0;
}

/* The client's answer: done() runs now. The client touches nothing of the request after
 * this (its connection is back in the pool or closing), so done() may fetch again. */
static void fetch_done(struct core *c, void *arg, int err)
{
	struct obj_call *call = arg;
	/* The name's address may have moved (a new origin, a failover): looked up again soon,
	 * so later fetches go to where it points now. This one fails as it did. */
	if (err == -ECONNREFUSED || err == -EHOSTUNREACH || err == -ENETUNREACH || err == -ETIMEDOUT)
		fetch_resolve_failed(call->fetch_host);
	call_done_here(c, call, err);
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
