/* TCP's insides shared by its three files: connection table and timers (tcp_conn.c),
 * segment arrival (tcp_in.c) and segment building and retransmission (tcp_out.c). */
#ifndef DURO_NET_DPDK_TCP_INT_H
#define DURO_NET_DPDK_TCP_INT_H

#include "stack_int.h"

/* Our receive buffer per connection: the window we advertise when nothing is held. */
#define TCP_RCV_BUF (256u * 1024u)
#define TCP_RCV_WSCALE 7
#define TCP_INIT_CWND_SEGS 10        /* RFC 6928 */
#define TCP_RTO_INIT_MS 1000         /* RFC 6298 2.1 */
/* RFC 6298 2.4 asks for a 1 s floor; like Linux we use 200 ms, which the RFC allows as a
 * local choice and which keeps a lost segment on a LAN from stalling a request for 1 s. */
#define TCP_RTO_MIN_MS 200
#define TCP_RTO_MAX_MS 60000
#define TCP_MAX_RETRIES 12           /* RTO expiries in a row before giving up */
#define TCP_SYNACK_RETRIES 4
#define TCP_DELACK_MS 40             /* RFC 1122 allows up to 500 ms; 9293 asks for < 0.5 s */
#define TCP_TIME_WAIT_MS 60000       /* 2 MSL as Linux */
#define TCP_FIN_WAIT_2_MS 60000      /* an orphan waiting for the peer's FIN */
#define TCP_KEEPALIVE_IDLE_MS 300000 /* idle before the first probe */
#define TCP_KEEPALIVE_INTVL_MS 30000
#define TCP_KEEPALIVE_PROBES 5
#define TCP_MAX_EMBRYONIC 1024       /* SYN_RECEIVED connections per core, then SYN cookies */
#define TCP_CHALLENGE_PER_S 100      /* RFC 5961 section 7 rate limit, per connection */
#define TCP_MAX_OPT_LEN 40

struct tcp_opts {
	uint16_t mss;      /* 0: none */
	int8_t wscale;     /* -1: none */
	uint8_t sack_ok, ts;
	uint32_t tsval, tsecr;
};

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
/* Tells the layer above about an established connection; 0, or -1 when it refused. */
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
void tcp_retransmit(struct stack *s, struct tcb *t);
void tcp_on_rto(struct stack *s, struct tcb *t);

#endif
