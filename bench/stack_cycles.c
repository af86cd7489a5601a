/* The dpdk stack's cost per packet, in TSC cycles, without a NIC or the layers above: many
 * connections opened, then rounds of request segment in, reply segment out, ACK in, through
 * the real stack code with a trivial layer above. The figure that carries over to real NICs. */
#include "core.h"
#include "stack.h"
#include "timer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#define CONNS 1000
#define ROUNDS 200
#define REQ 100
#define REPLY 200

static struct stack_env env;
static uint64_t out_frames;
static uint32_t last_seq, last_ack;
static uint16_t last_dport;

static void sink(struct core *c, struct rte_mbuf *m)
{
	(void)c;
	const struct rte_tcp_hdr *th = rte_pktmbuf_mtod_offset(m, const struct rte_tcp_hdr *,
		sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr));
	last_seq = rte_be_to_cpu_32(th->sent_seq);
	last_ack = rte_be_to_cpu_32(th->recv_ack);
	last_dport = th->dst_port;
	out_frames++;
	rte_pktmbuf_free(m);
}

static size_t pending[CONNS + 1];
static struct net_conn *conns[CONNS + 1];
static unsigned accepted;
static void *ev_accept(struct core *c, struct net_conn *conn)
{
	(void)c;
	conns[accepted % CONNS] = conn;
	return &pending[accepted++ % CONNS];
}
static void ev_data(struct core *c, struct net_conn *conn, const char *d, size_t n)
{
	(void)d;
	if (n) {
		*(size_t *)conn->user += REPLY;
		stack_want_write(c, conn);
	}
}
static char reply[REPLY];
static unsigned ev_fill(struct core *c, struct net_conn *conn, struct iovec *iov, unsigned max)
{
	(void)c;
	size_t *p = conn->user;
	if (!*p || !max)
		return 0;
	iov[0].iov_base = reply;
	iov[0].iov_len = *p;
	return 1;
}
/* The broadcast rounds: every connection's output is the same shared frame. */
static char bframe[2048];
static unsigned bsize;
static struct net_share bshare;
static void bshare_release(struct core *c, struct net_share *sh) { (void)c; (void)sh; }
static unsigned ev_fill_shared(struct core *c, struct net_conn *conn, struct iovec *iov,
			       struct net_share **share, unsigned max)
{
	unsigned n = ev_fill(c, conn, iov, max);
	if (n && bsize) {
		iov[0].iov_base = bframe;
		share[0] = &bshare;
	} else if (n) {
		share[0] = NULL;
	}
	return n;
}
static void ev_sent(struct core *c, struct net_conn *conn, size_t n) { (void)c; *(size_t *)conn->user -= n; }
static void ev_closed(struct core *c, struct net_conn *conn, int e) { (void)c; (void)conn; (void)e; }
static const struct net_events events = { .on_accept = ev_accept, .on_data = ev_data,
					  .fill_output = ev_fill, .on_sent = ev_sent,
					  .on_closed = ev_closed, .fill_output_shared = ev_fill_shared };

static struct rte_mbuf *frame(uint16_t sport, uint8_t flags, uint32_t seq, uint32_t ack,
			      unsigned payload)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(env.pool);
	unsigned len = sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) +
		       sizeof(struct rte_tcp_hdr) + payload;
	uint8_t *f = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)len);
	memset(f, 'q', len);
	struct rte_ether_hdr *eh = (struct rte_ether_hdr *)f;
	memcpy(eh->dst_addr.addr_bytes, env.mac, 6);
	memcpy(eh->src_addr.addr_bytes, "\x02\0\0\0\0\x02", 6);
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eh + 1);
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(len - sizeof(*eh)));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = rte_cpu_to_be_32(RTE_IPV4(10, 0, 0, 2));
	ip->dst_addr = env.ipv4;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);
	memset(th, 0, sizeof(*th));
	th->src_port = rte_cpu_to_be_16(sport);
	th->dst_port = env.ports[0];
	th->sent_seq = rte_cpu_to_be_32(seq);
	th->recv_ack = rte_cpu_to_be_32(ack);
	th->data_off = 5 << 4;
	th->tcp_flags = flags;
	th->rx_win = rte_cpu_to_be_16(65535);
	th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	return m;
}

int main(void)
{
	char prefix[32];
	snprintf(prefix, sizeof(prefix), "stackbench%d", (int)getpid());
	char *eal[] = { "stack_cycles", "-l", "0", "--no-huge", "-m", "256", "--no-pci", "--no-shconf",
			"--file-prefix", prefix, "--log-level", "lib.eal:error", "--no-telemetry", NULL };
	if (rte_eal_init(13, eal) < 0)
		return 1;
	env.pool = rte_pktmbuf_pool_create("bench", 16384, 256, STACK_MBUF_PRIV,
					   RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	memcpy(env.mac, "\x02\0\0\0\0\x01", 6);
	env.ipv4 = rte_cpu_to_be_32(RTE_IPV4(10, 0, 0, 1));
	env.netmask = rte_cpu_to_be_32(0xffffff00u);
	env.mtu = 1500;
	env.ports[0] = rte_cpu_to_be_16(80);
	env.nports = 1;
	env.ncores = 1;
	env.tx = sink;
	static struct core_group g;
	struct core *c = aligned_alloc(64, sizeof(*c));
	memset(c, 0, sizeof(*c));
	g.ncores = 1;
	g.cores[0] = c;
	c->group = &g;
	static const struct net_config cfg = { .max_conns_per_core = CONNS * 2, .linger_ms = 1000 };
	if (timer_wheel_create(c, 0) < 0 || stack_core_init(c, &env, &cfg, &events) < 0 ||
	    stack_start_accepting(c) < 0)
		return 1;
	static uint32_t cseq[CONNS], sseq[CONNS];
	for (unsigned i = 0; i < CONNS; i++) {
		uint16_t port = (uint16_t)(20000 + i);
		stack_input(c, frame(port, RTE_TCP_SYN_FLAG, 1000, 0, 0), 0);
		stack_flush(c);
		sseq[i] = last_seq + 1;
		cseq[i] = 1001;
		stack_input(c, frame(port, RTE_TCP_ACK_FLAG, cseq[i], sseq[i], 0), 0);
		stack_flush(c);
	}
	uint64_t in = 0, out0 = out_frames, cycles = 0;
	double best = 1e18;
	for (int rep = 0; rep < 5; rep++) {
		uint64_t t_in = 0, t_out = out_frames, t0 = rte_rdtsc();
		for (unsigned r = 0; r < ROUNDS / 5; r++) {
			for (unsigned i = 0; i < CONNS; i++) {
				uint16_t port = (uint16_t)(20000 + i);
				stack_input(c, frame(port, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, cseq[i], sseq[i], REQ), 0);
				cseq[i] += REQ;
				t_in++;
			}
			stack_flush(c); /* replies out, one segment each */
			for (unsigned i = 0; i < CONNS; i++) {
				uint16_t port = (uint16_t)(20000 + i);
				sseq[i] += REPLY;
				stack_input(c, frame(port, RTE_TCP_ACK_FLAG, cseq[i], sseq[i], 0), 0);
				t_in++;
			}
			stack_flush(c);
		}
		uint64_t dt = rte_rdtsc() - t0;
		double per = (double)dt / (double)(t_in + out_frames - t_out);
		if (per < best)
			best = per;
		cycles += dt;
		in += t_in;
	}
	/* Building the test frames (memset, checksums) is inside the timing: an upper bound. */
	uint64_t pk = in + out_frames - out0;
	printf("stack_cycles: %u connections, %llu packets (%llu in, %llu out), %.0f cycles/packet "
	       "(best of 5: %.0f), TSC %.2f GHz\n", CONNS, (unsigned long long)pk,
	       (unsigned long long)in, (unsigned long long)(out_frames - out0),
	       (double)cycles / (double)pk, best, (double)rte_get_tsc_hz() / 1e9);
	/* Broadcast: one shared frame to every connection per round, then every ACK: the
	 * stack's cycles per delivery, copying the frame or sending it from where it is. */
	env.ext_pool = rte_pktmbuf_pool_create("bench_ext", 16384, 256, 0, 0, 0);
	bshare.release = bshare_release;
	static const unsigned sizes[] = { 64, 1024 };
	for (unsigned si = 0; si < 2; si++) {
		for (int zc = 0; zc < 2; zc++) {
			bsize = sizes[si];
			env.zc_min = zc ? 64 : 0;
			uint64_t t0 = rte_rdtsc(), deliveries = 0;
			for (unsigned r = 0; r < ROUNDS / 5; r++) {
				for (unsigned i = 0; i < CONNS; i++) {
					pending[i] += bsize;
					stack_want_write(c, conns[i]);
				}
				stack_flush(c);
				for (unsigned i = 0; i < CONNS; i++) {
					sseq[i] += bsize;
					stack_input(c, frame((uint16_t)(20000 + i), RTE_TCP_ACK_FLAG, cseq[i],
							     sseq[i], 0), 0);
				}
				stack_flush(c);
				deliveries += CONNS;
			}
			uint64_t dt = rte_rdtsc() - t0;
			printf("stack_cycles: broadcast of %u bytes to %u connections, %s: %.0f cycles "
			       "per delivery (its ACK included)\n", bsize, CONNS,
			       zc ? "zero copy (shared frame attached)" : "copied",
			       (double)dt / (double)deliveries);
		}
	}
	bsize = 0;
	stack_core_fini(c);
	return 0;
}
