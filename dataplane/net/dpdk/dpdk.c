/* The `dpdk` backend: the port (queues, RSS, offloads, the mbuf pool, steering rings
 * between cores) and each core's poll of its RX queue, batched TX and fault injection. */
#include "dpdk.h"
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
#define TX_BUF 256
#define RX_DESC 1024
#define TX_DESC 1024
#define STEER_RING 4096
#define TX_RETRIES 4

/* Set up once before the cores start; read-only while they run. */
static struct {
	struct dpdk_config cfg;
	struct stack_env env;
	uint16_t port;
	int started;
	char driver[64];
} rt;

struct dpdk_core {
	struct rte_mbuf *tx[TX_BUF];
	unsigned ntx;
	int faults; /* the injector is configured */
	struct fault rx_fault, tx_fault;
};

void dpdk_config_defaults(struct dpdk_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mtu = DPDK_DEFAULT_MTU;
	cfg->idle_sleep_us = DPDK_DEFAULT_IDLE_SLEEP_US;
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
	unsigned nmbufs = cfg->mbufs ? cfg->mbufs : ncores * (16384u + RX_DESC + TX_DESC);
	rt.env.pool = rte_pktmbuf_pool_create("duro_mbufs", nmbufs, 256, STACK_MBUF_PRIV,
					      RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (!rt.env.pool) {
		log_error("dpdk: mbuf pool of %u: %s (more EAL memory: -m)", nmbufs,
			  rte_strerror(rte_errno));
		return -ENOMEM;
	}
	for (unsigned q = 0; q < ncores; q++) {
		r = rte_eth_rx_queue_setup(port, (uint16_t)q, RX_DESC, (unsigned)rte_socket_id(), NULL,
					   rt.env.pool);
		if (r == 0)
			r = rte_eth_tx_queue_setup(port, (uint16_t)q, TX_DESC, (unsigned)rte_socket_id(),
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
				env->steer[a][b] = rte_ring_create(name, STEER_RING, (int)rte_socket_id(),
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
		 "%s, checksums %s/%s, %u mbufs",
		 port, rt.driver, mac.addr_bytes[0], mac.addr_bytes[1], mac.addr_bytes[2],
		 mac.addr_bytes[3], mac.addr_bytes[4], mac.addr_bytes[5], a, cfg->prefix, mtu, ncores,
		 rt.env.rss ? "RSS (owner core = RSS queue)" : "no RSS (flows handed to their owner core)",
		 env->rx_cksum_offload ? "rx offloaded" : "rx software",
		 env->tx_cksum_offload ? "tx offloaded" : "tx software", nmbufs);
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
}

/* ---- per core ---- */

static void tx_flush(struct core *c, struct dpdk_core *pc)
{
	if (pc->faults)
		pc->ntx = fault_apply(&pc->tx_fault, c->now_ms, pc->tx, pc->ntx, TX_BUF);
	unsigned sent = 0;
	for (int tries = 0; sent < pc->ntx && tries < TX_RETRIES; tries++)
		sent += rte_eth_tx_burst(rt.port, (uint16_t)c->index, pc->tx + sent,
					 (uint16_t)(pc->ntx - sent));
	if (sent < pc->ntx) {
		uint64_t *ctr = stack_counters(c);
		ctr[SC_drop_tx_full] += pc->ntx - sent; /* TCP sends them again */
		rte_pktmbuf_free_bulk(pc->tx + sent, pc->ntx - sent);
	}
	pc->ntx = 0;
}

static void dpdk_tx(struct core *c, struct rte_mbuf *m)
{
	struct dpdk_core *pc = stack_port(c);
	if (pc->ntx == TX_BUF)
		tx_flush(c, pc);
	pc->tx[pc->ntx++] = m;
}

static unsigned dpdk_poll(struct core *c)
{
	struct dpdk_core *pc = stack_port(c);
	struct rte_mbuf *pkts[RX_BURST * 2];
	unsigned n = rte_eth_rx_burst(rt.port, (uint16_t)c->index, pkts, RX_BURST);
	if (pc->faults)
		n = fault_apply(&pc->rx_fault, c->now_ms, pkts, n, RX_BURST * 2);
	for (unsigned i = 0; i < n; i++)
		stack_input(c, pkts[i], 0);
	unsigned work = n;
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
	stack_flush(c);
	if (pc->ntx || pc->faults)
		tx_flush(c, pc);
	if (pc->faults) {
		uint64_t *ctr = stack_counters(c);
		ctr[SC_fault_dropped] = pc->rx_fault.dropped + pc->tx_fault.dropped;
		ctr[SC_fault_duplicated] = pc->rx_fault.duplicated + pc->tx_fault.duplicated;
		ctr[SC_fault_reordered] = pc->rx_fault.reordered + pc->tx_fault.reordered;
		ctr[SC_fault_delayed] = pc->rx_fault.delayed_n + pc->tx_fault.delayed_n;
	}
}

static int dpdk_core_init(struct core *c, const struct net_config *cfg, const struct net_events *ev)
{
	DURO_ASSERT(rt.started);
	struct dpdk_core *pc = calloc(1, sizeof(*pc));
	if (!pc)
		return -ENOMEM;
	int r = stack_core_init(c, &rt.env, cfg, ev);
	if (r < 0) {
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
	stack_core_fini(c);
	if (pc) {
		fault_fini(&pc->rx_fault);
		fault_fini(&pc->tx_fault);
		rte_pktmbuf_free_bulk(pc->tx, pc->ntx);
		free(pc);
	}
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
};
