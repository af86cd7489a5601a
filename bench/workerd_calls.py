#!/usr/bin/python3
"""Object-to-object calls on workerd (Cloudflare's open-source Durable Objects runtime, npm
`workerd`, installed into .cache/workerd as bench/workerd.sh of the SQL work does) beside
duro's, in the same run: a Caller object keeps --window calls in flight to one Callee
until --calls are answered; workerd's event loop and duro's one core both on CPU 0.

    bench/workerd_calls.py [--runs 3] [--calls 200000] [--window 64]
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

import calls

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKERD = os.path.join(ROOT, ".cache", "workerd", "node_modules", ".bin", "workerd")
HERE = os.path.join(ROOT, "bench", "workerd_calls")


def workerd_storm(n, window, mode):
    port = calls.free_port()
    with open(os.path.join(HERE, "config.capnp.in")) as f:
        cfg = f.read().replace("@ADDR@", "127.0.0.1:%d" % port)
    cfg_path = os.path.join(HERE, ".bench-%d.capnp" % port)  # beside calls.js (embed)
    with open(cfg_path, "w") as f:
        f.write(cfg)
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(["taskset", "-c", "0", WORKERD, "serve", cfg_path], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    log.seek(0)
                    raise SystemExit("workerd did not start: " + log.read().decode(errors="replace")[-2000:])
                time.sleep(0.05)

        def storm(k):
            url = "http://127.0.0.1:%d/storm?n=%d&window=%d&mode=%s" % (port, k, window, mode)
            with urllib.request.urlopen(url, timeout=900) as r:
                return json.loads(r.read())

        storm(min(n, 5000))  # warm-up
        r = storm(n)
        if r["failed"] or r["done"] != n:
            raise SystemExit("workerd storm failed: %r" % r)
        return n / (r["elapsed_ms"] / 1000)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.unlink(cfg_path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--calls", type=int, default=200000)
    ap.add_argument("--window", type=int, default=64)
    a = ap.parse_args()
    res = {"duro": [], "workerd-fetch": [], "workerd-rpc": []}
    durod = os.path.join(ROOT, "build", "tests", "durod-test")
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(a.runs):
            d = calls.Durod(durod, 1, tmp)
            try:
                # One core: pin its reactor (lcore 0 runs on CPU 0, as workerd's loop).
                caller = calls.names_on(d, 0, "caller", 1)[0]
                callee = calls.names_on(d, 0, "callee", 1)[0]
                calls.storm(d, caller, [callee], min(a.calls, 5000), a.window, "nop", "w%d" % run)
                res["duro"].append(calls.storm(d, caller, [callee], a.calls, a.window, "nop", "r%d" % run)["calls_per_s"])
            finally:
                d.stop()
            res["workerd-fetch"].append(workerd_storm(a.calls, a.window, "fetch"))
            res["workerd-rpc"].append(workerd_storm(a.calls, a.window, "rpc"))
            print(json.dumps({"run": run, **{k: round(v[-1]) for k, v in res.items()}}), flush=True)
    med = {k: statistics.median(v) for k, v in res.items()}
    print(json.dumps({"median": {k: round(v) for k, v in med.items()},
                      "duro_over_workerd_fetch": round(med["duro"] / med["workerd-fetch"], 1),
                      "duro_over_workerd_rpc": round(med["duro"] / med["workerd-rpc"], 1)}))


if __name__ == "__main__":
    main()
