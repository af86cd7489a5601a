/* The stack's entry points: per-core set-up, a received frame's first checks and dispatch
 * by EtherType, the end-of-turn flush, and the backend operations on a connection. */
#include "stack_int.h"
#include "tcp_int.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define STACK_COUNTER_NAME(name) #name,
const char *const stack_counter_names[SC_COUNT] = { STACK_COUNTERS(STACK_COUNTER_NAME) };
#undef STACK_COUNTER_NAME

int stack_core_init(struct core *c, const struct stack_env *env, const struct net_config *cfg,
		    const struct net_events *ev)
{
	struct stack *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->env = env;
	s->cfg = cfg;
	s->ev = ev;
	s->c = c;
	s->accepting = STACK_NOT_YET;
	s->ip_id = (uint16_t)(c->index * 8191u);
	c->net = (struct net_core *)s;
	pool_init(&s->zc_pool, "zc_share", sizeof(struct zc_share), 256, 0);
	return tcp_init(s);
}

void stack_core_fini(struct core *c)
{
	struct stack *s = stack_of(c);
	if (!s)
		return;
	tcp_fini(s);
	arp_fini(s);
	/* Shares released by the last frees stay unreported: the layer above is gone. */
	s->released = NULL;
	pool_destroy(&s->zc_pool);
	free(s);
	c->net = NULL;
}

void stack_input(struct core *c, struct rte_mbuf *m, int steered)
{
	struct stack *s = stack_of(c);
	if (steered) {
		stack_count(s, SC_steered_in);
	} else {
		s->ctr[SC_rx_packets]++;
		s->ctr[SC_rx_bytes] += rte_pktmbuf_pkt_len(m);
	}
	if (m->nb_segs != 1) {
		/* Frames fit one buffer at our MTU; a chained one is oversized. */
		stack_count(s, SC_drop_multi_segment);
		rte_pktmbuf_free(m);
		return;
	}
	if (rte_pktmbuf_data_len(m) < sizeof(struct rte_ether_hdr)) {
		stack_count(s, SC_drop_truncated);
		rte_pktmbuf_free(m);
		return;
	}
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	uint16_t type = rte_be_to_cpu_16(eh->ether_type);
	int to_us = memcmp(eh->dst_addr.addr_bytes, s->env->mac, 6) == 0;
	int bcast = rte_is_broadcast_ether_addr(&eh->dst_addr);
	if (!to_us && !(bcast && type == RTE_ETHER_TYPE_ARP)) {
		stack_count(s, SC_drop_other_host);
		rte_pktmbuf_free(m);
		return;
	}
	if (type == RTE_ETHER_TYPE_ARP)
		arp_input(s, m, steered);
	else if (type == RTE_ETHER_TYPE_IPV4)
		ipv4_input(s, m, steered);
	else {
		stack_count(s, SC_drop_ether_type);
		rte_pktmbuf_free(m);
	}
}

/* Shares whose last attached mbuf went since the last turn: their holds end here, outside
 * any call of the layer above (the mbufs were freed inside the stack or the port). */
static void release_shares(struct stack *s)
{
	while (s->released) {
		struct zc_share *z = s->released;
		struct net_share *sh = z->share;
		s->released = z->next_released;
		if (sh->priv == z)
			sh->priv = NULL; /* else a newer record took over since */
		pool_put(&s->zc_pool, z);
		DURO_ASSERT(sh->holds > 0);
		if (--sh->holds == 0)
			sh->release(s->c, sh);
	}
}

void stack_flush(struct core *c)
{
	struct stack *s = stack_of(c);
	release_shares(s);
	tcp_flush(s);
}

void *stack_port(struct core *c) { return stack_of(c)->port; }
void stack_set_port(struct core *c, void *port) { stack_of(c)->port = port; }

uint64_t *stack_counters(struct core *c) { return stack_of(c)->ctr; }
const struct net_counters *stack_net_counters(struct core *c) { return &stack_of(c)->net; }

/* ---- backend operations (the layer above calls these, on the connection's core) ---- */

void stack_want_write(struct core *c, struct net_conn *conn)
{
	struct tcb *t = (struct tcb *)conn;
	if (t->state == TS_CLOSED || t->fin_sent)
		return;
	t->want_output = 1;
	tcb_want_flush(stack_of(c), t);
}

void stack_close(struct core *c, struct net_conn *conn, enum net_close_how how)
{
	struct stack *s = stack_of(c);
	struct tcb *t = (struct tcb *)conn;
	if (t->state == TS_CLOSED)
		return;
	if (how == NET_CLOSE_ABORT) {
		tcp_send_ctl(s, t, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG, t->snd_max);
		tcb_close(s, t, 0);
		return;
	}
	if (t->close_req)
		return;
	t->close_req = 1;
	t->want_output = 1; /* pull what is still queued, then the FIN */
	tcb_want_flush(s, t);
}

void stack_pause_read(struct core *c, struct net_conn *conn, int paused)
{
	struct tcb *t = (struct tcb *)conn;
	if (t->state == TS_CLOSED || t->paused == !!paused)
		return;
	t->paused = !!paused;
	if (!paused)
		tcp_resume_read(stack_of(c), t);
}

void stack_set_events(struct core *c, struct net_conn *conn, const struct net_events *ev)
{
	(void)c;
	conn->ev = ev;
}

int stack_start_accepting(struct core *c)
{
	stack_of(c)->accepting = STACK_ACCEPTING;
	return 0;
}

void stack_stop_accepting(struct core *c)
{
	struct stack *s = stack_of(c);
	if (s && s->accepting == STACK_ACCEPTING) {
		s->accepting = STACK_DRAINING;
		s->drain_end_ms = c->now_ms + STACK_DRAIN_MS;
	}
}

unsigned stack_listening(struct core *c)
{
	struct stack *s = stack_of(c);
	if (!s)
		return 0;
	return s->accepting == STACK_ACCEPTING ||
	       (s->accepting == STACK_DRAINING && c->now_ms < s->drain_end_ms);
}
