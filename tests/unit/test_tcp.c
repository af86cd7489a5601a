/* The dpdk stack's TCP pieces that need no packets: option parsing and its refusals,
 * sequence arithmetic across the wrap, SYN cookies (round trip, tampering, age), ISNs,
 * and the flow-to-core function with and without the port's RSS. */
#include "check.h"
#include "tcp_int.h"

#include <rte_thash.h>

#include <string.h>

static void test_options(void)
{
	struct tcp_opts o;
	/* What a Linux 6.18 SYN carries: MSS 1460, SACK_PERM, TS, NOP, WS 10. */
	const uint8_t linux_syn[] = { 2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 0, 1, 3, 3, 10 };
	CHECK(tcp_parse_opts(linux_syn, sizeof(linux_syn), &o) == 0);
	CHECK_EQ(o.mss, 1460);
	CHECK(o.sack_ok && o.ts && o.tsval == 7 && o.tsecr == 0);
	CHECK_EQ(o.wscale, 10);
	const uint8_t big_ws[] = { 3, 3, 15, 0 };
	CHECK(tcp_parse_opts(big_ws, sizeof(big_ws), &o) == 0 && o.wscale == 14); /* RFC 7323 */
	const uint8_t none[] = { 0, 2, 4, 0x05 };
	CHECK(tcp_parse_opts(none, sizeof(none), &o) == 0 && o.mss == 0 && o.wscale == -1);
	const uint8_t runs_past[] = { 2, 40, 5, 0xb4 };
	CHECK(tcp_parse_opts(runs_past, sizeof(runs_past), &o) == -1);
	const uint8_t len_one[] = { 8, 1, 0, 0 };
	CHECK(tcp_parse_opts(len_one, sizeof(len_one), &o) == -1);
	const uint8_t no_len[] = { 1, 1, 1, 2 };
	CHECK(tcp_parse_opts(no_len, sizeof(no_len), &o) == -1);
	const uint8_t odd_mss[] = { 2, 3, 9, 1, 1, 1 }; /* a known kind, wrong length: ignored */
	CHECK(tcp_parse_opts(odd_mss, sizeof(odd_mss), &o) == 0 && o.mss == 0);
	/* SACK blocks (RFC 2018) after timestamps, as Linux sends them. */
	const uint8_t sack2[] = { 1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 3, 1, 1, 5, 18,
				  0, 0, 0x10, 0, 0, 0, 0x20, 0, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0x10 };
	CHECK(tcp_parse_opts(sack2, sizeof(sack2), &o) == 0);
	CHECK(o.ts && o.tsval == 9 && o.nsack == 2);
	CHECK(o.sack[0][0] == 0x1000 && o.sack[0][1] == 0x2000);
	CHECK(o.sack[1][0] == 0xfffffff0u && o.sack[1][1] == 0x10); /* across the wrap */
	const uint8_t sack_bad[] = { 5, 9, 0, 0, 0, 1, 0, 0, 0 }; /* not 2 + 8n: ignored */
	CHECK(tcp_parse_opts(sack_bad, sizeof(sack_bad), &o) == 0 && o.nsack == 0);
	uint8_t sack5[2 + 40];
	memset(sack5, 0, sizeof(sack5));
	sack5[0] = 5;
	sack5[1] = 42; /* five blocks: more than fit beside anything; the first four are kept */
	CHECK(tcp_parse_opts(sack5, sizeof(sack5), &o) == 0 && o.nsack == 4);
	const uint8_t sack_past[] = { 5, 18, 0, 0, 0, 1, 0, 0, 0, 2 }; /* runs past the header */
	CHECK(tcp_parse_opts(sack_past, sizeof(sack_past), &o) == -1);
}

static void test_sequence_wrap(void)
{
	CHECK(seq_lt(0xfffffff0u, 0x10u) && seq_gt(0x10u, 0xfffffff0u));
	CHECK(seq_le(5, 5) && seq_ge(5, 5) && !seq_lt(5, 5));
	CHECK(seq_lt(0x7fffffffu, 0x80000000u));
}

static struct stack *make_stack(struct core *c, struct stack_env *env)
{
	static struct stack s;
	memset(&s, 0, sizeof(s));
	memset(env, 0, sizeof(*env));
	memset(c, 0, sizeof(*c));
	memcpy(env->secret, "0123456789abcdef", 16);
	env->ncores = 2;
	env->ipv4 = rte_cpu_to_be_32(RTE_IPV4(10, 77, 0, 1));
	s.env = env;
	s.c = c;
	c->now_ms = 1000000;
	c->now_ns = c->now_ms * 1000000ull;
	return &s;
}

static void test_syncookies(void)
{
	struct core *c = aligned_alloc(64, sizeof(*c));
	struct stack_env env;
	struct stack *s = make_stack(c, &env);
	uint32_t ra = rte_cpu_to_be_32(RTE_IPV4(10, 77, 0, 2));
	uint16_t rp = rte_cpu_to_be_16(40000), lp = rte_cpu_to_be_16(8787);
	for (unsigned idx = 0; idx < 4; idx++) {
		uint32_t ck = syncookie_make(s, ra, rp, lp, 12345, idx);
		CHECK_EQ(syncookie_check(s, ra, rp, lp, 12345, ck), idx);
		CHECK_EQ(syncookie_check(s, ra, rp, lp, 12346, ck), -1);     /* another SYN */
		CHECK_EQ(syncookie_check(s, ra, rp + 1, lp, 12345, ck), -1); /* another port */
		CHECK_EQ(syncookie_check(s, ra, rp, lp, 12345, ck ^ 1), -1);
	}
	uint32_t ck = syncookie_make(s, ra, rp, lp, 1, 3);
	c->now_ms += 64000; /* the next period: still good */
	CHECK_EQ(syncookie_check(s, ra, rp, lp, 1, ck), 3);
	c->now_ms += 64000; /* two periods on: too old */
	CHECK_EQ(syncookie_check(s, ra, rp, lp, 1, ck), -1);
	/* ISNs: per connection, moving with the 4 µs clock. */
	uint32_t a = tcp_isn(s, ra, rp, lp), b = tcp_isn(s, ra, rp + 1, lp);
	CHECK(a != b);
	c->now_ns += 4000 * 1000;
	CHECK_EQ(tcp_isn(s, ra, rp, lp) - a, 1000);
	free(c);
}

static void test_flow_core(void)
{
	struct core c;
	struct stack_env env;
	make_stack(&c, &env);
	unsigned seen[2] = { 0, 0 };
	for (unsigned p = 0; p < 1000; p++) {
		uint32_t ra = rte_cpu_to_be_32(RTE_IPV4(10, 77, 0, 2));
		unsigned k = stack_flow_core(&env, ra, rte_cpu_to_be_16((uint16_t)(30000 + p)),
					     rte_cpu_to_be_16(8787));
		CHECK(k < 2);
		CHECK_EQ(stack_flow_core(&env, ra, rte_cpu_to_be_16((uint16_t)(30000 + p)),
					 rte_cpu_to_be_16(8787)), k);
		seen[k < 2 ? k : 0]++;
	}
	CHECK(seen[0] > 400 && seen[1] > 400); /* spread over both cores */
	/* With RSS the owner is the redirection table's entry for the Toeplitz hash. */
	env.rss = 1;
	env.rss_words = 3;
	memset(env.rss_key, 0x6d, sizeof(env.rss_key));
	for (unsigned i = 1; i < 40; i += 2)
		env.rss_key[i] = 0x5a;
	env.reta_size = 128;
	for (unsigned i = 0; i < 128; i++)
		env.reta[i] = (uint16_t)(i % 2);
	uint32_t ra = rte_cpu_to_be_32(RTE_IPV4(10, 77, 0, 2));
	struct rte_ipv4_tuple t = { .src_addr = RTE_IPV4(10, 77, 0, 2), .dst_addr = RTE_IPV4(10, 77, 0, 1),
				    .sport = 41000, .dport = 8787 };
	struct rte_ipv4_tuple r = { .src_addr = t.dst_addr, .dst_addr = t.src_addr,
				    .sport = t.dport, .dport = t.sport };
	uint32_t h = rte_softrss((uint32_t *)&t, 3, env.rss_key);
	CHECK_EQ(h, rte_softrss((uint32_t *)&r, 3, env.rss_key)); /* the key is symmetric */
	CHECK_EQ(stack_flow_core(&env, ra, rte_cpu_to_be_16(41000), rte_cpu_to_be_16(8787)),
		 env.reta[h % 128]);
}

int main(void)
{
	RUN(test_options);
	RUN(test_sequence_wrap);
	RUN(test_syncookies);
	RUN(test_flow_core);
	return CHECK_DONE();
}
