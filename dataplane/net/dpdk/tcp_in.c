/* TCP input: the segment arrival rules of RFC 9293 3.10.7 with RFC 5961's challenge ACKs,
 * PAWS (RFC 7323), reassembly with SACK reporting (RFC 2018); what an ACK means for the
 * data we sent is tcp_recovery.c's. */
#include "tcp_int.h"
#include "log.h"

#include <errno.h>
#include <string.h>

#define TCP_MAX_OOO_SEGS 256  /* per connection: tiny segments must not pin the pool */
#define TCP_MAX_HELD_SEGS 512 /* per connection while reading is paused */
_Static_assert(TCP_MAX_HELD_SEGS <= UINT16_MAX, "held_segs is 16 bits");

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return rte_be_to_cpu_32(v);
}

int tcp_parse_opts(const uint8_t *p, unsigned len, struct tcp_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->wscale = -1;
	unsigned i = 0;
	while (i < len) {
		uint8_t kind = p[i];
		if (kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= len || p[i + 1] < 2 || i + p[i + 1] > len)
			return -1;
		uint8_t olen = p[i + 1];
		/* A known option with a wrong length is ignored, as Linux does. */
		if (kind == 2 && olen == 4)
			o->mss = (uint16_t)(p[i + 2] << 8 | p[i + 3]);
		else if (kind == 3 && olen == 3)
			o->wscale = (int8_t)(p[i + 2] > 14 ? 14 : p[i + 2]); /* RFC 7323 2.3 */
		else if (kind == 4 && olen == 2)
			o->sack_ok = 1;
		else if (kind == 8 && olen == 10) {
			o->ts = 1;
			o->tsval = get32(p + i + 2);
			o->tsecr = get32(p + i + 6);
		} else if (kind == 5 && olen >= 10 && (olen - 2) % 8 == 0) {
			unsigned nb = (olen - 2u) / 8u;
			o->nsack = (uint8_t)(nb < TCP_MAX_SACKS ? nb : TCP_MAX_SACKS);
			for (unsigned b = 0; b < o->nsack; b++) {
				o->sack[b][0] = get32(p + i + 2 + b * 8);
				o->sack[b][1] = get32(p + i + 6 + b * 8);
			}
		}
		i += olen;
	}
	return 0;
}

/* ---- connection set-up ---- */

static uint16_t our_mss(const struct stack *s)
{
	return (uint16_t)(s->env->mtu - sizeof(struct rte_ipv4_hdr) - sizeof(struct rte_tcp_hdr));
}

uint16_t tcp_eff_mss(const struct stack *s, uint16_t peer)
{
	uint16_t m = peer ? peer : 536; /* RFC 9293 3.7.1 default */
	uint16_t ours = our_mss(s);
	if (m > ours)
		m = ours;
	if (m < 64)
		m = 64; /* a peer announcing a tiny MSS must not make us send 1-byte segments */
	return m;
}

static void established(struct stack *s, struct tcb *t)
{
	/* The peer's MSS counts payload without options: timestamps take 12 of it. */
	if (t->ts_ok)
		t->mss = (uint16_t)(t->mss - 12);
	t->cwnd = TCP_INIT_CWND_SEGS * (uint32_t)t->mss;
	t->ssthresh = UINT32_MAX;
	t->backoff = 0;
	t->rto_at = 0;
	t->timer_kind = TK_RTO;
	t->reo_wnd_mult = 1;
	t->rack_fack = t->snd_una; /* nothing delivered above it yet */
	t->ka_at = s->c->now_ms + TCP_KEEPALIVE_IDLE_MS;
	tcb_set_state(s, t, TS_ESTABLISHED);
}

static void on_syn(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport,
		   const uint8_t *rmac, uint32_t seq, uint16_t win, const struct tcp_opts *o)
{
	struct tcb *t = NULL;
	if (s->embryonic < TCP_MAX_EMBRYONIC)
		t = tcb_create(s, raddr, rport, lport, rmac);
	if (!t) {
		/* SYN queue full (a flood, or a burst of real clients): answer statelessly. */
		uint16_t peer = o->mss ? o->mss : 536;
		unsigned idx = 0;
		for (unsigned i = 0; i < 4; i++)
			if (syncookie_mss[i] <= peer && syncookie_mss[i] <= our_mss(s))
				idx = i;
		uint32_t iss = syncookie_make(s, raddr, rport, lport, seq, idx);
		tcp_send_cookie_synack(s, raddr, rport, lport, rmac, iss, seq + 1, o,
				       syncookie_mss[idx]);
		return;
	}
	t->irs = seq;
	t->rcv_nxt = seq + 1;
	t->iss = tcp_isn(s, raddr, rport, lport);
	t->snd_una = t->iss;
	t->snd_max = t->iss + 1;
	t->recover = t->iss; /* RFC 6582: else a fast retransmit may wait for a wrap */
	t->mss = tcp_eff_mss(s, o->mss);
	t->ts_ok = o->ts;
	t->ts_recent = o->tsval;
	t->sack_ok = o->sack_ok;
	if (o->wscale >= 0) {
		t->snd_wscale = (uint8_t)o->wscale;
		t->rcv_wscale = TCP_RCV_WSCALE;
	}
	t->snd_wnd = win; /* never scaled in a SYN */
	t->snd_wl1 = seq;
	tcb_set_state(s, t, TS_SYN_RECEIVED);
	tcp_send_ctl(s, t, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, t->iss);
	t->rack_xmit_us = tcp_now_us(s); /* the SYN-ACK's: the handshake's RTT sample */
	t->rto_at = s->c->now_ms + TCP_RTO_INIT_MS;
	tcb_timers_update(s, t);
}

/* The final ACK of a handshake we answered with a cookie: the connection starts here. */
static struct tcb *from_cookie(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport,
			       const uint8_t *rmac, uint32_t seq, uint32_t ack, uint16_t win,
			       const struct tcp_opts *o)
{
	int idx = syncookie_check(s, raddr, rport, lport, seq - 1, ack - 1);
	if (idx < 0) {
		stack_count(s, SC_tcp_syncookies_rejected);
		return NULL;
	}
	struct tcb *t = tcb_create(s, raddr, rport, lport, rmac);
	if (!t) {
		stack_count(s, SC_tcp_connections_refused);
		return NULL;
	}
	stack_count(s, SC_tcp_syncookies_accepted);
	t->irs = seq - 1;
	t->rcv_nxt = seq;
	t->iss = ack - 1;
	t->snd_una = t->snd_max = ack;
	t->recover = t->iss;
	t->mss = tcp_eff_mss(s, syncookie_mss[idx]);
	if (o->ts) {
		unsigned bits = o->tsecr & 0x1Fu;
		unsigned ws = bits >> 1;
		t->ts_ok = 1;
		t->ts_recent = o->tsval;
		t->sack_ok = bits & 1u;
		if (ws != 15) {
			t->snd_wscale = (uint8_t)(ws > 14 ? 14 : ws);
			t->rcv_wscale = TCP_RCV_WSCALE;
		}
	}
	t->rcv_adv = t->rcv_nxt + 65535u; /* what the cookie's SYN-ACK offered */
	t->snd_wnd = (uint32_t)win << t->snd_wscale;
	t->max_snd_wnd = t->snd_wnd;
	t->snd_wl1 = seq;
	t->snd_wl2 = ack;
	established(s, t);
	if (tcb_accept(s, t) < 0) {
		tcp_send_ctl(s, t, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG, t->snd_max);
		tcb_close(s, t, 0);
		return NULL;
	}
	return t;
}

/* ---- receiving data ---- */

/* Gives in-order bytes to the layer above, or holds them while reading is paused.
 * Returns 1 when m was kept (held), 0 when the caller still owns it. */
static int deliver(struct stack *s, struct tcb *t, struct rte_mbuf *m, const char *data,
		   uint16_t len)
{
	t->rcv_nxt += len;
	s->net.recv_bytes += len;
	if (t->fin_sent || t->user_gone)
		return 0; /* we closed: read and dropped, as a lingering socket does */
	if (t->paused || t->held_head) {
		struct seg *sg = seg_of(m);
		sg->off = (uint16_t)(data - (const char *)m->buf_addr);
		sg->len = len;
		sg->link = NULL;
		if (t->held_tail)
			seg_of(t->held_tail)->link = m;
		else
			t->held_head = m;
		t->held_tail = m;
		t->held_bytes += len;
		t->held_segs++;
		return 1;
	}
	t->pub.ev->on_data(s->c, &t->pub, data, len);
	return 0;
}

/* Keeps a segment that came ahead of rcv_nxt; returns 1 when kept. */
static int ooo_insert(struct stack *s, struct tcb *t, struct rte_mbuf *m, const char *data,
		      uint32_t seq, uint16_t len)
{
	if (t->ooo_bytes + len > TCP_RCV_BUF || t->ooo_segs >= TCP_MAX_OOO_SEGS) {
		stack_count(s, SC_drop_tcp_reassembly_full);
		return 0;
	}
	struct rte_mbuf **pp = &t->ooo, *prev = NULL;
	while (*pp && seq_lt(seg_of(*pp)->seq, seq)) {
		prev = *pp;
		pp = &seg_of(*pp)->link;
	}
	/* Trim against the neighbours so the queue never overlaps. */
	if (prev) {
		uint32_t pend = seg_of(prev)->seq + seg_of(prev)->len;
		if (seq_ge(pend, seq + len))
			return 0; /* already held */
		if (seq_gt(pend, seq)) {
			uint32_t d = pend - seq;
			data += d;
			len = (uint16_t)(len - d);
			seq = pend;
		}
	}
	struct rte_mbuf *next = *pp;
	if (next) {
		uint32_t nseq = seg_of(next)->seq;
		if (seq_le(nseq, seq)) {
			/* Same start: keep the longer one. */
			if (seq_ge(nseq + seg_of(next)->len, seq + len))
				return 0;
			*pp = seg_of(next)->link;
			t->ooo_bytes -= seg_of(next)->len;
			t->ooo_segs--;
			rte_pktmbuf_free(next);
			next = *pp;
		}
		if (next && seq_gt(seq + len, seg_of(next)->seq))
			len = (uint16_t)(seg_of(next)->seq - seq);
	}
	if (len == 0)
		return 0;
	struct seg *sg = seg_of(m);
	sg->seq = seq;
	sg->len = len;
	sg->off = (uint16_t)(data - (const char *)m->buf_addr);
	sg->link = next;
	*pp = m;
	t->ooo_bytes += len;
	t->ooo_segs++;
	return 1;
}

/* After rcv_nxt moved: whatever the reassembly queue now continues. */
static void ooo_drain(struct stack *s, struct tcb *t)
{
	while (t->ooo && t->state != TS_CLOSED) {
		struct rte_mbuf *m = t->ooo;
		struct seg *sg = seg_of(m);
		if (seq_gt(sg->seq, t->rcv_nxt))
			return;
		t->ooo = sg->link;
		t->ooo_bytes -= sg->len;
		t->ooo_segs--;
		uint32_t end = sg->seq + sg->len;
		if (seq_le(end, t->rcv_nxt)) {
			rte_pktmbuf_free(m);
			continue;
		}
		uint32_t d = t->rcv_nxt - sg->seq;
		const char *data = seg_data(m) + d;
		if (!deliver(s, t, m, data, (uint16_t)(sg->len - d)))
			rte_pktmbuf_free(m);
	}
}

static void tell_eof(struct stack *s, struct tcb *t)
{
	if (t->eof_told || t->paused || t->held_head || t->user_gone || !t->pub.user)
		return;
	t->eof_told = 1;
	t->pub.ev->on_data(s->c, &t->pub, NULL, 0);
}

static void on_fin(struct stack *s, struct tcb *t)
{
	t->rcv_nxt++;
	t->fin_rcvd = 1;
	t->ack_now = 1;
	switch (t->state) {
	case TS_ESTABLISHED:
		tcb_set_state(s, t, TS_CLOSE_WAIT);
		t->ka_at = 0;
		tell_eof(s, t);
		break;
	case TS_FIN_WAIT_1:
		if (t->snd_una == t->snd_max) {
			tcp_send_ctl(s, t, RTE_TCP_ACK_FLAG, t->snd_max);
			tcb_time_wait(s, t);
		} else {
			tcb_set_state(s, t, TS_CLOSING);
		}
		break;
	case TS_FIN_WAIT_2:
		tcp_send_ctl(s, t, RTE_TCP_ACK_FLAG, t->snd_max);
		tcb_time_wait(s, t);
		break;
	default:
		break;
	}
}

/* ---- acknowledgements ---- */

/* Our FIN was acknowledged: where that leads depends on the state. Returns 1 when the
 * connection is gone. */
static int on_fin_acked(struct stack *s, struct tcb *t)
{
	switch (t->state) {
	case TS_FIN_WAIT_1:
		tcb_set_state(s, t, TS_FIN_WAIT_2);
		return 0;
	case TS_CLOSING:
		tcb_time_wait(s, t);
		return 1;
	case TS_LAST_ACK:
		tcb_close(s, t, 0);
		return 1;
	default:
		return 0;
	}
}

static void challenge_ack(struct stack *s, struct tcb *t)
{
	uint32_t now_s = (uint32_t)(s->c->now_ms / 1000);
	if (t->challenge_s != now_s) {
		t->challenge_s = now_s;
		t->challenges = 0;
	}
	if (t->challenges++ >= TCP_CHALLENGE_PER_S)
		return;
	stack_count(s, SC_tcp_challenge_acks);
	tcp_send_ctl(s, t, RTE_TCP_ACK_FLAG, t->snd_max);
}

/* ---- a segment for an existing connection ---- */

/* Returns 1 when m was kept by the connection. */
static int tcb_input(struct stack *s, struct tcb *t, struct rte_mbuf *m, uint8_t flags,
		     uint32_t seq, uint32_t ack, uint16_t win, const char *data, uint16_t plen,
		     const struct tcp_opts *o)
{
	uint64_t now = s->c->now_ms;
	int kept = 0;
	if (t->state == TS_SYN_RECEIVED && (flags & RTE_TCP_SYN_FLAG) &&
	    !(flags & RTE_TCP_ACK_FLAG)) {
		if (seq == t->irs) /* our SYN-ACK was lost */
			tcp_send_ctl(s, t, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, t->iss);
		return 0;
	}
	if (t->state == TS_SYN_RECEIVED && t->dialing && (flags & RTE_TCP_SYN_FLAG) &&
	    (flags & RTE_TCP_ACK_FLAG) && seq + 1 == t->rcv_nxt && ack == t->snd_max) {
		/* Simultaneous open: the peer's SYN-ACK answers our SYN-ACK's SYN, and its SYN
		 * we have: it completes the handshake, as in Linux (tcp_validate_incoming). */
		flags &= (uint8_t)~RTE_TCP_SYN_FLAG;
		seq = t->rcv_nxt;
	}
	uint32_t seg_len = plen + ((flags & RTE_TCP_SYN_FLAG) ? 1u : 0u) +
			   ((flags & RTE_TCP_FIN_FLAG) ? 1u : 0u);
	/* PAWS (RFC 7323 5.3): an old timestamp marks a segment from an earlier life. */
	if (t->ts_ok && o->ts && !(flags & RTE_TCP_RST_FLAG) && seq_lt(o->tsval, t->ts_recent)) {
		stack_count(s, SC_drop_tcp_paws);
		t->ack_now = 1;
		tcb_want_flush(s, t);
		return 0;
	}
	/* Acceptability (RFC 9293 3.10.7.4, first check). */
	uint32_t wnd = seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
	int ok;
	if (seg_len == 0)
		ok = wnd == 0 ? seq == t->rcv_nxt
			      : seq_ge(seq, t->rcv_nxt) && seq_lt(seq, t->rcv_nxt + wnd);
	else
		ok = wnd != 0 && ((seq_ge(seq, t->rcv_nxt) && seq_lt(seq, t->rcv_nxt + wnd)) ||
				  (seq_ge(seq + seg_len - 1, t->rcv_nxt) &&
				   seq_lt(seq + seg_len - 1, t->rcv_nxt + wnd)));
	/* A zero window still takes the segment's ACK and FIN information at rcv_nxt. */
	if (!ok && wnd == 0 && seq == t->rcv_nxt)
		ok = 1;
	if (!ok) {
		stack_count(s, SC_drop_tcp_out_of_window);
		if (!(flags & RTE_TCP_RST_FLAG)) {
			t->ack_now = 1; /* also the answer to a keep-alive probe */
			tcb_want_flush(s, t);
		}
		return 0;
	}
	if (flags & RTE_TCP_RST_FLAG) {
		/* RFC 5961 3.2: only an exact RST resets; any other in the window is
		 * challenged, so a blind attacker must guess the sequence exactly. */
		if (seq == t->rcv_nxt) {
			stack_count(s, SC_tcp_resets_received);
			/* A dial's simultaneous open reset before it was made: refused. */
			tcb_close(s, t, t->dialing ? -ECONNREFUSED : -ECONNRESET);
		} else {
			challenge_ack(s, t);
		}
		return 0;
	}
	if (flags & RTE_TCP_SYN_FLAG) {
		challenge_ack(s, t); /* RFC 5961 4.2 */
		return 0;
	}
	if (!(flags & RTE_TCP_ACK_FLAG))
		return 0;

	if (t->state == TS_SYN_RECEIVED) {
		if (!seq_gt(ack, t->snd_una) || seq_gt(ack, t->snd_max)) {
			tcp_send_reset(s, t->raddr, t->rport, t->lport, t->rmac, ack, 0, 0);
			return 0;
		}
		t->snd_una = ack;
		t->snd_wnd = (uint32_t)win << t->snd_wscale;
		t->max_snd_wnd = t->snd_wnd;
		t->snd_wl1 = seq;
		t->snd_wl2 = ack;
		if (!t->backoff) /* Karn: not from a SYN-ACK sent again */
			tcp_rtt_sample(t, tcp_now_us(s) - t->rack_xmit_us);
		t->rack_xmit_us = 0;
		established(s, t);
		if (tcb_accept(s, t) < 0) {
			tcp_send_ctl(s, t, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG, t->snd_max);
			tcb_close(s, t, 0);
			return 0;
		}
		if (t->state == TS_CLOSED)
			return 0;
	} else {
		if (seq_gt(ack, t->snd_max)) {
			t->ack_now = 1; /* acknowledges what we never sent */
			tcb_want_flush(s, t);
			return 0;
		}
		if (seq_lt(ack, t->snd_una - t->max_snd_wnd)) {
			challenge_ack(s, t); /* RFC 5961 5.2: far too old */
			return 0;
		}
		uint32_t new_wnd = (uint32_t)win << t->snd_wscale;
		/* RFC 5681's duplicate ACK: nothing new, no data, the same window. */
		int dup = ack == t->snd_una && plen == 0 && !(flags & RTE_TCP_FIN_FLAG) &&
			  t->snd_max != t->snd_una && new_wnd == t->snd_wnd;
		if (seq_gt(ack, t->snd_una) || dup || (o->nsack && ack == t->snd_una))
			tcp_ack_received(s, t, ack, o, dup);
		if (seq_lt(t->snd_wl1, seq) || (t->snd_wl1 == seq && seq_le(t->snd_wl2, ack))) {
			uint32_t old = t->snd_wnd;
			t->snd_wnd = new_wnd;
			t->snd_wl1 = seq;
			t->snd_wl2 = ack;
			if (new_wnd > t->max_snd_wnd)
				t->max_snd_wnd = new_wnd;
			if (new_wnd > old) {
				if (t->snd_una == t->snd_max && !t->snd_head) {
					t->rto_at = 0; /* persist ends */
					t->backoff = 0;
				}
				if (t->want_output || t->close_req)
					tcb_want_flush(s, t);
			}
		}
		if (t->fin_sent && t->snd_una == t->snd_max && on_fin_acked(s, t))
			return 0;
	}
	/* RFC 7323 4.3: remember the timestamp of the segment at the left window edge. */
	if (t->ts_ok && o->ts && seq_le(seq, t->rcv_nxt) && seq_gt(o->tsval, t->ts_recent - 1))
		t->ts_recent = o->tsval;
	if (t->state == TS_ESTABLISHED || t->state == TS_CLOSE_WAIT) {
		t->ka_at = t->state == TS_ESTABLISHED ? now + TCP_KEEPALIVE_IDLE_MS : 0;
		t->ka_probes = 0;
	}

	uint32_t fin_seq = seq + plen;
	if (plen && (t->state == TS_ESTABLISHED || t->state == TS_FIN_WAIT_1 ||
		     t->state == TS_FIN_WAIT_2)) {
		if (seq_lt(seq, t->rcv_nxt)) {
			uint32_t d = t->rcv_nxt - seq;
			if (d >= plen) {
				plen = 0; /* all of it seen before: a retransmission; ACK it */
				t->ack_now = 1;
			} else {
				data += d;
				plen = (uint16_t)(plen - d);
				seq = t->rcv_nxt;
			}
		}
		uint32_t right = t->rcv_nxt + wnd;
		if (plen && seq_gt(seq + plen, right)) {
			plen = seq_gt(right, seq) ? (uint16_t)(right - seq) : 0;
			flags &= (uint8_t)~RTE_TCP_FIN_FLAG; /* the FIN lies beyond the window */
			stack_count(s, SC_drop_tcp_receive_overflow);
		}
		if (plen && seq == t->rcv_nxt) {
			int filled_hole = t->ooo != NULL;
			if ((t->paused || t->held_head) && t->held_segs >= TCP_MAX_HELD_SEGS) {
				stack_count(s, SC_drop_tcp_receive_overflow);
				t->ack_now = 1;
				tcb_want_flush(s, t);
				return 0; /* not accepted: the peer sends it again */
			}
			kept = deliver(s, t, m, data, plen);
			if (t->state == TS_CLOSED)
				return kept;
			ooo_drain(s, t);
			if (t->state == TS_CLOSED)
				return kept;
			t->segs_unacked++;
			if (filled_hole || t->segs_unacked >= 2 || (flags & RTE_TCP_FIN_FLAG))
				t->ack_now = 1;
			else if (!t->dack_at)
				t->dack_at = now + TCP_DELACK_MS;
		} else if (plen) {
			stack_count(s, SC_tcp_out_of_order);
			kept = ooo_insert(s, t, m, data, seq, plen);
			t->ack_now = 1; /* a duplicate ACK with SACK blocks, at once */
			if (flags & RTE_TCP_FIN_FLAG) {
				t->fin_seq = fin_seq + 1; /* +1: 0 means none */
				flags &= (uint8_t)~RTE_TCP_FIN_FLAG;
			}
		}
	} else if (plen) {
		/* Data after the peer's FIN: nothing to deliver it to. */
		t->ack_now = 1;
	} else if ((flags & RTE_TCP_FIN_FLAG) && seq_gt(fin_seq, t->rcv_nxt) && !t->fin_rcvd) {
		t->fin_seq = fin_seq + 1; /* a bare FIN ahead of missing data */
		t->ack_now = 1;
		flags &= (uint8_t)~RTE_TCP_FIN_FLAG;
	}
	if ((flags & RTE_TCP_FIN_FLAG) && fin_seq == t->rcv_nxt && !t->fin_rcvd &&
	    t->state != TS_CLOSED)
		on_fin(s, t);
	else if (t->fin_seq && t->fin_seq - 1 == t->rcv_nxt && !t->fin_rcvd && t->state != TS_CLOSED)
		on_fin(s, t);
	if (t->state != TS_CLOSED) {
		if (t->ack_now)
			tcb_want_flush(s, t);
		tcb_timers_update(s, t);
	}
	return kept;
}

/* ---- our own SYN sent (RFC 9293 3.10.7.3) ---- */

/* A segment for a dial waiting for its SYN-ACK. Returns 1 when m was kept. */
static int syn_sent_input(struct stack *s, struct tcb *t, struct rte_mbuf *m, uint8_t flags,
			  uint32_t seq, uint32_t ack, uint16_t win, const char *data, uint16_t plen,
			  const struct tcp_opts *o, const uint8_t *src_mac)
{
	int ackf = flags & RTE_TCP_ACK_FLAG;
	if (ackf && (seq_le(ack, t->iss) || seq_gt(ack, t->snd_max))) {
		/* Not for our SYN (an old connection's): reset it, the connection stays. */
		if (!(flags & RTE_TCP_RST_FLAG))
			tcp_send_reset(s, t->raddr, t->rport, t->lport, src_mac, ack, 0, 0);
		return 0;
	}
	if (flags & RTE_TCP_RST_FLAG) {
		/* Only a reset that acknowledges our SYN refuses it (RFC 5961 3.2 in SYN_SENT);
		 * one without an ACK could be anybody's. */
		if (ackf) {
			stack_count(s, SC_tcp_resets_received);
			tcb_close(s, t, -ECONNREFUSED);
		}
		return 0;
	}
	if (!(flags & RTE_TCP_SYN_FLAG))
		return 0;
	/* The peer's SYN: its options against those our SYN offered (all of them). */
	memcpy(t->rmac, src_mac, 6);
	t->rmac_ok = 1;
	t->irs = seq;
	t->rcv_nxt = seq + 1;
	t->rcv_adv = t->rcv_nxt + 65535u; /* what our SYN offered, never scaled */
	t->mss = tcp_eff_mss(s, o->mss);
	t->ts_ok = t->ts_ok && o->ts;
	t->ts_recent = t->ts_ok ? o->tsval : 0;
	t->sack_ok = t->sack_ok && o->sack_ok;
	if (o->wscale >= 0) {
		t->snd_wscale = (uint8_t)o->wscale;
	} else {
		t->snd_wscale = 0; /* RFC 7323 2.2: both sides scale, or neither */
		t->rcv_wscale = 0;
	}
	t->snd_wnd = win; /* never scaled in a SYN */
	t->max_snd_wnd = win;
	t->snd_wl1 = seq;
	t->snd_wl2 = ack;
	if (!ackf) {
		/* Simultaneous open: SYN_RECEIVED, our SYN again with the ACK of theirs; the
		 * connection is made by their ACK as a passive one is. */
		t->backoff = 0;
		t->rack_xmit_us = tcp_now_us(s);
		tcb_set_state(s, t, TS_SYN_RECEIVED);
		tcp_send_ctl(s, t, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG, t->iss);
		t->rto_at = s->c->now_ms + TCP_RTO_INIT_MS;
		tcb_timers_update(s, t);
		return 0;
	}
	t->snd_una = ack;
	if (!t->backoff) /* Karn: not from a SYN sent again */
		tcp_rtt_sample(t, tcp_now_us(s) - t->rack_xmit_us);
	t->rack_xmit_us = 0;
	established(s, t);
	tcp_send_ctl(s, t, RTE_TCP_ACK_FLAG, t->snd_max);
	if (tcb_accept(s, t) < 0) {
		tcp_send_ctl(s, t, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG, t->snd_max);
		tcb_close(s, t, 0);
		return 0;
	}
	if (t->state == TS_CLOSED)
		return 0;
	if (plen || (flags & RTE_TCP_FIN_FLAG)) {
		/* Data (or a FIN) with the SYN-ACK: taken from one past the SYN on. */
		return tcb_input(s, t, m, (uint8_t)(flags & ~RTE_TCP_SYN_FLAG), seq + 1, ack, win,
				 data, plen, o);
	}
	tcb_timers_update(s, t);
	return 0;
}

/* ---- no connection: TIME_WAIT record or listener ---- */

static void tw_input(struct stack *s, struct tw *w, uint8_t flags, uint32_t seq,
		     const struct tcp_opts *o, const uint8_t *rmac, uint16_t win)
{
	if (flags & RTE_TCP_RST_FLAG)
		return; /* RFC 1337: a reset does not cut TIME_WAIT short */
	if ((flags & RTE_TCP_SYN_FLAG) && !(flags & RTE_TCP_ACK_FLAG)) {
		/* RFC 6191: a new incarnation is welcome when it is clearly newer. */
		int newer = w->ts_ok && o->ts ? seq_gt(o->tsval, w->ts_recent) : seq_gt(seq, w->rcv_nxt);
		/* Only where we listen: a dial's port in TIME_WAIT takes no connections (as
		 * Linux, which then answers with the TIME_WAIT's ACK). */
		if (newer && s->accepting == STACK_ACCEPTING && tcp_listening(s, w->lport) >= 0) {
			uint32_t raddr = w->raddr;
			uint16_t rport = w->rport, lport = w->lport;
			tw_remove(s, w);
			on_syn(s, raddr, rport, lport, rmac, seq, win, o);
			return;
		}
	}
	tcp_send_tw_ack(s, w);
}

void tcp_input(struct stack *s, struct rte_mbuf *m, struct rte_ipv4_hdr *ip,
	       struct rte_tcp_hdr *th, uint16_t tcp_len, const uint8_t *src_mac)
{
	uint32_t raddr = ip->src_addr;
	uint16_t rport = th->src_port, lport = th->dst_port;
	uint8_t flags = th->tcp_flags;
	unsigned hlen = (unsigned)(th->data_off >> 4) * 4u;
	uint32_t seq = rte_be_to_cpu_32(th->sent_seq);
	uint32_t ack = rte_be_to_cpu_32(th->recv_ack);
	uint16_t win = rte_be_to_cpu_16(th->rx_win);
	const char *data = (const char *)th + hlen;
	uint16_t plen = (uint16_t)(tcp_len - hlen);
	struct tcp_opts o;
	if (tcp_parse_opts((const uint8_t *)(th + 1), hlen - sizeof(*th), &o) < 0) {
		stack_count(s, SC_drop_tcp_bad_header);
		rte_pktmbuf_free(m);
		return;
	}
	/* Combinations no real stack sends (scans, fingerprinting, attacks). */
	int syn = flags & RTE_TCP_SYN_FLAG, rst = flags & RTE_TCP_RST_FLAG,
	    fin = flags & RTE_TCP_FIN_FLAG, ackf = flags & RTE_TCP_ACK_FLAG;
	if ((syn && (fin || rst)) || !(syn || rst || ackf) || (fin && !ackf)) {
		stack_count(s, SC_drop_tcp_bad_flags);
		rte_pktmbuf_free(m);
		return;
	}
	struct tcb *t = tcb_lookup(s, raddr, rport, lport);
	if (t && t->state == TS_SYN_SENT) {
		if (!syn_sent_input(s, t, m, flags, seq, ack, win, data, plen, &o, src_mac))
			rte_pktmbuf_free(m);
		return;
	}
	if (t) {
		if (!tcb_input(s, t, m, flags, seq, ack, win, data, plen, &o))
			rte_pktmbuf_free(m);
		return;
	}
	struct tw *w = tw_lookup(s, raddr, rport, lport);
	if (w) {
		tw_input(s, w, flags, seq, &o, src_mac, win);
		rte_pktmbuf_free(m);
		return;
	}
	int listener = tcp_listening(s, lport);
	/* Draining refuses new connections only: a handshake under way (its SYN answered, or
	 * a cookie's ACK) completes and is served. */
	if (listener < 0 || s->accepting == STACK_NOT_YET ||
	    (s->accepting == STACK_DRAINING && syn && !ackf)) {
		stack_count(s, listener < 0 ? SC_drop_tcp_no_listener : SC_tcp_connections_refused);
		if (!rst) /* RFC 9293 3.10.7.1 */
			tcp_send_reset(s, raddr, rport, lport, src_mac, ackf ? ack : 0,
				       seq + plen + (syn ? 1u : 0u) + (fin ? 1u : 0u), !ackf);
		rte_pktmbuf_free(m);
		return;
	}
	if (rst) {
		rte_pktmbuf_free(m);
		return;
	}
	if (syn && !ackf) {
		on_syn(s, raddr, rport, lport, src_mac, seq, win, &o);
		rte_pktmbuf_free(m);
		return;
	}
	if (ackf && !syn) {
		t = from_cookie(s, raddr, rport, lport, src_mac, seq, ack, win, &o);
		if (t) {
			if (!tcb_input(s, t, m, flags, seq, ack, win, data, plen, &o))
				rte_pktmbuf_free(m);
			return;
		}
	}
	stack_count(s, SC_drop_tcp_no_connection);
	tcp_send_reset(s, raddr, rport, lport, src_mac, ack, 0, 0);
	rte_pktmbuf_free(m);
}

void tcp_resume_read(struct stack *s, struct tcb *t)
{
	uint32_t before = seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
	while (t->held_head && !t->paused && t->state != TS_CLOSED && !t->user_gone) {
		struct rte_mbuf *m = t->held_head;
		struct seg *sg = seg_of(m);
		t->held_head = sg->link;
		if (!t->held_head)
			t->held_tail = NULL;
		t->held_bytes -= sg->len;
		t->held_segs--;
		t->pub.ev->on_data(s->c, &t->pub, seg_data(m), sg->len);
		rte_pktmbuf_free(m);
	}
	if (t->state == TS_CLOSED || t->paused)
		return;
	if (t->fin_rcvd)
		tell_eof(s, t);
	if (before < TCP_RCV_BUF / 2) {
		t->ack_now = 1; /* the window reopened: say so rather than wait for a probe */
		tcb_want_flush(s, t);
	}
}
