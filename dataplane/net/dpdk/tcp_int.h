/* TCP's insides shared by its files: connection table and timers (tcp_conn.c), segment
 * arrival (tcp_in.c), segment building and sending (tcp_out.c), and loss detection and
 * recovery on the sending side (tcp_recovery.c). */
#ifndef DURO_NET_DPDK_TCP_INT_H
#define DURO_NET_DPDK_TCP_INT_H

#include "stack_int.h"

/* Our receive buffer per connection: the window we advertise when nothing is held. */
#define TCP_RCV_BUF (256u * 1024u)
#define TCP_RCV_WSCALE 7
#define TCP_INIT_CWND_SEGS 10        /* RFC 6928 */
#define TCP_RTO_INIT_MS 1000         /* RFC 6298 2.1 */
/* RFC 6298 2.4 asks for a 1 s floor; like Linux we use 200 ms, which the RFC allows as a
 * local choice and which keeps a lost segment on a LAN from stalling a request for 1 s.
 * As in Linux it bounds the variance term, not the sum: RTO = SRTT + max(4 RTTVAR, 200 ms),
 * so a Linux peer's delayed ACK (up to 200 ms) on top of the round trip is never taken
 * for a loss. */
#define TCP_RTO_MIN_MS 200
#define TCP_RTO_MAX_MS 60000
#define TCP_MAX_RETRIES 12           /* RTO expiries in a row before giving up */
#define TCP_SYNACK_RETRIES 4
/* Active open: SYNs sent again after 1, 2, 4, 8, 16 s, then -ETIMEDOUT 32 s later (63 s
 * in all, as Linux's tcp_syn_retries 6 gives 127 s). An unanswered ARP ends it sooner:
 * at the timeout after TCP_ARP_SYN_TRIES SYNs (each asks ARP again), 3 s in, as Linux's
 * neighbour code gives up after its 3 probes a second apart. */
#define TCP_SYN_RETRIES 5
#define TCP_ARP_SYN_TRIES 2
#define TCP_ARP_FAIL_MS 3000 /* what TCP_ARP_SYN_TRIES comes to, for tests */
/* Ephemeral ports (RFC 6056; Linux's default ip_local_port_range). */
#define TCP_EPHEMERAL_LO 32768
#define TCP_EPHEMERAL_HI 60999
#define TCP_DELACK_MS 40             /* RFC 1122 allows up to 500 ms; 9293 asks for < 0.5 s */
#define TCP_TIME_WAIT_MS 60000       /* 2 MSL as Linux */
#define TCP_FIN_WAIT_2_MS 60000      /* an orphan waiting for the peer's FIN */
#define TCP_KEEPALIVE_IDLE_MS 300000 /* idle before the first probe */
#define TCP_KEEPALIVE_INTVL_MS 30000
#define TCP_KEEPALIVE_PROBES 5
#define TCP_MAX_EMBRYONIC 1024       /* SYN_RECEIVED connections per core, then SYN cookies */
#define TCP_CHALLENGE_PER_S 100      /* RFC 5961 section 7 rate limit, per connection */
#define TCP_MAX_OPT_LEN 40
#define TCP_DUPTHRESH 3              /* RFC 5681, 6675 */
/* RFC 8985 7.2: a loss probe after two smoothed RTTs, plus the worst-case delayed ACK when
 * one segment is in flight (its ACK may be delayed), else a small floor for the timer's
 * 1 ms granularity (Linux adds TCP_TIMEOUT_MIN, 2 ms, the same way). */
#define TCP_WCDELACK_MS 200
#define TCP_PTO_FLOOR_MS 2
#define TCP_PTO_NO_RTT_MS 1000
#define TCP_MIN_RTT_WIN_S 300        /* RACK's minimum RTT: the least over 5 minutes (Linux) */
#define TCP_REO_WND_MULT_MAX 16
#define TCP_REO_WND_PERSIST 16       /* recoveries a widened reordering window lasts */
#define TCP_MAX_SACKS 4

struct tcp_opts {
	uint16_t mss;      /* 0: none */
	int8_t wscale;     /* -1: none */
	uint8_t sack_ok, ts;
	uint8_t nsack;     /* SACK blocks (RFC 2018), as sent: left edge, right edge */
	uint32_t tsval, tsecr;
	uint32_t sack[TCP_MAX_SACKS][2];
};

static inline uint32_t tcp_now_us(const struct stack *s) { return (uint32_t)(s->c->now_ns / 1000u); }

/* Sequence space a queued segment takes: its bytes, and one for a FIN. */
static inline uint32_t seg_seqlen(const struct seg *sg)
{
	return sg->len + ((sg->flags & SEG_FIN) ? 1u : 0u);
}
static inline uint32_t seg_end(const struct seg *sg) { return sg->seq + seg_seqlen(sg); }

/* RFC 6675's pipe: what the network holds by our estimate. */
static inline uint32_t tcp_pipe(const struct tcb *t)
{
	int64_t p = (int64_t)(t->snd_max - t->snd_una) - t->sacked_bytes - t->lost_bytes +
		    t->retrans_bytes;
	return p > 0 ? (uint32_t)p : 0;
}

/* Returns 0 or -1 when an option's length runs past the header (malformed). */
int tcp_parse_opts(const uint8_t *p, unsigned len, struct tcp_opts *o);

/* tcp_conn.c */
struct tcb *tcb_lookup(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport);
struct tcb *tcb_create(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport,
		       const uint8_t *rmac);
void tcb_set_state(struct stack *s, struct tcb *t, enum tcp_state st);
/* Ends the connection now: queues dropped, removed from the table, on_closed reported
 * at the end of the turn (never from inside a call the layer above made). */
void tcb_close(struct stack *s, struct tcb *t, int err);
/* Our FIN and theirs are both acknowledged: leave a compact TIME_WAIT record behind. */
void tcb_time_wait(struct stack *s, struct tcb *t);
/* Tells the layer above about an established connection (a dial's own dialer, through
 * on_accept with its user set); 0, or -1 when it refused. */
int tcb_accept(struct stack *s, struct tcb *t);
void tcb_timers_update(struct stack *s, struct tcb *t);
void tcb_want_flush(struct stack *s, struct tcb *t);
struct tw *tw_lookup(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport);
void tw_remove(struct stack *s, struct tw *w);
uint32_t tcp_ts_offset(const struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport);
uint32_t tcp_isn(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport);
uint32_t syncookie_make(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport,
			uint32_t irs, unsigned mss_index);
/* The MSS index the cookie carries, or -1 when it is not one of ours (or too old). */
int syncookie_check(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport,
		    uint32_t irs, uint32_t cookie);
extern const uint16_t syncookie_mss[4];
int tcp_listening(const struct stack *s, uint16_t lport);
void tcp_free_chain(struct rte_mbuf **head);

/* tcp_in.c: reading resumed; held bytes go up, then the FIN if one came. */
void tcp_resume_read(struct stack *s, struct tcb *t);
/* The MSS to send with, from the peer's option (0: none) and our MTU. */
uint16_t tcp_eff_mss(const struct stack *s, uint16_t peer);

/* tcp_dial.c */
/* A free local port for a connection to raddr:rport whose replies reach this core and
 * that no connection or TIME_WAIT record uses; 0 or -EADDRNOTAVAIL. Network order. */
int tcp_pick_port(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t *lport);
/* A dial's SYN (again, after a timeout): the options we offer, through the ARP cache. */
void tcp_send_syn(struct stack *s, struct tcb *t);
/* The retransmission timer of a connection in SYN_SENT. */
void tcp_syn_sent_rto(struct stack *s, struct tcb *t);

/* tcp_recovery.c */
/* An acceptable ACK (ack within snd_una..snd_max) for an established connection: moves
 * snd_una, marks the scoreboard from SACK blocks, detects losses (RACK, or NewReno's
 * duplicate ACKs without SACK), enters and leaves recovery, grows the window, keeps the
 * loss probe's episode and re-arms the timer. `dup`: a duplicate ACK by RFC 5681's rules. */
void tcp_ack_received(struct stack *s, struct tcb *t, uint32_t ack, const struct tcp_opts *o,
		      int dup);
/* One RTT measurement (RFC 6298), µs; updates rto_ms. */
void tcp_rtt_sample(struct tcb *t, uint32_t rtt_us);
/* A segment of the send queue is lost: it goes again before any new data. */
void tcp_mark_lost(struct tcb *t, struct rte_mbuf *m);
/* RACK's reordering wait (rack_wait_us) may be over: detects losses again. */
void tcp_rack_timeout(struct stack *s, struct tcb *t);
/* The retransmission timer expired with data outstanding: every segment not SACKed is
 * lost (the SACKs too on a second expiry in a row, in case the peer reneged). */
void tcp_rto_mark_all(struct stack *s, struct tcb *t);
/* Whether a loss probe may stand in for the retransmission timer, and when (RFC 8985 7.2). */
int tcp_pto_allowed(const struct tcb *t);
uint32_t tcp_pto_ms(const struct tcb *t);

/* tcp_out.c */
uint32_t tcp_now_ts(const struct tcb *t, uint64_t now_ms);
uint32_t tcp_rcv_window(struct tcb *t); /* what to advertise, unscaled bytes */
/* A segment without payload from an existing connection (ACK, RST, SYN-ACK, FIN). */
void tcp_send_ctl(struct stack *s, struct tcb *t, uint8_t flags, uint32_t seq);
/* A reset answering a segment that has no connection (RFC 9293 3.10.7.1). */
void tcp_send_reset(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport,
		    const uint8_t *rmac, uint32_t seq, uint32_t ack, int with_ack);
/* A SYN-ACK for a SYN cookie: no connection exists yet. */
void tcp_send_cookie_synack(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport,
			    const uint8_t *rmac, uint32_t iss, uint32_t ack,
			    const struct tcp_opts *peer, uint16_t mss);
/* An ACK for a late segment of a connection in TIME_WAIT. */
void tcp_send_tw_ack(struct stack *s, const struct tw *w);
void tcp_output(struct stack *s, struct tcb *t);
/* The connection's timer fired as what timer_kind says: retransmission timeout, loss
 * probe, or the end of a reordering wait. */
void tcp_on_rto(struct stack *s, struct tcb *t);
/* Arms the timer after new data or an ACK that moved snd_una: the loss probe where
 * allowed, else the retransmission timeout (restarted when `restart`, else kept). */
void tcp_arm_timer(struct stack *s, struct tcb *t, int restart);

#endif
