/* Loss detection and recovery on the sending side: the SACK scoreboard (RFC 6675, D-SACK
 * per RFC 2883), RACK-TLP (RFC 8985) with its reordering window, NewReno for peers without
 * SACK (RFC 6582, duplicate ACKs counted as SACKs the way Linux does), and the congestion
 * window's growth and reductions (RFC 5681).
 *
 * The scoreboard lives in the send queue's segment records (SACKED, LOST, RETRANS) and in
 * three sums on the TCB, so pipe is a subtraction and an ACK without SACK blocks outside
 * recovery walks nothing but the segments it frees. */
#include "tcp_int.h"

/* What one ACK delivered: the RTT sample (RFC 6298) from the segment sent last among
 * those delivered that were never retransmitted. */
struct ack_info {
	uint32_t rtt_us, rtt_xmit_us;
	uint8_t rtt_ok;
	uint8_t dsack;
	uint32_t dsack_left, dsack_right;
};

static int sent_after(uint32_t t1, uint32_t seq1, uint32_t t2, uint32_t seq2)
{
	return (int32_t)(t1 - t2) > 0 || (t1 == t2 && seq_gt(seq1, seq2));
}

void tcp_rtt_sample(struct tcb *t, uint32_t r)
{
	if (r > TCP_RTO_MAX_MS * 1000u)
		return;
	if (!t->srtt_us8) {
		t->srtt_us8 = r * 8 + 1; /* +1: a 0 µs first sample is still a sample */
		t->rttvar_us4 = r * 2;
	} else {
		int32_t delta = (int32_t)r - (int32_t)(t->srtt_us8 >> 3);
		t->srtt_us8 = (uint32_t)((int32_t)t->srtt_us8 + delta);
		int32_t ad = delta < 0 ? -delta : delta;
		t->rttvar_us4 = (uint32_t)((int32_t)t->rttvar_us4 + ad - (int32_t)(t->rttvar_us4 >> 2));
	}
	/* RTO = SRTT + max(4 RTTVAR, the minimum): see TCP_RTO_MIN_MS. */
	uint32_t var = t->rttvar_us4 > TCP_RTO_MIN_MS * 1000u ? t->rttvar_us4 : TCP_RTO_MIN_MS * 1000u;
	uint32_t rto = ((t->srtt_us8 >> 3) + var + 999) / 1000;
	t->rto_ms = rto > TCP_RTO_MAX_MS ? TCP_RTO_MAX_MS : rto;
}

/* ---- the scoreboard ---- */

void tcp_mark_lost(struct tcb *t, struct rte_mbuf *m)
{
	struct seg *sg = seg_of(m);
	uint32_t n = seg_seqlen(sg);
	if (sg->flags & SEG_SACKED)
		return;
	if (sg->flags & SEG_RETRANS) {
		/* Its retransmission is lost too: it goes once more. */
		t->retrans_bytes -= n;
		sg->flags &= (uint8_t)~SEG_RETRANS;
	} else if (sg->flags & SEG_LOST) {
		return; /* already waiting to go again */
	}
	if (!(sg->flags & SEG_LOST)) {
		sg->flags |= SEG_LOST;
		t->lost_bytes += n;
	}
	if (!t->snd_resend || seq_lt(sg->seq, seg_of(t->snd_resend)->seq))
		t->snd_resend = m;
}

static void mark_sacked(struct tcb *t, struct seg *sg)
{
	uint32_t n = seg_seqlen(sg);
	if (sg->flags & SEG_LOST)
		t->lost_bytes -= n;
	if (sg->flags & SEG_RETRANS)
		t->retrans_bytes -= n;
	sg->flags = (uint8_t)((sg->flags & ~(SEG_LOST | SEG_RETRANS)) | SEG_SACKED);
	t->sacked_bytes += n;
	t->sacked_segs++;
}

/* RFC 8985 steps 1-3 for one newly delivered (ACKed or SACKed) segment. */
static void rack_delivered(struct tcb *t, const struct seg *sg, uint32_t now, struct ack_info *a)
{
	uint32_t end = seg_end(sg), rtt = now - sg->xmit_us;
	if (!(sg->flags & SEG_EVER_RETRANS)) {
		if (!a->rtt_ok || sent_after(sg->xmit_us, 0, a->rtt_xmit_us, 0)) {
			a->rtt_ok = 1;
			a->rtt_us = rtt;
			a->rtt_xmit_us = sg->xmit_us;
		}
		if (seq_lt(end, t->rack_fack))
			t->reordering_seen = 1; /* delivered below what was delivered before */
	}
	if (seq_gt(end, t->rack_fack))
		t->rack_fack = end;
	/* A retransmitted segment delivered sooner than any round trip can take was
	 * delivered by its original: no sample (RFC 8985 step 1). */
	if ((sg->flags & SEG_EVER_RETRANS) && t->min_rtt_us && rtt < t->min_rtt_us)
		return;
	if (!t->rack_valid || sent_after(sg->xmit_us, end, t->rack_xmit_us, t->rack_end_seq)) {
		t->rack_xmit_us = sg->xmit_us;
		t->rack_end_seq = end;
		t->rack_rtt_us = rtt;
		t->rack_valid = 1;
	}
}

static void min_rtt_update(struct stack *s, struct tcb *t, uint32_t rtt)
{
	uint32_t now_s = (uint32_t)(s->c->now_ms / 1000u);
	if (!t->min_rtt_us || rtt <= t->min_rtt_us || now_s - t->min_rtt_s > TCP_MIN_RTT_WIN_S) {
		t->min_rtt_us = rtt ? rtt : 1;
		t->min_rtt_s = now_s;
	}
}

/* Frees what `ack` covers, delivering each segment to RACK; trims a segment it covers in
 * part. The layer above's bytes were copied or are held by reference: nothing to tell. */
static void drop_acked(struct tcb *t, uint32_t ack, uint32_t now, struct ack_info *a)
{
	while (t->snd_head) {
		struct rte_mbuf *m = t->snd_head;
		struct seg *sg = seg_of(m);
		uint32_t n = seg_seqlen(sg);
		if (seq_le(sg->seq + n, ack)) {
			if (sg->flags & SEG_SACKED) {
				t->sacked_bytes -= n;
				t->sacked_segs--;
			} else {
				rack_delivered(t, sg, now, a);
			}
			if (sg->flags & SEG_LOST)
				t->lost_bytes -= n;
			if (sg->flags & SEG_RETRANS)
				t->retrans_bytes -= n;
			t->snd_head = sg->link;
			if (t->snd_resend == m)
				t->snd_resend = sg->link;
			if (!t->snd_head)
				t->snd_tail = NULL;
			rte_pktmbuf_free(m);
			continue;
		}
		if (seq_gt(ack, sg->seq)) {
			/* Part of the segment: only its record moves; the buffer may still be in
			 * the port's hands and is never touched while it is. */
			uint32_t d = ack - sg->seq;
			if (sg->flags & SEG_SACKED)
				t->sacked_bytes -= d;
			if (sg->flags & SEG_LOST)
				t->lost_bytes -= d;
			if (sg->flags & SEG_RETRANS)
				t->retrans_bytes -= d;
			sg->off = (uint16_t)(sg->off + d);
			sg->len = (uint16_t)(sg->len - d);
			sg->seq = ack;
		}
		break;
	}
}

/* Marks what the SACK blocks cover (after the cumulative ACK was applied). Returns 1
 * when the first block was a D-SACK (RFC 2883: data received twice). */
static void sack_blocks(struct stack *s, struct tcb *t, const struct tcp_opts *o, uint32_t now,
			struct ack_info *a)
{
	unsigned first = 0;
	uint32_t l0 = o->sack[0][0], r0 = o->sack[0][1];
	if (seq_le(r0, t->snd_una) ||
	    (o->nsack > 1 && seq_ge(l0, o->sack[1][0]) && seq_le(r0, o->sack[1][1]))) {
		a->dsack = 1;
		a->dsack_left = l0;
		a->dsack_right = r0;
		stack_count(s, SC_tcp_dsacks);
		first = 1;
	}
	uint32_t bl[TCP_MAX_SACKS][2];
	unsigned nb = 0;
	uint32_t hi = t->snd_una;
	for (unsigned i = first; i < o->nsack; i++) {
		uint32_t l = o->sack[i][0], r = o->sack[i][1];
		/* Blocks must lie within what is outstanding (RFC 2018 has no other use). */
		if (!seq_lt(l, r) || !seq_gt(r, t->snd_una) || seq_gt(r, t->snd_max) ||
		    seq_lt(l, t->snd_una))
			continue;
		bl[nb][0] = l;
		bl[nb][1] = r;
		nb++;
		if (seq_gt(r, hi))
			hi = r;
	}
	if (!nb)
		return;
	for (struct rte_mbuf *m = t->snd_head; m; m = seg_of(m)->link) {
		struct seg *sg = seg_of(m);
		if (seq_ge(sg->seq, hi))
			break;
		if (sg->flags & SEG_SACKED)
			continue;
		uint32_t end = seg_end(sg);
		for (unsigned i = 0; i < nb; i++)
			if (seq_ge(sg->seq, bl[i][0]) && seq_le(end, bl[i][1])) {
				mark_sacked(t, sg);
				rack_delivered(t, sg, now, a);
				break;
			}
	}
}

/* RFC 8985 6.2 step 4: the reordering window. */
static uint32_t reo_wnd(const struct tcb *t)
{
	if (!t->reordering_seen && (t->ca_state != CA_OPEN || t->sacked_segs >= TCP_DUPTHRESH))
		return 0;
	uint32_t w = t->reo_wnd_mult * (t->min_rtt_us / 4);
	uint32_t srtt = t->srtt_us8 >> 3;
	return w < srtt ? w : srtt;
}

static void reo_wnd_dsack(struct tcb *t, int dsack)
{
	if (t->dsack_round_on && seq_ge(t->snd_una, t->dsack_round))
		t->dsack_round_on = 0;
	if (dsack && !t->dsack_round_on) {
		/* A retransmission was needless: reordering a wider window would have waited for.
		 * Widen it once per round trip that sees one. */
		t->dsack_round_on = 1;
		t->dsack_round = t->snd_max;
		if (t->reo_wnd_mult < TCP_REO_WND_MULT_MAX)
			t->reo_wnd_mult++;
		t->reo_wnd_persist = TCP_REO_WND_PERSIST;
	}
}

/* RFC 8985 6.2 step 5: every segment sent before the last delivered one, by more than the
 * reordering window, is lost. Returns µs until the next one would be (0: none waits). */
static uint32_t rack_detect_loss(struct stack *s, struct tcb *t)
{
	if (!t->rack_valid)
		return 0;
	uint32_t now = tcp_now_us(s), reo = reo_wnd(t), wait = 0;
	for (struct rte_mbuf *m = t->snd_head; m; m = seg_of(m)->link) {
		struct seg *sg = seg_of(m);
		if (sg->flags & SEG_SACKED)
			continue;
		if ((sg->flags & (SEG_LOST | SEG_RETRANS)) == SEG_LOST)
			continue; /* lost and not sent again yet */
		if (!sent_after(t->rack_xmit_us, t->rack_end_seq, sg->xmit_us, seg_end(sg)))
			continue;
		int32_t remaining = (int32_t)(sg->xmit_us + t->rack_rtt_us + reo - now);
		if (remaining <= 0) {
			tcp_mark_lost(t, m);
			stack_count(s, SC_tcp_rack_lost);
		} else if ((uint32_t)remaining > wait) {
			wait = (uint32_t)remaining;
		}
	}
	return wait;
}

/* Fast recovery: RFC 6675 with RACK's losses, or RFC 6582 for peers without SACK. */
static void enter_recovery(struct stack *s, struct tcb *t, uint32_t flight)
{
	t->ca_state = CA_RECOVERY;
	t->newreno = !t->sack_ok;
	t->recover = t->snd_max;
	t->ssthresh = flight / 2 > 2u * t->mss ? flight / 2 : 2u * t->mss;
	t->cwnd = t->ssthresh;
	t->rexmit_now = 1; /* RFC 6675 (4.3), 6582: the first lost segment at once, whatever pipe */
	stack_count(s, t->sack_ok ? SC_tcp_recoveries_sack : SC_tcp_recoveries_newreno);
	if (t->timer_kind == TK_PTO)
		t->rto_at = 0; /* no probes in recovery: the retransmission timer again */
}

static void exit_recovery(struct tcb *t)
{
	if (t->ca_state == CA_RECOVERY && t->newreno) {
		/* RFC 6582 3.2 step 3, option (1). */
		uint32_t flight = t->snd_max - t->snd_una;
		uint32_t w = (flight > t->mss ? flight : t->mss) + t->mss;
		t->cwnd = w < t->ssthresh ? w : t->ssthresh;
	}
	t->ca_state = CA_OPEN;
	t->dupacks = 0;
	t->rexmit_now = 0;
	if (!t->sack_ok)
		t->sacked_bytes = 0;
	if (t->reo_wnd_persist && --t->reo_wnd_persist == 0)
		t->reo_wnd_mult = 1;
}

/* A wait for reordering: at the turn's end while short (the timers tick in ms), else as
 * the connection's timer. */
static void rack_schedule(struct stack *s, struct tcb *t, uint32_t wait)
{
	if (!wait) {
		t->rack_wait_us = 0;
		return;
	}
	t->rack_wait_us = (tcp_now_us(s) + wait) | 1u; /* never 0 */
	if (wait >= 1000) {
		t->rto_at = s->c->now_ms + (wait + 999) / 1000;
		t->timer_kind = TK_REO;
	} else {
		tcb_want_flush(s, t);
	}
}

void tcp_rack_timeout(struct stack *s, struct tcb *t)
{
	if (!t->rack_wait_us || (int32_t)(tcp_now_us(s) - t->rack_wait_us) < 0) {
		if (t->rack_wait_us)
			tcb_want_flush(s, t); /* not yet: look again next turn */
		return;
	}
	t->rack_wait_us = 0;
	uint32_t flight = t->snd_max - t->snd_una;
	rack_schedule(s, t, rack_detect_loss(s, t));
	if (t->lost_bytes && t->ca_state == CA_OPEN)
		enter_recovery(s, t, flight);
	if (t->snd_resend)
		tcb_want_flush(s, t);
}

/* ---- NewReno, for peers without SACK ---- */

static void newreno_ack(struct stack *s, struct tcb *t, uint32_t acked, int dup, uint32_t flight)
{
	if (acked) {
		if (t->ca_state == CA_RECOVERY && seq_lt(t->snd_una, t->recover)) {
			/* Partial ACK (RFC 6582 3.2 step 4): the next hole goes at once. */
			t->sacked_bytes = t->sacked_bytes > acked ? t->sacked_bytes - acked : 0;
			if (t->snd_head) {
				tcp_mark_lost(t, t->snd_head);
				t->rexmit_now = 1;
			}
		} else if (t->ca_state == CA_OPEN) {
			t->dupacks = 0;
			t->sacked_bytes = 0;
		}
		return;
	}
	if (!dup || t->ca_state == CA_LOSS || !t->snd_head)
		return;
	if (t->dupacks < UINT8_MAX)
		t->dupacks++;
	/* Each duplicate ACK is a segment that left the network: as a SACK it lets one more
	 * out (limited transmit before the third, RFC 3042; window inflation after it). The
	 * first segment stays counted: it is the one presumed lost. */
	uint32_t cap = flight - seg_seqlen(seg_of(t->snd_head));
	t->sacked_bytes += t->mss;
	if (t->sacked_bytes > cap)
		t->sacked_bytes = cap;
	/* RFC 6582 4.1: a fast retransmit only for ACKs past the last recovery. */
	if (t->ca_state == CA_OPEN && t->dupacks == TCP_DUPTHRESH && seq_ge(t->snd_una, t->recover)) {
		enter_recovery(s, t, flight);
		tcp_mark_lost(t, t->snd_head);
	}
}

/* ---- loss probes (RFC 8985 7) ---- */

int tcp_pto_allowed(const struct tcb *t)
{
	return t->sack_ok && t->ca_state == CA_OPEN && !t->sacked_segs && !t->tlp_out &&
	       t->snd_head && (t->state == TS_ESTABLISHED || t->state == TS_CLOSE_WAIT);
}

uint32_t tcp_pto_ms(const struct tcb *t)
{
	if (!t->srtt_us8)
		return TCP_PTO_NO_RTT_MS < t->rto_ms ? TCP_PTO_NO_RTT_MS : t->rto_ms;
	uint32_t us = (t->srtt_us8 >> 3) * 2;
	us += (t->snd_head == t->snd_tail ? TCP_WCDELACK_MS : TCP_PTO_FLOOR_MS) * 1000u;
	uint32_t ms = (us + 999) / 1000;
	return ms < t->rto_ms ? ms : t->rto_ms;
}

/* RFC 8985 7.4: whether the probe's episode is over, and whether it repaired a loss. */
static void tlp_ack(struct stack *s, struct tcb *t, uint32_t ack, const struct ack_info *a)
{
	if (!t->tlp_out || seq_lt(ack, t->tlp_end_seq))
		return;
	if (!t->tlp_retrans || (a->dsack && a->dsack_right == t->tlp_end_seq)) {
		t->tlp_out = 0; /* new data delivered, or the probe was a copy of what arrived */
		return;
	}
	if (seq_gt(ack, t->tlp_end_seq)) {
		/* The probe repaired a loss: the congestion response a fast recovery would
		 * have made, once. */
		t->tlp_out = 0;
		t->ssthresh = t->cwnd / 2 > 2u * t->mss ? t->cwnd / 2 : 2u * t->mss;
		t->cwnd = t->ssthresh;
		stack_count(s, SC_tcp_tlp_repairs);
	}
}

void tcp_rto_mark_all(struct stack *s, struct tcb *t)
{
	(void)s;
	int reneg = t->backoff > 0; /* a second expiry in a row: forget the SACKs */
	t->retrans_bytes = 0;
	if (!t->sack_ok || reneg) {
		t->sacked_bytes = 0;
		t->sacked_segs = 0;
	}
	t->lost_bytes = 0;
	for (struct rte_mbuf *m = t->snd_head; m; m = seg_of(m)->link) {
		struct seg *sg = seg_of(m);
		if (reneg)
			sg->flags &= (uint8_t)~SEG_SACKED;
		sg->flags &= (uint8_t)~(SEG_RETRANS | SEG_LOST);
		if (!(sg->flags & SEG_SACKED)) {
			sg->flags |= SEG_LOST;
			t->lost_bytes += seg_seqlen(sg);
		}
	}
	t->snd_resend = t->snd_head;
	t->rexmit_now = 0;
	t->tlp_out = 0;
	t->rack_wait_us = 0;
}

/* The timeout was spurious: the segments were delayed (a late ACK), not lost. Undoes its
 * window reduction, as Linux does, and takes back the losses it marked; the copies
 * already resent stay counted in flight. */
static void undo_rto(struct stack *s, struct tcb *t)
{
	stack_count(s, SC_tcp_spurious_rtos);
	if (t->cwnd < t->prior_cwnd)
		t->cwnd = t->prior_cwnd;
	if (t->ssthresh < t->prior_ssthresh)
		t->ssthresh = t->prior_ssthresh;
	t->ca_state = CA_OPEN;
	t->backoff = 0;
	for (struct rte_mbuf *m = t->snd_head; m; m = seg_of(m)->link) {
		struct seg *sg = seg_of(m);
		if (sg->flags & SEG_LOST) {
			sg->flags &= (uint8_t)~SEG_LOST;
			t->lost_bytes -= seg_seqlen(sg);
		}
	}
	t->snd_resend = NULL;
}

/* ---- an ACK ---- */

void tcp_ack_received(struct stack *s, struct tcb *t, uint32_t ack, const struct tcp_opts *o,
		      int dup)
{
	uint32_t now = tcp_now_us(s);
	uint32_t flight = t->snd_max - t->snd_una;
	uint32_t acked = ack - t->snd_una;
	struct ack_info a = { 0 };
	/* RFC 3522: the first ACK after a timeout echoes a timestamp older than the
	 * retransmission's, so it answers the original: the timeout was spurious. */
	if (acked && t->ca_state == CA_LOSS && t->backoff == 1 && t->ts_ok && o->ts &&
	    seq_lt(o->tsecr, t->rto_tsval))
		undo_rto(s, t);
	if (acked) {
		drop_acked(t, ack, now, &a);
		t->snd_una = ack;
		t->backoff = 0;
	}
	if (t->sack_ok && o->nsack)
		sack_blocks(s, t, o, now, &a);
	if (a.rtt_ok)
		tcp_rtt_sample(t, a.rtt_us);
	if (t->rack_valid && (acked || a.rtt_ok))
		min_rtt_update(s, t, t->rack_rtt_us);
	if (t->sack_ok) {
		reo_wnd_dsack(t, a.dsack);
		/* Outside recovery with nothing SACKed nor resent, everything outstanding was
		 * sent after what was just delivered: nothing to look at. */
		if (t->sacked_segs || t->ca_state != CA_OPEN || t->retrans_bytes || t->lost_bytes)
			rack_schedule(s, t, rack_detect_loss(s, t));
		if (t->lost_bytes && t->ca_state == CA_OPEN)
			enter_recovery(s, t, flight);
	} else {
		newreno_ack(s, t, acked, dup, flight);
	}
	if (t->ca_state != CA_OPEN && seq_ge(t->snd_una, t->recover) && (acked || !t->snd_head))
		exit_recovery(t);
	if (acked && t->ca_state != CA_RECOVERY) {
		/* RFC 5681: slow start (L = 1 SMSS), then congestion avoidance. */
		if (t->cwnd < t->ssthresh)
			t->cwnd += acked < t->mss ? acked : t->mss;
		else
			t->cwnd += (uint32_t)((uint64_t)t->mss * t->mss / t->cwnd) ?: 1u;
	}
	tlp_ack(s, t, ack, &a);
	if (acked) {
		if (t->snd_una == t->snd_max) {
			t->rto_at = 0;
			t->rack_wait_us = 0;
		} else if (!(t->timer_kind == TK_REO && t->rack_wait_us)) {
			tcp_arm_timer(s, t, 1);
		}
	}
	if (t->want_output || t->snd_resend || t->close_req)
		tcb_want_flush(s, t);
}
