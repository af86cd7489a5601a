/* Active open (net_backend.dial over the dpdk stack): an ephemeral port whose replies come
 * back to the dialing core, the SYN with every option a passive connection negotiates, its
 * retransmission with backoff, ARP failure, and cancel. The SYN-ACK is tcp_in.c's.
 *
 *   stack_dial --SYN (held by ARP until resolved)--> SYN_SENT --SYN-ACK--> ESTABLISHED
 *        |                                             |  |--SYN--> SYN_RECEIVED (simultaneous)
 *        v                                             v  v
 *   -errno, no event              on_dial_failed at the end of the turn (tcp_conn.c reap) */
#include "tcp_int.h"
#include "core.h"
#include "siphash.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

/* RFC 6056 algorithm 3 ("simple hash-based"): a keyed hash of the destination picks where
 * the search starts, a counter moves it on, so ports to one destination are neither
 * predictable nor reused soon. The port must also bring the peer's replies to this core:
 * the owner function the receive path uses (stack_flow_core: the port's RSS queue, or the
 * stack's own hash that steers misdelivered frames) must name this core for the reply's
 * tuple. About one port in ncores does; the search is bounded by the range. */
int tcp_pick_port(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t *lport)
{
	const unsigned n = TCP_EPHEMERAL_HI - TCP_EPHEMERAL_LO + 1;
	uint8_t key[10];
	memcpy(key, &raddr, 4);
	memcpy(key + 4, &rport, 2);
	memcpy(key + 6, "eph", 4);
	uint32_t offset = (uint32_t)siphash64(s->env->secret, key, sizeof(key));
	/* A port that hashes addresses only (rss_words 2) sends every reply from raddr to one
	 * core, whatever our port: another core cannot dial raddr at all. */
	if (s->env->rss && s->env->rss_words < 3 && s->env->ncores > 1 &&
	    stack_flow_core(s->env, raddr, rport, 0) != s->c->index)
		return -EADDRNOTAVAIL;
	for (unsigned i = 0; i < n; i++) {
		uint32_t k = offset + s->port_next + i;
		uint16_t p = rte_cpu_to_be_16((uint16_t)(TCP_EPHEMERAL_LO + k % n));
		if (stack_flow_core(s->env, raddr, rport, p) != s->c->index)
			continue;
		if (tcp_listening(s, p) >= 0 || tcb_lookup(s, raddr, rport, p) ||
		    tw_lookup(s, raddr, rport, p))
			continue; /* in use, or its last incarnation in TIME_WAIT */
		s->port_next += i + 1;
		*lport = p;
		return 0;
	}
	return -EADDRNOTAVAIL;
}

void tcp_send_syn(struct stack *s, struct tcb *t)
{
	/* MSS, SACK-permitted, timestamps and window scale: tcb_hdr builds them from ts_ok,
	 * sack_ok and rcv_wscale, set for the SYN in stack_dial. */
	t->rack_xmit_us = tcp_now_us(s);
	tcp_send_ctl(s, t, RTE_TCP_SYN_FLAG, t->iss);
}

_Static_assert(TCP_ARP_FAIL_MS == TCP_RTO_INIT_MS * ((1 << TCP_ARP_SYN_TRIES) - 1),
	      "TCP_ARP_FAIL_MS is when the SYN timeouts give ARP up");

void tcp_syn_sent_rto(struct stack *s, struct tcb *t)
{
	uint64_t now = s->c->now_ms;
	if (!t->rmac_ok && arp_next_hop_known(s, t->raddr) <= 0 &&
	    t->backoff + 1u >= TCP_ARP_SYN_TRIES) {
		tcb_close(s, t, -EHOSTUNREACH); /* nobody answers for the next hop */
		return;
	}
	if (t->backoff >= TCP_SYN_RETRIES) {
		stack_count(s, SC_tcp_syn_timeouts);
		tcb_close(s, t, -ETIMEDOUT);
		return;
	}
	t->backoff++;
	stack_count(s, SC_tcp_syn_retransmits);
	tcp_send_syn(s, t); /* also asks ARP again while the next hop is unknown */
	uint64_t rto = (uint64_t)TCP_RTO_INIT_MS << t->backoff;
	t->rto_at = now + (rto < TCP_RTO_MAX_MS ? rto : TCP_RTO_MAX_MS);
	t->timer_kind = TK_RTO;
}

int stack_dial(struct core *c, const struct net_dial *d, const struct net_events *ev, void *user,
	       uint64_t *handle)
{
	struct stack *s = stack_of(c);
	if (d->tls)
		return -EOPNOTSUPP; /* the TLS layer's, over a plain dial */
	if (d->addr.ss_family != AF_INET || d->addrlen < sizeof(struct sockaddr_in))
		return -EAFNOSUPPORT;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&d->addr;
	uint32_t raddr = sin->sin_addr.s_addr;
	uint16_t rport = sin->sin_port;
	uint32_t ha = rte_be_to_cpu_32(raddr);
	if (rport == 0 || ha == 0 || ha == 0xffffffffu || (ha >> 28) >= 0xe)
		return -EINVAL; /* nobody, broadcast, multicast, class E */
	if (raddr == s->env->ipv4)
		return -EADDRNOTAVAIL; /* the stack does not talk to itself */
	if ((ha >> 24) == 127 || arp_next_hop_known(s, raddr) < 0)
		return -ENETUNREACH; /* no loopback here; off-link without a gateway */
	if (s->net.active >= s->cfg->max_conns_per_core)
		return -EMFILE;
	uint16_t lport;
	if (tcp_pick_port(s, raddr, rport, &lport) < 0) {
		stack_count(s, SC_tcp_dial_no_port);
		return -EADDRNOTAVAIL;
	}
	static const uint8_t none[6];
	struct tcb *t = tcb_create(s, raddr, rport, lport, none);
	if (!t)
		return -ENOMEM;
	t->rmac_ok = 0; /* the SYN goes through the ARP cache; the SYN-ACK tells the MAC */
	t->dialing = 1;
	t->pub.ev = ev;
	t->pub.user = user;
	t->pub.listener = 0;
	t->iss = tcp_isn(s, raddr, rport, lport);
	t->snd_una = t->iss;
	t->snd_max = t->iss + 1;
	t->recover = t->iss;
	/* Offered; the SYN-ACK keeps those the peer offers too. */
	t->ts_ok = 1;
	t->sack_ok = 1;
	t->rcv_wscale = TCP_RCV_WSCALE;
	tcb_set_state(s, t, TS_SYN_SENT);
	stack_count(s, SC_tcp_active_opens);
	tcp_send_syn(s, t);
	t->rto_at = c->now_ms + TCP_RTO_INIT_MS;
	t->timer_kind = TK_RTO;
	tcb_timers_update(s, t);
	*handle = (uint64_t)(uintptr_t)t;
	return 0;
}

void stack_dial_cancel(struct core *c, uint64_t handle)
{
	struct stack *s = stack_of(c);
	struct tcb *t = (struct tcb *)(uintptr_t)handle;
	DURO_ASSERT(t->dialing); /* the handle is good until on_accept or on_dial_failed */
	if (t->state == TS_SYN_RECEIVED) /* the peer has our SYN and its answer: tell it */
		tcp_send_ctl(s, t, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG, t->snd_max);
	tcb_close(s, t, -ECANCELED); /* a failure already on its way keeps its reason */
}
