"""WebSocket benchmarks (bench/README.md): broadcast deliveries per second to the members of
one room with the server on one core, beside a Node `ws` server (Debian's node-ws, the npm
package) measured by the same load generator in the same run; round trip for one member;
user-space and kernel memory per idle hibernated connection.

Usage: bench/ws.sh [--runs N] [--members N] [--seconds S] [--only broadcast|rtt|memory]"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import BENCH, DUROD, ROOT, free_port, wait_port  # noqa: E402
from alarms import rss_kib  # noqa: E402

FLOOD = os.path.join(ROOT, "tests", "integration", "wsflood.py")
NODE_ENV = dict(os.environ, NODE_PATH="/usr/share/nodejs")
SERVER_CPU, CLIENT_CPU = "0", "1"


def start_durod(tmp, cores=1, config=None):
    port = free_port()
    cfg = os.path.join(tmp, "duro.json")
    with open(cfg, "w") as f:
        json.dump(config or {}, f)
    data = os.path.join(tmp, "d%d" % port)
    cpus = SERVER_CPU if cores == 1 else "0-%d" % (cores - 1)
    p = subprocess.Popen(["taskset", "-c", cpus, DUROD, "--cores", str(cores), "--config", cfg,
                          "--listen", "127.0.0.1:%d" % port, "--data-dir", data],
                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_port(port)
    return p, port


def start_node(port):
    p = subprocess.Popen(["taskset", "-c", SERVER_CPU, "node", os.path.join(HERE, "node_ws_room.js"),
                          str(port)], env=NODE_ENV, stdout=subprocess.DEVNULL)
    wait_port(port)
    return p


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def durobench(port, room, members, window, seconds, size=64):
    out = subprocess.run(["taskset", "-c", CLIENT_CPU, BENCH, "--port", str(port), "--ws", room,
                          "--conns", str(members), "--pipeline", str(window), "--size", str(size),
                          "--duration", str(seconds), "--warmup", "1"],
                         capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        raise RuntimeError("durobench: " + out.stderr)
    return json.loads(out.stdout)


def broadcast(args, tmp):
    duro, dport = start_durod(tmp)
    nport = free_port()
    node = start_node(nport)
    rows = []
    try:
        for i in range(args.runs):
            d = durobench(dport, "/room/b%d" % i, args.members, args.window, args.seconds)
            n = durobench(nport, "/room/b%d" % i, args.members, args.window, args.seconds)
            ratio = d["deliveries_per_s"] / max(n["deliveries_per_s"], 1)
            rows.append((d, n, ratio))
            print("run %d: duro %.0f deliveries/s (p50 %.0f us, p99 %.0f us); node ws %.0f "
                  "(p50 %.0f us, p99 %.0f us); ratio %.1fx"
                  % (i + 1, d["deliveries_per_s"], d["p50_us"], d["p99_us"], n["deliveries_per_s"],
                     n["p50_us"], n["p99_us"], ratio), flush=True)
    finally:
        stop(duro)
        stop(node)
    med = lambda xs: statistics.median(xs)  # noqa: E731
    print("broadcast to %d members, window %d, one server core: median duro %.0f deliveries/s, "
          "node ws %.0f, ratio %.1fx (same-run ratios); duro fan-out p50 %.0f us, p99 %.0f us"
          % (args.members, args.window, med([r[0]["deliveries_per_s"] for r in rows]),
             med([r[1]["deliveries_per_s"] for r in rows]), med([r[2] for r in rows]),
             med([r[0]["p50_us"] for r in rows]), med([r[0]["p99_us"] for r in rows])))
    # Latency without queueing: one broadcast in flight.
    duro, dport = start_durod(tmp)
    try:
        lat = [durobench(dport, "/room/l%d" % i, args.members, 1, args.seconds) for i in range(args.runs)]
    finally:
        stop(duro)
    print("broadcast to %d members, window 1: median %.0f deliveries/s, fan-out p50 %.0f us, p99 %.0f us"
          % (args.members, med([x["deliveries_per_s"] for x in lat]), med([x["p50_us"] for x in lat]),
             med([x["p99_us"] for x in lat])))


def rtt(args, tmp):
    duro, dport = start_durod(tmp)
    try:
        xs = [durobench(dport, "/room/rtt%d" % i, 1, 1, args.seconds) for i in range(args.runs)]
    finally:
        stop(duro)
    print("round trip for one member (send, broadcast back): median %.0f messages/s, p50 %.0f us, "
          "p99 %.0f us" % (statistics.median([x["deliveries_per_s"] for x in xs]),
                           statistics.median([x["p50_us"] for x in xs]),
                           statistics.median([x["p99_us"] for x in xs])))


def slab_kib():
    """The kernel's slab memory: where idle sockets live (TCP, inode, dentry, epoll)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
                return int(line.split()[1])
    return 0


def memory(args, tmp, total, cores):
    """Opens `total` sockets to one room, waits until the room hibernates, and reports the
    resident-set growth per connection."""
    duro, port = start_durod(tmp, cores=cores, config={
        "limits": {"max_connections_per_core": 20000},
        "websockets": {"hibernate_idle_ms": 1000}})
    per = 8192
    procs = []
    try:
        # A first burst of 512 handshakes, closed again: the pools that serve handshakes
        # in flight (HTTP exchanges, request buffers) reach the size the paced flood below
        # needs, so what grows afterwards is what the open connections hold.
        warm = subprocess.Popen(["/usr/bin/python3", FLOOD, str(port), "/room/warm", "512", "127.0.0.9"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        warm.stdout.readline()
        warm.stdin.close()
        warm.wait(timeout=60)
        time.sleep(2.5)
        base_rss = rss_kib(duro.pid)
        base_slab = slab_kib()
        # Two halves: the growth over the second half is the marginal cost of a connection,
        # free of whatever the first connections set up once (tables, slabs).
        marks = []
        ip = 40
        for half in (total // 2, total - total // 2):
            opened = 0
            left = half
            while left:
                n = min(per, left)
                left -= n
                p = subprocess.Popen(["/usr/bin/python3", FLOOD, str(port), "/room/mem", str(n),
                                      "127.0.0.%d" % ip], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
                ip += 1
                procs.append(p)
                opened += int(p.stdout.readline().split()[1])
            time.sleep(2.5)  # the room hibernates: only the sockets stay
            marks.append((opened, rss_kib(duro.pid), slab_kib()))
        opened = marks[0][0] + marks[1][0]
        rss, slab = marks[1][1], marks[1][2]
        user = (rss - base_rss) * 1024 / max(opened, 1)
        marginal = (marks[1][1] - marks[0][1]) * 1024 / max(marks[1][0], 1)
        kern = (slab - base_slab) * 1024 / max(opened, 1) / 2
        print("%d hibernated connections (%d server core%s): resident set +%d KiB = %.0f bytes per "
              "connection in user space (%.0f bytes per connection over the second half); "
              "kernel slab +%d KiB = %.0f bytes per socket (both ends of each loopback "
              "connection counted, halved)"
              % (opened, cores, "s" if cores > 1 else "", rss - base_rss, user, marginal,
                 slab - base_slab, kern))
    finally:
        for p in procs:
            p.stdin.close()
        for p in procs:
            p.wait(timeout=60)
        stop(duro)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--window", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--only")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="duro-wsbench-")
    try:
        if args.only in (None, "broadcast"):
            broadcast(args, tmp)
        if args.only in (None, "rtt"):
            rtt(args, tmp)
        if args.only in (None, "memory"):
            memory(args, tmp, 10000, 1)
            # One ring's registered-file table is capped by RLIMIT_NOFILE (20,000 here), so
            # 32,768 sockets take two cores.
            memory(args, tmp, 32768, 2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
