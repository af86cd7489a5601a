/* Host names for outbound fetches: the names outbound.allow spells out, looked up off the
 * cores by one resolver thread (at start, every outbound.resolve_interval_ms, and soon
 * after a core could not connect to a name's address) and published to the cores through
 * a sequence lock per name, so a fetch reads an address with a few atomic loads: no lock,
 * no system call, no lookup on a reactor. outbound.hosts_file, when set, is read first
 * (hosts(5) lines, read again on every refresh), then the system's resolver.
 *
 *   resolver thread: poll(kick eventfd, interval) -> lookups -> seq odd, words, seq even
 *   cores:           seq even? words, seq unchanged? -> address   (else read again) */
#include "fetch.h"
#include "base_assert.h"
#include "clock.h"
#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* A refresh a failed connect asks for waits this long after the previous refresh: a dead
 * origin, failing every fetch, costs one round of lookups a second, not one per fetch. */
#define RESOLVE_MIN_GAP_MS 1000
#define RESOLVE_LINE_MAX 1024

enum { HAVE4 = 1, HAVE6 = 2 };

/* One name. host is written before the thread and the cores start, then only read; the
 * address words are the sequence lock's data (each an atomic, so a reader racing the
 * writer reads torn values at worst, which the sequence check throws away). */
struct resolve_name {
	char host[OBJ_OUTBOUND_HOST_MAX];
	_Atomic uint32_t seq; /* odd while the resolver writes */
	_Atomic uint32_t have;
	_Atomic uint32_t in4;     /* network order */
	_Atomic uint64_t in6[2];  /* network order, as bytes */
	uint8_t failing; /* its last lookup failed (the resolver's own: logged once a spell) */
};

static struct {
	struct resolve_name names[OBJ_MAX_ALLOW];
	unsigned n;
	const struct obj_outbound_config *cfg;
	int efd; /* a core's kick: "a name's address refused or did not answer" */
	_Atomic int kicked, stop;
	int running;
	int hosts_err; /* the hosts file's last error, logged once (the resolver's own) */
	pthread_t thread;
} R = { .efd = -1 };

struct addrs {
	uint32_t have;
	struct in_addr in4;
	struct in6_addr in6;
};

/* The first IPv4 and the first IPv6 address of host in the hosts file: 1 when the file
 * names it (then the system's resolver is not asked), 0 when not, -errno when unreadable. */
static int hosts_file_lookup(const char *path, const char *host, struct addrs *out)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char line[RESOLVE_LINE_MAX];
	int found = 0;
	while (fgets(line, sizeof(line), f)) {
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *save = NULL, *addr = strtok_r(line, " \t\r\n", &save);
		if (!addr)
			continue;
		struct in_addr a4;
		struct in6_addr a6;
		int v4 = inet_pton(AF_INET, addr, &a4) == 1, v6 = !v4 && inet_pton(AF_INET6, addr, &a6) == 1;
		if (!v4 && !v6)
			continue;
		for (char *name = strtok_r(NULL, " \t\r\n", &save); name; name = strtok_r(NULL, " \t\r\n", &save)) {
			if (strcasecmp(name, host))
				continue;
			found = 1;
			if (v4 && !(out->have & HAVE4)) {
				out->in4 = a4;
				out->have |= HAVE4;
			} else if (v6 && !(out->have & HAVE6)) {
				out->in6 = a6;
				out->have |= HAVE6;
			}
		}
	}
	fclose(f);
	return found;
}

/* host's addresses now: 0, or a getaddrinfo error (EAI_*, not an errno). */
static int lookup(const char *host, struct addrs *out)
{
	memset(out, 0, sizeof(*out));
	const char *hf = R.cfg->hosts_file;
	if (hf[0]) {
		int r = hosts_file_lookup(hf, host, out);
		if (r > 0)
			return 0;
		if (r < 0 && r != R.hosts_err) /* once, not on every name and refresh */
			log_warn("outbound.hosts_file %s: %s (asking the system's resolver)", hf, strerror(-r));
		R.hosts_err = r < 0 ? r : 0;
	}
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	int r = getaddrinfo(host, NULL, &hints, &res);
	if (r != 0)
		return r;
	for (struct addrinfo *p = res; p; p = p->ai_next) {
		if (p->ai_family == AF_INET && !(out->have & HAVE4)) {
			out->in4 = ((struct sockaddr_in *)p->ai_addr)->sin_addr;
			out->have |= HAVE4;
		} else if (p->ai_family == AF_INET6 && !(out->have & HAVE6)) {
			out->in6 = ((struct sockaddr_in6 *)p->ai_addr)->sin6_addr;
			out->have |= HAVE6;
		}
	}
	freeaddrinfo(res);
	return 0;
}

/* A consistent copy of n's addresses (a reader: any thread, never blocks the writer). */
static void name_read(struct resolve_name *n, struct addrs *out)
{
	for (;;) {
		uint32_t s = atomic_load_explicit(&n->seq, memory_order_acquire);
		if (s & 1)
			continue; /* the resolver is writing: four stores, and only on a change */
		out->have = atomic_load_explicit(&n->have, memory_order_relaxed);
		uint32_t a4 = atomic_load_explicit(&n->in4, memory_order_relaxed);
		uint64_t w[2] = { atomic_load_explicit(&n->in6[0], memory_order_relaxed),
				  atomic_load_explicit(&n->in6[1], memory_order_relaxed) };
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&n->seq, memory_order_relaxed) != s)
			continue;
		memcpy(&out->in4, &a4, sizeof(a4));
		memcpy(&out->in6, w, sizeof(w));
		return;
	}
}

/* Publishes a (the resolver thread only, or the start before any reader). */
static void name_write(struct resolve_name *n, const struct addrs *a)
{
	uint32_t s = atomic_load_explicit(&n->seq, memory_order_relaxed);
	atomic_store_explicit(&n->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	uint32_t a4;
	uint64_t w[2];
	memcpy(&a4, &a->in4, sizeof(a4));
	memcpy(w, &a->in6, sizeof(w));
	atomic_store_explicit(&n->have, a->have, memory_order_relaxed);
	atomic_store_explicit(&n->in4, a4, memory_order_relaxed);
	atomic_store_explicit(&n->in6[0], w[0], memory_order_relaxed);
	atomic_store_explicit(&n->in6[1], w[1], memory_order_relaxed);
	atomic_store_explicit(&n->seq, s + 2, memory_order_release);
}

static void describe(const struct addrs *a, char *buf, size_t cap)
{
	char s4[INET_ADDRSTRLEN] = "", s6[INET6_ADDRSTRLEN] = "";
	if (a->have & HAVE4)
		inet_ntop(AF_INET, &a->in4, s4, sizeof(s4));
	if (a->have & HAVE6)
		inet_ntop(AF_INET6, &a->in6, s6, sizeof(s6));
	snprintf(buf, cap, "%s%s%s", s4, s4[0] && s6[0] ? " " : "", a->have ? s6 : "nothing");
}

/* Looks every name up again and publishes what changed. A lookup that fails keeps the
 * last addresses: a resolver outage does not stop fetches to names that worked. */
static void refresh(int first)
{
	for (unsigned i = 0; i < R.n; i++) {
		struct resolve_name *n = &R.names[i];
		struct addrs now, was;
		int r = lookup(n->host, &now);
		if (r != 0) {
			if (!n->failing)
				log_warn("outbound: %s: %s: %s", n->host, gai_strerror(r),
					 first ? "fetches to it fail (-EHOSTUNREACH) until it resolves"
					       : "its last addresses stay in use");
			n->failing = 1;
			continue;
		}
		n->failing = 0;
		name_read(n, &was);
		if (!first && was.have == now.have && !memcmp(&was.in4, &now.in4, sizeof(now.in4)) &&
		    !memcmp(&was.in6, &now.in6, sizeof(now.in6)))
			continue;
		if (!first) {
			char a[128], b[128];
			describe(&was, a, sizeof(a));
			describe(&now, b, sizeof(b));
			log_info("outbound: %s now resolves to %s (was %s)", n->host, b, a);
		}
		name_write(n, &now);
	}
}

static void *resolver_main(void *arg)
{
	(void)arg;
	unsigned interval = R.cfg->resolve_interval_ms;
	uint64_t last = clock_now_ms();
	uint64_t next = interval ? last + interval : UINT64_MAX;
	while (!atomic_load(&R.stop)) {
		uint64_t t = clock_now_ms();
		int timeout = next == UINT64_MAX ? -1 : next > t ? (int)(next - t < 60000 ? next - t : 60000) : 0;
		struct pollfd p = { .fd = R.efd, .events = POLLIN };
		int r = poll(&p, 1, timeout);
		if (atomic_load(&R.stop))
			break;
		if (r > 0 && (p.revents & POLLIN)) {
			uint64_t v;
			if (read(R.efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_warn("outbound resolver: read(eventfd): %s", strerror(errno));
			atomic_store(&R.kicked, 0); /* a later failure kicks again */
			uint64_t soon = last + RESOLVE_MIN_GAP_MS;
			if (soon < next)
				next = soon;
		}
		t = clock_now_ms();
		if (t < next)
			continue;
		refresh(0);
		last = clock_now_ms();
		next = interval ? last + interval : UINT64_MAX;
	}
	return NULL;
}

int fetch_resolve_start(const struct obj_outbound_config *cfg,
			const char (*names)[OBJ_OUTBOUND_HOST_MAX], unsigned count)
{
	DURO_ASSERT(count <= OBJ_MAX_ALLOW && !R.running);
	R.cfg = cfg;
	R.n = 0;
	for (unsigned i = 0; i < count; i++) {
		struct resolve_name *n = &R.names[R.n++];
		memcpy(n->host, names[i], sizeof(n->host));
		n->host[sizeof(n->host) - 1] = 0;
		n->failing = 0;
		atomic_store(&n->seq, 0);
		atomic_store(&n->have, 0);
	}
	/* Once now, before the cores start, so the first fetch finds its name resolved. */
	refresh(1);
	if (!R.n)
		return 0;
	R.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (R.efd < 0) {
		log_warn("outbound resolver: eventfd: %s: names stay as resolved now", strerror(errno));
		return 0;
	}
	atomic_store(&R.stop, 0);
	atomic_store(&R.kicked, 0);
	int r = pthread_create(&R.thread, NULL, resolver_main, NULL);
	if (r != 0) {
		log_warn("outbound resolver: pthread_create: %s: names stay as resolved now", strerror(r));
		close(R.efd);
		R.efd = -1;
		return 0;
	}
	pthread_setname_np(R.thread, "duro-resolve");
	R.running = 1;
	return 0;
}

void fetch_resolve_stop(void)
{
	if (R.running) {
		atomic_store(&R.stop, 1);
		uint64_t one = 1;
		if (write(R.efd, &one, sizeof(one)) < 0)
			log_warn("outbound resolver: write(eventfd): %s", strerror(errno));
		pthread_join(R.thread, NULL); /* after a lookup under way, if any */
		R.running = 0;
	}
	if (R.efd >= 0)
		close(R.efd);
	R.efd = -1;
	R.n = 0;
}

static struct resolve_name *find(const char *host)
{
	for (unsigned k = 0; k < R.n; k++)
		if (!strcmp(R.names[k].host, host))
			return &R.names[k];
	return NULL;
}

int fetch_resolve(const char *host, uint16_t port, struct net_dial *d)
{
	struct resolve_name *n = find(host);
	if (!n)
		return -EHOSTUNREACH;
	struct addrs a;
	name_read(n, &a);
	if (!a.have)
		return -EHOSTUNREACH;
	if (a.have & HAVE4) { /* IPv4 first: the listeners and tests here are IPv4 */
		struct sockaddr_in *in4 = (struct sockaddr_in *)&d->addr;
		in4->sin_family = AF_INET;
		in4->sin_addr = a.in4;
		in4->sin_port = htons(port);
		d->addrlen = sizeof(*in4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&d->addr;
		in6->sin6_family = AF_INET6;
		in6->sin6_addr = a.in6;
		in6->sin6_port = htons(port);
		d->addrlen = sizeof(*in6);
	}
	return 0;
}

void fetch_resolve_failed(const char *host)
{
	if (!R.running || !find(host) || atomic_exchange(&R.kicked, 1))
		return; /* an address, or a refresh asked for already */
	uint64_t one = 1;
	if (write(R.efd, &one, sizeof(one)) < 0)
		atomic_store(&R.kicked, 0);
}
