/* TCP output: segments built in place in mbuf headroom, the send queue of unacknowledged
 * segments (kept for retransmission by reference), window, congestion and timer decisions. */
#include "tcp_int.h"
#include "log.h"

#include <errno.h>
#include <string.h>

#define OUT_IOV_MAX 32

uint32_t tcp_now_ts(const struct tcb *t, uint64_t now_ms)
{
	return (uint32_t)now_ms + t->ts_offset;
}

uint32_t tcp_rcv_window(struct tcb *t)
{
	uint32_t held = t->held_bytes + t->ooo_bytes;
	uint32_t free_space = held >= TCP_RCV_BUF ? 0 : TCP_RCV_BUF - held;
	uint32_t cur = seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
	uint32_t max = 65535u << t->rcv_wscale;
	if (free_space > max)
		free_space = max;
	/* Never move the right edge back (RFC 9293 3.8.6.2.2), and open it only by a useful
	 * amount: receiver-side silly window avoidance (RFC 1122 4.2.3.3). */
	if (free_space <= cur)
		return cur;
	uint32_t step = t->mss; /* min(MSS, buffer / 2): the buffer is far larger */
	if (free_space - cur < step && cur > 0)
		return cur;
	return free_space;
}

/* Everything a header needs; the builders below fill it. */
struct hdr {
	uint32_t raddr;
	uint16_t rport, lport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win; /* as it goes on the wire (already scaled) */
	uint8_t opt[TCP_MAX_OPT_LEN];
	uint8_t optlen;
};

static void put32(uint8_t *p, uint32_t v)
{
	v = rte_cpu_to_be_32(v);
	memcpy(p, &v, 4);
}

static void opt_ts(struct hdr *h, uint32_t tsval, uint32_t tsecr)
{
	uint8_t *p = h->opt + h->optlen;
	p[0] = 1;
	p[1] = 1;
	p[2] = 8;
	p[3] = 10;
	put32(p + 4, tsval);
	put32(p + 8, tsecr);
	h->optlen = (uint8_t)(h->optlen + 12);
}

/* Prepends the header to m's payload, then IPv4 and Ethernet, and sends; owns m. */
static void emit(struct stack *s, struct rte_mbuf *m, const struct hdr *h, const uint8_t *rmac)
{
	uint16_t payload = (uint16_t)rte_pktmbuf_pkt_len(m);
	uint16_t thlen = (uint16_t)(sizeof(struct rte_tcp_hdr) + h->optlen);
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)rte_pktmbuf_prepend(m, thlen);
	DURO_ASSERT(th); /* headroom is sized for the largest header */
	th->src_port = h->lport;
	th->dst_port = h->rport;
	th->sent_seq = rte_cpu_to_be_32(h->seq);
	th->recv_ack = rte_cpu_to_be_32(h->ack);
	th->data_off = (uint8_t)((thlen / 4) << 4);
	th->tcp_flags = h->flags;
	th->rx_win = rte_cpu_to_be_16(h->win);
	th->cksum = 0;
	th->tcp_urp = 0;
	memcpy(th + 1, h->opt, h->optlen);
	struct rte_ipv4_hdr *ip = ipv4_prepend(s, m, h->raddr, IPPROTO_TCP, (uint16_t)(thlen + payload));
	if (!ip) {
		rte_pktmbuf_free(m);
		return;
	}
	if (s->env->tx_cksum_offload) {
		m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_TCP_CKSUM;
		m->l2_len = RTE_ETHER_HDR_LEN;
		m->l3_len = sizeof(*ip);
		th->cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
	} else {
		th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	}
	if (h->flags & RTE_TCP_RST_FLAG)
		stack_count(s, SC_tcp_resets_sent);
	eth_output_ipv4(s, m, h->raddr, rmac);
}

static struct rte_mbuf *alloc_ctl(struct stack *s)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(s->env->pool);
	if (!m)
		stack_count(s, SC_drop_no_mbuf);
	return m;
}

/* The header of a segment of connection t: ACK with window, timestamps, SACK blocks. */
static void tcb_hdr(const struct stack *s, struct tcb *t, struct hdr *h, uint32_t seq,
		    uint8_t flags, int sack)
{
	memset(h, 0, offsetof(struct hdr, opt));
	h->optlen = 0;
	h->raddr = t->raddr;
	h->rport = t->rport;
	h->lport = t->lport;
	h->seq = seq;
	h->flags = flags;
	if (flags & RTE_TCP_ACK_FLAG) {
		h->ack = t->rcv_nxt;
		uint32_t w = tcp_rcv_window(t);
		if (flags & RTE_TCP_SYN_FLAG) {
			h->win = (uint16_t)(w > 65535 ? 65535 : w); /* never scaled in a SYN */
			t->rcv_adv = t->rcv_nxt + h->win;
		} else {
			uint32_t scaled = w >> t->rcv_wscale;
			h->win = (uint16_t)(scaled > 65535 ? 65535 : scaled);
			uint32_t edge = t->rcv_nxt + ((uint32_t)h->win << t->rcv_wscale);
			if (seq_gt(edge, t->rcv_adv))
				t->rcv_adv = edge;
		}
	}
	if (flags & RTE_TCP_SYN_FLAG) {
		uint8_t *p = h->opt;
		/* Ours, from the MTU; what we send is bounded by theirs (t->mss). */
		uint16_t mss = (uint16_t)(s->env->mtu - sizeof(struct rte_ipv4_hdr) -
					  sizeof(struct rte_tcp_hdr));
		p[0] = 2;
		p[1] = 4;
		p[2] = (uint8_t)(mss >> 8);
		p[3] = (uint8_t)mss;
		h->optlen = 4;
		if (t->ts_ok) {
			/* SACK-permitted folded into the timestamp option's leading NOPs. */
			opt_ts(h, tcp_now_ts(t, s->c->now_ms), t->ts_recent);
			if (t->sack_ok) {
				h->opt[4] = 4;
				h->opt[5] = 2;
			}
		} else if (t->sack_ok) {
			p = h->opt + h->optlen;
			p[0] = 1;
			p[1] = 1;
			p[2] = 4;
			p[3] = 2;
			h->optlen = (uint8_t)(h->optlen + 4);
		}
		if (t->rcv_wscale || t->snd_wscale) {
			p = h->opt + h->optlen;
			p[0] = 1;
			p[1] = 3;
			p[2] = 3;
			p[3] = t->rcv_wscale;
			h->optlen = (uint8_t)(h->optlen + 4);
		}
		return;
	}
	if (t->ts_ok)
		opt_ts(h, tcp_now_ts(t, s->c->now_ms), t->ts_recent);
	if (sack && t->sack_ok && t->ooo && (flags & RTE_TCP_ACK_FLAG) &&
	    !(flags & RTE_TCP_RST_FLAG)) {
		/* Receive-side SACK (RFC 2018): the blocks of data held out of order. */
		unsigned maxb = t->ts_ok ? 3 : 4, nb = 0;
		uint8_t *p = h->opt + h->optlen;
		uint8_t *blocks = p + 4;
		struct rte_mbuf *m = t->ooo;
		while (m && nb < maxb) {
			uint32_t left = seg_of(m)->seq, right = left + seg_of(m)->len;
			struct rte_mbuf *n = seg_of(m)->link;
			while (n && seg_of(n)->seq == right) {
				right += seg_of(n)->len;
				n = seg_of(n)->link;
			}
			put32(blocks + nb * 8, left);
			put32(blocks + nb * 8 + 4, right);
			nb++;
			m = n;
		}
		p[0] = 1;
		p[1] = 1;
		p[2] = 5;
		p[3] = (uint8_t)(2 + nb * 8);
		h->optlen = (uint8_t)(h->optlen + 4 + nb * 8);
	}
}

static void ack_sent(struct tcb *t)
{
	t->ack_now = 0;
	t->dack_at = 0;
	t->segs_unacked = 0;
}

void tcp_send_ctl(struct stack *s, struct tcb *t, uint8_t flags, uint32_t seq)
{
	struct rte_mbuf *m = alloc_ctl(s);
	if (!m)
		return;
	struct hdr h;
	tcb_hdr(s, t, &h, seq, flags, 1);
	if (flags & RTE_TCP_ACK_FLAG)
		ack_sent(t);
	emit(s, m, &h, t->rmac);
}

void tcp_send_reset(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport,
		    const uint8_t *rmac, uint32_t seq, uint32_t ack, int with_ack)
{
	struct rte_mbuf *m = alloc_ctl(s);
	if (!m)
		return;
	struct hdr h;
	memset(&h, 0, sizeof(h));
	h.raddr = raddr;
	h.rport = rport;
	h.lport = lport;
	h.seq = seq;
	h.ack = ack;
	h.flags = (uint8_t)(RTE_TCP_RST_FLAG | (with_ack ? RTE_TCP_ACK_FLAG : 0));
	emit(s, m, &h, rmac);
}

void tcp_send_cookie_synack(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport,
			    const uint8_t *rmac, uint32_t iss, uint32_t ack,
			    const struct tcp_opts *peer, uint16_t mss)
{
	/* A TCB on the stack for the header builder only: nothing is kept. */
	struct tcb t;
	memset(&t, 0, sizeof(t));
	t.raddr = raddr;
	t.rport = rport;
	t.lport = lport;
	t.rcv_nxt = ack;
	t.mss = mss;
	t.ts_ok = peer->ts;
	t.sack_ok = peer->sack_ok && peer->ts; /* only the timestamp can carry it back */
	t.rcv_wscale = peer->wscale >= 0 && peer->ts ? TCP_RCV_WSCALE : 0;
	t.snd_wscale = (uint8_t)(peer->wscale >= 0 && peer->ts ? peer->wscale : 0);
	t.ts_recent = peer->tsval;
	t.ts_offset = tcp_ts_offset(s, raddr, rport, lport);
	struct hdr h;
	tcb_hdr(s, &t, &h, iss, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, 0);
	if (t.ts_ok) {
		/* The options the cookie cannot hold ride in the timestamp's low bits, which
		 * the peer echoes in its ACK: window scale (15 = none) and SACK-permitted. */
		uint32_t tsval = tcp_now_ts(&t, s->c->now_ms) & ~0x1Fu;
		unsigned ws = peer->wscale >= 0 ? (unsigned)peer->wscale : 15u;
		tsval |= (ws & 0xFu) << 1 | (peer->sack_ok ? 1u : 0u);
		put32(h.opt + 4 + 4, tsval);
	}
	stack_count(s, SC_tcp_syncookies_sent);
	struct rte_mbuf *m = alloc_ctl(s);
	if (m)
		emit(s, m, &h, rmac);
}

void tcp_send_tw_ack(struct stack *s, const struct tw *w)
{
	struct rte_mbuf *m = alloc_ctl(s);
	if (!m)
		return;
	struct hdr h;
	memset(&h, 0, sizeof(h));
	h.raddr = w->raddr;
	h.rport = w->rport;
	h.lport = w->lport;
	h.seq = w->snd_nxt;
	h.ack = w->rcv_nxt;
	h.flags = RTE_TCP_ACK_FLAG;
	h.win = 0; /* nothing more will be read */
	if (w->ts_ok)
		opt_ts(&h, (uint32_t)s->c->now_ms + w->ts_offset, w->ts_recent);
	emit(s, m, &h, w->rmac);
}

/* ---- data segments ---- */

/* Sends one queued segment. The queue keeps its reference for retransmission; the frame
 * goes out from the same buffer when the port has let go of the previous transmission,
 * from a copy when it still holds it. */
static void xmit_seg(struct stack *s, struct tcb *t, struct rte_mbuf *m)
{
	struct seg *sg = seg_of(m);
	struct rte_mbuf *out;
	if (rte_mbuf_refcnt_read(m) == 1) {
		m->data_off = sg->off;
		m->data_len = sg->len;
		m->pkt_len = sg->len;
		m->ol_flags = 0;
		rte_mbuf_refcnt_update(m, 1);
		out = m;
	} else {
		out = rte_pktmbuf_alloc(s->env->pool);
		if (!out) {
			stack_count(s, SC_drop_no_mbuf);
			return;
		}
		char *d = rte_pktmbuf_append(out, sg->len);
		DURO_ASSERT(d);
		memcpy(d, seg_data(m), sg->len);
	}
	uint8_t flags = RTE_TCP_ACK_FLAG;
	if (sg->flags & SEG_FIN)
		flags |= RTE_TCP_FIN_FLAG;
	if (sg->len && !sg->link)
		flags |= RTE_TCP_PSH_FLAG;
	struct hdr h;
	/* No SACK blocks on data: the segment was sized for the timestamp option only. */
	tcb_hdr(s, t, &h, sg->seq, flags, 0);
	ack_sent(t);
	if (!t->rto_at)
		t->rto_at = s->c->now_ms + t->rto_ms;
	emit(s, out, &h, t->rmac);
}

static void queue_seg(struct tcb *t, struct rte_mbuf *m)
{
	seg_of(m)->link = NULL;
	if (t->snd_tail)
		seg_of(t->snd_tail)->link = m;
	else
		t->snd_head = m;
	t->snd_tail = m;
}

/* New data from the layer above, copied into segments as the window allows; returns 0,
 * or -1 when the connection closed meanwhile. */
static int send_new_data(struct stack *s, struct tcb *t)
{
	struct core *c = s->c;
	while (t->want_output && !t->user_gone) {
		/* Limited transmit (RFC 3042): each of the first two duplicate ACKs lets one
		 * new segment out beyond cwnd, so a small window can still reach three. */
		uint32_t cwnd = t->cwnd;
		if (!t->in_recovery && t->dupacks && t->dupacks < 3)
			cwnd += (uint32_t)t->dupacks * t->mss;
		uint32_t wnd = cwnd < t->snd_wnd ? cwnd : t->snd_wnd;
		uint32_t inflight = t->snd_max - t->snd_una;
		if (inflight >= wnd)
			return 0;
		uint32_t budget = wnd - inflight;
		struct iovec iov[OUT_IOV_MAX];
		unsigned n = t->pub.ev->fill_output(c, &t->pub, iov, OUT_IOV_MAX);
		if (n == 0) {
			t->want_output = 0;
			return 0;
		}
		size_t total = 0;
		for (unsigned i = 0; i < n; i++)
			total += iov[i].iov_len;
		/* Sender-side silly window avoidance (RFC 1122 4.2.3.4): a short segment only
		 * when it carries everything queued or nothing is in flight. */
		size_t take = total < budget ? total : budget;
		if (budget < total && budget < t->mss && inflight > 0)
			take = 0;
		size_t copied = 0;
		unsigned vi = 0;
		size_t voff = 0;
		while (copied < take) {
			struct rte_mbuf *m = rte_pktmbuf_alloc(s->env->pool);
			if (!m) {
				stack_count(s, SC_drop_no_mbuf);
				break;
			}
			size_t seglen = take - copied < t->mss ? take - copied : t->mss;
			struct seg *sg = seg_of(m);
			sg->off = m->data_off;
			sg->seq = t->snd_max;
			sg->len = (uint16_t)seglen;
			sg->flags = 0;
			char *d = rte_pktmbuf_mtod(m, char *);
			size_t got = 0;
			while (got < seglen) {
				size_t k = iov[vi].iov_len - voff;
				if (k > seglen - got)
					k = seglen - got;
				memcpy(d + got, (const char *)iov[vi].iov_base + voff, k);
				got += k;
				voff += k;
				if (voff == iov[vi].iov_len) {
					vi++;
					voff = 0;
				}
			}
			queue_seg(t, m);
			t->snd_max += (uint32_t)seglen;
			if (!t->snd_resend)
				t->snd_nxt = t->snd_max;
			if (!t->ts_ok && !t->rtt_seq) {
				t->rtt_seq = t->snd_max;
				t->rtt_start_ms = (uint32_t)c->now_ms;
			}
			copied += seglen;
			s->net.sent_bytes += seglen;
			xmit_seg(s, t, m);
		}
		/* The loan fill_output began ends here even when nothing was taken (silly window
		 * avoidance, no mbuf): the layer above may move or free those bytes, and a TLS
		 * layer asked for output again with a loan open would abort. */
		if (copied)
			s->net.sends++;
		t->pub.ev->on_sent(c, &t->pub, copied);
		if (t->state == TS_CLOSED)
			return -1;
		if (copied == 0 || copied < total)
			return 0; /* the window is full */
	}
	return 0;
}

/* After a timeout: segments from snd_nxt on go again as the window allows. */
static void resend_queued(struct stack *s, struct tcb *t)
{
	while (t->snd_resend) {
		uint32_t wnd = t->cwnd < t->snd_wnd ? t->cwnd : t->snd_wnd;
		if (wnd < t->mss)
			wnd = t->mss; /* one segment always goes: the window may be probed */
		if (t->snd_nxt - t->snd_una >= wnd)
			return;
		struct rte_mbuf *m = t->snd_resend;
		struct seg *sg = seg_of(m);
		sg->flags |= SEG_RETRANSMITTED;
		xmit_seg(s, t, m);
		t->snd_nxt = sg->seq + sg->len + ((sg->flags & SEG_FIN) ? 1u : 0u);
		t->snd_resend = sg->link;
	}
	t->snd_nxt = t->snd_max;
}

void tcp_retransmit(struct stack *s, struct tcb *t)
{
	if (!t->snd_head)
		return;
	struct seg *sg = seg_of(t->snd_head);
	sg->flags |= SEG_RETRANSMITTED;
	t->rtt_seq = 0; /* Karn: no sample from a retransmitted segment */
	xmit_seg(s, t, t->snd_head);
}

static void send_fin(struct stack *s, struct tcb *t)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(s->env->pool);
	if (!m) {
		stack_count(s, SC_drop_no_mbuf);
		tcb_want_flush(s, t); /* try again next turn */
		return;
	}
	struct seg *sg = seg_of(m);
	sg->off = m->data_off;
	sg->seq = t->snd_max;
	sg->len = 0;
	sg->flags = SEG_FIN;
	queue_seg(t, m);
	t->snd_max++;
	if (!t->snd_resend)
		t->snd_nxt = t->snd_max;
	t->fin_sent = 1;
	/* How long the peer may take to finish closing is bounded as for a lingering kernel
	 * socket: then the connection ends whatever state it is in. */
	unsigned linger = s->cfg->linger_ms ? s->cfg->linger_ms : TCP_FIN_WAIT_2_MS;
	t->end_at = s->c->now_ms + linger;
	tcb_set_state(s, t, t->state == TS_CLOSE_WAIT ? TS_LAST_ACK : TS_FIN_WAIT_1);
	xmit_seg(s, t, m);
}

void tcp_output(struct stack *s, struct tcb *t)
{
	if (t->state == TS_CLOSED || t->state == TS_SYN_RECEIVED)
		return;
	if (t->snd_resend)
		resend_queued(s, t);
	int can_send = t->state == TS_ESTABLISHED || t->state == TS_CLOSE_WAIT;
	if (can_send && !t->fin_sent) {
		if (send_new_data(s, t) < 0)
			return;
		if (t->close_req && !t->want_output && !t->fin_sent &&
		    (t->state == TS_ESTABLISHED || t->state == TS_CLOSE_WAIT))
			send_fin(s, t);
	}
	if (t->ack_now)
		tcp_send_ctl(s, t, RTE_TCP_ACK_FLAG, t->snd_nxt);
	if (t->snd_una == t->snd_max && t->want_output && t->snd_wnd == 0 && !t->rto_at)
		t->rto_at = s->c->now_ms + t->rto_ms; /* persist: probe the zero window */
	tcb_timers_update(s, t);
}

void tcp_on_rto(struct stack *s, struct tcb *t)
{
	uint64_t now = s->c->now_ms;
	if (t->state == TS_SYN_RECEIVED) {
		if (t->backoff >= TCP_SYNACK_RETRIES) {
			stack_count(s, SC_tcp_syn_timeouts);
			tcb_close(s, t, -ETIMEDOUT);
			return;
		}
		t->backoff++;
		tcp_send_ctl(s, t, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, t->iss);
		t->rto_at = now + ((uint64_t)TCP_RTO_INIT_MS << t->backoff);
		return;
	}
	uint64_t rto = (uint64_t)t->rto_ms << (t->backoff < 10 ? t->backoff + 1 : 11);
	if (rto > TCP_RTO_MAX_MS)
		rto = TCP_RTO_MAX_MS;
	if (t->snd_head) {
		if (t->backoff >= TCP_MAX_RETRIES) {
			tcp_send_ctl(s, t, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG, t->snd_max);
			tcb_close(s, t, -ETIMEDOUT);
			return;
		}
		stack_count(s, SC_tcp_retransmits_timeout);
		/* RFC 5681 (4): ssthresh from the flight, one segment of window, go back. */
		uint32_t flight = t->snd_max - t->snd_una;
		t->ssthresh = flight / 2 > 2u * t->mss ? flight / 2 : 2u * t->mss;
		t->cwnd = t->mss;
		t->dupacks = 0;
		t->in_recovery = 0;
		t->recover = t->snd_max;
		t->backoff++;
		t->rtt_seq = 0;
		t->snd_resend = t->snd_head;
		t->snd_nxt = t->snd_una;
		t->rto_at = now + rto;
		resend_queued(s, t);
		t->rto_at = now + rto; /* xmit_seg kept the earlier one */
		return;
	}
	if (t->snd_wnd == 0 && t->want_output) {
		/* Zero window persist: a probe the peer must answer with its window. */
		stack_count(s, SC_tcp_window_probes);
		tcp_send_ctl(s, t, RTE_TCP_ACK_FLAG, t->snd_una - 1);
		if (t->backoff < 10)
			t->backoff++;
		t->rto_at = now + rto;
	}
}
