"""The dpdk backend beside the uring backend over the same veth (scripts/netns-dpdk.sh),
durod on one core (CPU 0), the same load generator (durobench on CPU 1, the kernel's TCP)
in the client namespace for both, in the same run, backends alternating:

  broadcast   1,000 members of one room, one sending 2,000 messages of 64 bytes with 8
              in flight, every message checked at every member (order and bytes)
  memcounter  64 connections, POST /memcounter/n<i> (1,000 names, in memory)
  counter     64 connections, POST /counter/n<i> (durable)

For each: deliveries or requests per second, p50/p99, the stack's retransmissions by kind
and every drop (port and stack), and the server's cycles per delivery or request (durod's
busy time, kernel work in its system calls included, times the CPU clock). Ratios are
taken within each run; the summary gives their median. Then the stack's own cycles per
packet and per broadcast delivery (bench/stack_cycles).

The topology's names come from the environment as for scripts/netns-dpdk.sh
(DURO_NETNS, DURO_NETNS_HOST_IF, DURO_NETNS_SUBNET).

Usage (root): bench/dpdk.sh [--runs N] [--seconds S] [--members N] [--messages N]
              [--only throughput|memory]"""
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
DUROCTL = os.path.join(os.path.dirname(DUROD), "duroctl")
STACK_CYCLES = os.path.join(os.path.dirname(BENCH), "stack_cycles")
NS = os.environ.get("DURO_NETNS", "duro-client")
HOST_IF = os.environ.get("DURO_NETNS_HOST_IF", "duro-dpdk0")
SUBNET = os.environ.get("DURO_NETNS_SUBNET", "10.77.0")
DPDK_IP, URING_IP, CLIENT_IP = SUBNET + ".1", SUBNET + ".3", SUBNET + ".2"  # .3: the kernel's, for uring
KINDS = ("tcp_retransmits_timeout", "tcp_retransmits_fast", "tcp_retransmits_rack",
         "tcp_retransmits_tlp", "tcp_tlp_probes", "tcp_dsacks", "tcp_spurious_rtos")
DROPS = ("port_rx_missed", "port_rx_errors", "port_rx_nombuf", "port_tx_errors", "drop_tx_full",
         "drop_no_mbuf", "drop_steer_full", "tx_deferred")


def in_ns(cmd):
    return ["ip", "netns", "exec", NS] + cmd


def cpu_ghz():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1]) / 1000
    return 0.0


def start(backend, tmp, port, config=None):
    data = os.path.join(tmp, "%s-%d" % (backend, port))
    args = ["taskset", "-c", "0", DUROD, "--cores", "1", "--data-dir", data]
    if config:
        cfg = os.path.join(tmp, "cfg-%d.json" % port)
        with open(cfg, "w") as f:
            json.dump(config, f)
        args += ["--config", cfg]
    if backend == "dpdk":
        args += ["--backend", "dpdk", "--dpdk-vdev", "net_af_packet0,iface=%s,qpairs=1" % HOST_IF,
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
            return p, host, data
        time.sleep(0.1)
    p.kill()
    raise RuntimeError("durod (%s) did not come up" % backend)


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def stats(data):
    out = subprocess.run([DUROCTL, "--json", "--socket", os.path.join(data, "control.sock"),
                          "stats"], capture_output=True, text=True, timeout=10)
    t = json.loads(out.stdout)["total"]
    return t["busy_ns"], t.get("stack", {})


def bench(host, port, extra, seconds):
    cmd = in_ns(["taskset", "-c", "1", BENCH, "--host", host, "--port", str(port)] + extra)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 180)
    if out.returncode != 0:
        raise RuntimeError("durobench %s: %s %s" % (" ".join(extra), out.stdout, out.stderr))
    return json.loads(out.stdout)


def scenario(name, host, port, data, a):
    """One scenario against a running durod: the client's figures, with the server's busy
    time and stack counters over it (snapshots trail by 100 ms: settle first)."""
    time.sleep(0.3)
    busy0, st0 = stats(data)
    if name == "broadcast":
        r = bench(host, port, ["--ws", "/room/bench%d" % port, "--conns", str(a.members),
                               "--pipeline", "8", "--messages", str(a.messages), "--verify",
                               "--duration", "300"], 300)
        assert r["verify_errors"] == 0 and r["members_complete"] == a.members, r
        rate, units = r["deliveries_per_s"], r["deliveries"]
    else:
        prefix = "/memcounter/" if name == "memcounter" else "/counter/"
        r = bench(host, port, ["--conns", "64", "--method", "POST", "--prefix", prefix,
                               "--names", "1000", "--duration", str(a.seconds), "--warmup", "1"],
                  a.seconds)
        rate, units = r["rps"], r["requests"] * (a.seconds + 1) / a.seconds  # warmup too
    time.sleep(0.3)
    busy1, st1 = stats(data)
    r["rate"] = rate
    r["ns_per"] = (busy1 - busy0) / max(units, 1)
    r["cycles_per"] = r["ns_per"] * cpu_ghz()
    r["retransmits"] = {k: st1.get(k, 0) - st0.get(k, 0) for k in KINDS}
    r["drops"] = {k: st1.get(k, 0) - st0.get(k, 0) for k in DROPS}
    return r


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
                          "net_af_packet0,iface=%s,qpairs=1" % HOST_IF, "--dpdk-ipv4",
                          DPDK_IP + "/24", "--listen", "%s:%d" % (DPDK_IP, port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    env = dict(os.environ, WSFLOOD_HOST=DPDK_IP)
    procs = []
    try:
        time.sleep(2)

        def flood(path, n):
            f = subprocess.Popen(in_ns(["/usr/bin/python3", FLOOD, str(port), path, str(n), CLIENT_IP]),
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
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--only", choices=["throughput", "memory"])
    a = ap.parse_args()
    subprocess.run([NETNS, "up"], check=True)
    if a.only == "memory":
        with tempfile.TemporaryDirectory() as tmp:
            memory(tmp)
        return
    subprocess.run(["ip", "addr", "replace", URING_IP + "/24", "dev", HOST_IF], check=True)
    scen = ("broadcast", "memcounter", "counter")
    res = {b: {s: [] for s in scen} for b in ("uring", "dpdk")}
    port = 18800
    try:
        for run in range(a.runs):
            with tempfile.TemporaryDirectory() as tmp:
                for backend in ("uring", "dpdk") if run % 2 == 0 else ("dpdk", "uring"):
                    port += 1
                    p, host, data = start(backend, tmp, port)
                    try:
                        for s in scen:
                            r = scenario(s, host, port, data, a)
                            res[backend][s].append(r)
                            print(json.dumps({"run": run, "backend": backend, "scenario": s,
                                              "rate": r["rate"], "p50_us": r["p50_us"],
                                              "p99_us": r["p99_us"], "cycles_per": round(r["cycles_per"]),
                                              "retransmits": r["retransmits"], "drops": r["drops"]}),
                                  flush=True)
                    finally:
                        stop(p)
    finally:
        subprocess.run(["ip", "addr", "del", URING_IP + "/24", "dev", HOST_IF])
    med = statistics.median
    print("\nmedians over %d runs (one server core on CPU 0, af_packet on veth, durobench on "
          "CPU 1 in %s; ratios are medians of same-run ratios):" % (a.runs, NS))
    for s in scen:
        u, d = res["uring"][s], res["dpdk"][s]
        ratios = [x["rate"] / y["rate"] for x, y in zip(d, u) if y["rate"]]
        p99r = [x["p99_us"] / y["p99_us"] for x, y in zip(d, u) if y["p99_us"]]
        unit = "deliveries/s" if s == "broadcast" else "req/s"
        print("  %-10s uring %9.0f %s p50 %.2f p99 %.2f ms, %.0f cycles each | dpdk %9.0f p50 %.2f "
              "p99 %.2f ms, %.0f cycles each | dpdk/uring %.2f, p99 ratio %.2f" % (
                  s, med(x["rate"] for x in u), unit, med(x["p50_us"] for x in u) / 1e3,
                  med(x["p99_us"] for x in u) / 1e3, med(x["cycles_per"] for x in u),
                  med(x["rate"] for x in d), med(x["p50_us"] for x in d) / 1e3,
                  med(x["p99_us"] for x in d) / 1e3, med(x["cycles_per"] for x in d),
                  med(ratios) if ratios else 0, med(p99r) if p99r else 0))
        tot = {k: sum(x["retransmits"][k] for x in d) for k in KINDS}
        drops = {k: sum(x["drops"][k] for x in d) for k in DROPS}
        print("             dpdk retransmissions (all runs): %s" % " ".join(
            "%s=%d" % (k.replace("tcp_", ""), v) for k, v in tot.items()))
        print("             dpdk drops (all runs): %s" % " ".join(
            "%s=%d" % (k, v) for k, v in drops.items()))
    for _ in range(a.runs):
        out = subprocess.run([STACK_CYCLES], capture_output=True, text=True).stdout.strip()
        for line in out.splitlines():
            print("  " + line)
    if a.only != "throughput":
        with tempfile.TemporaryDirectory() as tmp:
            memory(tmp)


if __name__ == "__main__":
    main()
