/* The outbound resolver (fetch_resolve.c) over a hosts file: the file's lines as hosts(5)
 * reads them, a new address published on the interval, and a failed connect's refresh. */
#include "check.h"
#include "clock.h"
#include "fetch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char hosts[64];

static void write_hosts(const char *text)
{
	char tmp[80];
	snprintf(tmp, sizeof(tmp), "%s.new", hosts);
	FILE *f = fopen(tmp, "w");
	CHECK(f != NULL);
	fputs(text, f);
	fclose(f);
	CHECK_EQ(rename(tmp, hosts), 0); /* whole: the resolver never reads half a file */
}

/* The IPv4 address host resolves to now, as text, or "" (and the error in *err). */
static const char *v4_of(const char *host, char *buf, int *err)
{
	struct net_dial d;
	memset(&d, 0, sizeof(d));
	buf[0] = 0;
	*err = fetch_resolve(host, 8080, &d);
	if (*err == 0 && d.addr.ss_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)&d.addr;
		CHECK_EQ(ntohs(in4->sin_port), 8080);
		inet_ntop(AF_INET, &in4->sin_addr, buf, INET_ADDRSTRLEN);
	}
	return buf;
}

/* Waits (at most 5 s) until host resolves to want. */
static int becomes(const char *host, const char *want)
{
	char buf[INET_ADDRSTRLEN];
	int err;
	for (uint64_t end = clock_now_ms() + 5000; clock_now_ms() < end; usleep(10000))
		if (!strcmp(v4_of(host, buf, &err), want))
			return 1;
	return 0;
}

static const char names[3][OBJ_OUTBOUND_HOST_MAX] = { "origin.test", "v6only.test", "spare.test" };

static void test_hosts_file_lines(void)
{
	write_hosts("# comment line\n"
		    "127.0.0.9   unrelated.test\n"
		    "not-an-address origin.test\n"
		    "127.0.0.2 alias.test ORIGIN.test # case does not matter\n"
		    "127.0.0.3 origin.test\n" /* the first address of a family wins */
		    "::1 v6only.test\n"
		    "::2 origin.test\n"
		    "127.0.0.4 spare.test\n");
	struct obj_outbound_config cfg = { .resolve_interval_ms = 0 };
	snprintf(cfg.hosts_file, sizeof(cfg.hosts_file), "%s", hosts);
	CHECK_EQ(fetch_resolve_start(&cfg, names, 3), 0);
	char buf[INET_ADDRSTRLEN];
	int err;
	CHECK(!strcmp(v4_of("origin.test", buf, &err), "127.0.0.2")); /* IPv4 first */
	CHECK(!strcmp(v4_of("spare.test", buf, &err), "127.0.0.4"));
	struct net_dial d;
	memset(&d, 0, sizeof(d));
	CHECK_EQ(fetch_resolve("v6only.test", 443, &d), 0);
	CHECK_EQ(d.addr.ss_family, AF_INET6);
	CHECK_EQ(d.addrlen, sizeof(struct sockaddr_in6));
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&d.addr;
	CHECK(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
	CHECK_EQ(ntohs(in6->sin6_port), 443);
	/* Only names outbound.allow spelled out: nothing else is looked up, ever. */
	v4_of("unrelated.test", buf, &err);
	CHECK_EQ(err, -EHOSTUNREACH);
	v4_of("alias.test", buf, &err);
	CHECK_EQ(err, -EHOSTUNREACH);
	fetch_resolve_stop();
}

static void test_refreshed_on_the_interval(void)
{
	write_hosts("127.0.0.2 origin.test\n::1 v6only.test\n127.0.0.4 spare.test\n");
	struct obj_outbound_config cfg = { .resolve_interval_ms = 50 };
	snprintf(cfg.hosts_file, sizeof(cfg.hosts_file), "%s", hosts);
	CHECK_EQ(fetch_resolve_start(&cfg, names, 3), 0);
	CHECK(becomes("origin.test", "127.0.0.2"));
	write_hosts("127.0.0.3 origin.test\n::1 v6only.test\n127.0.0.4 spare.test\n");
	CHECK(becomes("origin.test", "127.0.0.3"));
	/* A name the file no longer has, and the system's resolver does not know: its last
	 * address stays (spare.test is not in DNS; .test is reserved, RFC 6761). */
	write_hosts("127.0.0.3 origin.test\n::1 v6only.test\n");
	usleep(300000);
	char buf[INET_ADDRSTRLEN];
	int err;
	CHECK(!strcmp(v4_of("spare.test", buf, &err), "127.0.0.4"));
	fetch_resolve_stop();
}

static void test_a_failed_connect_refreshes(void)
{
	write_hosts("127.0.0.2 origin.test\n::1 v6only.test\n127.0.0.4 spare.test\n");
	struct obj_outbound_config cfg = { .resolve_interval_ms = 0 }; /* never on a timer */
	snprintf(cfg.hosts_file, sizeof(cfg.hosts_file), "%s", hosts);
	CHECK_EQ(fetch_resolve_start(&cfg, names, 3), 0);
	write_hosts("127.0.0.5 origin.test\n::1 v6only.test\n127.0.0.4 spare.test\n");
	usleep(200000);
	char buf[INET_ADDRSTRLEN];
	int err;
	CHECK(!strcmp(v4_of("origin.test", buf, &err), "127.0.0.2")); /* not looked at yet */
	fetch_resolve_failed("127.0.0.1"); /* an address: nothing to look up */
	fetch_resolve_failed("origin.test");
	CHECK(becomes("origin.test", "127.0.0.5"));
	fetch_resolve_stop();
}

int main(void)
{
	snprintf(hosts, sizeof(hosts), "/tmp/duro-test-hosts-%d", (int)getpid());
	RUN(test_hosts_file_lines);
	RUN(test_refreshed_on_the_interval);
	RUN(test_a_failed_connect_refreshes);
	unlink(hosts);
	return CHECK_DONE();
}
