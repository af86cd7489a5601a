/* The port's own counters seen per core: rte_eth_stats for the core's queue (and the
 * port-wide figures on core 0), plus the af_packet rings' drops, which the driver hides. */
#ifndef DURO_NET_DPDK_PORT_STATS_H
#define DURO_NET_DPDK_PORT_STATS_H

#include <stdint.h>

/* Finds what the counters are read from; once, after the port started, before the cores
 * run. `af_packet` when the port is a net_af_packet device on interface `ifindex`: its
 * queue sockets are then found among the process's descriptors. Never fails: a counter
 * it cannot read stays 0, with a log line. */
void port_stats_init(uint16_t port, unsigned nqueues, int af_packet, int ifindex);

/* Reads the port's counters into this core's stack counters (SC_port_*). Called by core
 * `q` (whose queue is q) every few hundred milliseconds: a system call or two. Port-wide
 * figures (missed on a NIC, errors, no-mbuf) go to core 0 only, so the sum over cores is
 * the port's. */
void port_stats_poll(unsigned q, uint64_t *ctr);

#endif
