/* duro's own TCP/IP stack, one instance per core over that core's RX/TX queues: Ethernet,
 * ARP, IPv4, ICMP echo and TCP (accepted and dialed), raising the backend interface's events. */
#ifndef DURO_NET_DPDK_STACK_H
#define DURO_NET_DPDK_STACK_H

#include "net.h"

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

/* Every counter the stack keeps, per core: the port's own (its queue's, and on core 0 the
 * port-wide ones), traffic, drops by reason, TCP events, active opens (tcp_active_opens:
 * first SYNs sent; tcp_active_established; failures by reason: tcp_dial_*), and gauges:
 * the connections in each state (conns_*) and queue depths (*_depth). Names as the
 * control socket shows them. */
#define STACK_COUNTERS(X)                                                                  \
	X(port_rx_packets) X(port_rx_bytes) X(port_tx_packets) X(port_tx_bytes)               \
	X(port_rx_missed) X(port_rx_errors) X(port_rx_nombuf) X(port_tx_errors)               \
	X(tx_deferred) X(tx_queue_depth) X(tx_zero_copy)                                       \
	X(rx_packets) X(rx_bytes) X(tx_packets) X(tx_bytes) X(steered_out) X(steered_in)     \
	X(arp_requests_in) X(arp_replies_out) X(arp_requests_out) X(icmp_echo_replies)         \
	X(drop_truncated) X(drop_multi_segment) X(drop_ether_type) X(drop_other_host)          \
	X(drop_arp_bad) X(drop_ip_bad_header) X(drop_ip_bad_length) X(drop_ip_bad_checksum)    \
	X(drop_ip_fragment) X(drop_ip_other_host) X(drop_ip_protocol) X(drop_icmp_bad)         \
	X(drop_tcp_bad_header) X(drop_tcp_bad_checksum) X(drop_tcp_bad_flags)                  \
	X(drop_tcp_out_of_window) X(drop_tcp_paws) X(drop_tcp_no_listener)                     \
	X(drop_tcp_no_connection) X(drop_tcp_reassembly_full) X(drop_tcp_receive_overflow)    \
	X(drop_no_mbuf) X(drop_tx_full) X(drop_arp_unresolved) X(drop_steer_full)             \
	X(tcp_retransmits_timeout) X(tcp_retransmits_fast) X(tcp_retransmits_rack)             \
	X(tcp_retransmits_tlp) X(tcp_tlp_probes) X(tcp_tlp_repairs) X(tcp_rack_lost)           \
	X(tcp_recoveries_sack) X(tcp_recoveries_newreno) X(tcp_dsacks) X(tcp_spurious_rtos)   \
	X(tcp_syncookies_sent)                                                                  \
	X(tcp_syncookies_accepted) X(tcp_syncookies_rejected) X(tcp_challenge_acks)            \
	X(tcp_resets_sent) X(tcp_resets_received) X(tcp_out_of_order) X(tcp_keepalive_drops)   \
	X(tcp_syn_timeouts) X(tcp_window_probes) X(tcp_connections_refused)                    \
	X(tcp_active_opens) X(tcp_active_established) X(tcp_syn_retransmits)                   \
	X(tcp_dial_refused) X(tcp_dial_timeouts) X(tcp_dial_unreachable) X(tcp_dial_cancelled) \
	X(tcp_dial_failed_other) X(tcp_dial_no_port)                                           \
	X(fault_dropped) X(fault_reordered) X(fault_delayed) X(fault_duplicated)               \
	X(conns_syn_received) X(conns_established) X(conns_close_wait) X(conns_fin_wait_1)     \
	X(conns_fin_wait_2) X(conns_closing) X(conns_last_ack) X(conns_time_wait)              \
	X(conns_syn_sent)

#define STACK_COUNTER_ENUM(name) SC_##name,
enum stack_counter { STACK_COUNTERS(STACK_COUNTER_ENUM) SC_COUNT };
#undef STACK_COUNTER_ENUM

extern const char *const stack_counter_names[SC_COUNT];

/* What every core's stack shares, read-only once the cores run. */
struct stack_env {
	uint8_t mac[6];
	uint32_t ipv4, netmask, gateway; /* network byte order; gateway 0: none */
	uint16_t mtu;
	uint16_t ports[DURO_MAX_LISTENERS]; /* listening TCP ports (network order) */
	unsigned nports;
	unsigned ncores;
	int tx_cksum_offload; /* the port computes IPv4 and TCP checksums */
	/* The port's RSS, when it spreads flows: the owner of a flow is then the queue the
	 * port picks (Toeplitz over the tuple with this key, then the redirection table). */
	int rss;
	unsigned rss_words; /* input length: 3 with ports, 2 addresses only */
	uint8_t rss_key[40];
	uint16_t reta[512];
	unsigned reta_size;
	int rx_cksum_offload; /* the port flags received checksums good or bad */
	struct rte_mempool *pool; /* mbufs with STACK_MBUF_PRIV bytes of private area */
	/* Zero-copy sends of shared output (struct net_share): a piece of at least zc_min
	 * bytes goes out from the layer above's memory through an mbuf of ext_pool (no data
	 * room) attached behind the segment's header mbuf. 0: every byte is copied. */
	struct rte_mempool *ext_pool;
	unsigned zc_min;
	/* Under a heavy fan-out (a turn that sent STACK_HEAVY_TURN frames or more), a segment
	 * shorter than the MSS waits up to this long for more of its connection's output,
	 * so a busy core sends fewer, fuller segments; 0: never. */
	unsigned coalesce_us;
	/* steer[a][b]: packets core a received for a flow core b owns; NULL without rings. */
	struct rte_ring *steer[DURO_MAX_CORES][DURO_MAX_CORES];
	uint8_t secret[16]; /* ISNs and SYN cookies */
	/* Hands a finished frame to the port (or the fuzz target's sink); takes ownership. */
	void (*tx)(struct core *c, struct rte_mbuf *m);
};

/* The private area each mbuf of env->pool must have. */
#define STACK_MBUF_PRIV 32

/* Sets up this core's stack; returns 0 or a negative errno. Raises `ev` for connections
 * to env->ports, bounded by cfg->max_conns_per_core. env must outlive the stack. */
int stack_core_init(struct core *c, const struct stack_env *env, const struct net_config *cfg,
		    const struct net_events *ev);
void stack_core_fini(struct core *c);

/* One received frame; the stack owns it from here. `steered` is 1 when another core
 * received it and handed it over (it is then never handed on again). */
void stack_input(struct core *c, struct rte_mbuf *m, int steered);

/* End of a loop turn: segments for connections with new output, ACKs, closes. */
void stack_flush(struct core *c);

/* Announces our address (gratuitous ARP); core 0 calls it once at start. */
void stack_announce(struct core *c);

/* The core that owns a TCP flow: every core computes the same, whatever queue the
 * packet came in on. Addresses and ports in network order. */
unsigned stack_flow_core(const struct stack_env *env, uint32_t raddr, uint16_t rport,
			 uint16_t lport);

/* The backend's own per-core state (queues, fault injectors), kept beside the stack. */
void *stack_port(struct core *c);
void stack_set_port(struct core *c, void *port);

uint64_t *stack_counters(struct core *c);
const struct net_counters *stack_net_counters(struct core *c);

/* Opens a connection to d (IPv4 only) from an ephemeral port whose replies this core
 * receives (RSS or the stack's own steering), net_backend.dial's contract: 0 and *handle,
 * or -EOPNOTSUPP (TLS, the layer above's), -EAFNOSUPPORT (not IPv4), -ENETUNREACH (off-link
 * without a gateway, or loopback), -EADDRNOTAVAIL (our own address, or no free port),
 * -EMFILE (limits.max_connections_per_core), -ENOMEM. Failures after that come as
 * ev->on_dial_failed at the end of a turn: -ECONNREFUSED (a reset), -ETIMEDOUT (no
 * answer to the SYNs), -EHOSTUNREACH (no answer to ARP), -ECANCELED (stack_dial_cancel). */
int stack_dial(struct core *c, const struct net_dial *d, const struct net_events *ev, void *user,
	       uint64_t *handle);
void stack_dial_cancel(struct core *c, uint64_t handle);

/* The backend operations over the stack's connections. */
void stack_want_write(struct core *c, struct net_conn *conn);
void stack_close(struct core *c, struct net_conn *conn, enum net_close_how how);
void stack_pause_read(struct core *c, struct net_conn *conn, int paused);
void stack_set_events(struct core *c, struct net_conn *conn, const struct net_events *ev);
/* Connections are taken only from stack_start_accepting on (every core ready). After
 * stack_stop_accepting new SYNs are refused, handshakes under way still complete, and
 * stack_listening is 1 for STACK_DRAIN_MS so that they are waited for. */
#define STACK_DRAIN_MS 200
int stack_start_accepting(struct core *c);
void stack_stop_accepting(struct core *c);
unsigned stack_listening(struct core *c);

#endif
