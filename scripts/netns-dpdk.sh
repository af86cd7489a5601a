#!/bin/bash
# The dpdk backend's test topology: a veth pair, durod's end (duro-dpdk0) in this namespace
# driven by DPDK's af_packet driver, the client's end (duro-dpdk1) in namespace duro-client.
#   scripts/netns-dpdk.sh up            create it (idempotent)
#   scripts/netns-dpdk.sh down          remove it
#   scripts/netns-dpdk.sh run [FLAGS]   durod --backend dpdk on it, in the foreground
#   scripts/netns-dpdk.sh exec CMD...   run a client command in the namespace
# Addresses: durod 10.77.0.1/24 port 8787 (its own stack; the kernel holds no address on
# duro-dpdk0), client 10.77.0.2/24. Needs root.
# Memory: af_packet copies every frame between the kernel's ring and the mbufs, so plain
# pages suffice (--no-huge, durod's default for the dpdk backend). DURO_HUGEPAGES=N
# reserves N 2 MiB hugepages and runs the EAL on them (--in-memory: nothing is left in
# /dev/hugepages afterwards), as a NIC deployment would.
set -euo pipefail

# Names can be changed (all four), so two topologies can exist side by side: each run's
# tests read the same variables (tests/integration/conftest.py, test_dpdk.py).
NS=${DURO_NETNS:-duro-client}
HOST_NS=${DURO_NETNS_HOST:-duro-host}
HOST_IF=${DURO_NETNS_HOST_IF:-duro-dpdk0}
PEER_IF=${DURO_NETNS_PEER_IF:-duro-dpdk1}
SUBNET=${DURO_NETNS_SUBNET:-10.77.0}  # a /24, first three octets
SERVER_IP=$SUBNET.1
CLIENT_IP=$SUBNET.2
ROOT=$(cd "$(dirname "$0")/.." && pwd)

up() {
	# A name for this (durod's) namespace too, so tests running in the client namespace
	# can start durod back here: ip netns exec duro-host durod ... `ip netns attach` makes
	# /run/netns a mount point first (a bind mount made before that would be hidden by it).
	if ! ip netns exec "$HOST_NS" true 2>/dev/null; then
		ip netns delete "$HOST_NS" 2>/dev/null || true
		if ! ip netns attach "$HOST_NS" $$ 2>/dev/null; then
			# Seen on a machine where an older version of this script bind-mounted the name
			# before /run/netns was a mount point: that mount is hidden now, its file cannot
			# be removed, and the name stays unusable until /run/netns is unmounted.
			echo "netns-dpdk.sh: namespace name $HOST_NS is unusable (/run/netns/$HOST_NS" \
				"exists and cannot be replaced); set DURO_NETNS_HOST to another name" >&2
			exit 3
		fi
	fi
	if ! ip netns list | grep -qw "$NS"; then
		ip netns add "$NS"
	fi
	if ! ip link show "$HOST_IF" >/dev/null 2>&1; then
		ip link add "$HOST_IF" type veth peer name "$PEER_IF" netns "$NS"
	fi
	# No IPv6 (router solicitations and DAD would be noise to the stack), no kernel
	# address on durod's end: the kernel must not answer ARP or TCP for 10.77.0.1.
	sysctl -qw "net.ipv6.conf.$HOST_IF.disable_ipv6=1"
	ip link set "$HOST_IF" up
	ip netns exec "$NS" sysctl -qw "net.ipv6.conf.$PEER_IF.disable_ipv6=1"
	ip netns exec "$NS" sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
	ip -n "$NS" addr replace "$CLIENT_IP/24" dev "$PEER_IF"
	ip -n "$NS" link set "$PEER_IF" up
	ip -n "$NS" link set lo up
	# The kernel would hand af_packet partial checksums and 64 KB GSO frames otherwise.
	ip netns exec "$NS" ethtool -K "$PEER_IF" tx off >/dev/null 2>&1 || true
	ethtool -K "$HOST_IF" tx off rx off gro off >/dev/null 2>&1 || true
}

down() {
	ip link del "$HOST_IF" 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	ip netns delete "$HOST_NS" 2>/dev/null || true
}

run() {
	up
	local bin=${DUROD:-$ROOT/build/control/durod}
	local cores=${DURO_CORES:-2}
	local eal=()
	if [ -n "${DURO_HUGEPAGES:-}" ]; then
		echo "$DURO_HUGEPAGES" > /proc/sys/vm/nr_hugepages
		mountpoint -q /dev/hugepages || { mkdir -p /dev/hugepages; mount -t hugetlbfs nodev /dev/hugepages; }
		eal=(--dpdk-eal "--in-memory -m $((DURO_HUGEPAGES * 2)) --no-pci")
	fi
	exec "$bin" --backend dpdk "${eal[@]}" \
		--dpdk-vdev "net_af_packet0,iface=$HOST_IF,qpairs=$cores" \
		--dpdk-ipv4 "$SERVER_IP/24" --listen "$SERVER_IP:8787" --cores "$cores" "$@"
}

case "${1:-}" in
up) up ;;
down) down ;;
run) shift; run "$@" ;;
exec) shift; up; exec ip netns exec "$NS" "$@" ;;
*) echo "usage: $0 up|down|run [durod flags]|exec CMD..." >&2; exit 2 ;;
esac
