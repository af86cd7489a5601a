/* The dpdk stack's loss recovery driven through its real code with scripted losses: a
 * client (crafted frames, SACK and timestamps on, or no SACK for NewReno) loses chosen
 * segments of a flight; each test checks which segments went again, what detected the loss
 * (RACK with SACK, the loss probe, NewReno's duplicate ACKs, the timeout) and when, on a
 * simulated clock. RTT 2 ms throughout: well above the timers' 1 ms granularity. */
#include "check.h"
#include "core.h"
#include "stack.h"
#include "stack_env.h"
#include "timer.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#define RTT_US 2000u
#define MSS 1448u /* 1460 less the timestamp option */
#define MAX_OUT 4096

struct out_frame {
	uint64_t at_us;
	uint32_t seq, ack, len;
	uint8_t flags;
	uint8_t nsack;
};

static struct stack_env env;
static struct out_frame out[MAX_OUT];
static unsigned nout;
static struct core *c;
static struct core_group group;
static uint64_t now_us;
static size_t pending; /* bytes the layer above has queued */
static char payload[256 * 1024];
static struct net_conn *conn;
static uint32_t iss;      /* the server's */
static uint32_t cseq = 1000; /* the client's next sequence */
static uint32_t ts_echo;  /* the last TSval the server sent */
static uint32_t client_ts = 1;

static void sink(struct core *cc, struct rte_mbuf *m)
{
	(void)cc;
	const struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *,
								sizeof(struct rte_ether_hdr));
	const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)(ip + 1);
	unsigned doff = (unsigned)(th->data_off >> 4) * 4u;
	if (nout < MAX_OUT) {
		struct out_frame *f = &out[nout++];
		f->at_us = now_us;
		f->seq = rte_be_to_cpu_32(th->sent_seq);
		f->ack = rte_be_to_cpu_32(th->recv_ack);
		f->flags = th->tcp_flags;
		f->len = rte_be_to_cpu_16(ip->total_length) - sizeof(*ip) - doff;
		f->nsack = 0;
		/* The timestamp option sits first, after two NOPs. */
		const uint8_t *o = (const uint8_t *)(th + 1);
		if (doff >= 32 && o[2] == 8) {
			uint32_t v;
			memcpy(&v, o + 4, 4);
			ts_echo = rte_be_to_cpu_32(v);
		}
	}
	rte_pktmbuf_free(m);
}

static void *ev_accept(struct core *cc, struct net_conn *nc)
{
	(void)cc;
	conn = nc;
	return &pending;
}
static void ev_data(struct core *cc, struct net_conn *nc, const char *d, size_t n)
{
	(void)cc, (void)nc, (void)d, (void)n;
}
static unsigned ev_fill(struct core *cc, struct net_conn *nc, struct iovec *iov, unsigned max)
{
	(void)cc, (void)nc;
	if (!pending || !max)
		return 0;
	iov[0].iov_base = payload;
	iov[0].iov_len = pending < sizeof(payload) ? pending : sizeof(payload);
	return 1;
}
static void ev_sent(struct core *cc, struct net_conn *nc, size_t n)
{
	(void)cc, (void)nc;
	pending -= n;
}
static void ev_closed(struct core *cc, struct net_conn *nc, int e)
{
	(void)cc, (void)nc, (void)e;
	conn = NULL;
}
static const struct net_events events = { .on_accept = ev_accept, .on_data = ev_data,
					  .fill_output = ev_fill, .on_sent = ev_sent,
					  .on_closed = ev_closed };

/* A client frame with timestamps and up to 3 SACK blocks (pairs of absolute sequences). */
static struct rte_mbuf *frame(uint8_t flags, uint32_t seq, uint32_t ack, const uint32_t *sack,
			      unsigned nsack, int syn_opts, int sack_ok)
{
	uint8_t opt[64]; /* at most 40 go out: with timestamps, three SACK blocks fit */
	unsigned ol = 0;
	if (nsack > 3)
		nsack = 3;
	if (syn_opts) {
		const uint8_t syn[] = { 2, 4, 0x05, 0xb4, 1, 1, 1, 3, 3, 7 };
		memcpy(opt, syn, sizeof(syn));
		ol = sizeof(syn);
		if (sack_ok) {
			opt[ol++] = 1;
			opt[ol++] = 1;
			opt[ol++] = 4;
			opt[ol++] = 2;
		}
	}
	opt[ol++] = 1;
	opt[ol++] = 1;
	opt[ol++] = 8;
	opt[ol++] = 10;
	uint32_t v = rte_cpu_to_be_32(client_ts++);
	memcpy(opt + ol, &v, 4);
	v = rte_cpu_to_be_32(ts_echo);
	memcpy(opt + ol + 4, &v, 4);
	ol += 8;
	if (nsack) {
		opt[ol++] = 1;
		opt[ol++] = 1;
		opt[ol++] = 5;
		opt[ol++] = (uint8_t)(2 + 8 * nsack);
		for (unsigned i = 0; i < 2 * nsack; i++) {
			v = rte_cpu_to_be_32(sack[i]);
			memcpy(opt + ol, &v, 4);
			ol += 4;
		}
	}
	while (ol % 4)
		opt[ol++] = 1;
	struct rte_mbuf *m = rte_pktmbuf_alloc(env.pool);
	unsigned len = sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) +
		       sizeof(struct rte_tcp_hdr) + ol;
	uint8_t *f = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)len);
	memset(f, 0, len);
	struct rte_ether_hdr *eh = (struct rte_ether_hdr *)f;
	memcpy(eh->dst_addr.addr_bytes, env.mac, 6);
	memcpy(eh->src_addr.addr_bytes, "\x02\0\0\0\0\x02", 6);
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eh + 1);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(len - sizeof(*eh)));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = rte_cpu_to_be_32(RTE_IPV4(10, 0, 0, 2));
	ip->dst_addr = env.ipv4;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);
	th->src_port = rte_cpu_to_be_16(40000);
	th->dst_port = env.ports[0];
	th->sent_seq = rte_cpu_to_be_32(seq);
	th->recv_ack = rte_cpu_to_be_32(ack);
	th->data_off = (uint8_t)(((sizeof(*th) + ol) / 4) << 4);
	th->tcp_flags = flags;
	th->rx_win = rte_cpu_to_be_16(65535);
	memcpy(th + 1, opt, ol);
	th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	return m;
}

/* One loop turn at the current simulated time: timers, then the end-of-turn flush. */
static void turn(void)
{
	c->now_ns = now_us * 1000u;
	c->now_ms = now_us / 1000u;
	timer_run(c, c->now_ms);
	stack_flush(c);
}

static void advance_to(uint64_t us)
{
	/* Every 100 µs a turn, as an idle dpdk core polls. */
	while (now_us + 100 < us) {
		now_us += 100;
		turn();
	}
	now_us = us;
	turn();
}

/* An ACK from the client with SACK blocks, processed in a turn at the current time. */
static void ack_in(uint32_t ack, const uint32_t *sack, unsigned nsack)
{
	c->now_ns = now_us * 1000u;
	c->now_ms = now_us / 1000u;
	stack_input(c, frame(RTE_TCP_ACK_FLAG, cseq, ack, sack, nsack, 0, 0), 0);
	turn();
}

static uint64_t ctr(enum stack_counter k) { return stack_counters(c)[k]; }

/* A fresh stack on a fresh core, a connection to it, and `segs` full segments sent. */
static void setup(int sack_ok, unsigned segs)
{
	memset(out, 0, sizeof(out));
	nout = 0;
	now_us = 1000000;
	cseq = 1000;
	client_ts = 1;
	ts_echo = 0;
	pending = 0;
	conn = NULL;
	c = aligned_alloc(64, sizeof(*c));
	memset(c, 0, sizeof(*c));
	group.ncores = 1;
	group.cores[0] = c;
	c->group = &group;
	c->now_ns = now_us * 1000u;
	c->now_ms = now_us / 1000u;
	static const struct net_config cfg = { .max_conns_per_core = 64, .linger_ms = 1000 };
	if (timer_wheel_create(c, c->now_ms) < 0 || stack_core_init(c, &env, &cfg, &events) < 0 ||
	    stack_start_accepting(c) < 0) {
		fprintf(stderr, "stack set-up failed\n");
		exit(1);
	}
	stack_input(c, frame(RTE_TCP_SYN_FLAG, cseq - 1, 0, NULL, 0, 1, sack_ok), 0);
	turn();
	CHECK(nout == 1 && out[0].flags == (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG));
	iss = out[0].seq;
	now_us += RTT_US;
	ack_in(iss + 1, NULL, 0);
	CHECK(conn != NULL);
	nout = 0;
	pending = (size_t)segs * MSS;
	stack_want_write(c, conn);
	turn();
}

static void teardown(void)
{
	stack_core_fini(c);
	timer_wheel_destroy(c);
	free(c);
}

/* The sequence number of data segment i (all full-sized), and back. */
static uint32_t sq(unsigned i) { return iss + 1 + i * MSS; }
static unsigned seq_of_index(uint32_t seq) { return (seq - iss - 1) / MSS; }

/* Frames sent from index `from` on carrying segment i; returns how many, and the time of
 * the first in *at. */
static unsigned sent_seg(unsigned from, unsigned i, uint64_t *at)
{
	unsigned n = 0;
	for (unsigned k = from; k < nout; k++)
		if (out[k].len && out[k].seq == sq(i)) {
			if (!n && at)
				*at = out[k].at_us;
			n++;
		}
	return n;
}

/* The client got segments [0, n) except those in `lost` (a bit mask), in order, one ACK
 * each as Linux sends for out-of-order data (at once, with SACK blocks). */
static void deliver_flight(unsigned n, uint64_t lost, int sack)
{
	uint32_t cum = sq(0);
	uint32_t blocks[6];
	unsigned nb = 0;
	for (unsigned i = 0; i < n; i++) {
		if (lost >> i & 1)
			continue;
		if (sq(i) == cum && nb == 0) {
			cum = sq(i + 1);
			ack_in(cum, NULL, 0);
			continue;
		}
		/* Extend the last block or start a new one (the newest block first on the wire). */
		if (nb && blocks[(nb - 1) * 2 + 1] == sq(i)) {
			blocks[(nb - 1) * 2 + 1] = sq(i + 1);
		} else if (nb < 3) {
			blocks[nb * 2] = sq(i);
			blocks[nb * 2 + 1] = sq(i + 1);
			nb++;
		}
		uint32_t wire[6];
		for (unsigned b = 0; b < nb; b++) {
			wire[b * 2] = blocks[(nb - 1 - b) * 2];
			wire[b * 2 + 1] = blocks[(nb - 1 - b) * 2 + 1];
		}
		ack_in(cum, sack ? wire : NULL, sack ? nb : 0);
	}
}

static void test_first_segment_lost(void)
{
	setup(1, 10);
	CHECK_EQ(nout, 10);
	unsigned mark = nout;
	now_us += RTT_US;
	uint64_t t_sack = now_us;
	deliver_flight(10, 1u << 0, 1);
	uint64_t at = 0;
	CHECK_EQ(sent_seg(mark, 0, &at), 1);
	/* Detected at the first SACK (it was sent with segment 1, which was delivered), and
	 * sent again within that turn: a round trip after the loss, not a timeout. */
	CHECK(at >= t_sack && at <= t_sack + RTT_US / 4);
	CHECK_EQ(ctr(SC_tcp_retransmits_rack), 1);
	CHECK_EQ(ctr(SC_tcp_recoveries_sack), 1);
	CHECK_EQ(ctr(SC_tcp_retransmits_timeout), 0);
	now_us += RTT_US;
	ack_in(sq(10), NULL, 0);
	CHECK_EQ(nout - mark, 1);
	/* Nothing else goes again, and no timer brings anything later. */
	advance_to(now_us + 3000000);
	CHECK_EQ(ctr(SC_tcp_retransmits_timeout) + ctr(SC_tcp_retransmits_tlp), 0);
	teardown();
}

static void test_middle_segment_lost(void)
{
	setup(1, 10);
	unsigned mark = nout;
	now_us += RTT_US;
	deliver_flight(10, 1u << 4, 1);
	uint64_t at = 0;
	CHECK_EQ(sent_seg(mark, 4, &at), 1);
	CHECK(at <= now_us);
	for (unsigned i = 0; i < 10; i++)
		if (i != 4)
			CHECK_EQ(sent_seg(mark, i, NULL), 0);
	CHECK_EQ(ctr(SC_tcp_retransmits_rack), 1);
	now_us += RTT_US;
	ack_in(sq(10), NULL, 0);
	advance_to(now_us + 3000000);
	CHECK_EQ(ctr(SC_tcp_retransmits_timeout) + ctr(SC_tcp_retransmits_tlp), 0);
	CHECK_EQ(ctr(SC_tcp_recoveries_sack), 1);
	teardown();
}

static void test_several_lost_in_one_window(void)
{
	setup(1, 10);
	unsigned mark = nout;
	now_us += RTT_US;
	uint64_t t0 = now_us;
	deliver_flight(10, (1u << 2) | (1u << 5) | (1u << 7), 1);
	uint64_t a2 = 0, a5 = 0, a7 = 0;
	CHECK_EQ(sent_seg(mark, 2, &a2), 1);
	CHECK_EQ(sent_seg(mark, 5, &a5), 1);
	CHECK_EQ(sent_seg(mark, 7, &a7), 1);
	CHECK(a2 >= t0 && a5 >= t0 && a7 >= t0 && a7 <= now_us);
	CHECK_EQ(ctr(SC_tcp_retransmits_rack), 3);
	CHECK_EQ(ctr(SC_tcp_recoveries_sack), 1); /* one episode for the window */
	now_us += RTT_US;
	ack_in(sq(10), NULL, 0);
	advance_to(now_us + 3000000);
	CHECK_EQ(ctr(SC_tcp_retransmits_timeout) + ctr(SC_tcp_retransmits_tlp), 0);
	teardown();
}

static void test_tail_segments_lost(void)
{
	/* The last two of a flight: nothing after them is SACKed, so only the loss probe can
	 * bring news (RFC 8985 7): it sends the last segment again; its SACK shows the one
	 * before lost, which goes a round trip later. No timeout. */
	setup(1, 10);
	unsigned mark = nout;
	now_us += RTT_US;
	uint64_t t_ack = now_us;
	deliver_flight(10, (1u << 8) | (1u << 9), 1);
	CHECK_EQ(nout, mark); /* nothing yet */
	advance_to(now_us + 20000);
	uint64_t at9 = 0;
	CHECK_EQ(sent_seg(mark, 9, &at9), 1);
	CHECK_EQ(ctr(SC_tcp_tlp_probes), 1);
	CHECK_EQ(ctr(SC_tcp_retransmits_tlp), 1);
	/* PTO: two smoothed RTTs and the 2 ms floor, on the 1 ms timer. */
	CHECK(at9 >= t_ack + 2 * RTT_US && at9 <= t_ack + 2 * RTT_US + 4000);
	now_us = at9 + RTT_US;
	uint32_t sack9[2] = { sq(9), sq(10) };
	ack_in(sq(8), sack9, 1);
	uint64_t at8 = 0;
	CHECK_EQ(sent_seg(mark, 8, &at8), 1);
	CHECK(at8 <= now_us);
	CHECK_EQ(ctr(SC_tcp_retransmits_rack), 1);
	now_us += RTT_US;
	ack_in(sq(10), NULL, 0);
	advance_to(now_us + 3000000);
	CHECK_EQ(ctr(SC_tcp_retransmits_timeout), 0);
	teardown();
}

static void test_single_tail_segment_lost(void)
{
	/* One segment in flight and lost: the probe waits for a delayed ACK first (RFC 8985's
	 * WCDelAckT, capped by the RTO), then sends it again as a probe, not a timeout: no
	 * window collapse, no backoff. */
	setup(1, 1);
	unsigned mark = nout;
	CHECK_EQ(nout, 1);
	uint64_t t_sent = out[0].at_us;
	advance_to(now_us + 300000);
	uint64_t at = 0;
	CHECK_EQ(sent_seg(mark, 0, &at), 1);
	CHECK_EQ(ctr(SC_tcp_retransmits_tlp), 1);
	CHECK_EQ(ctr(SC_tcp_retransmits_timeout), 0);
	CHECK(at >= t_sent + 200000 && at <= t_sent + 202000);
	now_us = at + RTT_US;
	ack_in(sq(1), NULL, 0);
	advance_to(now_us + 3000000);
	CHECK_EQ(ctr(SC_tcp_retransmits_timeout), 0);
	teardown();
}

static void test_lost_retransmission(void)
{
	/* Segment 3 is lost, and so is its retransmission. New data sent after the
	 * retransmission is SACKed: RACK sees the retransmission was sent before it and
	 * sends segment 3 a third time, without waiting for the timer. */
	setup(1, 30);
	CHECK_EQ(nout, 10);
	unsigned mark = nout;
	now_us += RTT_US;
	deliver_flight(10, 1u << 3, 1);
	uint64_t at1 = 0;
	CHECK_EQ(sent_seg(mark, 3, &at1), 1);
	/* What else went out in recovery: new segments 10.. beside the retransmission. */
	unsigned newest = 0;
	for (unsigned k = mark; k < nout; k++)
		if (out[k].len && seq_of_index(out[k].seq) > newest)
			newest = seq_of_index(out[k].seq);
	CHECK(newest >= 10);
	unsigned mark2 = nout;
	/* The retransmission is lost; the new segments arrive. */
	now_us += RTT_US;
	uint32_t sack[4] = { sq(10), sq(newest + 1), sq(4), sq(10) };
	ack_in(sq(3), sack, 2);
	uint64_t at2 = 0;
	CHECK_EQ(sent_seg(mark2, 3, &at2), 1);
	CHECK(at2 <= now_us + RTT_US / 4);
	CHECK_EQ(ctr(SC_tcp_retransmits_rack), 2);
	CHECK_EQ(ctr(SC_tcp_retransmits_timeout), 0);
	teardown();
}

static void test_reordering_is_not_loss(void)
{
	/* Segment 2 comes 100 µs after segment 3: one SACK block, less than the three
	 * DupThresh would take, and within RACK's reordering window (a quarter of the
	 * minimum RTT): nothing is sent again. */
	setup(1, 4);
	unsigned mark = nout;
	now_us += RTT_US;
	ack_in(sq(1), NULL, 0);
	ack_in(sq(2), NULL, 0);
	uint32_t sack3[2] = { sq(3), sq(4) };
	ack_in(sq(2), sack3, 1);
	advance_to(now_us + 100);
	ack_in(sq(4), NULL, 0);
	advance_to(now_us + 10000);
	CHECK_EQ(sent_seg(mark, 2, NULL), 0);
	CHECK_EQ(ctr(SC_tcp_rack_lost) + ctr(SC_tcp_retransmits_rack), 0);
	teardown();
	/* Later than the window: it goes again once the window has passed, not before, and
	 * the D-SACK for the needless copy is counted. */
	setup(1, 4);
	mark = nout;
	now_us += RTT_US;
	ack_in(sq(1), NULL, 0);
	ack_in(sq(2), NULL, 0);
	uint64_t t_sack = now_us;
	ack_in(sq(2), sack3, 1);
	CHECK_EQ(sent_seg(mark, 2, NULL), 0);
	advance_to(now_us + 1000);
	uint64_t at = 0;
	CHECK_EQ(sent_seg(mark, 2, &at), 1);
	CHECK(at >= t_sack + RTT_US / 4 && at <= t_sack + RTT_US / 4 + 200);
	ack_in(sq(4), NULL, 0);
	uint32_t dsack[2] = { sq(2), sq(3) };
	now_us += RTT_US;
	ack_in(sq(4), dsack, 1);
	CHECK_EQ(ctr(SC_tcp_dsacks), 1);
	teardown();
}

static void test_newreno_without_sack(void)
{
	/* No SACK: three duplicate ACKs retransmit the first hole; the partial ACK that
	 * follows retransmits the next at once (RFC 6582). */
	setup(0, 10);
	unsigned mark = nout;
	now_us += RTT_US;
	deliver_flight(10, (1u << 0) | (1u << 5), 0);
	uint64_t a0 = 0;
	CHECK_EQ(sent_seg(mark, 0, &a0), 1);
	CHECK_EQ(ctr(SC_tcp_retransmits_fast), 1);
	CHECK_EQ(ctr(SC_tcp_recoveries_newreno), 1);
	CHECK_EQ(sent_seg(mark, 5, NULL), 0);
	now_us += RTT_US;
	ack_in(sq(5), NULL, 0); /* partial: up to the second hole */
	uint64_t a5 = 0;
	CHECK_EQ(sent_seg(mark, 5, &a5), 1);
	CHECK_EQ(a5, now_us);
	CHECK_EQ(ctr(SC_tcp_retransmits_fast), 2);
	now_us += RTT_US;
	ack_in(sq(10), NULL, 0);
	advance_to(now_us + 3000000);
	CHECK_EQ(ctr(SC_tcp_retransmits_timeout) + ctr(SC_tcp_retransmits_rack), 0);
	teardown();
}

static void test_timeout_when_every_ack_is_lost(void)
{
	/* Nothing comes back: the loss probe first, then the retransmission timeout sends
	 * from the first unacknowledged segment with a one-segment window. */
	setup(1, 10);
	unsigned mark = nout;
	uint64_t t_sent = out[0].at_us;
	advance_to(now_us + 1500000);
	CHECK_EQ(ctr(SC_tcp_tlp_probes), 1);
	CHECK(ctr(SC_tcp_retransmits_timeout) >= 1);
	uint64_t at0 = 0;
	CHECK(sent_seg(mark, 0, &at0) >= 1);
	/* The handshake's RTT made the RTO the 200 ms floor; the probe came first. */
	CHECK(at0 >= t_sent + 200000);
	now_us += RTT_US;
	ack_in(sq(10), NULL, 0);
	CHECK_EQ(ctr(SC_tcp_retransmits_rack), 0);
	teardown();
}

int main(void)
{
	int r = unit_stack_setup("tcploss", 64, 8192, &env, sink, NULL, NULL);
	if (r)
		return r;
	memset(payload, 'd', sizeof(payload));
	RUN(test_first_segment_lost);
	RUN(test_middle_segment_lost);
	RUN(test_several_lost_in_one_window);
	RUN(test_tail_segments_lost);
	RUN(test_single_tail_segment_lost);
	RUN(test_lost_retransmission);
	RUN(test_reordering_is_not_loss);
	RUN(test_newreno_without_sack);
	RUN(test_timeout_when_every_ack_is_lost);
	unit_stack_teardown(&env);
	return CHECK_DONE();
}
