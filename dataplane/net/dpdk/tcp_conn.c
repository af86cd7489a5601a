/* TCP connections on one core: the table by 4-tuple, states and their gauges, the one timer
 * each connection carries, compact TIME_WAIT records, ISNs (RFC 6528) and SYN cookies. */
#include "tcp_int.h"
#include "core.h"
#include "log.h"
#include "siphash.h"

#include <rte_thash.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const uint16_t syncookie_mss[4] = { 536, 1220, 1440, 1460 };

static uint64_t mix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

static uint64_t tuple_key(uint32_t raddr, uint16_t rport, uint16_t lport)
{
	return ((uint64_t)raddr << 32) | ((uint64_t)rport << 16) | lport;
}

unsigned stack_flow_core(const struct stack_env *env, uint32_t raddr, uint16_t rport,
			 uint16_t lport)
{
	if (env->ncores <= 1)
		return 0;
	if (env->rss) {
		/* The port's own choice, so nothing needs handing over. */
		struct rte_ipv4_tuple tuple = {
			.src_addr = rte_be_to_cpu_32(raddr), .dst_addr = rte_be_to_cpu_32(env->ipv4),
			.sport = rte_be_to_cpu_16(rport), .dport = rte_be_to_cpu_16(lport),
		};
		uint32_t h = rte_softrss((uint32_t *)&tuple, env->rss_words, env->rss_key);
		return env->reta[h % env->reta_size];
	}
	/* A fixed function where the driver's hash is unknown: af_packet's fanout hash is
	 * the kernel's, seeded at boot, which nothing in user space can compute. */
	return (unsigned)(mix64(tuple_key(raddr, rport, lport) ^ 0x5bd1e995u) % env->ncores);
}

static unsigned bucket(const struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport)
{
	return (unsigned)mix64(tuple_key(raddr, rport, lport)) & s->hash_mask;
}

int tcp_listening(const struct stack *s, uint16_t lport)
{
	for (unsigned i = 0; i < s->env->nports; i++)
		if (s->env->ports[i] == lport)
			return (int)i;
	return -1;
}

void tcp_free_chain(struct rte_mbuf **head)
{
	struct rte_mbuf *m = *head;
	while (m) {
		struct rte_mbuf *next = seg_of(m)->link;
		rte_pktmbuf_free(m);
		m = next;
	}
	*head = NULL;
}

/* A per-connection timestamp offset (RFC 7323 5.4), the same whenever it is recomputed:
 * a SYN cookie's connection finds the offset its SYN-ACK used. */
uint32_t tcp_ts_offset(const struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport)
{
	uint8_t key[12];
	memcpy(key, &raddr, 4);
	memcpy(key + 4, &rport, 2);
	memcpy(key + 6, &lport, 2);
	memcpy(key + 8, "tsof", 4);
	return (uint32_t)siphash64(s->env->secret, key, sizeof(key));
}

/* ---- table ---- */

struct tcb *tcb_lookup(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport)
{
	for (struct tcb *t = s->tcbs[bucket(s, raddr, rport, lport)]; t; t = t->hash_next)
		if (t->raddr == raddr && t->rport == rport && t->lport == lport)
			return t;
	return NULL;
}

static void tcb_unhash(struct stack *s, struct tcb *t)
{
	struct tcb **pp = &s->tcbs[bucket(s, t->raddr, t->rport, t->lport)];
	while (*pp && *pp != t)
		pp = &(*pp)->hash_next;
	if (*pp)
		*pp = t->hash_next;
	t->hash_next = NULL;
}

static const enum stack_counter state_gauge[] = {
	[TS_SYN_RECEIVED] = SC_conns_syn_received, [TS_ESTABLISHED] = SC_conns_established,
	[TS_CLOSE_WAIT] = SC_conns_close_wait,     [TS_FIN_WAIT_1] = SC_conns_fin_wait_1,
	[TS_FIN_WAIT_2] = SC_conns_fin_wait_2,     [TS_CLOSING] = SC_conns_closing,
	[TS_LAST_ACK] = SC_conns_last_ack,         [TS_SYN_SENT] = SC_conns_syn_sent,
};

void tcb_set_state(struct stack *s, struct tcb *t, enum tcp_state st)
{
	if (t->state != TS_CLOSED && t->state != TS_TIME_WAIT)
		s->ctr[state_gauge[t->state]]--;
	if (t->state == TS_SYN_RECEIVED)
		s->embryonic--;
	t->state = (uint8_t)st;
	if (st != TS_CLOSED && st != TS_TIME_WAIT)
		s->ctr[state_gauge[st]]++;
	if (st == TS_SYN_RECEIVED)
		s->embryonic++;
}

struct tcb *tcb_create(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport,
		       const uint8_t *rmac)
{
	struct tcb *t = pool_get(&s->tcb_pool);
	if (!t)
		return NULL;
	memset(t, 0, sizeof(*t));
	t->raddr = raddr;
	t->rport = rport;
	t->lport = lport;
	memcpy(t->rmac, rmac, 6);
	t->rmac_ok = 1;
	t->pub.id = ++s->next_id;
	t->pub.core = (uint16_t)s->c->index;
	int li = tcp_listening(s, lport);
	t->pub.listener = (uint16_t)(li < 0 ? 0 : li);
	t->pub.ev = s->ev;
	t->rto_ms = TCP_RTO_INIT_MS;
	t->reo_wnd_mult = 1;
	t->mss = 536;
	list_init(&t->work_node);
	t->ts_offset = tcp_ts_offset(s, raddr, rport, lport);
	unsigned b = bucket(s, raddr, rport, lport);
	t->hash_next = s->tcbs[b];
	s->tcbs[b] = t;
	return t;
}

void tcb_want_flush(struct stack *s, struct tcb *t)
{
	if (t->on_list || t->state == TS_CLOSED)
		return;
	t->on_list = 1;
	list_add_tail(&s->flush, &t->work_node);
}

void tcb_close(struct stack *s, struct tcb *t, int err)
{
	if (t->on_list == 2)
		return; /* already on its way out */
	if (t->on_list == 1)
		list_del(&t->work_node);
	tcb_unhash(s, t);
	tcb_set_state(s, t, TS_CLOSED);
	tcp_free_chain(&t->snd_head);
	t->snd_tail = NULL;
	tcp_free_chain(&t->ooo);
	tcp_free_chain(&t->held_head);
	t->held_tail = NULL;
	t->held_bytes = t->ooo_bytes = 0;
	t->held_segs = t->ooo_segs = 0;
	timer_cancel(&t->timer);
	t->rto_at = t->dack_at = t->ka_at = t->end_at = 0;
	t->snd_resend = NULL;
	t->on_list = 2;
	t->err = err;
	list_add_tail(&s->reap, &t->work_node);
}

static void note_refused(struct stack *s, const char *why)
{
	stack_count(s, SC_tcp_connections_refused);
	s->net.refused++;
	if (s->c->now_ms >= s->refused_logged_ms + 1000) {
		s->refused_logged_ms = s->c->now_ms;
		log_warn("core %u: refusing connections: %s (%llu refused so far)", s->c->index, why,
			 (unsigned long long)s->net.refused);
	}
}

int tcb_accept(struct stack *s, struct tcb *t)
{
	if (t->dialing) {
		/* Our own dial: its events and user are set since stack_dial; the limit was
		 * checked there. */
		t->dialing = 0;
		stack_count(s, SC_tcp_active_established);
		s->net.dialed++;
		s->net.active++;
		if (!t->pub.ev->on_accept(s->c, &t->pub)) {
			t->pub.user = NULL; /* the dialer let it go: no on_closed */
			s->net.active--;
			return -1;
		}
		return 0;
	}
	if (s->accepting == STACK_NOT_YET) {
		stack_count(s, SC_tcp_connections_refused);
		return -1;
	}
	if (s->net.active >= s->cfg->max_conns_per_core) {
		note_refused(s, "connection table full (limits.max_connections_per_core)");
		return -1;
	}
	t->pub.ev = s->ev;
	s->net.accepted++;
	s->net.active++;
	t->pub.user = s->ev->on_accept(s->c, &t->pub);
	if (!t->pub.user) {
		s->net.active--;
		note_refused(s, "no memory for the connection's state");
		return -1;
	}
	return 0;
}

/* Reports closed connections and frees them: outside every call from the layer above. */
static void reap(struct stack *s)
{
	while (!list_empty(&s->reap)) {
		struct tcb *t = LIST_CONTAINER(s->reap.next, struct tcb, work_node);
		list_del(&t->work_node);
		if (t->dialing && !t->user_gone) {
			/* A dial that never became a connection: its failure, by reason. */
			t->dialing = 0;
			s->net.dial_failures++;
			stack_count(s, t->err == -ECONNREFUSED	 ? SC_tcp_dial_refused
				       : t->err == -ETIMEDOUT	 ? SC_tcp_dial_timeouts
				       : t->err == -EHOSTUNREACH ? SC_tcp_dial_unreachable
				       : t->err == -ECANCELED	 ? SC_tcp_dial_cancelled
								 : SC_tcp_dial_failed_other);
			t->pub.ev->on_dial_failed(s->c, t->pub.user, t->err ? t->err : -ECONNABORTED);
		} else if (t->pub.user && !t->user_gone) {
			t->user_gone = 1;
			t->pub.ev->on_closed(s->c, &t->pub, t->err);
			s->net.closed++;
			s->net.active--;
		}
		pool_put(&s->tcb_pool, t);
	}
}

/* ---- TIME_WAIT ---- */

struct tw *tw_lookup(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport)
{
	for (struct tw *w = s->tws[bucket(s, raddr, rport, lport)]; w; w = w->hash_next)
		if (w->raddr == raddr && w->rport == rport && w->lport == lport)
			return w;
	return NULL;
}

void tw_remove(struct stack *s, struct tw *w)
{
	struct tw **pp = &s->tws[bucket(s, w->raddr, w->rport, w->lport)];
	while (*pp && *pp != w)
		pp = &(*pp)->hash_next;
	if (*pp)
		*pp = w->hash_next;
	list_del(&w->age_node);
	pool_put(&s->tw_pool, w);
	s->tw_count--;
	s->ctr[SC_conns_time_wait] = s->tw_count;
}

void tcb_time_wait(struct stack *s, struct tcb *t)
{
	struct tw *w = pool_get(&s->tw_pool);
	if (!w && !list_empty(&s->tw_age)) {
		/* Table full: the oldest record gives way, as Linux's tw_buckets limit does. */
		tw_remove(s, LIST_CONTAINER(s->tw_age.next, struct tw, age_node));
		w = pool_get(&s->tw_pool);
	}
	if (w) {
		memset(w, 0, sizeof(*w));
		w->raddr = t->raddr;
		w->rport = t->rport;
		w->lport = t->lport;
		w->snd_max = t->snd_max;
		w->rcv_nxt = t->rcv_nxt;
		w->ts_recent = t->ts_recent;
		w->ts_offset = t->ts_offset;
		w->ts_ok = t->ts_ok;
		memcpy(w->rmac, t->rmac, 6);
		w->expires_ms = s->c->now_ms + TCP_TIME_WAIT_MS;
		unsigned b = bucket(s, w->raddr, w->rport, w->lport);
		w->hash_next = s->tws[b];
		s->tws[b] = w;
		list_add_tail(&s->tw_age, &w->age_node);
		s->tw_count++;
		s->ctr[SC_conns_time_wait] = s->tw_count;
	}
	tcb_close(s, t, 0);
}

static void tw_expire(struct stack *s)
{
	while (!list_empty(&s->tw_age)) {
		struct tw *w = LIST_CONTAINER(s->tw_age.next, struct tw, age_node);
		if (w->expires_ms > s->c->now_ms)
			break;
		tw_remove(s, w);
	}
}

/* ---- timers ---- */

static void tcb_timer_fire(struct core *c, struct timer *tm);

void tcb_timers_update(struct stack *s, struct tcb *t)
{
	uint64_t next = 0;
	const uint64_t at[] = { t->rto_at, t->dack_at, t->ka_at, t->end_at };
	for (unsigned i = 0; i < 4; i++)
		if (at[i] && (!next || at[i] < next))
			next = at[i];
	if (!next) {
		timer_cancel(&t->timer);
		return;
	}
	if (!timer_armed(&t->timer) || t->timer.expires_ms != next)
		timer_arm(s->c, &t->timer, next, tcb_timer_fire);
}

static void tcb_timer_fire(struct core *c, struct timer *tm)
{
	struct stack *s = stack_of(c);
	struct tcb *t = LIST_CONTAINER(tm, struct tcb, timer);
	uint64_t now = c->now_ms;
	if (t->end_at && now >= t->end_at) {
		/* Our FIN went out a linger ago and the peer has not finished closing: end it
		 * as a lingering kernel socket would, with a reset if our FIN is unanswered. */
		if (t->state != TS_FIN_WAIT_2)
			tcp_send_ctl(s, t, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG, t->snd_max);
		tcb_close(s, t, 0);
		return;
	}
	if (t->dack_at && now >= t->dack_at) {
		t->dack_at = 0;
		t->ack_now = 1;
		tcb_want_flush(s, t);
	}
	if (t->rto_at && now >= t->rto_at) {
		t->rto_at = 0;
		tcp_on_rto(s, t);
		if (t->state == TS_CLOSED)
			return;
	}
	if (t->ka_at && now >= t->ka_at) {
		if (t->ka_probes >= TCP_KEEPALIVE_PROBES) {
			stack_count(s, SC_tcp_keepalive_drops);
			tcp_send_ctl(s, t, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG, t->snd_max);
			tcb_close(s, t, -ETIMEDOUT);
			return;
		}
		/* A probe one below snd_una: the peer answers with an ACK (RFC 9293 3.8.4). */
		tcp_send_ctl(s, t, RTE_TCP_ACK_FLAG, t->snd_una - 1);
		t->ka_probes++;
		t->ka_at = now + TCP_KEEPALIVE_INTVL_MS;
	}
	tcb_timers_update(s, t);
}

/* ---- ISNs and SYN cookies ---- */

uint32_t tcp_isn(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport)
{
	/* RFC 6528: a 4 µs clock plus a keyed hash of the connection's identifiers. */
	uint8_t key[8];
	memcpy(key, &raddr, 4);
	memcpy(key + 4, &rport, 2);
	memcpy(key + 6, &lport, 2);
	return (uint32_t)siphash64(s->env->secret, key, sizeof(key)) +
	       (uint32_t)(s->c->now_ns / 4000u);
}

static uint32_t cookie_hash(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport,
			    uint32_t irs, uint32_t minute, unsigned mss_index)
{
	uint8_t key[20];
	memcpy(key, &raddr, 4);
	memcpy(key + 4, &rport, 2);
	memcpy(key + 6, &lport, 2);
	memcpy(key + 8, &irs, 4);
	memcpy(key + 12, &minute, 4);
	key[16] = (uint8_t)mss_index;
	key[17] = 'c';
	key[18] = 'k';
	key[19] = 0;
	return (uint32_t)siphash64(s->env->secret, key, sizeof(key)) & 0x1FFFFFFu;
}

/* 64-second periods: a cookie is good in its own period and the next. */
static uint32_t cookie_period(const struct stack *s) { return (uint32_t)(s->c->now_ms / 64000u); }

uint32_t syncookie_make(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport,
			uint32_t irs, unsigned mss_index)
{
	uint32_t p = cookie_period(s);
	return ((p & 0x1Fu) << 27) | ((uint32_t)mss_index << 25) |
	       cookie_hash(s, raddr, rport, lport, irs, p, mss_index);
}

int syncookie_check(struct stack *s, uint32_t raddr, uint16_t rport, uint16_t lport,
		    uint32_t irs, uint32_t cookie)
{
	uint32_t p = cookie_period(s);
	unsigned mss_index = (cookie >> 25) & 3u;
	for (uint32_t cand = p; cand + 1 >= p && cand <= p; cand--) {
		if ((cand & 0x1Fu) != cookie >> 27)
			continue;
		if (cookie_hash(s, raddr, rport, lport, irs, cand, mss_index) == (cookie & 0x1FFFFFFu))
			return (int)mss_index;
		if (cand == 0)
			break;
	}
	return -1;
}

/* ---- set-up and the end of a turn ---- */

int tcp_init(struct stack *s)
{
	unsigned buckets = 1024;
	while (buckets < s->cfg->max_conns_per_core && buckets < (1u << 20))
		buckets <<= 1;
	s->hash_mask = buckets - 1;
	s->tcbs = calloc(buckets, sizeof(*s->tcbs));
	s->tws = calloc(buckets, sizeof(*s->tws));
	if (!s->tcbs || !s->tws)
		return -ENOMEM;
	list_init(&s->flush);
	list_init(&s->reap);
	list_init(&s->tw_age);
	/* SYN_RECEIVED connections hold a TCB too: room for them beyond the open ones. */
	pool_init(&s->tcb_pool, "tcb", sizeof(struct tcb), 256,
		  s->cfg->max_conns_per_core + TCP_MAX_EMBRYONIC);
	pool_init(&s->tw_pool, "time_wait", sizeof(struct tw), 1024,
		  2u * s->cfg->max_conns_per_core + 1024u);
	return 0;
}

void tcp_fini(struct stack *s)
{
	if (s->tcbs) {
		for (unsigned b = 0; b <= s->hash_mask; b++)
			while (s->tcbs[b]) {
				/* The layers above are gone already: nobody to tell. */
				s->tcbs[b]->user_gone = 1;
				tcb_close(s, s->tcbs[b], -ECONNABORTED);
			}
		reap(s);
	}
	free(s->tcbs);
	free(s->tws);
	s->tcbs = NULL;
	s->tws = NULL;
	pool_destroy(&s->tcb_pool);
	pool_destroy(&s->tw_pool);
}

void tcp_flush(struct stack *s)
{
	/* Output may put a connection back on the list (a FIN after the last data): each
	 * connection goes once per turn, the rest waits for the next. */
	struct list_node batch;
	list_init(&batch);
	if (!list_empty(&s->flush)) {
		batch.next = s->flush.next;
		batch.prev = s->flush.prev;
		batch.next->prev = &batch;
		batch.prev->next = &batch;
		list_init(&s->flush);
	}
	/* Frames per turn are bounded: the port's receive ring fills while a turn sends (the
	 * peers' ACKs come back at once), and only the next turn's poll empties it. */
	uint64_t start = s->ctr[SC_tx_packets], budget_end = start + STACK_TX_TURN;
	while (!list_empty(&batch)) {
		if (s->ctr[SC_tx_packets] >= budget_end) {
			/* The rest goes first next turn, before connections queued since. */
			struct list_node *first = batch.next, *last = batch.prev;
			first->prev = &s->flush;
			last->next = s->flush.next;
			s->flush.next->prev = last;
			s->flush.next = first;
			break;
		}
		struct tcb *t = LIST_CONTAINER(batch.next, struct tcb, work_node);
		list_del(&t->work_node);
		t->on_list = 0;
		tcp_output(s, t);
	}
	s->heavy = s->ctr[SC_tx_packets] - start >= STACK_HEAVY_TURN;
	if (!list_empty(&s->flush))
		core_did_work(s->c); /* more for the next turn: do not sleep before it */
	reap(s);
	tw_expire(s);
}
