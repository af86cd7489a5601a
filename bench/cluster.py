#!/usr/bin/python3
"""Routing between boxes: one object's requests through its owner box against the same
requests through the other box, which forwards them to the owner (cluster mode).

One etcd member and two durods on one core each (box a on CPU 0, box b on CPU 1), the
MemCounter object /memcounter/hot (in memory: the figure is the routing's, not the
disk's). durobench, unpinned, keeps --conns keep-alive connections busy on the owner
("direct") then on the other box ("forwarded"), interleaved in each run; medians printed,
and the ratio of forwarded to direct p50 from each run.

    bench/cluster.py [--runs 3] [--seconds 5] [--conns 16] [--method GET]
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DUROD = os.path.join(ROOT, "build", "control", "durod")
BENCH = os.path.join(ROOT, "build", "bench", "durobench")
ETCD = shutil.which("etcd")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def wait(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        try:
            v = pred()
            if v:
                return v
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("timed out waiting for " + what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--method", default="GET")
    ap.add_argument("--spin-us", type=int, default=None, help="idle_spin_us of both boxes")
    a = ap.parse_args()
    if not ETCD:
        raise SystemExit("etcd-server is not installed (scripts/setup.sh installs it)")
    tmp = tempfile.mkdtemp(prefix="duro-bench-cluster-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    procs = []
    try:
        ec, ep = free_port(), free_port()
        etcd_url = "http://127.0.0.1:%d" % ec
        procs.append(subprocess.Popen(
            [ETCD, "--name", "e0", "--data-dir", os.path.join(tmp, "etcd"), "--listen-client-urls", etcd_url,
             "--advertise-client-urls", etcd_url, "--listen-peer-urls", "http://127.0.0.1:%d" % ep,
             "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % ep,
             "--initial-cluster", "e0=http://127.0.0.1:%d" % ep],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ports = {}
        for name, cpu in (("a", "0"), ("b", "1")):
            port = free_port()
            d = os.path.join(tmp, name)
            os.makedirs(d)
            cfg = {"listeners": ["127.0.0.1:%d" % port], "data_dir": d, "cores": 1,
                   **({"idle_spin_us": a.spin_us} if a.spin_us is not None else {}),
                   "cluster": {"name": "bench", "etcd": [etcd_url], "box": name, "lease_ttl_ms": 2000,
                               "rebalance_interval_ms": 300, "settle_ms": 1000}}
            with open(os.path.join(d, "duro.json"), "w") as f:
                json.dump(cfg, f)
            log = open(os.path.join(d, "log"), "w")
            procs.append(subprocess.Popen(["taskset", "-c", cpu, DUROD, "--config", os.path.join(d, "duro.json")],
                                          stdout=log, stderr=subprocess.STDOUT))
            ports[name] = port
        path = "/memcounter/hot"
        # settled: both boxes answer it, one of them by forwarding to the other
        def owner():
            s1, h1, _ = get(ports["a"], path)
            s2, h2, _ = get(ports["b"], path)
            if s1 != 200 or s2 != 200:
                return None
            fa, fb = h1.get("Duro-Forwarded-To"), h2.get("Duro-Forwarded-To")
            return fb if fb and not fa else fa if fa and not fb else None
        own = wait(owner, 60, "both boxes serving, one forwarding to the other")
        other = "a" if own == "b" else "b"
        print(json.dumps({"owner": own, "forwarder": other}), flush=True)

        def bench(port):
            out = subprocess.run([BENCH, "--port", str(port), "--conns", str(a.conns), "--method", a.method,
                                  "--prefix", "/memcounter/", "--names", "0", "--duration", str(a.seconds),
                                  "--warmup", "1"], capture_output=True, text=True, check=True).stdout
            return json.loads(out)

        res = {"direct": [], "forwarded": []}
        ratios = []
        for run in range(a.runs):
            d = bench(ports[own])
            f = bench(ports[other])
            res["direct"].append(d)
            res["forwarded"].append(f)
            ratios.append(f["p50_us"] / d["p50_us"])
            print(json.dumps({"run": run, "direct": {k: d[k] for k in ("rps", "p50_us", "p99_us")},
                              "forwarded": {k: f[k] for k in ("rps", "p50_us", "p99_us")},
                              "p50_ratio": round(ratios[-1], 2)}), flush=True)
        summary = {}
        for k, rs in res.items():
            summary[k] = {m: round(statistics.median(r[m] for r in rs)) for m in ("rps", "p50_us", "p99_us")}
        summary["p50_ratio_median"] = round(statistics.median(ratios), 2)
        print(json.dumps(summary))
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
