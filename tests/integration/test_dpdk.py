"""The dpdk backend and duro's TCP/IP stack, with the kernel's stack as the client: run
inside the namespace of scripts/netns-dpdk.sh (scripts/test.sh does), durod on the veth's
other end through DPDK's af_packet driver, or replaying crafted frames through net_pcap."""
import asyncio
import hashlib
import http.server
import json
import os
import re
import socket
import struct
import subprocess
import threading
import time

import pytest
import requests
import websockets

import conftest
from conftest import DPDK_CLIENT, DPDK_SUBNET

ROOT = conftest.ROOT
DUROCTL = os.path.join(os.path.dirname(conftest.DUROD), "duroctl")
IFACE = os.environ.get("DURO_NETNS_PEER_IF", "duro-dpdk1")  # the client's end, in this namespace

pytestmark = pytest.mark.skipif(
    conftest.BACKEND != "dpdk",
    reason="needs the dpdk test namespace: run through scripts/test.sh (or "
           "scripts/netns-dpdk.sh exec env DURO_TEST_BACKEND=dpdk pytest ...)")


RETRANSMITS = ("tcp_retransmits_timeout", "tcp_retransmits_fast", "tcp_retransmits_rack",
               "tcp_retransmits_tlp")


def stack(d):
    """The stack's counters summed over cores, from the control socket. They are there once
    a core published its first stats snapshot (every 100 ms; later on a loaded machine)."""
    deadline = time.time() + 10
    while True:
        out = subprocess.run([DUROCTL, "--json", "--socket", os.path.join(d.data_dir, "control.sock"),
                              "stats"], capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        total = json.loads(out.stdout)["total"]
        if "stack" in total or time.time() > deadline:
            return total["stack"]
        time.sleep(0.05)


def wait_stack(d, key, want, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = stack(d)
        if s.get(key, 0) >= want:
            return s
        time.sleep(0.1)
    return stack(d)


@pytest.fixture
def dd(durod_factory):
    return durod_factory(config={"limits": {"max_body_bytes": 16 << 20}})


def test_ping_and_arp(dd):
    subprocess.run(["ip", "neigh", "flush", "dev", IFACE], check=True)  # ask afresh
    out = subprocess.run(["ping", "-c", "5", "-i", "0.05", "-W", "2", dd.host],
                         capture_output=True, text=True, timeout=20)
    assert " 0% packet loss" in out.stdout, out.stdout
    neigh = subprocess.run(["ip", "neigh", "show", dd.host], capture_output=True, text=True).stdout
    assert re.search(r"lladdr [0-9a-f:]{17}", neigh), neigh
    s = wait_stack(dd, "icmp_echo_replies", 5)
    assert s["icmp_echo_replies"] >= 5
    assert s["arp_replies_out"] >= 1
    # A large echo (a full MTU) comes back whole.
    out = subprocess.run(["ping", "-c", "2", "-s", "1472", "-M", "do", dd.host],
                         capture_output=True, text=True, timeout=20)
    assert " 0% packet loss" in out.stdout, out.stdout


def test_counter_exact_under_concurrency(dd):
    n_threads, per = 16, 40
    errors = []

    def worker(i):
        try:
            with requests.Session() as sess:
                for k in range(per):
                    # Half on keep-alive connections, half on a new connection each.
                    if k % 2:
                        r = sess.post(dd.url + "/counter/many", timeout=10)
                    else:
                        r = requests.post(dd.url + "/counter/many", timeout=10)
                    assert r.status_code == 200
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors[:3]
    assert requests.get(dd.url + "/counter/many", timeout=10).text.strip() == str(n_threads * per)
    # And from curl: 64 processes at once, each a new connection.
    curls = [subprocess.Popen(["curl", "-s", "-m", "20", "-X", "POST", dd.url + "/counter/curl"],
                              stdout=subprocess.PIPE, text=True) for _ in range(64)]
    seen = sorted(int(p.communicate(timeout=30)[0]) for p in curls)
    assert seen == list(range(1, 65))  # every increment acknowledged once, none lost
    s = stack(dd)
    assert s["drop_tcp_bad_checksum"] == 0 and s["drop_ip_bad_checksum"] == 0


def test_websocket_broadcast(dd):
    n = 40

    async def go():
        url = "ws://%s:%d/room/lobby" % (dd.host, dd.port)
        members = [await websockets.connect(url + "?name=m%d" % i) for i in range(n)]
        for i in range(20):
            await members[0].send("msg %d" % i)
        for m in members:
            got = []
            while len(got) < 20:
                msg = await asyncio.wait_for(m.recv(), 10)
                if msg.startswith("msg "):
                    got.append(msg)
            assert got == ["msg %d" % i for i in range(20)]
        for m in members:
            await m.close()

    asyncio.run(go())


def echo_roundtrip(d, size, seed):
    body = hashlib.shake_256(seed.encode()).digest(size)
    r = requests.post(d.url + "/echo/big-%s" % seed, data=body, timeout=120,
                      headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200
    assert len(r.content) == size
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(body).digest()


def test_large_uploads_and_downloads_byte_exact(dd):
    echo_roundtrip(dd, 12 << 20, "one")
    ts = [threading.Thread(target=echo_roundtrip, args=(dd, 3 << 20, "p%d" % i)) for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    s = stack(dd)
    assert s["drop_tcp_receive_overflow"] == 0


def nft(script):
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True)


@pytest.fixture
def impaired():
    """Random loss both ways and egress duplication on the client's side (no netem here)."""
    nft("""
table inet duro_loss {
  chain out { type filter hook output priority 0; ip daddr %s.0/24 numgen random mod 100 < 4 drop; }
  chain in { type filter hook input priority 0; ip saddr %s.0/24 numgen random mod 100 < 4 drop; }
}
table netdev duro_dup {
  chain egress { type filter hook egress device "%s" priority 0; numgen random mod 100 < 5 dup to "%s"; }
}
""" % (DPDK_SUBNET, DPDK_SUBNET, IFACE, IFACE))
    yield
    subprocess.run(["nft", "delete", "table", "inet", "duro_loss"])
    subprocess.run(["nft", "delete", "table", "netdev", "duro_dup"])


def test_loss_and_duplication(dd, impaired):
    echo_roundtrip(dd, 4 << 20, "lossy")
    for i in range(30):
        assert requests.post(dd.url + "/counter/lossy", timeout=20).status_code == 200
    assert requests.get(dd.url + "/counter/lossy", timeout=20).text.strip() == "30"
    s = stack(dd)
    assert sum(s[k] for k in RETRANSMITS) > 0, s
    assert s["tcp_out_of_order"] + s["drop_tcp_out_of_window"] > 0, s


def test_fault_injector_reorders_and_delays(durod_factory):
    fault = {"seed": 7, "reorder_pct": 10, "delay_pct": 5, "delay_ms": 15, "drop_pct": 1}
    d = durod_factory(config={"limits": {"max_body_bytes": 16 << 20},
                              "dpdk": {"fault_rx": fault, "fault_tx": dict(fault, seed=8)}})
    echo_roundtrip(d, 4 << 20, "faulty")
    for i in range(20):
        assert requests.post(d.url + "/counter/faulty", timeout=20).status_code == 200
    assert requests.get(d.url + "/counter/faulty", timeout=20).text.strip() == "20"
    s = stack(d)
    assert s["fault_reordered"] > 0 and s["fault_delayed"] > 0 and s["fault_dropped"] > 0, s
    assert s["tcp_out_of_order"] > 0, s
    assert "fault injection on (seed 7)" in d.logtext()


def test_syn_flood_and_connection_flood(dd):
    # A SYN flood beyond the SYN queue: answered with cookies; real clients still served.
    # The kernel here would reset every SYN-ACK at once and keep the queue empty: while
    # the flood runs its resets are dropped, as a spoofing attacker's would never come.
    nft("table inet duro_flood {\n chain out { type filter hook output priority 0; "
        "ip daddr %s tcp flags & rst != 0 drop; }\n}\n" % dd.host)
    flood = subprocess.Popen(["hping3", "-q", "-S", "-p", str(dd.port), "-i", "u50",
                              "-c", "6000", dd.host], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        for i in range(20):
            assert requests.post(dd.url + "/counter/flood", timeout=10).status_code == 200
    finally:
        flood.wait(60)
        subprocess.run(["nft", "delete", "table", "inet", "duro_flood"])
    s = stack(dd)
    assert s["tcp_syncookies_sent"] > 0, s
    # The kernel resets what it never asked for: the SYN queue drains at once.
    for _ in range(100):
        s = stack(dd)
        if s["conns_syn_received"] == 0:
            break
        time.sleep(0.2)
    assert s["conns_syn_received"] == 0, s
    # Many open connections at once, each answered.
    socks = [dd.connect() for _ in range(2000)]
    for k in range(0, 2000, 97):
        socks[k].sendall(b"POST /counter/flood HTTP/1.1\r\nHost: t\r\n\r\n")
        assert conftest.read_responses(socks[k], 1)[0][0] == 200
    s = wait_stack(dd, "conns_established", 2000)  # snapshots trail by up to 100 ms
    assert s["conns_established"] >= 2000, s["conns_established"]
    for sk in socks:
        sk.close()
    assert requests.get(dd.url + "/counter/flood", timeout=10).text.strip() == str(20 + 21)


def test_keepalive_probe_answered(dd):
    """Linux's keep-alive probes (one sequence below) get an ACK: the connection survives."""
    s = dd.connect()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 2)
    time.sleep(4)
    s.sendall(b"GET /counter/ka HTTP/1.1\r\nHost: t\r\n\r\n")
    assert conftest.read_responses(s, 1)[0][0] == 200
    s.close()


# ---- malformed frames, replayed deterministically through net_pcap ----

PCAP_MAC = "02:00:00:77:00:01"
PEER_MAC = "02:00:00:77:00:02"
SERVER = DPDK_SUBNET + ".1"
PEER = DPDK_CLIENT


def crafted(port):
    """(frame, counter it must land in) for each kind of bad input."""
    from scapy.all import ARP, ICMP, IP, TCP, Ether, Raw  # noqa: E402 - optional import
    eth = Ether(src=PEER_MAC, dst=PCAP_MAC)
    good_syn = eth / IP(src=PEER, dst=SERVER) / TCP(sport=40000, dport=port, flags="S", seq=1000)
    frames = []

    def add(frame, counter):
        frames.append((bytes(frame), counter))

    add(bytes(eth)[:10], "drop_truncated")
    add(Ether(src=PEER_MAC, dst="02:00:00:00:00:99") / IP(src=PEER, dst=SERVER) / ICMP(), "drop_other_host")
    add(Ether(src=PEER_MAC, dst=PCAP_MAC, type=0x86dd) / Raw(b"\0" * 40), "drop_ether_type")
    add(bytes(eth / IP(src=PEER, dst=SERVER) / ICMP())[:20], "drop_truncated")
    ip = bytearray(bytes(eth / IP(src=PEER, dst=SERVER) / ICMP()))
    ip[14] = 0x65  # version 6 in an IPv4 frame
    add(bytes(ip), "drop_ip_bad_header")
    ip = bytearray(bytes(eth / IP(src=PEER, dst=SERVER) / ICMP()))
    ip[14] = 0x4f  # IHL 60 bytes: past the packet
    add(bytes(ip), "drop_ip_bad_header")
    add(eth / IP(src=PEER, dst=SERVER, len=2000) / ICMP(), "drop_ip_bad_length")
    add(eth / IP(src=PEER, dst=SERVER, chksum=0x1234) / ICMP(), "drop_ip_bad_checksum")
    add(eth / IP(src=PEER, dst=SERVER, flags="MF") / ICMP(), "drop_ip_fragment")
    add(eth / IP(src=PEER, dst=SERVER, frag=100) / ICMP(), "drop_ip_fragment")
    add(eth / IP(src=PEER, dst=DPDK_SUBNET + ".9") / ICMP(), "drop_ip_other_host")
    add(eth / IP(src="255.255.255.255", dst=SERVER) / ICMP(), "drop_ip_bad_header")
    add(eth / IP(src=PEER, dst=SERVER, proto=17) / Raw(b"\0" * 8), "drop_ip_protocol")
    add(eth / IP(src=PEER, dst=SERVER) / ICMP(chksum=0x1111), "drop_icmp_bad")
    add(eth / IP(src=PEER, dst=SERVER, proto=6) / Raw(b"\0" * 10), "drop_tcp_bad_header")
    t = bytearray(bytes(good_syn))
    t[14 + 20 + 12] = 0x20  # data offset 8 bytes: shorter than the header itself
    add(bytes(t), "drop_tcp_bad_header")
    add(eth / IP(src=PEER, dst=SERVER) / TCP(sport=40001, dport=port, flags="S", chksum=0xdead),
        "drop_tcp_bad_checksum")
    add(eth / IP(src=PEER, dst=SERVER) / TCP(sport=40002, dport=port, flags="SF"), "drop_tcp_bad_flags")
    add(eth / IP(src=PEER, dst=SERVER) / TCP(sport=40003, dport=port, flags=""), "drop_tcp_bad_flags")
    add(eth / IP(src=PEER, dst=SERVER) / TCP(sport=40004, dport=port, flags="FPU"), "drop_tcp_bad_flags")
    add(eth / IP(src=PEER, dst=SERVER) / TCP(sport=40005, dport=port, flags="A", ack=5),
        "drop_tcp_no_connection")
    add(eth / IP(src=PEER, dst=SERVER) / TCP(sport=40006, dport=port + 1, flags="S"),
        "drop_tcp_no_listener")
    # Options inside a 24-byte header: an MSS option claiming 40 bytes runs past it.
    add(eth / IP(src=PEER, dst=SERVER) / TCP(sport=40007, dport=port, flags="S", dataofs=6) /
        Raw(b"\x02\x28\x05\xb4"), "drop_tcp_bad_header")
    add(eth / ARP(op=1, hwlen=8, psrc=PEER, pdst=SERVER), "drop_arp_bad")
    # A connection, then a segment far outside its window.
    add(good_syn, None)
    frames.append(("OUT_OF_WINDOW", "drop_tcp_out_of_window"))
    return frames


def test_malformed_frames_dropped_and_counted(tmp_path, durod_factory):
    pytest.importorskip("scapy")
    from scapy.all import IP, TCP, Ether, PcapWriter, rdpcap  # noqa: E402
    port = 8787
    frames = crafted(port)
    out = []
    for f, counter in frames:
        if f == "OUT_OF_WINDOW":
            f = bytes(Ether(src=PEER_MAC, dst=PCAP_MAC) / IP(src=PEER, dst=SERVER) /
                      TCP(sport=40000, dport=port, flags="A", seq=1000 + 10 ** 9, ack=1))
        out.append(f)
    rx, tx = str(tmp_path / "in.pcap"), str(tmp_path / "out.pcap")
    w = PcapWriter(rx, linktype=1)  # Ethernet; frames as raw bytes, truncated ones too
    for f in out:
        w.write(f)
    w.close()
    d = durod_factory(cores=1, host=SERVER, wait=False, extra_args=["--listen", "%s:%d" % (SERVER, port)], dpdk_args=[
        "--dpdk-vdev", "net_pcap0,rx_pcap=%s,tx_pcap=%s" % (rx, tx), "--dpdk-mac", PCAP_MAC])
    deadline = time.time() + 15
    while time.time() < deadline:
        if os.path.exists(os.path.join(d.data_dir, "control.sock")):
            try:
                if stack(d)["rx_packets"] >= len(out):
                    break
            except (AssertionError, ValueError):
                pass
        time.sleep(0.2)
    s = stack(d)
    assert s["rx_packets"] == len(out), s
    want = {}
    for _, counter in frames:
        if counter:
            want[counter] = want.get(counter, 0) + 1
    for counter, n in want.items():
        assert s[counter] == n, "%s: %d, want %d; %s" % (counter, s[counter], n, " ".join("%s=%d" % (k, v) for k, v in s.items() if v))
    assert d.stop() == 0
    sent = rdpcap(tx)
    rsts = [p for p in sent if TCP in p and p[TCP].flags & 0x04]
    assert len(rsts) >= 2  # no listener, no connection
    synacks = [p for p in sent if TCP in p and p[TCP].flags == 0x12]
    assert synacks and synacks[0][TCP].dport == 40000


def test_status_config_and_prometheus_show_the_stack(durod_factory):
    mport = conftest.free_port()
    d = durod_factory(config={"control": {"metrics": "127.0.0.1:%d" % mport}})
    ctl = [DUROCTL, "--json", "--socket", os.path.join(d.data_dir, "control.sock")]
    status = json.loads(subprocess.run(ctl + ["status"], capture_output=True, text=True).stdout)
    assert status["backend"] == "dpdk"
    cfg = json.loads(subprocess.run(ctl + ["config"], capture_output=True, text=True).stdout)
    assert cfg["config"]["dpdk"]["ipv4"] == d.host + "/24", cfg
    assert requests.post(d.url + "/counter/prom", timeout=10).status_code == 200
    time.sleep(0.3)
    # The metrics listener is on durod's side of the veth: ask from there.
    text = subprocess.run(["ip", "netns", "exec", conftest.DPDK_HOST_NS, "curl", "-s",
                           "http://127.0.0.1:%d/metrics" % mport],
                          capture_output=True, text=True, timeout=10).stdout
    assert "# TYPE duro_stack_rx_packets_total counter" in text
    assert "# TYPE duro_stack_conns_established gauge" in text
    rx = sum(int(line.split()[-1]) for line in text.splitlines()
             if line.startswith("duro_stack_rx_packets_total{"))
    assert rx > 0


def test_zero_window_then_resume(dd):
    """A client that stops reading closes its window; the stack probes it and the transfer
    resumes, byte-exact, when the client reads again."""
    body = hashlib.shake_256(b"zw").digest(6 << 20)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    s.connect((dd.host, dd.port))
    s.sendall(b"POST /echo/zw HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    time.sleep(3)  # not reading: the reply fills the window, which closes
    probes = stack(dd)["tcp_window_probes"]
    got = conftest.read_responses(s, 1, timeout=30)[0]
    s.close()
    assert got[0] == 200 and hashlib.sha256(got[2]).digest() == hashlib.sha256(body).digest()
    assert probes > 0


def telemetry(d, cmd):
    """One DPDK telemetry command's answer from durod's EAL socket."""
    # `ip netns exec` execs durod: the process started is durod itself.
    path = "/var/run/dpdk/durod%d/dpdk_telemetry.v2" % d.proc.pid
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    json.loads(s.recv(16384))
    s.send(cmd.encode())
    out = json.loads(s.recv(1 << 16))
    s.close()
    return out[cmd.split(",")[0]]


def test_receive_ring_overflow_counted(durod_factory):
    """A receive ring too small for a burst, on a core that sleeps between polls: the frames
    the kernel could not place are counted as port_rx_missed, in duroctl, Prometheus and
    DPDK telemetry, and every frame sent is either received or counted missed."""
    mport = conftest.free_port()
    d = durod_factory(cores=1, config={
        "dpdk": {"af_packet_framecnt": 32, "idle_sleep_us": 5000},
        "control": {"metrics": "127.0.0.1:%d" % mport}})
    assert requests.post(d.url + "/counter/ring", timeout=10).status_code == 200
    before = wait_stack(d, "port_rx_packets", 1)
    sent = 20000
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(sent):
        u.sendto(b"x" * 100, (d.host, 9))  # no such protocol for the stack: counted, dropped
    u.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        s = stack(d)
        seen = s["drop_ip_protocol"] + s["port_rx_missed"] - before["port_rx_missed"]
        if seen >= sent:
            break
        time.sleep(0.1)
    assert s["port_rx_missed"] > 0, s
    assert sent <= seen <= sent + 50, (seen, s)  # a few other frames may be missed too
    assert s["port_rx_packets"] == s["rx_packets"], s
    text = subprocess.run(["ip", "netns", "exec", conftest.DPDK_HOST_NS, "curl", "-s",
                           "http://127.0.0.1:%d/metrics" % mport],
                          capture_output=True, text=True, timeout=10).stdout
    assert "# TYPE duro_stack_port_rx_missed_total counter" in text
    assert "# TYPE duro_stack_tx_queue_depth gauge" in text
    missed = sum(int(line.split()[-1]) for line in text.splitlines()
                 if line.startswith("duro_stack_port_rx_missed_total{"))
    assert missed >= s["port_rx_missed"]  # counters only grow
    assert telemetry(d, "/duro/stats")["stack_port_rx_missed"] >= s["port_rx_missed"]
    cfg = json.loads(subprocess.run([DUROCTL, "--json", "--socket",
                                     os.path.join(d.data_dir, "control.sock"), "config"],
                                    capture_output=True, text=True).stdout)["config"]["dpdk"]
    assert cfg["af_packet_framecnt"] == 32 and cfg["tx_backlog"] == 8192, cfg


# ---- issue 20: a 1,000-member broadcast, with and without loss ----

BENCH = os.path.join(os.path.dirname(os.path.dirname(conftest.DUROD)), "bench", "durobench")
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts")
KINDS = RETRANSMITS + ("tcp_tlp_probes", "tcp_tlp_repairs", "tcp_recoveries_sack",
                       "tcp_recoveries_newreno", "tcp_dsacks", "tcp_spurious_rtos", "tcp_rack_lost")
DROPS = ("port_rx_missed", "port_rx_errors", "port_rx_nombuf", "port_tx_errors", "drop_tx_full",
         "drop_no_mbuf", "drop_steer_full")


def loss_rules(pct):
    """nftables loss both ways on the client's side (this namespace), as the issue asks."""
    nft("""
table inet duro_loss20 {
  chain out { type filter hook output priority 0; ip daddr %s.0/24 numgen random mod 100 < %d drop; }
  chain in { type filter hook input priority 0; ip saddr %s.0/24 numgen random mod 100 < %d drop; }
}
""" % (DPDK_SUBNET, pct, DPDK_SUBNET, pct))


def broadcast(d, members, messages, loss_pct=0, deadline=240, size=64):
    """durobench's verified broadcast: every member checks every message's order and
    bytes. Loss, if any, starts once every member is in (set-up under loss is slow and
    not what is measured)."""
    p = subprocess.Popen([BENCH, "--host", d.host, "--port", str(d.port), "--ws", "/room/i20",
                          "--conns", str(members), "--pipeline", "8", "--messages", str(messages),
                          "--verify", "--duration", str(deadline), "--wait-go", "--size", str(size)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stderr.readline().strip() == "ready"
        if loss_pct:
            loss_rules(loss_pct)
        p.stdin.write("go\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=deadline + 60)
    finally:
        if loss_pct:
            subprocess.run(["nft", "delete", "table", "inet", "duro_loss20"])
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, (out, err)
    r = json.loads(out)
    assert r["members_complete"] == members and r["completed"] == messages, r
    assert r["verified"] and r["verify_errors"] == 0, r
    return r


def report(name, r, s):
    """Retransmissions by kind and drops, printed and kept in tests/artifacts."""
    line = {"run": name, "deliveries_per_s": r["deliveries_per_s"], "p50_ms": r["p50_us"] / 1e3,
            "p99_ms": r["p99_us"] / 1e3, "seconds": r["seconds"],
            "retransmissions": {k: s[k] for k in KINDS}, "drops": {k: s[k] for k in DROPS}}
    print(json.dumps(line))
    os.makedirs(ARTIFACTS, exist_ok=True)
    with open(os.path.join(ARTIFACTS, "dpdk_loss.jsonl"), "a") as f:
        f.write(json.dumps(line) + "\n")


def test_broadcast_1000_members_byte_exact_no_drops(durod_factory):
    """The issue's load on one core with the default rings: 1,000 members of one room, one
    sending 2,000 messages with 8 in flight. Every member gets every message, in order,
    byte-exact, and nothing is dropped anywhere: not at the port, not by the stack."""
    d = durod_factory(cores=1)
    r = broadcast(d, 1000, 2000)
    s = stack(d)
    report("no loss", r, s)
    for k in DROPS:
        assert s[k] == 0, (k, s)
    assert s["port_rx_packets"] == s["rx_packets"], s


@pytest.mark.parametrize("pct", [1, 5, 10])
def test_loss_recovery_by_kind(durod_factory, pct):
    """nftables loss both ways: the broadcast completes byte-exact (at 5%: the issue's full
    1,000 members and 2,000 messages), and a 4 MiB upload and download too; the
    retransmissions are reported by kind, and most losses are repaired without waiting
    for the retransmission timer."""
    d = durod_factory(cores=1, config={"limits": {"max_body_bytes": 16 << 20}})
    members, messages = (1000, 2000) if pct == 5 else (200, 500)
    r = broadcast(d, members, messages, loss_pct=pct)
    loss_rules(pct)
    try:
        echo_roundtrip(d, 4 << 20, "loss%d" % pct)
    finally:
        subprocess.run(["nft", "delete", "table", "inet", "duro_loss20"])
    s = stack(d)
    report("%d%% loss" % pct, r, s)
    quick = s["tcp_retransmits_rack"] + s["tcp_retransmits_tlp"] + s["tcp_retransmits_fast"]
    assert quick > 0, s
    assert quick > s["tcp_retransmits_timeout"], s


def test_broadcast_large_frames_sent_without_copying(durod_factory):
    """Frames of 3,000 bytes: each member's segments carry full segments of the shared
    frame attached (zero copy) and the rest copied; every member gets every byte. Under
    loss the attached segments are retransmitted from the shared memory too, and when the
    sockets close every hold on it ends (ASan would see a frame freed while still held)."""
    d = durod_factory(cores=1)
    r = broadcast(d, 100, 300, size=3000)
    assert r["verified"]
    # A full segment of most frames (not those whose start a window cut off the turn before).
    assert stack(d)["tx_zero_copy"] >= 100 * 300 // 2
    r = broadcast(d, 100, 300, size=3000, loss_pct=5)
    s = stack(d)
    report("3,000-byte frames, 5% loss", r, s)
    assert s["tcp_retransmits_rack"] + s["tcp_retransmits_tlp"] > 0, s


# ---- active open: duro_fetch dials out through the stack (tcp_dial.c) ----

DIAL_CONFIG = {
    "durable_objects": {"bindings": [{"name": "CALL", "class_name": "TestCall"}]},
    "migrations": [{"tag": "calls-v1", "new_classes": ["TestCall"]}],
    "routes": [{"prefix": "/call/", "binding": "CALL", "id": "name"}],
}


class DialOrigin(http.server.ThreadingHTTPServer):
    """An HTTP/1.1 origin on the client's address that keeps, per accepted connection, the
    peer's port and the kernel's TCP_INFO: what it learned from the stack's SYN."""
    daemon_threads = True

    def __init__(self):
        self.accepted = []  # (peer port, options, snd_wscale, snd_mss)
        self.lock = threading.Lock()
        super().__init__((DPDK_CLIENT, 0), DialHandler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def get_request(self):
        conn, addr = super().get_request()
        info = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        b = struct.unpack("8B4I", info[:24])
        with self.lock:
            # tcpi_options (1 timestamps, 2 SACK, 4 window scale), tcpi_snd_wscale (the
            # peer's shift), tcpi_snd_mss (its MSS less the timestamp option)
            self.accepted.append((addr[1], b[5], b[6] & 0xf, b[10]))
        return conn, addr

    def close(self):
        self.shutdown()
        self.server_close()


class DialHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = b"port %d" % self.client_address[1]
        if self.path.endswith("/big"):
            body = hashlib.sha256(self.path.encode()).hexdigest().encode() * 5000  # 320,000 bytes
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if self.path.startswith("/close"):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def dial_origin():
    o = DialOrigin()
    yield o
    o.close()


def dial_fetch(d, name, url, params="", timeout=60):
    r = requests.post(d.url + "/call/%s/fetch%s" % (name, params), data=url.encode(), timeout=timeout)
    assert r.status_code == 200, r.text
    head, _, body = r.text.partition("\n")
    return dict(kv.split("=", 1) for kv in head.split()), body


def test_dial_options_keep_alive_and_counters(durod_factory, dial_origin):
    """Fetches from objects on both cores: every SYN offers timestamps, SACK, window scale
    7 and MSS 1460 (as the kernel's TCP_INFO of the accepted connection shows), each
    object's sequential fetches reuse its connection, and the active-open counters agree
    with what the origin accepted."""
    d = durod_factory(config={**DIAL_CONFIG, "outbound": {"allow": ["http://%s:*" % DPDK_CLIENT]}},
                      test_classes="raw", cores=2)
    base = "http://%s:%d" % (DPDK_CLIENT, dial_origin.port)
    names = ["dial%d" % i for i in range(12)]  # spread over both cores by their IDs
    for name in names:
        for _ in range(3):
            o, body = dial_fetch(d, name, base + "/hello")
            assert (o["err"], o["status"]) == ("0", "200"), o
    accepted = list(dial_origin.accepted)
    assert 1 <= len(accepted) <= len(names), accepted  # kept alive: not one per fetch
    for port, options, wscale, mss in accepted:
        assert options & 7 == 7, accepted  # timestamps, SACK, window scaling
        assert wscale == 7 and mss == 1460 - 12, accepted
        assert 32768 <= port <= 60999
    s = wait_stack(d, "tcp_active_established", len(accepted))
    assert s["tcp_active_opens"] == s["tcp_active_established"] == len(accepted), s
    assert s["tcp_dial_refused"] == s["tcp_dial_timeouts"] == s["tcp_dial_unreachable"] == 0, s
    assert s["conns_syn_sent"] == 0
    # Both cores dialed: each port brought its replies back to the core that chose it
    # (af_packet spreads flows by the kernel's hash; the stack steers the rest).
    cores = d.control({"cmd": "stats"})["cores"]
    assert all(c["stack"]["tcp_active_established"] >= 1 for c in cores), \
        [c["stack"]["tcp_active_established"] for c in cores]
    # New connections each time (the origin closes): every port a different one.
    for i in range(20):
        assert dial_fetch(d, names[i % len(names)], base + "/close")[0]["err"] == "0"
    ports = [a[0] for a in dial_origin.accepted]
    assert len(set(ports)) == len(ports), ports
    st = d.control({"cmd": "stats"})
    assert st["outbound"]["reused"] >= 2 * len(names) - len(accepted), st["outbound"]


def test_dial_refused_unreachable_and_timeout(durod_factory):
    """A closed port answers the SYN with a reset: -ECONNREFUSED at once. An address nobody
    answers ARP for: the fetch's own timeout first (-ETIMEDOUT, the dial cancelled), or,
    given longer, the stack's ARP failure (-EHOSTUNREACH) after about 3 s. Counted."""
    closed = socket.socket()
    closed.bind((DPDK_CLIENT, 0))
    port = closed.getsockname()[1]
    closed.close()
    d = durod_factory(config={**DIAL_CONFIG, "outbound": {"allow": ["http://%s:*" % DPDK_CLIENT,
                                                                    "http://%s.250:*" % DPDK_SUBNET],
                                                          "timeout_ms": 600}},
                      test_classes="raw", cores=2)
    t0 = time.time()
    o, _ = dial_fetch(d, "r", "http://%s:%d/x" % (DPDK_CLIENT, port))
    assert o["err"] == str(-111) and time.time() - t0 < 2, o  # -ECONNREFUSED
    nobody = "%s.250" % DPDK_SUBNET
    t0 = time.time()
    o, _ = dial_fetch(d, "u", "http://%s:80/x" % nobody)
    assert o["err"] == str(-110), o  # -ETIMEDOUT: the fetch's timeout
    t0 = time.time()
    o, _ = dial_fetch(d, "u", "http://%s:80/x" % nobody, "?timeout=15000")
    took = time.time() - t0
    assert o["err"] == str(-113) and 2.5 < took < 8, (o, took)  # -EHOSTUNREACH
    s = wait_stack(d, "tcp_dial_unreachable", 1)
    assert s["tcp_dial_refused"] >= 1 and s["tcp_dial_unreachable"] == 1, s
    assert s["tcp_dial_cancelled"] >= 1 and s["conns_syn_sent"] == 0, s
    assert s["arp_requests_out"] >= 2, s


def test_dial_under_loss(durod_factory, dial_origin):
    """Dialed connections recover as accepted ones do: with the fault injector dropping
    frames (a tenth of ours, a twentieth of the origin's), SYNs go again
    (tcp_syn_retransmits) and lost data is sent again by both sides; every answer arrives
    whole, on a new connection each time. (Far heavier loss makes the origin's orphaned
    sockets, closed right after their answer, give up on their retransmissions: Linux then
    drops them without a reset, and the fetch can only time out.)"""
    d = durod_factory(config={**DIAL_CONFIG, "outbound": {"allow": ["http://%s:*" % DPDK_CLIENT],
                                                          "connect_timeout_ms": 60000,
                                                          "timeout_ms": 120000},
                              "dpdk": {"fault_rx": {"seed": 11, "drop_pct": 5},
                                       "fault_tx": {"seed": 12, "drop_pct": 10}}},
                      test_classes="raw", cores=2)
    base = "http://%s:%d" % (DPDK_CLIENT, dial_origin.port)
    want = hashlib.sha256(b"/close/big").hexdigest() * 5000
    for i in range(40):
        # /close...: the origin closes after answering, so each fetch dials again.
        for _ in range(3):
            o, body = dial_fetch(d, "loss%d" % (i % 4), base + "/close/big", timeout=180)
            # Every ARP request of a resolution lost too (it gives up after 3 s, as Linux
            # does after its 3 probes): -EHOSTUNREACH, and the next fetch asks again.
            if o["err"] != str(-113):
                break
        assert (o["err"], o["status"]) == ("0", "200"), (i, o)
        assert body == want, (i, len(body), body[:80])
    s = wait_stack(d, "tcp_active_established", 40)
    assert s["tcp_active_established"] >= 40, s
    assert s["tcp_syn_retransmits"] >= 1, s
    assert s["fault_dropped"] > 0 and sum(s[k] for k in RETRANSMITS) > 0, s
