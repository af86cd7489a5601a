/* The dpdk stack's active open (tcp_dial.c, SYN_SENT in tcp_in.c) against a peer made of
 * hand-built frames: ARP before the SYN, the SYN's options and what the SYN-ACK settles,
 * refusal by reset, SYNs sent again with backoff and then -ETIMEDOUT, an unanswered ARP
 * (-EHOSTUNREACH), cancel, simultaneous open, a burst of dials behind one ARP answer, a
 * TIME_WAIT port not reused, and ports whose replies come back to the dialing core. The
 * real stack and a real mbuf pool. */
#include "check.h"
#include "core.h"
#include "stack_env.h"
#include "tcp_int.h"
#include "timer.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_arp.h>
#include <rte_eal.h>
#include <rte_thash.h>

static struct stack_env env;
static struct core *core;
static struct core_group group;
static const struct net_config net_cfg = { .max_conns_per_core = 8, .linger_ms = 50 };

static const uint8_t peer_mac[6] = { 0x02, 0, 0, 0, 0, 2 };
#define PEER_IP RTE_IPV4(10, 0, 0, 2)
#define DEAD_IP RTE_IPV4(10, 0, 0, 3) /* nobody answers ARP for it */
#define PEER_PORT 8080

/* ---- what the stack sent ---- */

struct sent {
	int arp_requests;
	uint32_t arp_target; /* host order */
	int segs, syns, rsts;
	uint8_t flags;       /* the last TCP segment's */
	uint32_t seq, ack;
	uint16_t win, sport;
	unsigned datalen;
	int opts_ok;
	struct tcp_opts o;
	uint8_t dst_mac[6];
};
static struct sent out;

static void sink(struct core *c, struct rte_mbuf *m)
{
	(void)c;
	const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
	const struct rte_ether_hdr *eh = (const struct rte_ether_hdr *)f;
	if (eh->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP)) {
		const struct rte_arp_hdr *a = (const struct rte_arp_hdr *)(eh + 1);
		if (a->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REQUEST)) {
			out.arp_requests++;
			out.arp_target = rte_be_to_cpu_32(a->arp_data.arp_tip);
		}
	} else {
		const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(eh + 1);
		unsigned ihl = rte_ipv4_hdr_len(ip);
		const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)((const uint8_t *)ip + ihl);
		unsigned thl = (unsigned)(th->data_off >> 4) * 4;
		memcpy(out.dst_mac, eh->dst_addr.addr_bytes, 6);
		out.segs++;
		out.flags = th->tcp_flags;
		out.syns += !!(th->tcp_flags & RTE_TCP_SYN_FLAG);
		out.rsts += !!(th->tcp_flags & RTE_TCP_RST_FLAG);
		out.seq = rte_be_to_cpu_32(th->sent_seq);
		out.ack = rte_be_to_cpu_32(th->recv_ack);
		out.win = rte_be_to_cpu_16(th->rx_win);
		out.sport = rte_be_to_cpu_16(th->src_port);
		out.datalen = rte_be_to_cpu_16(ip->total_length) - ihl - thl;
		out.opts_ok = tcp_parse_opts((const uint8_t *)(th + 1), thl - sizeof(*th), &out.o) == 0;
		/* The checksum the stack computed in software is good. */
		CHECK(rte_ipv4_udptcp_cksum(ip, th) == 0 || rte_ipv4_udptcp_cksum(ip, th) == 0xffff);
	}
	rte_pktmbuf_free(m);
}

/* ---- the dialer ---- */

static struct net_conn *conn;
static void *accepted_user;
static int dial_err, dial_failed, closed, refuse;
static char user_state[1];

static void *ev_accept(struct core *c, struct net_conn *nc)
{
	(void)c;
	conn = nc;
	accepted_user = nc->user;
	return refuse ? NULL : nc->user;
}
static void ev_data(struct core *c, struct net_conn *nc, const char *d, size_t len)
{
	(void)c, (void)nc, (void)d, (void)len;
}
static const char request[] = "GET / HTTP/1.1\r\n\r\n";
static int request_sent;
static unsigned ev_fill(struct core *c, struct net_conn *nc, struct iovec *iov, unsigned max)
{
	(void)c, (void)nc;
	if (request_sent || !max)
		return 0;
	iov[0].iov_base = (void *)request;
	iov[0].iov_len = sizeof(request) - 1;
	return 1;
}
static void ev_sent(struct core *c, struct net_conn *nc, size_t n)
{
	(void)c, (void)nc;
	if (n)
		request_sent = 1;
}
static void ev_closed(struct core *c, struct net_conn *nc, int err)
{
	(void)c, (void)nc, (void)err;
	closed++;
	conn = NULL;
}
static void ev_dial_failed(struct core *c, void *user, int err)
{
	(void)c;
	CHECK(user == user_state);
	dial_failed++;
	dial_err = err;
}
static const struct net_events events = { .on_accept = ev_accept, .on_data = ev_data,
					  .fill_output = ev_fill, .on_sent = ev_sent,
					  .on_closed = ev_closed, .on_dial_failed = ev_dial_failed };

static void reset_state(void)
{
	memset(&out, 0, sizeof(out));
	conn = NULL;
	accepted_user = NULL;
	dial_err = dial_failed = closed = refuse = request_sent = 0;
}

/* ---- the peer ---- */

static struct rte_mbuf *frame(uint16_t type, size_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(env.pool);
	CHECK(m != NULL);
	uint8_t *f = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(RTE_ETHER_HDR_LEN + len));
	memset(f, 0, RTE_ETHER_HDR_LEN + len);
	struct rte_ether_hdr *eh = (struct rte_ether_hdr *)f;
	memcpy(eh->dst_addr.addr_bytes, env.mac, 6);
	memcpy(eh->src_addr.addr_bytes, peer_mac, 6);
	eh->ether_type = rte_cpu_to_be_16(type);
	return m;
}

static void arp_reply(uint32_t ip)
{
	struct rte_mbuf *m = frame(RTE_ETHER_TYPE_ARP, sizeof(struct rte_arp_hdr));
	struct rte_arp_hdr *a = rte_pktmbuf_mtod_offset(m, struct rte_arp_hdr *, RTE_ETHER_HDR_LEN);
	a->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	a->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	a->arp_hlen = 6;
	a->arp_plen = 4;
	a->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
	memcpy(a->arp_data.arp_sha.addr_bytes, peer_mac, 6);
	a->arp_data.arp_sip = rte_cpu_to_be_32(ip);
	memcpy(a->arp_data.arp_tha.addr_bytes, env.mac, 6);
	a->arp_data.arp_tip = env.ipv4;
	stack_input(core, m, 0);
	stack_flush(core);
}

/* A segment from PEER_IP:PEER_PORT to our `lport`; opts: raw option bytes. */
static void peer_seg(uint16_t lport, uint8_t flags, uint32_t seq, uint32_t ack, uint16_t win,
		     const uint8_t *opts, unsigned optlen)
{
	size_t len = sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_tcp_hdr) + optlen;
	struct rte_mbuf *m = frame(RTE_ETHER_TYPE_IPV4, len);
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, RTE_ETHER_HDR_LEN);
	ip->version_ihl = 0x45;
	ip->total_length = rte_cpu_to_be_16((uint16_t)len);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = rte_cpu_to_be_32(PEER_IP);
	ip->dst_addr = env.ipv4;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);
	th->src_port = rte_cpu_to_be_16(PEER_PORT);
	th->dst_port = rte_cpu_to_be_16(lport);
	th->sent_seq = rte_cpu_to_be_32(seq);
	th->recv_ack = rte_cpu_to_be_32(ack);
	th->data_off = (uint8_t)(((sizeof(*th) + optlen) / 4) << 4);
	th->tcp_flags = flags;
	th->rx_win = rte_cpu_to_be_16(win);
	if (optlen)
		memcpy(th + 1, opts, optlen);
	th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	stack_input(core, m, 0);
	stack_flush(core);
}

static void turn(unsigned ms)
{
	for (unsigned i = 0; i < ms; i++) {
		core->now_ms += 1;
		core->now_ns = core->now_ms * 1000000ull;
		timer_run(core, core->now_ms);
		stack_flush(core);
	}
}

static uint64_t ctr(enum stack_counter k) { return stack_counters(core)[k]; }

static int dial_to(uint32_t ip, uint16_t port, uint64_t *handle)
{
	struct net_dial d;
	memset(&d, 0, sizeof(d));
	struct sockaddr_in *sin = (struct sockaddr_in *)&d.addr;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = rte_cpu_to_be_32(ip);
	sin->sin_port = rte_cpu_to_be_16(port);
	d.addrlen = sizeof(*sin);
	int r = stack_dial(core, &d, &events, user_state, handle);
	stack_flush(core);
	return r;
}

/* Options as a Linux SYN-ACK carries them: MSS, SACK_PERM + TS, NOP + WS. */
static unsigned synack_opts(uint8_t *o, uint16_t mss, uint32_t tsval, uint32_t tsecr, int ws)
{
	uint8_t b[] = { 2, 4, (uint8_t)(mss >> 8), (uint8_t)mss, 4, 2, 8, 10,
			(uint8_t)(tsval >> 24), (uint8_t)(tsval >> 16), (uint8_t)(tsval >> 8), (uint8_t)tsval,
			(uint8_t)(tsecr >> 24), (uint8_t)(tsecr >> 16), (uint8_t)(tsecr >> 8), (uint8_t)tsecr,
			1, 3, 3, (uint8_t)ws };
	memcpy(o, b, sizeof(b));
	return sizeof(b);
}

static void start(void)
{
	reset_state();
	CHECK(stack_core_init(core, &env, &net_cfg, &events) == 0);
	CHECK(stack_start_accepting(core) == 0);
}

static void finish(void)
{
	turn(100);
	stack_core_fini(core);
	CHECK_EQ(rte_mempool_in_use_count(env.pool), 0);
}

/* ARP first, then a SYN with every option; the SYN-ACK settles them; data, our close, and
 * the port in TIME_WAIT is not taken again. */
static void test_handshake_options_and_time_wait(void)
{
	start();
	struct stack *s = stack_of(core);
	uint32_t port_next0 = s->port_next;
	uint64_t h;
	CHECK_EQ(dial_to(PEER_IP, PEER_PORT, &h), 0);
	CHECK_EQ(out.arp_requests, 1);
	CHECK_EQ(out.arp_target, PEER_IP);
	CHECK_EQ(out.segs, 0); /* the SYN waits for the neighbour's address */
	CHECK_EQ(ctr(SC_conns_syn_sent), 1);
	arp_reply(PEER_IP);
	CHECK_EQ(out.segs, 1);
	CHECK_EQ(out.flags, RTE_TCP_SYN_FLAG);
	CHECK(memcmp(out.dst_mac, peer_mac, 6) == 0);
	CHECK(out.opts_ok);
	CHECK_EQ(out.o.mss, 1460);
	CHECK(out.o.sack_ok && out.o.ts && out.o.tsecr == 0);
	CHECK_EQ(out.o.wscale, TCP_RCV_WSCALE);
	CHECK_EQ(out.win, 65535);
	CHECK(out.sport >= TCP_EPHEMERAL_LO && out.sport <= TCP_EPHEMERAL_HI);
	uint16_t lport = out.sport;
	uint32_t iss = out.seq, syn_tsval = out.o.tsval;
	CHECK(conn == NULL);
	uint8_t o[40];
	unsigned ol = synack_opts(o, 1400, 777, syn_tsval, 9);
	turn(3);
	peer_seg(lport, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, 5000, iss + 1, 1000, o, ol);
	CHECK(conn != NULL && accepted_user == user_state);
	CHECK_EQ(out.flags, RTE_TCP_ACK_FLAG);
	CHECK_EQ(out.ack, 5001);
	CHECK_EQ(out.seq, iss + 1);
	CHECK(out.o.ts && out.o.tsecr == 777);
	CHECK_EQ(ctr(SC_tcp_active_opens), 1);
	CHECK_EQ(ctr(SC_tcp_active_established), 1);
	CHECK_EQ(ctr(SC_conns_syn_sent), 0);
	CHECK_EQ(ctr(SC_conns_established), 1);
	CHECK_EQ(stack_net_counters(core)->dialed, 1);
	if (!conn)
		goto out;
	struct tcb *t = (struct tcb *)conn;
	CHECK_EQ(t->snd_wscale, 9);
	CHECK_EQ(t->rcv_wscale, TCP_RCV_WSCALE);
	CHECK(t->ts_ok && t->sack_ok);
	CHECK_EQ(t->mss, 1400 - 12);
	CHECK_EQ(t->snd_wnd, 1000); /* the SYN-ACK's window is never scaled */
	CHECK(t->srtt_us8 != 0);    /* the handshake gave an RTT sample */
	CHECK(t->ka_at != 0);       /* keep-alive as for an accepted connection */
	/* The request goes out; the peer's next window is scaled by 2^9. */
	stack_want_write(core, conn);
	turn(1);
	CHECK_EQ(out.datalen, sizeof(request) - 1);
	peer_seg(lport, RTE_TCP_ACK_FLAG, 5001, iss + 1 + (uint32_t)out.datalen, 100, NULL, 0);
	CHECK_EQ(t->snd_wnd, 100u << 9);
	/* We close first: FIN, their ACK and FIN, our ACK, TIME_WAIT. */
	uint32_t fin_seq = iss + 1 + (uint32_t)(sizeof(request) - 1);
	stack_close(core, conn, NET_CLOSE_GRACEFUL);
	turn(1);
	CHECK(out.flags & RTE_TCP_FIN_FLAG);
	peer_seg(lport, RTE_TCP_ACK_FLAG | RTE_TCP_FIN_FLAG, 5001, fin_seq + 1, 100, NULL, 0);
	turn(1);
	CHECK_EQ(closed, 1);
	CHECK_EQ(ctr(SC_conns_time_wait), 1);
	/* A new SYN to that port (newer timestamp) is no connection: nobody listens there;
	 * TIME_WAIT answers with its ACK. */
	ol = synack_opts(o, 1460, 100000, 0, 7);
	peer_seg(lport, RTE_TCP_SYN_FLAG, 900000, 0, 1000, o, ol);
	CHECK_EQ(out.flags, RTE_TCP_ACK_FLAG);
	CHECK_EQ(out.ack, 5002);
	turn(1);
	CHECK(conn == NULL);
	CHECK_EQ(ctr(SC_conns_syn_received), 0);
	CHECK_EQ(ctr(SC_conns_time_wait), 1);
	/* The same start of the search would find the same port: TIME_WAIT holds it. */
	s->port_next = port_next0;
	reset_state();
	CHECK_EQ(dial_to(PEER_IP, PEER_PORT, &h), 0);
	CHECK_EQ(out.arp_requests, 0); /* the neighbour is known now */
	CHECK_EQ(out.syns, 1);
	CHECK(out.sport != lport);
	stack_dial_cancel(core, h);
	CHECK_EQ(dial_failed, 0); /* reported at the end of the turn, not inside the call */
	turn(1);
	CHECK_EQ(dial_failed, 1);
	CHECK_EQ(dial_err, -ECANCELED);
	CHECK_EQ(ctr(SC_tcp_dial_cancelled), 1);
	CHECK_EQ(ctr(SC_conns_syn_sent), 0);
out:
	finish();
}

/* A reset acknowledging our SYN refuses the connection; one without an ACK, or an ACK for
 * something else, does not (the latter is answered with a reset). */
static void test_refused(void)
{
	start();
	arp_reply(PEER_IP); /* a neighbour already known */
	uint64_t h;
	CHECK_EQ(dial_to(PEER_IP, PEER_PORT, &h), 0);
	CHECK_EQ(out.syns, 1);
	uint16_t lport = out.sport;
	uint32_t iss = out.seq;
	peer_seg(lport, RTE_TCP_RST_FLAG, 0, 0, 0, NULL, 0);
	peer_seg(lport, RTE_TCP_ACK_FLAG, 9, iss + 7, 0, NULL, 0); /* acknowledges nothing we sent */
	CHECK_EQ(out.rsts, 1);
	CHECK_EQ(out.seq, iss + 7);
	CHECK_EQ(dial_failed, 0);
	peer_seg(lport, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG, 0, iss + 1, 0, NULL, 0);
	CHECK_EQ(dial_failed, 1);
	CHECK_EQ(dial_err, -ECONNREFUSED);
	CHECK_EQ(ctr(SC_tcp_dial_refused), 1);
	CHECK_EQ(stack_net_counters(core)->dial_failures, 1);
	finish();
}

/* No answer: SYNs again after 1, 2, 4, 8 and 16 s, then -ETIMEDOUT 32 s later. */
static void test_syn_backoff_and_timeout(void)
{
	start();
	arp_reply(PEER_IP);
	uint64_t h;
	uint64_t t0 = core->now_ms;
	CHECK_EQ(dial_to(PEER_IP, PEER_PORT, &h), 0);
	uint32_t iss = out.seq;
	const unsigned at[] = { 1000, 3000, 7000, 15000, 31000 };
	for (unsigned i = 0; i < 5; i++) {
		turn((unsigned)(t0 + at[i] - core->now_ms - 1));
		CHECK_EQ(out.syns, (int)(1 + i));
		turn(1);
		CHECK_EQ(out.syns, (int)(2 + i));
		CHECK_EQ(out.seq, iss); /* the same SYN */
	}
	CHECK_EQ(ctr(SC_tcp_syn_retransmits), 5);
	turn((unsigned)(t0 + 63000 - core->now_ms - 1));
	CHECK_EQ(dial_failed, 0);
	turn(1);
	CHECK_EQ(dial_failed, 1);
	CHECK_EQ(dial_err, -ETIMEDOUT);
	CHECK_EQ(ctr(SC_tcp_dial_timeouts), 1);
	finish();
}

/* Nobody answers ARP: -EHOSTUNREACH after TCP_ARP_FAIL_MS, ARP asked again meanwhile. */
static void test_arp_unanswered(void)
{
	start();
	uint64_t h;
	CHECK_EQ(dial_to(DEAD_IP, PEER_PORT, &h), 0);
	turn(TCP_ARP_FAIL_MS + 10);
	CHECK(out.arp_requests >= 2);
	CHECK_EQ(out.arp_target, DEAD_IP);
	CHECK_EQ(out.segs, 0);
	CHECK_EQ(dial_failed, 1);
	CHECK_EQ(dial_err, -EHOSTUNREACH);
	CHECK_EQ(ctr(SC_tcp_dial_unreachable), 1);
	/* Refused before anything is sent: TLS, not IPv4, loopback, ourselves, off-link
	 * without a gateway. */
	struct net_dial d;
	memset(&d, 0, sizeof(d));
	d.tls = 1;
	CHECK_EQ(stack_dial(core, &d, &events, user_state, &h), -EOPNOTSUPP);
	d.tls = 0;
	d.addr.ss_family = AF_INET6;
	d.addrlen = sizeof(struct sockaddr_in6);
	CHECK_EQ(stack_dial(core, &d, &events, user_state, &h), -EAFNOSUPPORT);
	CHECK_EQ(dial_to(RTE_IPV4(127, 0, 0, 1), 80, &h), -ENETUNREACH);
	CHECK_EQ(dial_to(RTE_IPV4(10, 0, 0, 1), 80, &h), -EADDRNOTAVAIL);
	CHECK_EQ(dial_to(0xc0000201u /* 192.0.2.1 */, 80, &h), -ENETUNREACH);
	finish();
}

/* Both sides send a SYN at once (RFC 9293 figure 8): SYN_RECEIVED, then their ACK. */
static void test_simultaneous_open(void)
{
	start();
	arp_reply(PEER_IP);
	uint64_t h;
	CHECK_EQ(dial_to(PEER_IP, PEER_PORT, &h), 0);
	uint16_t lport = out.sport;
	uint32_t iss = out.seq;
	uint8_t o[40];
	unsigned ol = synack_opts(o, 1460, 99, 0, 7);
	peer_seg(lport, RTE_TCP_SYN_FLAG, 7000, 0, 2000, o, ol);
	CHECK_EQ(out.flags, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
	CHECK_EQ(out.seq, iss);
	CHECK_EQ(out.ack, 7001);
	CHECK(conn == NULL);
	CHECK_EQ(ctr(SC_conns_syn_received), 1);
	/* Their SYN-ACK (their SYN again, with the ACK of ours) completes it, as their ACK
	 * of our SYN-ACK would; that ACK coming afterwards is a duplicate. */
	peer_seg(lport, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, 7000, iss + 1, 2000, o, ol);
	CHECK(conn != NULL && accepted_user == user_state);
	peer_seg(lport, RTE_TCP_ACK_FLAG, 7001, iss + 1, 2000, NULL, 0);
	CHECK_EQ(ctr(SC_conns_established), 1);
	CHECK_EQ(ctr(SC_tcp_active_established), 1);
	if (conn)
		stack_close(core, conn, NET_CLOSE_ABORT);
	turn(1);
	CHECK_EQ(closed, 1);
	finish();
}

/* A peer without options: no scaling, timestamps or SACK; a dialer that refuses the made
 * connection (on_accept NULL) gets no on_closed and the peer a reset. */
static void test_plain_peer_and_refusing_dialer(void)
{
	start();
	arp_reply(PEER_IP);
	uint64_t h;
	CHECK_EQ(dial_to(PEER_IP, PEER_PORT, &h), 0);
	uint16_t lport = out.sport;
	uint32_t iss = out.seq;
	refuse = 1;
	peer_seg(lport, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, 100, iss + 1, 4000, NULL, 0);
	CHECK(accepted_user == user_state);
	CHECK_EQ(out.rsts, 1);
	turn(1);
	CHECK_EQ(closed, 0);
	CHECK_EQ(dial_failed, 0);
	refuse = 0;
	reset_state();
	CHECK_EQ(dial_to(PEER_IP, PEER_PORT, &h), 0);
	lport = out.sport;
	iss = out.seq;
	peer_seg(lport, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, 100, iss + 1, 4000, NULL, 0);
	CHECK(conn != NULL);
	if (conn) {
		struct tcb *t = (struct tcb *)conn;
		CHECK(!t->ts_ok && !t->sack_ok && t->snd_wscale == 0 && t->rcv_wscale == 0);
		CHECK_EQ(t->mss, 536); /* RFC 9293's default without the option */
		CHECK_EQ(out.o.ts, 0);
		stack_close(core, conn, NET_CLOSE_ABORT);
	}
	finish();
}

/* Dials opened together before the neighbour is known: their SYNs all wait for the one
 * ARP answer (a fetch pool filling), none is dropped. */
static void test_burst_waits_for_one_arp_answer(void)
{
	start();
	uint64_t h[20];
	for (unsigned i = 0; i < 20; i++)
		CHECK_EQ(dial_to(PEER_IP, PEER_PORT, &h[i]), 0);
	CHECK_EQ(out.arp_requests, 1);
	CHECK_EQ(out.segs, 0);
	arp_reply(PEER_IP);
	CHECK_EQ(out.syns, 20);
	CHECK_EQ(ctr(SC_drop_arp_unresolved), 0);
	for (unsigned i = 0; i < 20; i++)
		stack_dial_cancel(core, h[i]);
	turn(1);
	CHECK_EQ(dial_failed, 20);
	finish();
}

/* Off-link: ARP asks for the gateway, and the SYN goes to the gateway's address. */
static void test_off_link_through_the_gateway(void)
{
	env.gateway = rte_cpu_to_be_32(RTE_IPV4(10, 0, 0, 254));
	start();
	uint64_t h;
	CHECK_EQ(dial_to(0xc0000201u /* 192.0.2.1 */, 443, &h), 0);
	CHECK_EQ(out.arp_requests, 1);
	CHECK_EQ(out.arp_target, RTE_IPV4(10, 0, 0, 254));
	arp_reply(RTE_IPV4(10, 0, 0, 254));
	CHECK_EQ(out.syns, 1);
	CHECK(memcmp(out.dst_mac, peer_mac, 6) == 0);
	stack_dial_cancel(core, h);
	turn(1);
	CHECK_EQ(dial_err, -ECANCELED);
	finish();
	env.gateway = 0;
}

/* With two cores, every port a core picks brings the reply to that core: by the stack's
 * own steering hash, and by the port's RSS (Toeplitz and redirection table). */
static void test_ports_come_back_to_their_core(void)
{
	start();
	struct stack *s = stack_of(core);
	uint32_t ra = rte_cpu_to_be_32(PEER_IP);
	uint16_t rp = rte_cpu_to_be_16(PEER_PORT);
	env.ncores = 2;
	for (int rss = 0; rss < 2; rss++) {
		if (rss) {
			env.rss = 1;
			env.rss_words = 3;
			for (unsigned i = 0; i < 40; i++)
				env.rss_key[i] = (uint8_t)(i % 2 ? 0x5a : 0x6d);
			env.reta_size = 128;
			for (unsigned i = 0; i < 128; i++)
				env.reta[i] = (uint16_t)(i % 2);
		}
		for (unsigned k = 0; k < 2; k++) {
			core->index = k;
			uint16_t prev = 0;
			for (unsigned i = 0; i < 200; i++) {
				uint16_t p;
				CHECK_EQ(tcp_pick_port(s, ra, rp, &p), 0);
				CHECK_EQ(stack_flow_core(&env, ra, rp, p), k);
				CHECK(p != prev);
				prev = p;
			}
		}
	}
	env.ncores = 1;
	env.rss = 0;
	core->index = 0;
	finish();
}

int main(void)
{
	int r = unit_stack_setup("unit-tcp-dial", 128, 1024, &env, sink, &core, &group);
	if (r)
		return r;
	RUN(test_handshake_options_and_time_wait);
	RUN(test_refused);
	RUN(test_syn_backoff_and_timeout);
	RUN(test_arp_unanswered);
	RUN(test_simultaneous_open);
	RUN(test_plain_peer_and_refusing_dialer);
	RUN(test_burst_waits_for_one_arp_answer);
	RUN(test_off_link_through_the_gateway);
	RUN(test_ports_come_back_to_their_core);
	unit_stack_teardown(&env);
	return CHECK_DONE();
}
