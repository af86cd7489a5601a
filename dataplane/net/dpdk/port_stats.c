/* The port's counters per core. rte_eth_stats gives each queue's packets and bytes and the
 * port's missed, error and no-mbuf counts; net_af_packet reports no missed frames at all,
 * though its kernel ring drops every frame that arrives while the ring is full (the
 * kernel's tp_drops). Those are read from the driver's own sockets: the process's AF_PACKET
 * descriptors bound to the interface, one per queue, made in queue order. */
#include "port_stats.h"
#include "stack.h"
#include "base_limits.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <rte_ethdev.h>

/* Written once by port_stats_init; afp_drops[q] only by core q. */
static struct {
	uint16_t port;
	unsigned nqueues;
	int afp_fd[DURO_MAX_CORES]; /* -1: not af_packet, or not found */
	uint64_t afp_drops[DURO_MAX_CORES];
} ps;

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* The AF_PACKET sockets bound to ifindex, ascending; returns how many (at most max). */
static unsigned find_packet_sockets(int ifindex, int *fds, unsigned max)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 0;
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < max) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end || fd < 0 || fd == dirfd(d))
			continue;
		int dom = 0;
		socklen_t dl = sizeof(dom);
		if (getsockopt((int)fd, SOL_SOCKET, SO_DOMAIN, &dom, &dl) < 0 || dom != AF_PACKET)
			continue;
		struct sockaddr_ll sll;
		socklen_t sl = sizeof(sll);
		memset(&sll, 0, sizeof(sll));
		if (getsockname((int)fd, (struct sockaddr *)&sll, &sl) < 0 || sll.sll_ifindex != ifindex)
			continue;
		fds[n++] = (int)fd;
	}
	closedir(d);
	qsort(fds, n, sizeof(fds[0]), cmp_int);
	return n;
}

void port_stats_init(uint16_t port, unsigned nqueues, int af_packet, int ifindex)
{
	ps.port = port;
	ps.nqueues = nqueues;
	for (unsigned q = 0; q < DURO_MAX_CORES; q++) {
		ps.afp_fd[q] = -1;
		ps.afp_drops[q] = 0;
	}
	if (!af_packet)
		return;
	int fds[DURO_MAX_CORES + 1];
	unsigned n = find_packet_sockets(ifindex, fds, DURO_MAX_CORES + 1);
	if (n != nqueues) {
		log_warn("dpdk: port %u: %u af_packet sockets on interface %d for %u queues: the "
			 "kernel ring's drops (port_rx_missed) are not counted", port, n, ifindex,
			 nqueues);
		return;
	}
	/* The driver makes queue q's socket in the q-th turn of one loop, each taking the
	 * lowest free descriptor: ascending descriptors are ascending queues. */
	for (unsigned q = 0; q < n; q++) {
		ps.afp_fd[q] = fds[q];
		struct tpacket_stats st;
		socklen_t len = sizeof(st);
		if (getsockopt(fds[q], SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0)
			ps.afp_drops[q] = st.tp_drops; /* before the cores ran: queue q's all the same */
	}
}

void port_stats_poll(unsigned q, uint64_t *ctr)
{
	struct rte_eth_stats st;
	memset(&st, 0, sizeof(st));
	if (rte_eth_stats_get(ps.port, &st) == 0) {
		if (q < RTE_ETHDEV_QUEUE_STAT_CNTRS) {
			ctr[SC_port_rx_packets] = st.q_ipackets[q];
			ctr[SC_port_rx_bytes] = st.q_ibytes[q];
			ctr[SC_port_tx_packets] = st.q_opackets[q];
			ctr[SC_port_tx_bytes] = st.q_obytes[q];
		} else if (ps.nqueues == 1) {
			ctr[SC_port_rx_packets] = st.ipackets;
			ctr[SC_port_rx_bytes] = st.ibytes;
			ctr[SC_port_tx_packets] = st.opackets;
			ctr[SC_port_tx_bytes] = st.obytes;
		}
		if (q == 0) {
			ctr[SC_port_rx_errors] = st.ierrors;
			ctr[SC_port_rx_nombuf] = st.rx_nombuf;
			ctr[SC_port_tx_errors] = st.oerrors;
		}
	}
	if (ps.afp_fd[q] >= 0) {
		/* Reading clears the kernel's counts: this core is their only reader. */
		struct tpacket_stats ts;
		socklen_t len = sizeof(ts);
		if (getsockopt(ps.afp_fd[q], SOL_PACKET, PACKET_STATISTICS, &ts, &len) == 0)
			ps.afp_drops[q] += ts.tp_drops;
	}
	ctr[SC_port_rx_missed] = ps.afp_drops[q] + (q == 0 ? st.imissed : 0);
}
