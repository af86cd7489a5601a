/* The `dpdk` backend: the port (queues, RSS, offloads, the mbuf pool, steering rings
 * between cores) and each core's poll of its RX queue, batched TX and fault injection. */
#include "dpdk.h"
#include "fault.h"
#include "port_stats.h"
#include "stack.h"
#include "base_assert.h"
#include "core.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_thash.h>

#define RX_BURST 32
#define RX_BUDGET 2048     /* frames read per turn at most, so TX and timers get their turn;
			    * at least what a turn may send (STACK_TX_TURN), whose ACKs come back */
#define TX_BURST 256       /* frames handed to the port per call */
#define TX_TRIES 2         /* calls per turn before what is left waits for the next turn */
#define PORT_STATS_MS 100  /* how often a core reads the port's counters */

/* Set up once before the cores start; read-only while they run. */
static struct {
	struct dpdk_config cfg;
	struct stack_env env;
	uint16_t port;
	int started;
	char driver[64];
} rt;

/* Frames waiting for the port: a ring of rt.cfg.tx_backlog slots (a power of two), the
 * oldest first. What the port does not take in one turn stays for the next. */
struct dpdk_core {
	struct rte_mbuf *stage[TX_BURST * 3]; /* room for the fault injector's extra frames */
	unsigned nstage;
	struct rte_mbuf **tx;
	unsigned tx_head, ntx, tx_mask;
	uint64_t stats_due_ms;
	int faults; /* the injector is configured */
	struct fault rx_fault, tx_fault;
};

void dpdk_config_defaults(struct dpdk_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mtu = DPDK_DEFAULT_MTU;
	cfg->idle_sleep_us = DPDK_DEFAULT_IDLE_SLEEP_US;
	cfg->rx_desc = DPDK_DEFAULT_RX_DESC;
	cfg->tx_desc = DPDK_DEFAULT_TX_DESC;
	cfg->tx_backlog = DPDK_DEFAULT_TX_BACKLOG;
	cfg->steer_ring = DPDK_DEFAULT_STEER_RING;
	cfg->af_packet_framecnt = DPDK_DEFAULT_AF_PACKET_FRAMECNT;
	cfg->af_packet_blocksz = DPDK_DEFAULT_AF_PACKET_BLOCKSZ;
	cfg->zero_copy_min_bytes = DPDK_DEFAULT_ZERO_COPY_MIN_BYTES;
	cfg->tx_coalesce_us = DPDK_DEFAULT_TX_COALESCE_US;
}

/* Ports whose driver copies each frame with the CPU (nothing reads the memory by DMA, and
 * nothing keeps an mbuf past the transmit call): shared memory may go out as it is. */
static int cpu_copying_port(const char *driver)
{
	static const char *const ok[] = { "net_af_packet", "net_pcap", "net_tap", "net_null" };
	for (size_t i = 0; i < RTE_DIM(ok); i++)
		if (strcmp(driver, ok[i]) == 0)
			return 1;
	return 0;
}

static int has_devarg(const char *dev, const char *key)
{
	size_t k = strlen(key);
	for (const char *p = strchr(dev, ','); p; p = strchr(p + 1, ','))
		if (strncmp(p + 1, key, k) == 0 && p[1 + k] == '=')
			return 1;
	return 0;
}

int dpdk_vdev_arg(const struct dpdk_config *cfg, unsigned i, char *out, size_t len)
{
	const char *dev = cfg->vdevs[i];
	int n = snprintf(out, len, "--vdev=%s", dev);
	int afp = strncmp(dev, "net_af_packet", 13) == 0 || strncmp(dev, "eth_af_packet", 13) == 0;
	if (afp && cfg->af_packet_framecnt && !has_devarg(dev, "framecnt") && n >= 0 && (size_t)n < len)
		n += snprintf(out + n, len - (size_t)n, ",framecnt=%u", cfg->af_packet_framecnt);
	if (afp && cfg->af_packet_blocksz && !has_devarg(dev, "blocksz") && n >= 0 && (size_t)n < len)
		n += snprintf(out + n, len - (size_t)n, ",blocksz=%u", cfg->af_packet_blocksz);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int dpdk_parse_cidr(const char *text, uint32_t *ipv4, unsigned *prefix)
{
	char buf[32];
	const char *slash = strchr(text, '/');
	size_t n = slash ? (size_t)(slash - text) : strlen(text);
	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, text, n);
	buf[n] = 0;
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	unsigned p = 32;
	if (slash) {
		char *end;
		unsigned long v = strtoul(slash + 1, &end, 10);
		if (!slash[1] || *end || v < 1 || v > 32)
			return -EINVAL;
		p = (unsigned)v;
	}
	*ipv4 = a.s_addr;
	*prefix = p;
	return 0;
}

/* Toeplitz with this repeating key hashes both directions of a flow alike. */
static uint8_t symmetric_rss_key[40] = {
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
};

static void dpdk_tx(struct core *c, struct rte_mbuf *m);

int dpdk_port_init(const struct dpdk_config *cfg, const struct net_config *net, unsigned ncores)
{
	rt.cfg = *cfg;
	if (!cfg->ipv4) {
		log_error("dpdk: no address: set dpdk.ipv4 (e.g. \"10.77.0.1/24\") or --dpdk-ipv4");
		return -EINVAL;
	}
	uint16_t navail = rte_eth_dev_count_avail();
	if (!rte_eth_dev_is_valid_port((uint16_t)cfg->port)) {
		log_error("dpdk: port %u does not exist (%u ports found; give the driver with "
			  "dpdk.vdevs, e.g. \"net_af_packet0,iface=eth1,qpairs=%u\")",
			  cfg->port, navail, ncores);
		return -ENODEV;
	}
	uint16_t port = (uint16_t)cfg->port;
	rt.port = port;
	struct rte_eth_dev_info info;
	int r = rte_eth_dev_info_get(port, &info);
	if (r < 0) {
		log_error("dpdk: port %u: rte_eth_dev_info_get: %s", port, strerror(-r));
		return r;
	}
	snprintf(rt.driver, sizeof(rt.driver), "%s", info.driver_name);
	if (info.max_rx_queues < ncores || info.max_tx_queues < ncores) {
		log_error("dpdk: port %u (%s) has %u RX / %u TX queues; durod needs one of each "
			  "per core (%u) — for af_packet set qpairs=%u",
			  port, info.driver_name, info.max_rx_queues, info.max_tx_queues, ncores, ncores);
		return -EINVAL;
	}
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	uint64_t rss = info.flow_type_rss_offloads & (RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_IPV4);
	if (ncores > 1 && rss) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_RSS_HASH)
			conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_RSS_HASH; /* the hash in the mbuf */
		conf.rx_adv_conf.rss_conf.rss_key = symmetric_rss_key;
		conf.rx_adv_conf.rss_conf.rss_key_len = sizeof(symmetric_rss_key);
		conf.rx_adv_conf.rss_conf.rss_hf = rss;
	}
	const uint64_t rx_ck = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
	const uint64_t tx_ck = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
	if ((info.rx_offload_capa & rx_ck) == rx_ck) {
		conf.rxmode.offloads |= rx_ck;
		rt.env.rx_cksum_offload = 1;
	}
	if ((info.tx_offload_capa & tx_ck) == tx_ck) {
		conf.txmode.offloads |= tx_ck;
		rt.env.tx_cksum_offload = 1;
	}
	r = rte_eth_dev_configure(port, (uint16_t)ncores, (uint16_t)ncores, &conf);
	if (r < 0) {
		log_error("dpdk: port %u: rte_eth_dev_configure: %s", port, strerror(-r));
		return r;
	}
	uint16_t mtu = (uint16_t)cfg->mtu;
	if (rte_eth_dev_set_mtu(port, mtu) < 0) {
		uint16_t cur = 0;
		if (rte_eth_dev_get_mtu(port, &cur) == 0 && cur && cur < mtu) {
			log_warn("dpdk: port %u keeps MTU %u (asked for %u)", port, cur, mtu);
			mtu = cur;
		}
	}
	uint16_t nrx = (uint16_t)(cfg->rx_desc > UINT16_MAX ? UINT16_MAX : cfg->rx_desc);
	uint16_t ntxd = (uint16_t)(cfg->tx_desc > UINT16_MAX ? UINT16_MAX : cfg->tx_desc);
	r = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntxd);
	if (r < 0) {
		log_error("dpdk: port %u: descriptor counts: %s", port, strerror(-r));
		return r;
	}
	if (nrx != cfg->rx_desc || ntxd != cfg->tx_desc)
		log_info("dpdk: port %u takes %u RX / %u TX descriptors per queue (asked for %u / %u)",
			 port, nrx, ntxd, cfg->rx_desc, cfg->tx_desc);
	unsigned nmbufs = cfg->mbufs ? cfg->mbufs
				     : ncores * (DPDK_MBUFS_PER_CORE + nrx + ntxd + cfg->tx_backlog);
	rt.env.pool = rte_pktmbuf_pool_create("duro_mbufs", nmbufs, 256, STACK_MBUF_PRIV,
					      RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (!rt.env.pool) {
		log_error("dpdk: mbuf pool of %u: %s (more EAL memory: -m)", nmbufs,
			  rte_strerror(rte_errno));
		return -ENOMEM;
	}
	if (cfg->zero_copy_min_bytes && cpu_copying_port(info.driver_name)) {
		/* Mbufs without data room, attached to shared output behind a header. */
		rt.env.ext_pool = rte_pktmbuf_pool_create("duro_ext", ncores * DPDK_MBUFS_PER_CORE, 256, 0,
							  0, (int)rte_socket_id());
		if (!rt.env.ext_pool) {
			log_error("dpdk: mbuf pool of %u without data: %s (more EAL memory: -m)",
				  ncores * DPDK_MBUFS_PER_CORE, rte_strerror(rte_errno));
			return -ENOMEM;
		}
		rt.env.zc_min = cfg->zero_copy_min_bytes;
	} else if (cfg->zero_copy_min_bytes) {
		log_info("dpdk: port %u (%s) reads frames by DMA: shared output is copied (zero copy "
			 "would need it in memory registered with DPDK)", port, info.driver_name);
	}
	for (unsigned q = 0; q < ncores; q++) {
		r = rte_eth_rx_queue_setup(port, (uint16_t)q, nrx, (unsigned)rte_socket_id(), NULL,
					   rt.env.pool);
		if (r == 0)
			r = rte_eth_tx_queue_setup(port, (uint16_t)q, ntxd, (unsigned)rte_socket_id(),
						   NULL);
		if (r < 0) {
			log_error("dpdk: port %u queue %u: %s", port, q, strerror(-r));
			return r;
		}
	}
	struct rte_ether_addr mac;
	if (cfg->mac_set) {
		memcpy(mac.addr_bytes, cfg->mac, 6);
		if (rte_eth_dev_default_mac_addr_set(port, &mac) < 0)
			rte_eth_promiscuous_enable(port); /* our address still reaches us */
	} else if ((r = rte_eth_macaddr_get(port, &mac)) < 0) {
		log_error("dpdk: port %u: no MAC address: %s", port, strerror(-r));
		return r;
	}
	r = rte_eth_dev_start(port);
	if (r < 0) {
		log_error("dpdk: port %u: start: %s", port, strerror(-r));
		return r;
	}
	rt.started = 1;
	port_stats_init(port, ncores, strcmp(info.driver_name, "net_af_packet") == 0,
			(int)info.if_index);
	if (conf.rxmode.mq_mode == RTE_ETH_MQ_RX_RSS && info.reta_size &&
	    info.reta_size <= RTE_DIM(rt.env.reta)) {
		/* Queue i % cores for entry i, written to the port and kept for the stack. */
		struct rte_eth_rss_reta_entry64 reta[RTE_DIM(rt.env.reta) / RTE_ETH_RETA_GROUP_SIZE];
		memset(reta, 0, sizeof(reta));
		for (unsigned i = 0; i < info.reta_size; i++) {
			reta[i / RTE_ETH_RETA_GROUP_SIZE].mask |= 1ull << (i % RTE_ETH_RETA_GROUP_SIZE);
			reta[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] =
				(uint16_t)(i % ncores);
			rt.env.reta[i] = (uint16_t)(i % ncores);
		}
		if (rte_eth_dev_rss_reta_update(port, reta, info.reta_size) == 0) {
			rt.env.rss = 1;
			rt.env.reta_size = info.reta_size;
			rt.env.rss_words = (rss & RTE_ETH_RSS_NONFRAG_IPV4_TCP) ? RTE_THASH_V4_L4_LEN
										: RTE_THASH_V4_L3_LEN;
			memcpy(rt.env.rss_key, symmetric_rss_key, sizeof(rt.env.rss_key));
		} else {
			log_warn("dpdk: port %u: RSS redirection table not writable: flows are "
				 "handed to their owner core in software", port);
		}
	}

	struct stack_env *env = &rt.env;
	memcpy(env->mac, mac.addr_bytes, 6);
	env->ipv4 = cfg->ipv4;
	env->netmask = htonl(cfg->prefix >= 32 ? 0xffffffffu : ~(0xffffffffu >> cfg->prefix));
	env->gateway = cfg->gateway;
	env->mtu = mtu;
	env->ncores = ncores;
	env->tx = dpdk_tx;
	env->coalesce_us = cfg->tx_coalesce_us;
	for (unsigned i = 0; i < net->nlisten; i++) {
		const struct net_listen *nl = &net->listen[i];
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&nl->addr;
		if (nl->addr.ss_family != AF_INET ||
		    (sin->sin_addr.s_addr != 0 && sin->sin_addr.s_addr != cfg->ipv4)) {
			char a[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &cfg->ipv4, a, sizeof(a));
			log_error("dpdk: listener %s: the stack serves IPv4 on %s only (use %s:PORT "
				  "or 0.0.0.0:PORT)", nl->text, a, a);
			return -EINVAL;
		}
		env->ports[env->nports++] = sin->sin_port;
	}
	if (getrandom(env->secret, sizeof(env->secret), 0) != (ssize_t)sizeof(env->secret)) {
		log_error("dpdk: getrandom: %s", strerror(errno));
		return -EIO;
	}
	if (ncores > 1) {
		for (unsigned a = 0; a < ncores; a++)
			for (unsigned b = 0; b < ncores; b++) {
				if (a == b)
					continue;
				char name[RTE_RING_NAMESIZE];
				snprintf(name, sizeof(name), "duro_steer_%u_%u", a, b);
				env->steer[a][b] = rte_ring_create(name, cfg->steer_ring, (int)rte_socket_id(),
								   RING_F_SP_ENQ | RING_F_SC_DEQ);
				if (!env->steer[a][b]) {
					log_error("dpdk: ring %s: %s", name, rte_strerror(rte_errno));
					return -ENOMEM;
				}
			}
	}
	char a[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &cfg->ipv4, a, sizeof(a));
	log_info("dpdk: port %u (%s) %02x:%02x:%02x:%02x:%02x:%02x %s/%u mtu %u, %u queue pairs, "
		 "%s, checksums %s/%s, %u mbufs, %u/%u descriptors, TX backlog %u, zero copy from %u bytes",
		 port, rt.driver, mac.addr_bytes[0], mac.addr_bytes[1], mac.addr_bytes[2],
		 mac.addr_bytes[3], mac.addr_bytes[4], mac.addr_bytes[5], a, cfg->prefix, mtu, ncores,
		 rt.env.rss ? "RSS (owner core = RSS queue)" : "no RSS (flows handed to their owner core)",
		 env->rx_cksum_offload ? "rx offloaded" : "rx software",
		 env->tx_cksum_offload ? "tx offloaded" : "tx software", nmbufs, nrx, ntxd,
		 cfg->tx_backlog, env->zc_min);
	return 0;
}

void dpdk_port_fini(void)
{
	if (rt.started) {
		rte_eth_dev_stop(rt.port);
		rte_eth_dev_close(rt.port);
		rt.started = 0;
	}
	for (unsigned a = 0; a < DURO_MAX_CORES; a++)
		for (unsigned b = 0; b < DURO_MAX_CORES; b++)
			if (rt.env.steer[a][b]) {
				struct rte_mbuf *m;
				while (rte_ring_dequeue(rt.env.steer[a][b], (void **)&m) == 0)
					rte_pktmbuf_free(m);
				rte_ring_free(rt.env.steer[a][b]);
				rt.env.steer[a][b] = NULL;
			}
	if (rt.env.pool) {
		rte_mempool_free(rt.env.pool);
		rt.env.pool = NULL;
	}
	if (rt.env.ext_pool) {
		rte_mempool_free(rt.env.ext_pool);
		rt.env.ext_pool = NULL;
	}
}

/* ---- per core ---- */

/* Hands queued frames to the port, oldest first, while it takes them; after TX_TRIES
 * calls that it did not take whole, the rest waits for the next turn (the port's queue
 * is full: the driver has not yet sent what it holds). */
static void tx_drain(struct core *c, struct dpdk_core *pc)
{
	unsigned short_calls = 0;
	while (pc->ntx && short_calls < TX_TRIES) {
		unsigned cap = pc->tx_mask + 1;
		unsigned n = cap - pc->tx_head < pc->ntx ? cap - pc->tx_head : pc->ntx;
		if (n > UINT16_MAX)
			n = UINT16_MAX;
		unsigned sent = rte_eth_tx_burst(rt.port, (uint16_t)c->index, pc->tx + pc->tx_head,
						 (uint16_t)n);
		pc->tx_head = (pc->tx_head + sent) & pc->tx_mask;
		pc->ntx -= sent;
		if (sent < n)
			short_calls++;
	}
}

/* Queues frames for the port; a frame that finds the backlog full is dropped and counted
 * (TCP sends its segment again; an ACK is sent again by the next segment). */
static void tx_push(struct core *c, struct dpdk_core *pc, struct rte_mbuf **m, unsigned n)
{
	unsigned cap = pc->tx_mask + 1;
	unsigned room = cap - pc->ntx;
	if (n > room) {
		stack_counters(c)[SC_drop_tx_full] += n - room;
		rte_pktmbuf_free_bulk(m + room, n - room);
		n = room;
	}
	for (unsigned i = 0; i < n; i++)
		pc->tx[(pc->tx_head + pc->ntx + i) & pc->tx_mask] = m[i];
	pc->ntx += n;
}

#define TX_STAGE TX_BURST

/* The stack's frames of this turn, through the fault injector when one is configured. */
static void stage_flush(struct core *c, struct dpdk_core *pc)
{
	unsigned n = pc->nstage;
	if (pc->faults) {
		n = fault_apply(&pc->tx_fault, c->now_ms, pc->stage, n, RTE_DIM(pc->stage));
	}
	pc->nstage = 0;
	tx_push(c, pc, pc->stage, n);
	tx_drain(c, pc);
}

static void dpdk_tx(struct core *c, struct rte_mbuf *m)
{
	struct dpdk_core *pc = stack_port(c);
	pc->stage[pc->nstage++] = m;
	if (pc->nstage == TX_STAGE)
		stage_flush(c, pc);
}

static unsigned dpdk_poll(struct core *c)
{
	struct dpdk_core *pc = stack_port(c);
	struct rte_mbuf *pkts[RX_BURST * 4];
	unsigned work = 0;
	/* Burst after burst until the queue is empty or the turn's budget is spent: a turn
	 * that sent to a thousand connections must not leave their ACKs waiting in the ring
	 * for dozens of turns. */
	for (unsigned b = 0; b < RX_BUDGET / RX_BURST; b++) {
		unsigned got = rte_eth_rx_burst(rt.port, (uint16_t)c->index, pkts, RX_BURST), n = got;
		if (pc->faults)
			n = fault_apply(&pc->rx_fault, c->now_ms, pkts, n, RTE_DIM(pkts));
		for (unsigned i = 0; i < n; i++)
			stack_input(c, pkts[i], 0);
		work += n;
		if (got < RX_BURST)
			break;
	}
	for (unsigned src = 0; src < rt.env.ncores; src++) {
		struct rte_ring *r = rt.env.steer[src][c->index];
		if (!r)
			continue;
		unsigned k = rte_ring_dequeue_burst(r, (void **)pkts, RX_BURST, NULL);
		for (unsigned i = 0; i < k; i++)
			stack_input(c, pkts[i], 1);
		work += k;
	}
	return work;
}

static void dpdk_flush_hook(struct core *c)
{
	struct dpdk_core *pc = stack_port(c);
	uint64_t *ctr = stack_counters(c);
	stack_flush(c);
	if (pc->nstage || pc->faults)
		stage_flush(c, pc);
	else if (pc->ntx)
		tx_drain(c, pc);
	if (pc->ntx) {
		ctr[SC_tx_deferred] += pc->ntx; /* frames that wait a turn for the port */
		core_did_work(c);              /* and the core does not sleep on them */
	}
	ctr[SC_tx_queue_depth] = pc->ntx;
	if (pc->faults) {
		ctr[SC_fault_dropped] = pc->rx_fault.dropped + pc->tx_fault.dropped;
		ctr[SC_fault_duplicated] = pc->rx_fault.duplicated + pc->tx_fault.duplicated;
		ctr[SC_fault_reordered] = pc->rx_fault.reordered + pc->tx_fault.reordered;
		ctr[SC_fault_delayed] = pc->rx_fault.delayed_n + pc->tx_fault.delayed_n;
	}
	if (c->now_ms >= pc->stats_due_ms) {
		pc->stats_due_ms = c->now_ms + PORT_STATS_MS;
		port_stats_poll(c->index, ctr);
	}
}

static int dpdk_core_init(struct core *c, const struct net_config *cfg, const struct net_events *ev)
{
	DURO_ASSERT(rt.started);
	struct dpdk_core *pc = calloc(1, sizeof(*pc));
	unsigned cap = TX_BURST;
	while (cap < rt.cfg.tx_backlog)
		cap <<= 1;
	if (pc)
		pc->tx = calloc(cap, sizeof(*pc->tx));
	if (!pc || !pc->tx) {
		if (pc)
			free(pc->tx);
		free(pc);
		return -ENOMEM;
	}
	pc->tx_mask = cap - 1;
	int r = stack_core_init(c, &rt.env, cfg, ev);
	if (r < 0) {
		free(pc->tx);
		free(pc);
		return r;
	}
	stack_set_port(c, pc);
	pc->faults = fault_enabled(&rt.cfg.fault_rx) || fault_enabled(&rt.cfg.fault_tx);
	fault_init(&pc->rx_fault, &rt.cfg.fault_rx, c->index * 2, rt.env.pool);
	fault_init(&pc->tx_fault, &rt.cfg.fault_tx, c->index * 2 + 1, rt.env.pool);
	if (pc->faults && c->index == 0)
		log_warn("dpdk: fault injection on (seed %llu): rx drop %u%% dup %u%% reorder %u%% "
			 "delay %u%%/%u ms, tx drop %u%% dup %u%% reorder %u%% delay %u%%/%u ms",
			 (unsigned long long)rt.cfg.fault_rx.seed, rt.cfg.fault_rx.drop_pct,
			 rt.cfg.fault_rx.duplicate_pct, rt.cfg.fault_rx.reorder_pct,
			 rt.cfg.fault_rx.delay_pct, rt.cfg.fault_rx.delay_ms, rt.cfg.fault_tx.drop_pct,
			 rt.cfg.fault_tx.duplicate_pct, rt.cfg.fault_tx.reorder_pct,
			 rt.cfg.fault_tx.delay_pct, rt.cfg.fault_tx.delay_ms);
	core_add_poller(c, dpdk_poll);
	core_add_hook(c, dpdk_flush_hook);
	c->max_sleep_us = rt.cfg.idle_sleep_us;
	if (c->index == 0)
		stack_announce(c);
	return 0;
}

static void dpdk_core_fini(struct core *c)
{
	if (!c->net)
		return;
	struct dpdk_core *pc = stack_port(c);
	/* Frames still waiting go before the stack: one may point at shared output, whose
	 * record the stack frees with itself. */
	if (pc) {
		fault_fini(&pc->rx_fault);
		fault_fini(&pc->tx_fault);
		rte_pktmbuf_free_bulk(pc->stage, pc->nstage);
		while (pc->ntx) {
			rte_pktmbuf_free(pc->tx[pc->tx_head]);
			pc->tx_head = (pc->tx_head + 1) & pc->tx_mask;
			pc->ntx--;
		}
		free(pc->tx);
		free(pc);
	}
	stack_core_fini(c);
}

static unsigned dpdk_more_counters(struct core *c, const char *const **names,
				   const uint64_t **vals)
{
	*names = stack_counter_names;
	*vals = stack_counters(c);
	return SC_COUNT;
}

const struct net_backend net_dpdk = {
	.name = "dpdk",
	.core_init = dpdk_core_init,
	.core_fini = dpdk_core_fini,
	.want_write = stack_want_write,
	.close = stack_close,
	.pause_read = stack_pause_read,
	.set_events = stack_set_events,
	.start_accepting = stack_start_accepting,
	.stop_accepting = stack_stop_accepting,
	.listening = stack_listening,
	.counters = stack_net_counters,
	.more_counters = dpdk_more_counters,
	.dial = stack_dial,
	.dial_cancel = stack_dial_cancel,
};
