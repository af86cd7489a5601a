/* The stack's insides shared by its files (ethernet/ARP, IPv4/ICMP, TCP): the per-core
 * state, the TCB, and the per-mbuf segment record kept in each mbuf's private area. */
#ifndef DURO_NET_DPDK_STACK_INT_H
#define DURO_NET_DPDK_STACK_INT_H

#include "stack.h"
#include "base_assert.h"
#include "list.h"
#include "pool.h"
#include "timer.h"

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

/* ---- per-mbuf record (the mbuf's private area) ---- */

/* A sent segment's state on the scoreboard (RFC 6675): SACKED and LOST exclude each other;
 * RETRANS means a retransmission of it is in flight (after LOST, or as a loss probe). */
enum {
	SEG_FIN = 1,
	SEG_EVER_RETRANS = 2, /* retransmitted at least once: no RTT sample from it (Karn) */
	SEG_SACKED = 4,
	SEG_LOST = 8,
	SEG_RETRANS = 16,
	SEG_ZC = 32, /* the payload is the mbuf chained behind: shared memory, not copied */
};

struct seg {
	struct rte_mbuf *link; /* next in a send, reassembly or receive queue */
	uint32_t seq;          /* first sequence number this segment covers */
	uint32_t xmit_us;      /* sent queue: its latest (re)transmission, µs clock (RACK) */
	uint16_t len;          /* payload bytes */
	uint16_t off;          /* payload's offset from the buffer start (data_off) */
	uint8_t flags;
};
_Static_assert(sizeof(struct seg) <= STACK_MBUF_PRIV, "mbuf private area too small");

static inline struct seg *seg_of(struct rte_mbuf *m) { return rte_mbuf_to_priv(m); }
static inline const char *seg_data(struct rte_mbuf *m)
{
	return (const char *)m->buf_addr + seg_of(m)->off;
}
/* A sent segment's payload: in its own buffer, or the shared memory chained behind. */
static inline const char *seg_payload(struct rte_mbuf *m)
{
	struct seg *sg = seg_of(m);
	if (sg->flags & SEG_ZC)
		return (const char *)m->next->buf_addr + sg->off;
	return (const char *)m->buf_addr + sg->off;
}

/* The stack's record of shared output it sends from (a net_share's priv points here while
 * `active`): DPDK's external-buffer record, counting every mbuf attached to the memory on
 * this core, and the link of the list of records whose last mbuf was freed. It lives in
 * the stack's pool, not in the share: an mbuf freed after the layer above is gone (at
 * shutdown) touches only the stack's memory. */
struct zc_share {
	struct rte_mbuf_ext_shared_info shinfo;
	struct stack *s;
	struct net_share *share;
	struct zc_share *next_released;
	uint8_t active;
};
/* DPDK counts an external buffer's references in 16 bits: beyond this many, copy. */
#define ZC_MAX_REFS 60000

/* ---- sequence arithmetic (RFC 9293 3.4, modulo 2^32) ---- */

static inline int seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline int seq_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
static inline int seq_gt(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }
static inline int seq_ge(uint32_t a, uint32_t b) { return (int32_t)(a - b) >= 0; }

/* ---- TCP connection ---- */

enum tcp_state {
	TS_CLOSED, TS_SYN_RECEIVED, TS_ESTABLISHED, TS_CLOSE_WAIT, TS_FIN_WAIT_1, TS_FIN_WAIT_2,
	TS_CLOSING, TS_LAST_ACK, TS_TIME_WAIT,
	TS_SYN_SENT, /* an active open (tcp_dial.c) waiting for the SYN-ACK */
};

/* Congestion states: RECOVERY is fast recovery (SACK and RACK, or NewReno's three
 * duplicate ACKs), LOSS the recovery after a retransmission timeout. */
enum tcp_ca_state { CA_OPEN, CA_RECOVERY, CA_LOSS };

/* What the connection's retransmission timer (rto_at) stands for just now: RFC 8985's loss
 * probe and reordering timeouts take the retransmission timeout's place, never run beside it. */
enum tcp_timer_kind { TK_RTO, TK_PTO, TK_REO };

/* The connection's whole state. An idle connection holds this and nothing else: send and
 * reassembly queues are empty mbuf lists, the single timer is embedded. */
struct tcb {
	struct net_conn pub; /* first: the handle the layer above sees */
	struct tcb *hash_next;
	struct list_node work_node; /* on the stack's flush or reap list */
	struct timer timer;         /* at the earliest of the deadlines below */
	uint64_t rto_at, dack_at, ka_at, end_at; /* 0: not armed */
	uint32_t raddr;                         /* network order */
	uint16_t rport, lport;                  /* network order */
	uint8_t rmac[6];
	uint8_t state;
	uint8_t on_list : 2, user_gone : 1, close_req : 1, fin_sent : 1, paused : 1, eof_told : 1;
	uint8_t ts_ok : 1, sack_ok : 1, ack_now : 1, fin_rcvd : 1, want_output : 1, probing : 1;
	uint8_t ca_state : 2, timer_kind : 2, tlp_out : 1, tlp_retrans : 1, reordering_seen : 1,
		rack_valid : 1;
	uint8_t dsack_round_on : 1, newreno : 1, rexmit_now : 1;
	/* dialing: an active open not yet reported (on_accept or on_dial_failed); pub.ev and
	 * pub.user are the dialer's from the start. rmac_ok: rmac holds the next hop's
	 * address (always, except for a dial's SYNs, which go out through the ARP cache). */
	uint8_t dialing : 1, rmac_ok : 1;
	uint8_t snd_wscale, rcv_wscale, dupacks, backoff, ka_probes, segs_unacked;
	uint8_t reo_wnd_mult, reo_wnd_persist; /* RFC 8985 6.2 step 4, from D-SACKs */
	uint16_t mss;
	uint16_t sacked_segs;
	int err; /* why it closed, for on_closed (or on_dial_failed) */
	/* snd_max: the highest sequence sent; retransmissions go out below it from the send
	 * queue, whatever detected the loss. */
	uint32_t iss, snd_una, snd_max, snd_wnd, snd_wl1, snd_wl2, max_snd_wnd;
	uint32_t cwnd, ssthresh, recover;
	/* The scoreboard as sums over the send queue, in sequence space (RFC 6675's pipe is
	 * flight - sacked - lost + retrans); without SACK, sacked counts duplicate ACKs. */
	uint32_t sacked_bytes, lost_bytes, retrans_bytes;
	/* RACK (RFC 8985): the delivered segment sent last, its RTT, the highest delivered
	 * sequence, the minimum RTT; rack_wait_us: look for losses again then (0: no). */
	uint32_t rack_xmit_us, rack_end_seq, rack_rtt_us, rack_fack, min_rtt_us, min_rtt_s;
	uint32_t rack_wait_us;
	uint32_t coalesce_until_us; /* a short segment waits for more until then (0: no) */
	uint32_t tlp_end_seq, dsack_round;
	/* Before a retransmission timeout: the window to restore if it proves spurious (the
	 * ACK after it echoes a timestamp older than the first retransmission's, RFC 3522). */
	uint32_t prior_cwnd, prior_ssthresh, rto_tsval;
	uint32_t irs, rcv_nxt, rcv_adv; /* rcv_adv: right edge of the window we advertised */
	uint32_t fin_seq;               /* the peer's FIN, when it came ahead of data */
	uint32_t ts_recent, ts_offset;
	uint32_t srtt_us8, rttvar_us4, rto_ms; /* RFC 6298's shifts over µs samples; RTO in ms */
	uint32_t held_bytes, ooo_bytes;  /* received, not yet given up */
	uint16_t held_segs, ooo_segs;    /* the same in mbufs: tiny segments must not pin the pool */
	uint32_t challenge_s, challenges; /* RFC 5961 challenge ACKs this second */
	struct rte_mbuf *snd_head, *snd_tail; /* sent and not yet acknowledged, in order */
	/* The first segment that may be LOST and not yet retransmitted, or NULL. */
	struct rte_mbuf *snd_resend;
	struct rte_mbuf *ooo;                 /* ahead of rcv_nxt, sorted, not overlapping */
	struct rte_mbuf *held_head, *held_tail; /* in order, waiting while reading is paused */
};

/* A connection in TIME_WAIT, reduced to what answers a late segment (RFC 6191). */
struct tw {
	struct tw *hash_next;
	struct list_node age_node;
	uint64_t expires_ms;
	uint32_t raddr;
	uint16_t rport, lport;
	uint32_t snd_max, rcv_nxt, ts_recent, ts_offset;
	uint8_t rmac[6];
	uint8_t ts_ok;
};

#define ARP_SLOTS 256
/* Frames held per core while their next hop is resolved, whatever the neighbour: the
 * SYNs of a burst of dials (a fetch pool filling) to one origin fit. */
#define ARP_HELD_MAX 256

struct arp_entry {
	uint32_t ip; /* 0: free */
	uint8_t mac[6];
	uint8_t resolved;
	uint64_t expires_ms, asked_ms;
};

/* A frame waiting for its next hop's address. */
struct arp_held {
	uint32_t hop;
	struct rte_mbuf *m;
};

#define STACK_TX_BURST 64
#define STACK_TX_TURN 2048 /* frames one turn's flush sends at most (tcp_flush) */
#define STACK_HEAVY_TURN 512 /* frames a turn sends that make the next coalesce (coalesce_us) */

struct stack {
	const struct stack_env *env;
	const struct net_config *cfg;
	const struct net_events *ev;
	struct core *c;
	void *port; /* the backend's, see stack_port */
	/* Taking connections: not before every core can serve (stack_start_accepting); while
	 * draining, new SYNs are refused but handshakes under way complete and are served. */
	enum { STACK_NOT_YET, STACK_ACCEPTING, STACK_DRAINING } accepting;
	uint64_t drain_end_ms; /* draining: handshakes under way are waited for until then */
	uint64_t ctr[SC_COUNT];
	struct net_counters net;
	uint32_t next_id;
	uint16_t ip_id;
	uint64_t refused_logged_ms;
	struct zc_share *released; /* shared output whose last attached mbuf was freed */
	int heavy; /* the last turn's flush sent STACK_HEAVY_TURN frames or more */
	struct pool zc_pool;
	/* TCP */
	struct tcb **tcbs;        /* hash buckets */
	struct tw **tws;
	unsigned hash_mask;       /* buckets - 1: a power of two near the connection cap */
	struct pool tcb_pool, tw_pool;
	struct list_node flush;   /* connections with output or an ACK due this turn */
	struct list_node reap;    /* closed, on_closed not yet reported */
	struct list_node tw_age;  /* oldest first */
	unsigned embryonic, tw_count;
	uint32_t port_next; /* RFC 6056 algorithm 3's counter for ephemeral ports */
	/* ARP */
	struct arp_entry arp[ARP_SLOTS];
	struct arp_held held[ARP_HELD_MAX]; /* oldest first */
	unsigned nheld;
};

static inline struct stack *stack_of(struct core *c) { return (struct stack *)c->net; }
static inline void stack_count(struct stack *s, enum stack_counter k) { s->ctr[k]++; }

/* ethernet + arp (eth_arp.c) */
void arp_input(struct stack *s, struct rte_mbuf *m, int steered);
/* Prepends the Ethernet header towards the IPv4 next hop of `dst` and sends m; holds it
 * while the address is being resolved. Takes ownership of m. `mac`: known peer address or
 * NULL to look it up. */
void eth_output_ipv4(struct stack *s, struct rte_mbuf *m, uint32_t dst, const uint8_t *mac);
void arp_fini(struct stack *s);
/* Whether the next hop towards dst is resolved: 1 yes, 0 not (yet), -1 no route (off-link
 * without a gateway). */
int arp_next_hop_known(struct stack *s, uint32_t dst);

/* ipv4 + icmp (ipv4.c) */
void ipv4_input(struct stack *s, struct rte_mbuf *m, int steered);
/* Fills the IPv4 header in front of an L4 payload of l4_len bytes already at m's data. */
struct rte_ipv4_hdr *ipv4_prepend(struct stack *s, struct rte_mbuf *m, uint32_t dst,
				  uint8_t proto, uint16_t l4_len);

/* tcp (tcp_in.c, tcp_out.c, tcp_conn.c) */
void tcp_input(struct stack *s, struct rte_mbuf *m, struct rte_ipv4_hdr *ip,
	       struct rte_tcp_hdr *th, uint16_t tcp_len, const uint8_t *src_mac);
int tcp_init(struct stack *s);
void tcp_fini(struct stack *s);
void tcp_flush(struct stack *s);

#endif
