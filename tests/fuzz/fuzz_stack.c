/* libFuzzer target: raw Ethernet frames into the dpdk backend's TCP/IP stack (the real
 * stack on a real core's timers and a real mbuf pool), with a layer above that answers and
 * closes, dials out (active open) and cancels, time moving between frames; every mbuf must
 * be back in the pool afterwards. */
#include "core.h"
#include "tcp_int.h"
#include "timer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>

#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct stack_env env;
static struct core *core;
static struct core_group group;
static const struct net_config net_cfg = { .max_conns_per_core = 64, .linger_ms = 50 };
static uint64_t sent_frames;

/* The wire: frames the stack sends are counted and returned to the pool. */
static void sink(struct core *c, struct rte_mbuf *m)
{
	(void)c;
	sent_frames++;
	rte_pktmbuf_free(m);
}

/* The layer above: answers every read with a reply, closes on the peer's FIN. */
static char reply[3000];
struct user {
	size_t pending;
};
static struct user users[128];
static unsigned next_user;

/* The latest dial (stack_dial): its tuple and ISS as values, so that a frame can be made
 * its peer's answer (how & 16); the handle only while neither event has come. */
static struct {
	int pending;
	uint64_t handle;
	uint32_t raddr, iss;
	uint16_t rport, lport;
	struct user *user;
} dial;

static void *ev_accept(struct core *c, struct net_conn *conn)
{
	(void)c;
	if (conn->user) { /* our dial, made */
		if (conn->user != dial.user || !dial.pending)
			abort();
		dial.pending = 0;
		return conn->user;
	}
	struct user *u = &users[next_user++ % 128];
	u->pending = 0;
	return u;
}
static void ev_data(struct core *c, struct net_conn *conn, const char *data, size_t len)
{
	struct user *u = conn->user;
	if (len == 0 || data[0] == 'X') {
		stack_close(c, conn, NET_CLOSE_GRACEFUL);
		return;
	}
	if (data[0] == 'R') {
		stack_close(c, conn, NET_CLOSE_ABORT);
		return;
	}
	if (data[0] == 'P')
		stack_pause_read(c, conn, 1);
	u->pending += len * 3 < sizeof(reply) ? len * 3 : sizeof(reply);
	stack_want_write(c, conn);
}
static unsigned ev_fill(struct core *c, struct net_conn *conn, struct iovec *iov, unsigned max)
{
	(void)c;
	struct user *u = conn->user;
	if (!u->pending || !max)
		return 0;
	iov[0].iov_base = reply;
	iov[0].iov_len = u->pending < sizeof(reply) ? u->pending : sizeof(reply);
	return 1;
}
static void ev_sent(struct core *c, struct net_conn *conn, size_t n)
{
	struct user *u = conn->user;
	if (n > u->pending)
		abort(); /* the stack reported more than it was given */
	u->pending -= n;
	if (!u->pending)
		stack_pause_read(c, conn, 0);
}
static void ev_closed(struct core *c, struct net_conn *conn, int err)
{
	(void)c;
	(void)err;
	conn->user = NULL;
}
static void ev_dial_failed(struct core *c, void *user, int err)
{
	(void)c;
	if (user != dial.user || !dial.pending || err >= 0)
		abort(); /* one event per dial, with a reason */
	dial.pending = 0;
}
static const struct net_events events = { .on_accept = ev_accept, .on_data = ev_data,
					  .fill_output = ev_fill, .on_sent = ev_sent,
					  .on_closed = ev_closed, .on_dial_failed = ev_dial_failed };

/* Opens a connection to 10.0.0.2:8080, or through the gateway to 192.0.2.1:443. */
static void start_dial(struct core *c, int off_link)
{
	struct net_dial d;
	memset(&d, 0, sizeof(d));
	struct sockaddr_in *sin = (struct sockaddr_in *)&d.addr;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = off_link ? rte_cpu_to_be_32(0xc0000201u) : rte_cpu_to_be_32(RTE_IPV4(10, 0, 0, 2));
	sin->sin_port = rte_cpu_to_be_16(off_link ? 443 : 8080);
	d.addrlen = sizeof(*sin);
	struct user *u = &users[next_user++ % 128];
	u->pending = 0;
	uint64_t h;
	if (stack_dial(c, &d, &events, u, &h) < 0)
		return;
	const struct tcb *t = (const struct tcb *)(uintptr_t)h;
	dial.pending = 1;
	dial.handle = h;
	dial.user = u;
	dial.raddr = t->raddr;
	dial.rport = t->rport;
	dial.lport = t->lport;
	dial.iss = t->iss;
}

/* Makes a TCP frame come from the latest dial's peer, to its port; with `ack`, one that
 * acknowledges its SYN. */
static void as_dial_answer(uint8_t *f, size_t len, int ack)
{
	if (len < 14 + 20 || f[12] != 0x08 || f[13] != 0x00)
		return;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(f + 14);
	unsigned ihl = rte_ipv4_hdr_len(ip);
	if (ihl < 20 || 14 + ihl + sizeof(struct rte_tcp_hdr) > len)
		return;
	ip->src_addr = dial.raddr;
	ip->next_proto_id = IPPROTO_TCP;
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)((uint8_t *)ip + ihl);
	th->src_port = dial.rport;
	th->dst_port = dial.lport;
	if (ack)
		th->recv_ack = rte_cpu_to_be_32(dial.iss + 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char prefix[32];
	snprintf(prefix, sizeof(prefix), "fuzzstack%d", (int)getpid());
	char *eal[] = { "fuzz_stack", "-l", "0", "--no-huge", "-m", "128", "--no-pci", "--no-shconf",
			"--file-prefix", prefix, "--log-level", "lib.eal:error", "--no-telemetry", NULL };
	if (rte_eal_init(13, eal) < 0)
		abort();
	env.pool = rte_pktmbuf_pool_create("fuzz", 4096, 0, STACK_MBUF_PRIV,
					   RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	if (!env.pool)
		abort();
	memcpy(env.mac, "\x02\x00\x00\x00\x00\x01", 6);
	env.ipv4 = rte_cpu_to_be_32(RTE_IPV4(10, 0, 0, 1));
	env.netmask = rte_cpu_to_be_32(0xffffff00u);
	env.gateway = rte_cpu_to_be_32(RTE_IPV4(10, 0, 0, 254));
	env.mtu = 1500;
	env.ports[0] = rte_cpu_to_be_16(80);
	env.nports = 1;
	env.ncores = 1;
	env.tx = sink;
	memset(reply, 'r', sizeof(reply));
	core = aligned_alloc(64, sizeof(*core));
	memset(core, 0, sizeof(*core));
	group.ncores = 1;
	group.cores[0] = core;
	core->group = &group;
	if (timer_wheel_create(core, 0) < 0)
		abort();
	return 0;
}

/* Makes a frame reach the stack's deeper layers: our MAC and address, good checksums. */
static void fix_frame(uint8_t *f, size_t len, uint8_t how)
{
	if (len < 14)
		return;
	if (how & 2)
		memcpy(f, env.mac, 6);
	if (len < 14 + 20 || f[12] != 0x08 || f[13] != 0x00)
		return;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(f + 14);
	if (how & 4)
		ip->dst_addr = env.ipv4;
	unsigned ihl = rte_ipv4_hdr_len(ip);
	unsigned tot = rte_be_to_cpu_16(ip->total_length);
	if (!(how & 1) || ihl < 20 || 14 + ihl > len || tot < ihl || 14 + tot > len)
		return;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	if (ip->next_proto_id == IPPROTO_TCP && tot - ihl >= sizeof(struct rte_tcp_hdr)) {
		struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)((uint8_t *)ip + ihl);
		th->cksum = 0;
		th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct core *c = core;
	/* Taking connections, as durod's cores do once every core serves (a stack that does
	 * not yet refuses every SYN, and the fuzzer would never get past the handshake). */
	if (stack_core_init(c, &env, &net_cfg, &events) < 0 || stack_start_accepting(c) < 0)
		abort();
	/* Records: [how, time step, length high, length low, frame...]; how: 1 fix checksums,
	 * 2 our MAC, 4 our address, 8 stop accepting first (a drain), 32 dial first (off-link
	 * when the step's top bit is set), 64 cancel the pending dial first, 16 the frame comes
	 * from the latest dial's peer (128: acknowledging its SYN). */
	memset(&dial, 0, sizeof(dial));
	while (size >= 4) {
		uint8_t how = data[0], step = data[1];
		size_t len = (size_t)data[2] << 8 | data[3];
		data += 4;
		size -= 4;
		if (len > size)
			len = size;
		if (len > 1600)
			len = 1600;
		struct rte_mbuf *m = rte_pktmbuf_alloc(env.pool);
		if (!m)
			abort();
		uint8_t *f = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)len);
		if (len && !f)
			abort();
		if (len)
			memcpy(f, data, len);
		if (how & 64 && dial.pending)
			stack_dial_cancel(c, dial.handle);
		if (how & 32 && !dial.pending)
			start_dial(c, step & 0x80);
		if (how & 16 && dial.lport)
			as_dial_answer(f, len, how & 128);
		fix_frame(f, len, how);
		if (how & 8)
			stack_stop_accepting(c);
		data += len;
		size -= len;
		stack_input(c, m, 0);
		stack_flush(c);
		/* Time passes: delayed ACKs, retransmissions, keep-alives, TIME_WAIT. */
		c->now_ms += (uint64_t)(step & 0x7f) * ((step & 0x80) ? 1000 : 10);
		c->now_ns = c->now_ms * 1000000ull;
		timer_run(c, c->now_ms);
		stack_flush(c);
	}
	stack_core_fini(c);
	dial.pending = 0; /* a dial under way ends with the stack, unreported */
	/* Everything the stack held (queues, reassembly, held data) went back to the pool. */
	if (rte_mempool_in_use_count(env.pool) != 0)
		abort();
	return 0;
}
