#!/usr/bin/python3
"""Outbound fetch against inbound requests, in the same run.

The origin is a durod on one core (CPU 1) serving GET /memcounter/hot. Inbound: durobench on
CPU 0, 64 keep-alive connections, for --seconds. Outbound: a durod-test on one core (CPU 0)
whose TestCall object keeps 64 duro_fetch calls of the same URL in flight (one storm of
--fetches), over the core's keep-alive pool. Both load the same origin from the same CPU,
so the ratio says how the fetch path (gate, pool, client parser, done() events) compares
with a C load generator. Runs interleaved, medians printed.

    bench/fetch.py [--runs 3] [--seconds 5] [--fetches 200000] [--window 64]
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DUROD = os.path.join(ROOT, "build", "control", "durod")
DUROD_TEST = os.path.join(ROOT, "build", "tests", "durod-test")
BENCH = os.path.join(ROOT, "build", "bench", "durobench")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d never opened" % port)


def start(binary, cpu, port, tmp, config):
    data = os.path.join(tmp, "data-%d" % port)
    cfg = os.path.join(tmp, "cfg-%d.json" % port)
    with open(cfg, "w") as f:
        json.dump(config, f)
    log = open(os.path.join(tmp, "log-%d" % port), "w")
    p = subprocess.Popen(["taskset", "-c", cpu, binary, "--config", cfg, "--data-dir", data, "--cores", "1",
                          "--listen", "127.0.0.1:%d" % port], stdout=log, stderr=subprocess.STDOUT)
    wait_port(port)
    return p


def stop(p):
    p.terminate()
    p.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--fetches", type=int, default=200000)
    ap.add_argument("--window", type=int, default=64)
    a = ap.parse_args()
    inbound, outbound = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(a.runs):
            oport = free_port()
            origin = start(DUROD, "1", oport, tmp, {})
            try:
                out = subprocess.run(["taskset", "-c", "0", BENCH, "--port", str(oport), "--conns", str(a.window),
                                      "--method", "GET", "--prefix", "/memcounter/", "--names", "0",
                                      "--duration", str(a.seconds), "--warmup", "1"],
                                     capture_output=True, text=True, check=True).stdout
                inbound.append(json.loads(out)["rps"])
                fport = free_port()
                cfg = {"durable_objects": {"bindings": [{"name": "CALL", "class_name": "TestCall"}]},
                       "migrations": [{"tag": "c1", "new_classes": ["TestCall"]}],
                       "routes": [{"prefix": "/call/", "binding": "CALL", "id": "name"}],
                       "calls": {"max_pending": 65536},
                       "outbound": {"allow": ["http://127.0.0.1:%d" % oport], "max_per_object": 4096,
                                    "max_idle_per_core": 4096}}
                fetcher = start(DUROD_TEST, "0", fport, tmp, cfg)
                try:
                    url = ("http://127.0.0.1:%d/memcounter/hot" % oport).encode()

                    def storm(n):
                        r = urllib.request.Request("http://127.0.0.1:%d/call/f/storm?n=%d&window=%d" % (fport, n, a.window),
                                                   data=url, method="POST")
                        with urllib.request.urlopen(r, timeout=600) as resp:
                            return json.loads(resp.read())

                    storm(min(a.fetches, 5000))  # warm-up: the pool fills
                    res = storm(a.fetches)
                    if res["failed"] or res["non200"]:
                        raise SystemExit("fetches failed: %r" % res)
                    outbound.append(res["n"] / (res["elapsed_ns"] / 1e9))
                    print(json.dumps({"run": run, "inbound_rps": round(inbound[-1]), "fetch_rps": round(outbound[-1]),
                                      "fetch_p50_us": res["p50_us"], "fetch_p99_us": res["p99_us"]}), flush=True)
                finally:
                    stop(fetcher)
            finally:
                stop(origin)
    i, o = statistics.median(inbound), statistics.median(outbound)
    print(json.dumps({"inbound_rps_median": round(i), "fetch_rps_median": round(o), "ratio": round(o / i, 2)}))


if __name__ == "__main__":
    main()
