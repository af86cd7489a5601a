#!/usr/bin/python3
"""Outbound fetch against inbound requests, in the same run.

The origin is a durod on one core (CPU 1) serving GET /memcounter/hot. Inbound: durobench on
CPU 0, 64 keep-alive connections, for --seconds in all. Outbound: a durod-test on one core
(CPU 0) whose TestCall object keeps 64 duro_fetch calls of the same URL in flight (--fetches
in all), over the core's keep-alive pool. Both load the same origin from the same CPU, so
the ratio says how the fetch path (gate, pool, client parser, done() events) compares with
a C load generator. Each run takes --rounds slices of each in turn (inbound, fetch,
inbound, ...: on a shared box the load changes within seconds, and a slow phase should
not land on one side only); a run's rate is its requests over its time. Medians printed.

Both durods run with idle_spin_us 0 (--spin-us changes it), as bench/run.py runs every
durod: a reactor that busy-polls while idle enters the kernel once per completion and sends
each request alone, so on this shared 2-CPU box a spinning fetcher made five io_uring_enter
calls per fetch against one per dozen without, and the origin saw requests one by one.
durobench blocks in epoll_wait; a fetcher that waits the same way is the like-for-like.

    bench/fetch.py [--runs 3] [--seconds 5] [--fetches 200000] [--window 64] [--spin-us 0] [--rounds 5]
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import urllib.request

from run import BENCH, DUROD, ROOT, cpu_seconds, free_port, wait_port

DUROD_TEST = os.path.join(ROOT, "build", "tests", "durod-test")


def start(binary, cpu, port, tmp, config):
    data = os.path.join(tmp, "data-%d" % port)
    cfg = os.path.join(tmp, "cfg-%d.json" % port)
    with open(cfg, "w") as f:
        json.dump(config, f)
    log = open(os.path.join(tmp, "log-%d" % port), "w")
    p = subprocess.Popen(["taskset", "-c", cpu, binary, "--config", cfg, "--data-dir", data, "--cores", "1",
                          "--listen", "127.0.0.1:%d" % port], stdout=log, stderr=subprocess.STDOUT)
    wait_port(port, timeout=30)
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
    ap.add_argument("--spin-us", type=int, default=0, help="idle_spin_us of both durods")
    ap.add_argument("--rounds", type=int, default=5, help="inbound and fetch slices per run, in turn")
    a = ap.parse_args()
    inbound, outbound, ratios = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(a.runs):
            oport = free_port()
            origin = start(DUROD, "1", oport, tmp, {"idle_spin_us": a.spin_us})
            try:
                fport = free_port()
                cfg = {"durable_objects": {"bindings": [{"name": "CALL", "class_name": "TestCall"}]},
                       "migrations": [{"tag": "c1", "new_classes": ["TestCall"]}],
                       "routes": [{"prefix": "/call/", "binding": "CALL", "id": "name"}],
                       "calls": {"max_pending": 65536},
                       "outbound": {"allow": ["http://127.0.0.1:%d" % oport], "max_per_object": 4096,
                                    "max_idle_per_core": 4096},
                       "idle_spin_us": a.spin_us}
                fetcher = start(DUROD_TEST, "0", fport, tmp, cfg)
                try:
                    url = ("http://127.0.0.1:%d/memcounter/hot" % oport).encode()

                    def storm(n):
                        r = urllib.request.Request("http://127.0.0.1:%d/call/f/storm?n=%d&window=%d" % (fport, n, a.window),
                                                   data=url, method="POST")
                        with urllib.request.urlopen(r, timeout=600) as resp:
                            return json.loads(resp.read())

                    def inbound_slice(seconds, warmup):
                        """durobench's summary, with its CPU time (user and system) in cpu_s."""
                        p = subprocess.Popen(["taskset", "-c", "0", BENCH, "--port", str(oport), "--conns", str(a.window),
                                              "--method", "GET", "--prefix", "/memcounter/", "--names", "0",
                                              "--duration", str(seconds), "--warmup", str(warmup)],
                                             stdout=subprocess.PIPE, text=True)
                        out = p.stdout.read()
                        _, status, ru = os.wait4(p.pid, 0)
                        if status:
                            raise SystemExit("durobench failed")
                        res = json.loads(out)
                        res["cpu_s"] = ru.ru_utime + ru.ru_stime
                        return res

                    storm(min(a.fetches, 5000))  # warm-up: the pool fills
                    inbound_slice(0.5, 0)        # and the origin's connections
                    # Slices in turn, so that a change of the machine's load hits both sides.
                    # CPU time per request, which the machine's load changes less than rates:
                    # the client's (durobench, or the fetching durod) and the origin's.
                    req = sec = n = ns = 0
                    cpu = {"bench": 0.0, "fetcher": 0.0, "origin_in": 0.0, "origin_out": 0.0}
                    p50, p99 = [], []
                    for _ in range(a.rounds):
                        o0 = cpu_seconds(origin.pid)
                        r = inbound_slice(a.seconds / a.rounds, 0)
                        cpu["origin_in"] += cpu_seconds(origin.pid) - o0
                        cpu["bench"] += r["cpu_s"]
                        req += r["requests"]
                        sec += r["seconds"]
                        o0, f0 = cpu_seconds(origin.pid), cpu_seconds(fetcher.pid)
                        res = storm(a.fetches // a.rounds)
                        cpu["origin_out"] += cpu_seconds(origin.pid) - o0
                        cpu["fetcher"] += cpu_seconds(fetcher.pid) - f0
                        if res["failed"] or res["non200"]:
                            raise SystemExit("fetches failed: %r" % res)
                        n += res["n"]
                        ns += res["elapsed_ns"]
                        p50.append(res["p50_us"])
                        p99.append(res["p99_us"])
                    inbound.append(req / sec)
                    outbound.append(n / (ns / 1e9))
                    print(json.dumps({"run": run, "inbound_rps": round(inbound[-1]), "fetch_rps": round(outbound[-1]),
                                      "ratio": round(outbound[-1] / inbound[-1], 2),
                                      "fetch_p50_us": statistics.median(p50),
                                      "fetch_p99_us": statistics.median(p99),
                                      "cpu_us_per_request": {"durobench": round(cpu["bench"] * 1e6 / req, 2),
                                                             "fetcher": round(cpu["fetcher"] * 1e6 / n, 2),
                                                             "origin_inbound": round(cpu["origin_in"] * 1e6 / req, 2),
                                                             "origin_fetch": round(cpu["origin_out"] * 1e6 / n, 2)}}),
                          flush=True)
                    ratios.append(outbound[-1] / inbound[-1])
                finally:
                    stop(fetcher)
            finally:
                stop(origin)
    print(json.dumps({"inbound_rps_median": round(statistics.median(inbound)),
                      "fetch_rps_median": round(statistics.median(outbound)),
                      "ratio_median": round(statistics.median(ratios), 2)}))


if __name__ == "__main__":
    main()
