"""The dpdk backend beside the uring backend over the same veth (scripts/netns-dpdk.sh):
durod on one core serving the counter (64 connections, in-memory MemCounter and durable
Counter) and a WebSocket room broadcast, the load generator in the client namespace; then
the stack's cycles per packet (bench/stack_cycles). Ratios are taken within each run.

Usage (root): bench/dpdk.sh [--runs N] [--seconds S] [--only throughput|memory]"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import BENCH, DUROD, ROOT  # noqa: E402
from alarms import rss_kib  # noqa: E402

FLOOD = os.path.join(ROOT, "tests", "integration", "wsflood.py")

NETNS = os.path.join(ROOT, "scripts", "netns-dpdk.sh")
STACK_CYCLES = os.path.join(os.path.dirname(BENCH), "stack_cycles")
DPDK_IP, URING_IP = "10.77.0.1", "10.77.0.3"  # the kernel holds .3 on durod's end for uring


def in_ns(cmd):
    return ["ip", "netns", "exec", "duro-client"] + cmd


def start(backend, tmp, port):
    data = os.path.join(tmp, "%s-%d" % (backend, port))
    args = ["taskset", "-c", "0", DUROD, "--cores", "1", "--data-dir", data]
    if backend == "dpdk":
        args += ["--backend", "dpdk", "--dpdk-vdev", "net_af_packet0,iface=duro-dpdk0,qpairs=1",
                 "--dpdk-ipv4", DPDK_IP + "/24", "--listen", "%s:%d" % (DPDK_IP, port)]
        host = DPDK_IP
    else:
        args += ["--listen", "%s:%d" % (URING_IP, port)]
        host = URING_IP
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    for _ in range(100):
        r = subprocess.run(in_ns(["curl", "-s", "-o", "/dev/null", "-m", "1",
                                  "http://%s:%d/counter/ready" % (host, port)]))
        if r.returncode == 0:
            return p, host
        time.sleep(0.1)
    p.kill()
    raise RuntimeError("durod (%s) did not come up" % backend)


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(30)


def bench(host, port, extra, seconds):
    cmd = in_ns(["taskset", "-c", "1", BENCH, "--host", host, "--port", str(port),
                 "--duration", str(seconds), "--warmup", "1"] + extra)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    return json.loads(out.stdout)


def memory(tmp, total=10000):
    """Resident-set growth per idle hibernated WebSocket on the dpdk backend: the TCB, the
    socket's slot and the room membership; the kernel holds nothing for these."""
    port = 18999
    data = os.path.join(tmp, "mem")
    cfg = os.path.join(tmp, "mem.json")
    with open(cfg, "w") as f:
        json.dump({"websockets": {"hibernate_idle_ms": 1000}}, f)
    p = subprocess.Popen(["taskset", "-c", "0", DUROD, "--cores", "1", "--data-dir", data,
                          "--config", cfg, "--backend", "dpdk", "--dpdk-vdev",
                          "net_af_packet0,iface=duro-dpdk0,qpairs=1", "--dpdk-ipv4",
                          DPDK_IP + "/24", "--listen", "%s:%d" % (DPDK_IP, port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    env = dict(os.environ, WSFLOOD_HOST=DPDK_IP)
    procs = []
    try:
        time.sleep(2)

        def flood(path, n):
            f = subprocess.Popen(in_ns(["/usr/bin/python3", FLOOD, str(port), path, str(n), "10.77.0.2"]),
                                 env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            opened = int(f.stdout.readline().split()[1])
            return f, opened

        warm, _ = flood("/room/warm", 512)
        warm.stdin.close()
        warm.wait(60)
        time.sleep(2.5)
        base = rss_kib(p.pid)
        marks = []
        for _ in range(2):
            f, opened = flood("/room/mem", total // 2)
            procs.append(f)
            time.sleep(2.5)
            marks.append((opened, rss_kib(p.pid)))
        opened = marks[0][0] + marks[1][0]
        per = (marks[1][1] - base) * 1024 / max(opened, 1)
        marginal = (marks[1][1] - marks[0][1]) * 1024 / max(marks[1][0], 1)
        print("  memory: %d idle hibernated WebSockets on the dpdk backend: %.0f B each "
              "(user space, all of it; the second half alone: %.0f B)" % (opened, per, marginal))
    finally:
        for f in procs:
            f.stdin.close()
        for f in procs:
            f.wait(60)
        stop(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--only", choices=["throughput", "memory"])
    a = ap.parse_args()
    subprocess.run([NETNS, "up"], check=True)
    if a.only == "memory":
        with tempfile.TemporaryDirectory() as tmp:
            memory(tmp)
        return
    subprocess.run(["ip", "addr", "replace", URING_IP + "/24", "dev", "duro-dpdk0"], check=True)
    scen = {
        "memcounter": ["--conns", "64", "--method", "POST", "--prefix", "/memcounter/", "--names", "1000"],
        "counter": ["--conns", "64", "--method", "POST", "--prefix", "/counter/", "--names", "1000"],
        "broadcast": ["--ws", "/room/bench", "--conns", "200", "--pipeline", "4"],
    }
    res = {b: {s: [] for s in scen} for b in ("uring", "dpdk")}
    port = 18800
    try:
        for run in range(a.runs):
            with tempfile.TemporaryDirectory() as tmp:
                for backend in ("uring", "dpdk"):
                    port += 1
                    p, host = start(backend, tmp, port)
                    try:
                        for s, extra in scen.items():
                            r = bench(host, port, extra, a.seconds)
                            res[backend][s].append(r)
                            print(json.dumps({"run": run, "backend": backend, "scenario": s, **r}),
                                  flush=True)
                    finally:
                        stop(p)
    finally:
        subprocess.run(["ip", "addr", "del", URING_IP + "/24", "dev", "duro-dpdk0"])
    key = {"memcounter": "rps", "counter": "rps", "broadcast": "deliveries_per_s"}
    print("\nmedians over %d runs (one server core, af_packet on veth, clients in duro-client):" % a.runs)
    for s in scen:
        u = [r.get(key[s], r.get("rps", 0)) for r in res["uring"][s]]
        d = [r.get(key[s], r.get("rps", 0)) for r in res["dpdk"][s]]
        ratios = [x / y for x, y in zip(d, u) if y]
        p99 = statistics.median(r.get("p99_us", 0) for r in res["dpdk"][s]) / 1000
        print("  %-10s uring %10.0f/s  dpdk %10.0f/s  dpdk/uring %.2f (median of per-run ratios)"
              "  dpdk p99 %.2f ms" % (s, statistics.median(u), statistics.median(d),
                                      statistics.median(ratios) if ratios else 0, p99))
    out = [subprocess.run([STACK_CYCLES], capture_output=True, text=True).stdout.strip()
           for _ in range(a.runs)]
    for line in out:
        print("  " + line)
    if a.only != "throughput":
        with tempfile.TemporaryDirectory() as tmp:
            memory(tmp)


if __name__ == "__main__":
    main()
