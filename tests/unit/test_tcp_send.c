/* The dpdk stack's sending against net.h's lending rule: bytes fill_output lends stay the
 * layer above's problem until the next on_sent or on_closed, so every fill_output that
 * lends something is followed by one of them before the next fill_output. TLS counts on
 * it (a buffer that grew while lent is kept until on_sent, and a second loan while one is
 * open is a crash). The real stack, a real mbuf pool and a peer made of hand-built frames
 * whose window keeps the sender just short of a full segment. */
#include "check.h"
#include "core.h"
#include "stack.h"
#include "stack_env.h"
#include "timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

static struct stack_env env;
static struct core *core;
static struct core_group group;
static const struct net_config net_cfg = { .max_conns_per_core = 8, .linger_ms = 50 };

static const uint8_t peer_mac[6] = { 0x02, 0, 0, 0, 0, 2 };
#define PEER_PORT 40000
#define MSS 1460

/* What the stack sent: its ISN (from the SYN-ACK) and the data bytes in all. */
static uint32_t isn;
static int got_synack;
static uint64_t data_sent;

static void sink(struct core *c, struct rte_mbuf *m)
{
	(void)c;
	const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(f + RTE_ETHER_HDR_LEN);
	if (ip->next_proto_id == IPPROTO_TCP) {
		unsigned ihl = rte_ipv4_hdr_len(ip);
		const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)((const uint8_t *)ip + ihl);
		unsigned thl = (unsigned)(th->data_off >> 4) * 4;
		if ((th->tcp_flags & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)) ==
		    (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)) {
			isn = rte_be_to_cpu_32(th->sent_seq);
			got_synack = 1;
		}
		data_sent += rte_be_to_cpu_16(ip->total_length) - ihl - thl;
	}
	rte_pktmbuf_free(m);
}

/* The layer above: always has more to send, and checks that loans never overlap. */
static char out[64 << 10];
static struct net_conn *conn;
static int lent;       /* fill_output lent bytes and neither on_sent nor on_closed came yet */
static int overlapped; /* fill_output was asked again while a loan was open */
static size_t lent_bytes;

static void *ev_accept(struct core *c, struct net_conn *nc)
{
	(void)c;
	conn = nc;
	return out;
}
static void ev_data(struct core *c, struct net_conn *nc, const char *data, size_t len)
{
	(void)c;
	(void)nc;
	(void)data;
	(void)len;
}
static unsigned ev_fill(struct core *c, struct net_conn *nc, struct iovec *iov, unsigned max)
{
	(void)c;
	(void)nc;
	if (lent)
		overlapped++;
	if (!max)
		return 0;
	iov[0].iov_base = out;
	iov[0].iov_len = sizeof(out);
	lent = 1;
	lent_bytes = sizeof(out);
	return 1;
}
static void ev_sent(struct core *c, struct net_conn *nc, size_t n)
{
	(void)c;
	(void)nc;
	CHECK(n <= lent_bytes);
	lent = 0;
	lent_bytes = 0;
}
static void ev_closed(struct core *c, struct net_conn *nc, int err)
{
	(void)c;
	(void)nc;
	(void)err;
	lent = 0;
	conn = NULL;
}
static const struct net_events events = { .on_accept = ev_accept, .on_data = ev_data,
					  .fill_output = ev_fill, .on_sent = ev_sent,
					  .on_closed = ev_closed };

/* A segment from the peer: Ethernet, IPv4 and TCP with good checksums. */
static void peer_send(uint8_t flags, uint32_t seq, uint32_t ack, uint16_t win, int mss_opt)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(env.pool);
	CHECK(m != NULL);
	if (!m)
		return;
	unsigned optlen = mss_opt ? 4 : 0;
	size_t len = RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_tcp_hdr) + optlen;
	uint8_t *f = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)len);
	memset(f, 0, len);
	struct rte_ether_hdr *eh = (struct rte_ether_hdr *)f;
	memcpy(eh->dst_addr.addr_bytes, env.mac, 6);
	memcpy(eh->src_addr.addr_bytes, peer_mac, 6);
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eh + 1);
	ip->version_ihl = 0x45;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(len - RTE_ETHER_HDR_LEN));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = rte_cpu_to_be_32(RTE_IPV4(10, 0, 0, 2));
	ip->dst_addr = env.ipv4;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);
	th->src_port = rte_cpu_to_be_16(PEER_PORT);
	th->dst_port = env.ports[0];
	th->sent_seq = rte_cpu_to_be_32(seq);
	th->recv_ack = rte_cpu_to_be_32(ack);
	th->data_off = (uint8_t)(((sizeof(*th) + optlen) / 4) << 4);
	th->tcp_flags = flags;
	th->rx_win = rte_cpu_to_be_16(win);
	if (mss_opt) {
		uint8_t *o = (uint8_t *)(th + 1);
		o[0] = 2;
		o[1] = 4;
		o[2] = MSS >> 8;
		o[3] = MSS & 0xff;
	}
	th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	stack_input(core, m, 0);
	stack_flush(core);
}

static void turn(void)
{
	core->now_ms += 1;
	core->now_ns = core->now_ms * 1000000ull;
	timer_run(core, core->now_ms);
	stack_flush(core);
}

/* A window that leaves the sender less than a segment of room with data in flight: it
 * asks for output, takes none (silly window avoidance), and must still end the loan. */
static void test_window_short_of_a_segment_ends_the_loan(void)
{
	CHECK(stack_core_init(core, &env, &net_cfg, &events) == 0);
	CHECK(stack_start_accepting(core) == 0);
	uint32_t pseq = 1000;
	peer_send(RTE_TCP_SYN_FLAG, pseq, 0, 3000, 1);
	CHECK(got_synack);
	pseq++;
	peer_send(RTE_TCP_ACK_FLAG, pseq, isn + 1, 3000, 0);
	CHECK(conn != NULL);
	if (!conn)
		goto out;
	stack_want_write(core, conn);
	turn();
	CHECK_EQ(data_sent, 3000); /* the window's worth */
	/* 1000 bytes acknowledged, the window still 3000: 1000 bytes of room, under a segment,
	 * 2000 in flight. */
	uint64_t sent = data_sent;
	peer_send(RTE_TCP_ACK_FLAG, pseq, isn + 1 + 1000, 3000, 0);
	turn();
	CHECK_EQ(data_sent, sent); /* nothing new: the sender waits for a segment's room */
	CHECK(!lent);
	/* Everything acknowledged: room again, and the next loan starts from a closed one. */
	peer_send(RTE_TCP_ACK_FLAG, pseq, isn + 1 + 3000, 3000, 0);
	turn();
	CHECK(data_sent > sent);
	CHECK_EQ(overlapped, 0);
	if (conn)
		stack_close(core, conn, NET_CLOSE_ABORT);
	turn();
out:
	stack_core_fini(core);
	CHECK_EQ(rte_mempool_in_use_count(env.pool), 0);
}

int main(void)
{
	int r = unit_stack_setup("unit-tcp-send", 128, 1024, &env, sink, &core, &group);
	if (r)
		return r;
	RUN(test_window_short_of_a_segment_ends_the_loan);
	unit_stack_teardown(&env);
	return CHECK_DONE();
}
