#!/usr/bin/python3
"""Outbound fetch over the dpdk backend, beside uring and the inbound rate, same origin,
same run (root; the topology of scripts/netns-dpdk.sh).

The origin is a durod (uring, one core, CPU 1) in the client namespace on the client's
address, serving GET /memcounter/hot. Each run measures, in turn:
  inbound   durobench in the client namespace (CPU 0), 64 keep-alive connections, --seconds
  uring     a durod-test (uring, one core, CPU 0) in the client namespace whose TestCall
            object keeps --window duro_fetch calls of /memcounter/hot in flight
  dpdk      the same durod-test on the dpdk backend (af_packet on the veth, one core, CPU 0)
            in durod's namespace: every fetch crosses the veth through the stack's dials
Each fetcher first runs a warm-up storm (its keep-alive pool fills), then --fetches.
Medians printed; the ratios are taken within each run.

    bench/fetch_dpdk.py [--runs 3] [--seconds 5] [--fetches 50000] [--window 64]
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DUROD = os.path.join(ROOT, "build", "control", "durod")
DUROD_TEST = os.path.join(ROOT, "build", "tests", "durod-test")
BENCH = os.path.join(ROOT, "build", "bench", "durobench")
NETNS = os.path.join(ROOT, "scripts", "netns-dpdk.sh")
NS = os.environ.get("DURO_NETNS", "duro-client")
HOST_NS = os.environ.get("DURO_NETNS_HOST", "duro-host")
HOST_IF = os.environ.get("DURO_NETNS_HOST_IF", "duro-dpdk0")
SUBNET = os.environ.get("DURO_NETNS_SUBNET", "10.77.0")
CLIENT = SUBNET + ".2"
FETCHER = SUBNET + ".5"  # the dpdk durod-test's own address

CONFIG = {"durable_objects": {"bindings": [{"name": "CALL", "class_name": "TestCall"}]},
          "migrations": [{"tag": "c1", "new_classes": ["TestCall"]}],
          "routes": [{"prefix": "/call/", "binding": "CALL", "id": "name"}],
          "calls": {"max_pending": 65536}}


def in_ns(ns):
    return ["ip", "netns", "exec", ns]


def wait_http(host, port, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        r = subprocess.run(in_ns(NS) + ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                        "http://%s:%d/memcounter/warm" % (host, port)],
                           capture_output=True, text=True)
        if r.stdout.strip() in ("200", "404"):
            return
        time.sleep(0.2)
    raise RuntimeError("%s:%d never answered" % (host, port))


def start(cmd, tmp, name, config, extra):
    data = os.path.join(tmp, "data-" + name)
    cfg = os.path.join(tmp, "cfg-%s.json" % name)
    with open(cfg, "w") as f:
        json.dump(config, f)
    log = open(os.path.join(tmp, "log-" + name), "w")
    return subprocess.Popen(cmd + ["--config", cfg, "--data-dir", data, "--cores", "1"] + extra,
                            stdout=log, stderr=subprocess.STDOUT)


def stop(p):
    p.terminate()
    p.wait(timeout=60)


def storm(host, port, url, n, window):
    out = subprocess.run(in_ns(NS) + ["curl", "-s", "--max-time", "600", "--data-binary", url,
                                      "http://%s:%d/call/f/storm?n=%d&window=%d" % (host, port, n, window)],
                         capture_output=True, text=True, check=True).stdout
    res = json.loads(out)
    if res["failed"] or res["non200"]:
        raise SystemExit("fetches failed: %r" % res)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--fetches", type=int, default=50000)
    ap.add_argument("--window", type=int, default=64)
    a = ap.parse_args()
    subprocess.run([NETNS, "up"], check=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(a.runs):
            oport = 20000 + run
            origin = start(in_ns(NS) + ["taskset", "-c", "1", DUROD], tmp, "origin%d" % run, {},
                           ["--listen", "%s:%d" % (CLIENT, oport)])
            try:
                wait_http(CLIENT, oport)
                out = subprocess.run(in_ns(NS) + ["taskset", "-c", "0", BENCH, "--host", CLIENT, "--port", str(oport),
                                                  "--conns", str(a.window), "--method", "GET", "--prefix", "/memcounter/",
                                                  "--names", "0", "--duration", str(a.seconds), "--warmup", "1"],
                                     capture_output=True, text=True, check=True).stdout
                row = {"run": run, "inbound_rps": round(json.loads(out)["rps"])}
                url = "http://%s:%d/memcounter/hot" % (CLIENT, oport)
                cfg = dict(CONFIG, outbound={"allow": ["http://%s:%d" % (CLIENT, oport)],
                                             "max_per_object": 4096, "max_idle_per_core": 4096})
                for kind in ("uring", "dpdk"):
                    fport = 21000 + run
                    if kind == "uring":
                        host = CLIENT
                        p = start(in_ns(NS) + ["taskset", "-c", "0", DUROD_TEST], tmp, "%s%d" % (kind, run), cfg,
                                  ["--listen", "%s:%d" % (host, fport)])
                    else:
                        host = FETCHER
                        p = start(in_ns(HOST_NS) + ["taskset", "-c", "0", DUROD_TEST], tmp, "%s%d" % (kind, run), cfg,
                                  ["--listen", "%s:%d" % (host, fport), "--backend", "dpdk",
                                   "--dpdk-vdev", "net_af_packet0,iface=%s,qpairs=1" % HOST_IF,
                                   "--dpdk-ipv4", host + "/24"])
                    try:
                        wait_http(host, fport)
                        storm(host, fport, url, min(a.fetches, 5000), a.window)  # warm-up: the pool fills
                        res = storm(host, fport, url, a.fetches, a.window)
                        row[kind + "_fetch_rps"] = round(res["n"] / (res["elapsed_ns"] / 1e9))
                        row[kind + "_p50_us"], row[kind + "_p99_us"] = res["p50_us"], res["p99_us"]
                    finally:
                        stop(p)
                row["dpdk_vs_inbound"] = round(row["dpdk_fetch_rps"] / row["inbound_rps"], 2)
                row["dpdk_vs_uring"] = round(row["dpdk_fetch_rps"] / row["uring_fetch_rps"], 2)
                rows.append(row)
                print(json.dumps(row), flush=True)
            finally:
                stop(origin)
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "run"}
    print(json.dumps({"median": med}))


if __name__ == "__main__":
    main()
