/* Ethernet output and ARP: replies for our address, a per-core neighbour cache with
 * timeouts (learned on every core: ARP frames are copied to the others), resolution with
 * frames held until their neighbour answers, and the gratuitous announcement at start. */
#include "stack_int.h"
#include "log.h"

#include <rte_arp.h>
#include <rte_ring.h>
#include <string.h>

#define ARP_REACHABLE_MS 60000 /* then used while a refresh is asked for */
#define ARP_RETRY_MS 1000

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static unsigned arp_slot(uint32_t ip) { return (rte_be_to_cpu_32(ip) * 2654435761u) >> 24; }

static void eth_send(struct stack *s, struct rte_mbuf *m, const uint8_t *dst, uint16_t type);

/* Sends (mac) or drops (NULL) the frames held for `hop`; the others keep their order. */
static void held_release(struct stack *s, uint32_t hop, const uint8_t *mac)
{
	unsigned k = 0;
	for (unsigned i = 0; i < s->nheld; i++) {
		struct arp_held h = s->held[i];
		if (h.hop != hop) {
			s->held[k++] = h;
		} else if (mac) {
			eth_send(s, h.m, mac, RTE_ETHER_TYPE_IPV4);
		} else {
			stack_count(s, SC_drop_arp_unresolved);
			rte_pktmbuf_free(h.m);
		}
	}
	s->nheld = k;
}

static struct arp_entry *arp_find(struct stack *s, uint32_t ip, int create)
{
	unsigned h = arp_slot(ip) % ARP_SLOTS;
	for (unsigned i = 0; i < 8; i++) {
		struct arp_entry *e = &s->arp[(h + i) % ARP_SLOTS];
		if (e->ip == ip)
			return e;
		if (!e->ip && create) {
			memset(e, 0, sizeof(*e));
			e->ip = ip;
			return e;
		}
	}
	if (!create)
		return NULL;
	/* Probe run full: the home slot gives way. */
	struct arp_entry *e = &s->arp[h];
	if (!e->resolved)
		held_release(s, e->ip, NULL); /* its frames would wait for nothing */
	memset(e, 0, sizeof(*e));
	e->ip = ip;
	return e;
}

static int on_link(const struct stack *s, uint32_t ip)
{
	return (ip & s->env->netmask) == (s->env->ipv4 & s->env->netmask);
}

static void eth_send(struct stack *s, struct rte_mbuf *m, const uint8_t *dst, uint16_t type)
{
	struct rte_ether_hdr *eh = (struct rte_ether_hdr *)rte_pktmbuf_prepend(m, sizeof(*eh));
	DURO_ASSERT(eh);
	memcpy(eh->dst_addr.addr_bytes, dst, 6);
	memcpy(eh->src_addr.addr_bytes, s->env->mac, 6);
	eh->ether_type = rte_cpu_to_be_16(type);
	s->ctr[SC_tx_packets]++;
	s->ctr[SC_tx_bytes] += rte_pktmbuf_pkt_len(m);
	s->env->tx(s->c, m);
}

static void arp_send(struct stack *s, uint16_t op, const uint8_t *tha, uint32_t tip,
		     const uint8_t *eth_dst)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(s->env->pool);
	if (!m) {
		stack_count(s, SC_drop_no_mbuf);
		return;
	}
	struct rte_arp_hdr *a = (struct rte_arp_hdr *)rte_pktmbuf_append(m, sizeof(*a));
	DURO_ASSERT(a);
	a->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	a->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	a->arp_hlen = 6;
	a->arp_plen = 4;
	a->arp_opcode = rte_cpu_to_be_16(op);
	memcpy(a->arp_data.arp_sha.addr_bytes, s->env->mac, 6);
	a->arp_data.arp_sip = s->env->ipv4;
	memcpy(a->arp_data.arp_tha.addr_bytes, tha, 6);
	a->arp_data.arp_tip = tip;
	eth_send(s, m, eth_dst, RTE_ETHER_TYPE_ARP);
}

static void arp_request(struct stack *s, struct arp_entry *e)
{
	static const uint8_t zero[6];
	e->asked_ms = s->c->now_ms;
	stack_count(s, SC_arp_requests_out);
	arp_send(s, RTE_ARP_OP_REQUEST, zero, e->ip, bcast);
}

void stack_announce(struct core *c)
{
	struct stack *s = stack_of(c);
	static const uint8_t zero[6];
	/* Gratuitous ARP (RFC 5227 3): neighbours with a stale entry for our address learn. */
	arp_send(s, RTE_ARP_OP_REQUEST, zero, s->env->ipv4, bcast);
}

static void arp_learn(struct stack *s, uint32_t ip, const uint8_t *mac, int create)
{
	if (!ip || !on_link(s, ip) || ip == s->env->ipv4)
		return;
	if (mac[0] & 1)
		return; /* a multicast sender address is a lie */
	struct arp_entry *e = arp_find(s, ip, create);
	if (!e)
		return;
	memcpy(e->mac, mac, 6);
	e->resolved = 1;
	e->expires_ms = s->c->now_ms + ARP_REACHABLE_MS;
	if (s->nheld)
		held_release(s, ip, e->mac);
}

void arp_input(struct stack *s, struct rte_mbuf *m, int steered)
{
	if (rte_pktmbuf_data_len(m) < sizeof(struct rte_ether_hdr) + sizeof(struct rte_arp_hdr)) {
		stack_count(s, SC_drop_truncated);
		rte_pktmbuf_free(m);
		return;
	}
	struct rte_arp_hdr *a = rte_pktmbuf_mtod_offset(m, struct rte_arp_hdr *,
							sizeof(struct rte_ether_hdr));
	uint16_t op = rte_be_to_cpu_16(a->arp_opcode);
	if (a->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
	    a->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) || a->arp_hlen != 6 ||
	    a->arp_plen != 4 || (op != RTE_ARP_OP_REQUEST && op != RTE_ARP_OP_REPLY)) {
		stack_count(s, SC_drop_arp_bad);
		rte_pktmbuf_free(m);
		return;
	}
	uint32_t sip = a->arp_data.arp_sip, tip = a->arp_data.arp_tip;
	uint8_t sha[6];
	memcpy(sha, a->arp_data.arp_sha.addr_bytes, 6);
	/* RFC 826's merge: refresh a neighbour we know; add one that is talking to us. */
	arp_learn(s, sip, sha, tip == s->env->ipv4);
	if (!steered && s->env->ncores > 1) {
		/* Every core keeps its own cache: the others learn from a copy. */
		for (unsigned i = 0; i < s->env->ncores; i++) {
			struct rte_ring *r = s->env->steer[s->c->index][i];
			if (i == s->c->index || !r)
				continue;
			struct rte_mbuf *copy = rte_pktmbuf_copy(m, s->env->pool, 0, UINT32_MAX);
			if (!copy)
				continue;
			if (rte_ring_enqueue(r, copy) < 0) {
				stack_count(s, SC_drop_steer_full);
				rte_pktmbuf_free(copy);
			} else {
				stack_count(s, SC_steered_out);
			}
		}
	}
	if (op == RTE_ARP_OP_REQUEST && tip == s->env->ipv4 && sip != tip && !steered) {
		stack_count(s, SC_arp_requests_in);
		stack_count(s, SC_arp_replies_out);
		rte_pktmbuf_free(m);
		arp_send(s, RTE_ARP_OP_REPLY, sha, sip, sha);
		return;
	}
	rte_pktmbuf_free(m);
}

void eth_output_ipv4(struct stack *s, struct rte_mbuf *m, uint32_t dst, const uint8_t *mac)
{
	if (mac) {
		eth_send(s, m, mac, RTE_ETHER_TYPE_IPV4);
		return;
	}
	uint32_t hop = on_link(s, dst) ? dst : s->env->gateway;
	if (!hop) {
		stack_count(s, SC_drop_arp_unresolved); /* off-link and no gateway */
		rte_pktmbuf_free(m);
		return;
	}
	struct arp_entry *e = arp_find(s, hop, 1);
	uint64_t now = s->c->now_ms;
	if (e->resolved) {
		if (now >= e->expires_ms && now >= e->asked_ms + ARP_RETRY_MS)
			arp_request(s, e); /* stale: used while it is confirmed */
		eth_send(s, m, e->mac, RTE_ETHER_TYPE_IPV4);
		return;
	}
	if (s->nheld == ARP_HELD_MAX) {
		/* The oldest gives way: a dial sends its SYN again, TCP its segment. */
		stack_count(s, SC_drop_arp_unresolved);
		rte_pktmbuf_free(s->held[0].m);
		memmove(s->held, s->held + 1, (ARP_HELD_MAX - 1) * sizeof(s->held[0]));
		s->nheld--;
	}
	s->held[s->nheld].hop = hop;
	s->held[s->nheld].m = m;
	s->nheld++;
	if (now >= e->asked_ms + ARP_RETRY_MS)
		arp_request(s, e);
}

int arp_next_hop_known(struct stack *s, uint32_t dst)
{
	uint32_t hop = on_link(s, dst) ? dst : s->env->gateway;
	if (!hop)
		return -1;
	const struct arp_entry *e = arp_find(s, hop, 0);
	return e && e->resolved;
}

void arp_fini(struct stack *s)
{
	for (unsigned i = 0; i < s->nheld; i++)
		rte_pktmbuf_free(s->held[i].m);
	s->nheld = 0;
}
