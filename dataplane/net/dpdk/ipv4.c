/* IPv4 input and output: header checks (version, lengths, checksum, addresses), fragments
 * dropped, ICMP echo answered in place, TCP handed to the core that owns its flow. */
#include "stack_int.h"
#include "tcp_int.h"

#include <rte_icmp.h>
#include <rte_ring.h>
#include <string.h>

#define STACK_IP_TTL 64

static void drop(struct stack *s, struct rte_mbuf *m, enum stack_counter why)
{
	stack_count(s, why);
	rte_pktmbuf_free(m);
}

static void icmp_input(struct stack *s, struct rte_mbuf *m, struct rte_ipv4_hdr *ip,
		       unsigned ihl, unsigned l4len)
{
	struct rte_icmp_hdr *ic = (struct rte_icmp_hdr *)((char *)ip + ihl);
	if (l4len < sizeof(*ic) || rte_raw_cksum(ic, l4len) != 0xffff) {
		drop(s, m, SC_drop_icmp_bad);
		return;
	}
	if (ic->icmp_type != RTE_IP_ICMP_ECHO_REQUEST || ic->icmp_code != 0) {
		rte_pktmbuf_free(m); /* errors and replies: nothing here asks for them */
		return;
	}
	/* The reply is the request turned around, in the same buffer. */
	ic->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
	ic->icmp_cksum = 0;
	ic->icmp_cksum = (uint16_t)~rte_raw_cksum(ic, l4len);
	ip->dst_addr = ip->src_addr;
	ip->src_addr = s->env->ipv4;
	ip->time_to_live = STACK_IP_TTL;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	uint8_t to[6];
	memcpy(to, eh->src_addr.addr_bytes, 6);
	rte_pktmbuf_adj(m, sizeof(*eh));
	stack_count(s, SC_icmp_echo_replies);
	eth_output_ipv4(s, m, ip->dst_addr, to);
}

static int tcp_cksum_ok(const struct stack *s, const struct rte_mbuf *m,
			const struct rte_ipv4_hdr *ip, const struct rte_tcp_hdr *th)
{
	uint64_t f = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
	if (s->env->rx_cksum_offload && f != RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN)
		return f == RTE_MBUF_F_RX_L4_CKSUM_GOOD;
	/* Summed over a segment with its checksum in place, a good one complements to 0. */
	return rte_ipv4_udptcp_cksum(ip, th) == 0;
}

static int bad_source(uint32_t src_be)
{
	uint32_t a = rte_be_to_cpu_32(src_be);
	return a == 0 || a == 0xffffffffu || (a >> 28) >= 0xe; /* multicast, class E */
}

void ipv4_input(struct stack *s, struct rte_mbuf *m, int steered)
{
	const unsigned l2 = sizeof(struct rte_ether_hdr);
	uint32_t avail = rte_pktmbuf_data_len(m);
	if (avail < l2 + sizeof(struct rte_ipv4_hdr)) {
		drop(s, m, SC_drop_truncated);
		return;
	}
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, l2);
	unsigned ihl = rte_ipv4_hdr_len(ip);
	if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(*ip) || l2 + ihl > avail) {
		drop(s, m, SC_drop_ip_bad_header);
		return;
	}
	unsigned tot = rte_be_to_cpu_16(ip->total_length);
	if (tot < ihl || l2 + tot > avail) {
		drop(s, m, SC_drop_ip_bad_length);
		return;
	}
	if (l2 + tot < avail)
		rte_pktmbuf_trim(m, (uint16_t)(avail - l2 - tot)); /* Ethernet padding */
	if (!steered) {
		int ok;
		if (s->env->rx_cksum_offload &&
		    (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) != RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN)
			ok = (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD;
		else
			ok = rte_raw_cksum(ip, ihl) == 0xffff;
		if (!ok) {
			drop(s, m, SC_drop_ip_bad_checksum);
			return;
		}
	}
	if (rte_be_to_cpu_16(ip->fragment_offset) & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) {
		drop(s, m, SC_drop_ip_fragment); /* no reassembly: TCP peers keep DF and MSS */
		return;
	}
	if (ip->dst_addr != s->env->ipv4) {
		drop(s, m, SC_drop_ip_other_host);
		return;
	}
	if (bad_source(ip->src_addr) || ip->src_addr == s->env->ipv4) {
		drop(s, m, SC_drop_ip_bad_header);
		return;
	}
	unsigned l4len = tot - ihl;
	if (ip->next_proto_id == IPPROTO_ICMP) {
		icmp_input(s, m, ip, ihl, l4len);
		return;
	}
	if (ip->next_proto_id != IPPROTO_TCP) {
		drop(s, m, SC_drop_ip_protocol);
		return;
	}
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)((char *)ip + ihl);
	if (l4len < sizeof(*th)) {
		drop(s, m, SC_drop_tcp_bad_header);
		return;
	}
	unsigned doff = (unsigned)(th->data_off >> 4) * 4u;
	if (doff < sizeof(*th) || doff > l4len) {
		drop(s, m, SC_drop_tcp_bad_header);
		return;
	}
	/* Checked once, by the core that received it; an owner trusts a steered packet. */
	if (!steered && !tcp_cksum_ok(s, m, ip, th)) {
		drop(s, m, SC_drop_tcp_bad_checksum);
		return;
	}
	/* With RSS the port hands over the hash it chose the queue by: no Toeplitz again. */
	unsigned owner = s->env->rss && (m->ol_flags & RTE_MBUF_F_RX_RSS_HASH)
				 ? s->env->reta[m->hash.rss % s->env->reta_size]
				 : stack_flow_core(s->env, ip->src_addr, th->src_port, th->dst_port);
	if (owner != s->c->index) {
		struct rte_ring *r = s->env->steer[s->c->index][owner];
		DURO_ASSERT(!steered); /* every core computes the same owner */
		if (!r || rte_ring_enqueue(r, m) < 0) {
			drop(s, m, SC_drop_steer_full);
			return;
		}
		stack_count(s, SC_steered_out);
		return;
	}
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	tcp_input(s, m, ip, th, (uint16_t)l4len, eh->src_addr.addr_bytes);
}

struct rte_ipv4_hdr *ipv4_prepend(struct stack *s, struct rte_mbuf *m, uint32_t dst,
				  uint8_t proto, uint16_t l4_len)
{
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)rte_pktmbuf_prepend(m, sizeof(*ip));
	if (!ip)
		return NULL;
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->type_of_service = 0;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + l4_len));
	ip->packet_id = rte_cpu_to_be_16(s->ip_id++);
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = STACK_IP_TTL;
	ip->next_proto_id = proto;
	ip->src_addr = s->env->ipv4;
	ip->dst_addr = dst;
	ip->hdr_checksum = 0;
	if (!s->env->tx_cksum_offload)
		ip->hdr_checksum = rte_ipv4_cksum(ip);
	return ip;
}
