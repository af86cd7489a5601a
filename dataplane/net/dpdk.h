/* The `dpdk` backend: a DPDK port with one RX and one TX queue per core and duro's own
 * TCP/IP stack on each core; the port is set up once after the EAL, before the cores run.
 * The backend's only public header: the stack's own (dpdk/) stay inside dataplane/net. */
#ifndef DURO_NET_DPDK_H
#define DURO_NET_DPDK_H

#include "net.h"

#include <stdint.h>

/* The fault injector on the RX or TX path (dpdk/fault.h): off while every pct is 0. */
struct fault_config {
	uint64_t seed;
	unsigned drop_pct, duplicate_pct, reorder_pct, delay_pct; /* 0..100, per frame */
	unsigned delay_ms;
};

#define DPDK_MAX_EAL_ARGS 32

struct dpdk_config {
	/* Extra EAL arguments (memory, drivers); "vdevs" become --vdev=... */
	char eal_args[DPDK_MAX_EAL_ARGS][128];
	unsigned neal_args;
	char vdevs[4][256];
	unsigned nvdevs;
	unsigned port;
	uint8_t mac[6];
	int mac_set;     /* else the port's own */
	uint32_t ipv4;   /* network order; 0: not configured */
	unsigned prefix; /* 1..32 */
	uint32_t gateway; /* network order; 0: none */
	unsigned mtu;
	unsigned mbufs;  /* in the pool, all cores together; 0: sized from the rings below */
	unsigned idle_sleep_us; /* longest sleep of an idle core (no RX interrupts) */
	/* Ring sizes: the defaults hold a 1,000-member broadcast on one core without a drop
	 * (bench/README.md). Each drop they would cause has its counter (port_rx_missed,
	 * drop_tx_full, drop_steer_full, drop_no_mbuf). */
	unsigned rx_desc, tx_desc;   /* descriptors per queue, clamped to the port's limits */
	unsigned tx_backlog;         /* frames a core holds for the next turn when its TX queue
				      * is full; beyond it frames are dropped (counted) */
	unsigned steer_ring;         /* slots in each core-to-core steering ring (power of two) */
	unsigned af_packet_framecnt; /* net_af_packet: frames in each queue's RX and TX ring */
	unsigned af_packet_blocksz;  /* net_af_packet: ring block size (a multiple of 4096) */
	/* Shared output (a broadcast frame) of at least this many bytes in one piece is sent
	 * without copying, from the layer above's memory; 0: always copied. Only on ports
	 * that read frames with the CPU (af_packet, pcap, tap, null): a NIC's DMA would need
	 * the memory registered with DPDK. */
	unsigned zero_copy_min_bytes;
	/* While a core sends 512 frames or more a turn (a broadcast's fan-out), a segment
	 * shorter than the MSS waits up to this long for more of its connection's output:
	 * fewer, fuller frames when the core is the bottleneck; 0: never. */
	unsigned tx_coalesce_us;
	struct fault_config fault_rx, fault_tx;
};

#define DPDK_DEFAULT_MTU 1500
#define DPDK_DEFAULT_IDLE_SLEEP_US 100
#define DPDK_DEFAULT_RX_DESC 4096
#define DPDK_DEFAULT_TX_DESC 4096
#define DPDK_DEFAULT_TX_BACKLOG 8192
#define DPDK_DEFAULT_STEER_RING 8192
#define DPDK_DEFAULT_AF_PACKET_FRAMECNT 8192
#define DPDK_DEFAULT_AF_PACKET_BLOCKSZ 4096
#define DPDK_DEFAULT_ZERO_COPY_MIN_BYTES 2048
#define DPDK_DEFAULT_TX_COALESCE_US 500
/* With mbufs 0, the pool holds this many per core beyond its rx_desc + tx_desc + tx_backlog:
 * send and reassembly queues, ARP. */
#define DPDK_MBUFS_PER_CORE 16384
void dpdk_config_defaults(struct dpdk_config *cfg);

/* The EAL argument for vdevs[i]: "--vdev=" and the device string, with the af_packet ring
 * sizes of cfg appended to a net_af_packet device that does not set them itself. Returns
 * 0, or -ENAMETOOLONG when it does not fit `len`. */
int dpdk_vdev_arg(const struct dpdk_config *cfg, unsigned i, char *out, size_t len);

/* "10.77.0.1/24" into ipv4 and prefix; 0 or -EINVAL. */
int dpdk_parse_cidr(const char *text, uint32_t *ipv4, unsigned *prefix);

/* After rte_eal_init, before the cores start: configures and starts the port, creates
 * the mbuf pool and the steering rings. Listeners must be IPv4 on 0.0.0.0 or our address.
 * Returns 0, or a negative errno after logging what was wrong. */
int dpdk_port_init(const struct dpdk_config *cfg, const struct net_config *net, unsigned ncores);
void dpdk_port_fini(void);

extern const struct net_backend net_dpdk;

#endif
