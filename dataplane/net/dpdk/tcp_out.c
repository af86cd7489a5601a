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
	} else if (m->nb_segs > 1) {
		/* Header here, payload in the shared memory chained behind. */
		uint16_t raw = 0;
		rte_raw_cksum_mbuf(m, sizeof(*ip), thlen + payload, &raw);
		uint32_t sum = (uint32_t)raw + rte_ipv4_phdr_cksum(ip, 0);
		sum = (sum >> 16) + (sum & 0xffff);
		sum += sum >> 16;
		th->cksum = (uint16_t)~sum;
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
	if (flags & (RTE_TCP_ACK_FLAG | RTE_TCP_SYN_FLAG)) {
		/* A dial's SYN (no ACK) offers its window too. */
		if (flags & RTE_TCP_ACK_FLAG)
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
	emit(s, m, &h, t->rmac_ok ? t->rmac : NULL);
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
	h.seq = w->snd_max;
	h.ack = w->rcv_nxt;
	h.flags = RTE_TCP_ACK_FLAG;
	h.win = 0; /* nothing more will be read */
	if (w->ts_ok)
		opt_ts(&h, (uint32_t)s->c->now_ms + w->ts_offset, w->ts_recent);
	emit(s, m, &h, w->rmac);
}

/* ---- data segments ---- */

/* The last mbuf attached to a share on this core was freed (by the stack or the port):
 * the hold ends at the next turn's start (release_shares), outside any call from above. */
static void zc_freed(void *addr, void *opaque)
{
	(void)addr;
	struct zc_share *z = opaque;
	z->active = 0;
	z->next_released = z->s->released;
	z->s->released = z;
}

/* A segment of `len` shared bytes at p, sent from where they are: a header mbuf with an
 * mbuf of ext_pool attached to the bytes behind it. NULL when an mbuf, a record or room
 * in DPDK's 16-bit reference count is lacking: the bytes are copied then. */
static struct rte_mbuf *zc_segment(struct stack *s, struct net_share *sh, const char *p,
				   uint16_t len)
{
	struct zc_share *z = sh->priv;
	if (z && !z->active)
		z = NULL; /* the old record waits for its release: a new hold */
	if (z && rte_mbuf_ext_refcnt_read(&z->shinfo) >= ZC_MAX_REFS)
		return NULL;
	struct rte_mbuf *h = rte_pktmbuf_alloc(s->env->pool);
	struct rte_mbuf *x = h ? rte_pktmbuf_alloc(s->env->ext_pool) : NULL;
	if (!x) {
		rte_pktmbuf_free(h);
		return NULL;
	}
	if (!z) {
		z = pool_get(&s->zc_pool);
		if (!z) {
			rte_pktmbuf_free(h);
			rte_pktmbuf_free(x);
			return NULL;
		}
		z->shinfo.free_cb = zc_freed;
		z->shinfo.fcb_opaque = z;
		rte_mbuf_ext_refcnt_set(&z->shinfo, 1);
		z->s = s;
		z->share = sh;
		z->next_released = NULL;
		z->active = 1;
		sh->priv = z;
		sh->holds++;
	} else {
		rte_mbuf_ext_refcnt_update(&z->shinfo, 1);
	}
	/* The port only reads these bytes with the CPU (zc_min is 0 for ports that DMA):
	 * their virtual address stands for the I/O one. */
	rte_pktmbuf_attach_extbuf(x, (void *)(uintptr_t)p, (rte_iova_t)(uintptr_t)p, len, &z->shinfo);
	x->data_len = len;
	x->pkt_len = len;
	h->next = x;
	h->nb_segs = 2;
	h->pkt_len = len;
	struct seg *sg = seg_of(h);
	sg->off = 0; /* into the attached buffer */
	sg->len = len;
	sg->flags = SEG_ZC;
	stack_count(s, SC_tx_zero_copy);
	return h;
}

/* Sends one queued segment. The queue keeps its reference for retransmission; the frame
 * goes out from the same buffer when the port has let go of the previous transmission,
 * from a copy when it still holds it. */
static void xmit_seg(struct stack *s, struct tcb *t, struct rte_mbuf *m)
{
	struct seg *sg = seg_of(m);
	struct rte_mbuf *out;
	sg->xmit_us = tcp_now_us(s);
	if (!t->rto_at) {
		t->rto_at = s->c->now_ms + t->rto_ms; /* RFC 6298 5.1 */
		t->timer_kind = TK_RTO;
	}
	if (rte_mbuf_refcnt_read(m) == 1) {
		if (sg->flags & SEG_ZC) {
			struct rte_mbuf *x = m->next;
			m->data_off = RTE_PKTMBUF_HEADROOM;
			m->data_len = 0;
			x->data_off = sg->off;
			x->data_len = sg->len;
			m->nb_segs = 2;
		} else {
			m->data_off = sg->off;
			m->data_len = sg->len;
		}
		m->pkt_len = sg->len;
		m->ol_flags = 0;
		rte_pktmbuf_refcnt_update(m, 1); /* every mbuf of the chain */
		out = m;
	} else {
		out = rte_pktmbuf_alloc(s->env->pool);
		if (!out) {
			stack_count(s, SC_drop_no_mbuf);
			return;
		}
		char *d = rte_pktmbuf_append(out, sg->len);
		DURO_ASSERT(d);
		memcpy(d, seg_payload(m), sg->len);
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

/* New data from the layer above, copied into segments as the windows allow: the
 * congestion window against pipe (RFC 6675), the peer's against what is outstanding. A
 * loss probe (t->probing) takes one segment whatever the congestion window says (RFC
 * 8985 7.3). Returns 0, or -1 when the connection closed meanwhile. */
static int send_new_data(struct stack *s, struct tcb *t)
{
	struct core *c = s->c;
	int sent_any = 0;
	while (t->want_output && !t->user_gone) {
		uint32_t inflight = t->snd_max - t->snd_una;
		if (inflight >= t->snd_wnd)
			break;
		uint32_t budget = t->snd_wnd - inflight;
		if (t->probing) {
			if (sent_any)
				break;
			if (budget > t->mss)
				budget = t->mss;
		} else {
			uint32_t pipe = tcp_pipe(t);
			if (pipe >= t->cwnd)
				break;
			if (t->cwnd - pipe < budget)
				budget = t->cwnd - pipe;
		}
		struct iovec iov[OUT_IOV_MAX];
		struct net_share *share[OUT_IOV_MAX];
		int zc = s->env->zc_min && t->pub.ev->fill_output_shared;
		unsigned n = zc ? t->pub.ev->fill_output_shared(c, &t->pub, iov, share, OUT_IOV_MAX)
				: t->pub.ev->fill_output(c, &t->pub, iov, OUT_IOV_MAX);
		if (n == 0) {
			t->want_output = 0;
			break;
		}
		size_t total = 0;
		for (unsigned i = 0; i < n; i++)
			total += iov[i].iov_len;
		/* Sender-side silly window avoidance (RFC 1122 4.2.3.4): a short segment only
		 * when it carries everything queued or nothing is in flight. */
		size_t take = total < budget ? total : budget;
		if (budget < total && budget < t->mss && inflight > 0 && !t->probing)
			take = 0;
		/* A busy core fills segments: a short one waits a little for more output of
		 * its connection (a broadcast's next messages), up to coalesce_us. */
		if (take && s->heavy && s->env->coalesce_us && total < t->mss && !t->probing &&
		    !t->close_req) {
			uint32_t now = tcp_now_us(s);
			if (!t->coalesce_until_us)
				t->coalesce_until_us = (now + s->env->coalesce_us) | 1u;
			if ((int32_t)(now - t->coalesce_until_us) < 0) {
				tcb_want_flush(s, t);
				take = 0;
			}
		}
		if (take)
			t->coalesce_until_us = 0;
		size_t copied = 0;
		unsigned vi = 0;
		size_t voff = 0;
		while (copied < take) {
			size_t seglen = take - copied < t->mss ? take - copied : t->mss;
			size_t piece = iov[vi].iov_len - voff;
			struct rte_mbuf *m = NULL;
			if (zc && share[vi] && piece >= s->env->zc_min) {
				/* Shared bytes worth it: sent from where they are, a piece per
				 * segment. */
				if (seglen > piece)
					seglen = piece;
				m = zc_segment(s, share[vi], (const char *)iov[vi].iov_base + voff,
					       (uint16_t)seglen);
				if (m) {
					voff += seglen;
					if (voff == iov[vi].iov_len) {
						vi++;
						voff = 0;
					}
				}
			}
			if (!m) {
				m = rte_pktmbuf_alloc(s->env->pool);
				if (!m) {
					stack_count(s, SC_drop_no_mbuf);
					break;
				}
				struct seg *sg = seg_of(m);
				sg->off = m->data_off;
				sg->flags = 0;
				char *d = rte_pktmbuf_mtod(m, char *);
				size_t got = 0;
				while (got < seglen) {
					/* A shared piece worth sending from where it is gets a
					 * segment of its own. */
					if (zc && got && !voff && share[vi] &&
					    iov[vi].iov_len >= s->env->zc_min)
						break;
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
				seglen = got;
				sg->len = (uint16_t)seglen;
			}
			seg_of(m)->seq = t->snd_max;
			queue_seg(t, m);
			t->snd_max += (uint32_t)seglen;
			copied += seglen;
			s->net.sent_bytes += seglen;
			xmit_seg(s, t, m);
		}
		/* The loan fill_output began ends here even when nothing was taken (silly window
		 * avoidance, coalescing, no mbuf): the layer above may move or free those bytes,
		 * and a TLS layer asked for output again with a loan open would abort. */
		if (copied) {
			sent_any = 1;
			s->net.sends++;
		}
		t->pub.ev->on_sent(c, &t->pub, copied);
		if (t->state == TS_CLOSED)
			return -1;
		if (copied == 0 || copied < total)
			break; /* a window is full, or the segment waits */
	}
	if (sent_any && !t->probing && tcp_pto_allowed(t))
		tcp_arm_timer(s, t, 1); /* RFC 8985 7.2: the probe after new data */
	return 0;
}

/* Segments marked lost go again, first in sequence order, while pipe is below the
 * congestion window (RFC 6675 NextSeg rule 1), before any new data. */
static void retransmit_lost(struct stack *s, struct tcb *t)
{
	enum stack_counter kind = t->ca_state == CA_LOSS ? SC_tcp_retransmits_timeout
				  : t->newreno		? SC_tcp_retransmits_fast
							: SC_tcp_retransmits_rack;
	struct rte_mbuf *m = t->snd_resend;
	while (m) {
		struct seg *sg = seg_of(m);
		if ((sg->flags & (SEG_LOST | SEG_RETRANS | SEG_SACKED)) == SEG_LOST) {
			if (tcp_pipe(t) >= t->cwnd && !t->rexmit_now)
				break;
			t->rexmit_now = 0;
			sg->flags |= SEG_RETRANS | SEG_EVER_RETRANS;
			t->retrans_bytes += seg_seqlen(sg);
			stack_count(s, kind);
			xmit_seg(s, t, m);
		}
		m = sg->link;
	}
	t->snd_resend = m;
}

/* The loss probe (RFC 8985 7.3): a new segment if the peer's window has room for one,
 * else the last segment again. The retransmission timer follows it. */
static void send_probe(struct stack *s, struct tcb *t)
{
	stack_count(s, SC_tcp_tlp_probes);
	uint32_t before = t->snd_max;
	if (t->want_output && !t->fin_sent &&
	    (t->state == TS_ESTABLISHED || t->state == TS_CLOSE_WAIT)) {
		t->probing = 1;
		int r = send_new_data(s, t);
		t->probing = 0;
		if (r < 0)
			return;
	}
	if (t->snd_max != before) {
		t->tlp_retrans = 0;
	} else {
		struct rte_mbuf *m = t->snd_tail;
		struct seg *sg = seg_of(m);
		if (!(sg->flags & SEG_RETRANS))
			t->retrans_bytes += seg_seqlen(sg);
		sg->flags |= SEG_RETRANS | SEG_EVER_RETRANS;
		stack_count(s, SC_tcp_retransmits_tlp);
		xmit_seg(s, t, m);
		t->tlp_retrans = 1;
	}
	t->tlp_out = 1;
	t->tlp_end_seq = t->snd_max;
}

void tcp_arm_timer(struct stack *s, struct tcb *t, int restart)
{
	uint64_t now = s->c->now_ms;
	if (!t->snd_head)
		return;
	if (tcp_pto_allowed(t)) {
		t->rto_at = now + tcp_pto_ms(t);
		t->timer_kind = TK_PTO;
		return;
	}
	if (restart || !t->rto_at || t->timer_kind != TK_RTO) {
		t->rto_at = now + t->rto_ms;
		t->timer_kind = TK_RTO;
	}
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
	if (t->state == TS_CLOSED || t->state == TS_SYN_RECEIVED || t->state == TS_SYN_SENT)
		return;
	if (t->rack_wait_us)
		tcp_rack_timeout(s, t);
	if (t->snd_resend)
		retransmit_lost(s, t);
	int can_send = t->state == TS_ESTABLISHED || t->state == TS_CLOSE_WAIT;
	if (can_send && !t->fin_sent) {
		if (send_new_data(s, t) < 0)
			return;
		if (t->close_req && !t->want_output && !t->fin_sent &&
		    (t->state == TS_ESTABLISHED || t->state == TS_CLOSE_WAIT))
			send_fin(s, t);
	}
	if (t->ack_now)
		tcp_send_ctl(s, t, RTE_TCP_ACK_FLAG, t->snd_max);
	if (t->snd_una == t->snd_max && t->want_output && t->snd_wnd == 0 && !t->rto_at) {
		t->rto_at = s->c->now_ms + t->rto_ms; /* persist: probe the zero window */
		t->timer_kind = TK_RTO;
	}
	tcb_timers_update(s, t);
}

void tcp_on_rto(struct stack *s, struct tcb *t)
{
	uint64_t now = s->c->now_ms;
	if (t->state == TS_SYN_SENT) {
		tcp_syn_sent_rto(s, t);
		return;
	}
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
	enum tcp_timer_kind kind = (enum tcp_timer_kind)t->timer_kind;
	t->timer_kind = TK_RTO;
	if (kind == TK_REO) {
		tcp_rack_timeout(s, t);
		if (t->snd_head && !t->rto_at)
			tcp_arm_timer(s, t, 1);
		if (t->snd_resend)
			tcb_want_flush(s, t);
		return;
	}
	if (kind == TK_PTO && t->snd_head) {
		send_probe(s, t);
		if (t->state != TS_CLOSED) {
			t->rto_at = now + t->rto_ms;
			t->timer_kind = TK_RTO;
		}
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
		/* RFC 5681 (4): ssthresh from the flight (held on a second expiry in a row),
		 * one segment of window, every segment not SACKed lost (RFC 6675 5.1). */
		uint32_t flight = t->snd_max - t->snd_una;
		if (!t->backoff) {
			t->prior_cwnd = t->cwnd;
			t->prior_ssthresh = t->ssthresh;
			t->rto_tsval = tcp_now_ts(t, now);
			t->ssthresh = flight / 2 > 2u * t->mss ? flight / 2 : 2u * t->mss;
		}
		t->cwnd = t->mss;
		tcp_rto_mark_all(s, t);
		t->ca_state = CA_LOSS;
		t->newreno = !t->sack_ok;
		t->recover = t->snd_max;
		t->dupacks = 0;
		t->backoff++;
		retransmit_lost(s, t);
		t->rto_at = now + rto;
		t->timer_kind = TK_RTO;
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
