#!/usr/bin/python3
"""Calls between objects: calls per second and round-trip latency of duro_call, caller and
callee on one core and on two, in memory (/nop) and with a durable write per call (/seq),
and the full-size ordering check (100,000 numbered calls over 16 pairs on both cores).

Runs the release build's durod-test (TestCall, tests/classes/test_call.c): each scenario
is one HTTP request that makes a caller object run a storm of calls inside durod, so
the figures are the runtime's, not an HTTP client's.

    bench/calls.py [--runs 3] [--calls 200000] [--window 256] [--only a,b] [--durod PATH]
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = {
    "durable_objects": {"bindings": [{"name": "CALL", "class_name": "TestCall"}]},
    "migrations": [{"tag": "calls-v1", "new_classes": ["TestCall"]}],
    "routes": [{"prefix": "/call/", "binding": "CALL", "id": "name"}],
    "calls": {"max_pending": 65536, "max_queue": 65536},
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Durod:
    def __init__(self, binary, cores, tmp):
        self.port = free_port()
        self.data = os.path.join(tmp, "data-%d" % self.port)
        cfg = os.path.join(tmp, "duro-%d.json" % self.port)
        with open(cfg, "w") as f:
            json.dump(CONFIG, f)
        self.log = open(os.path.join(tmp, "durod-%d.log" % self.port), "w")
        self.proc = subprocess.Popen([binary, "--config", cfg, "--data-dir", self.data, "--cores",
                                      str(cores), "--listen", "127.0.0.1:%d" % self.port],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit("durod exited: see " + self.log.name)
                time.sleep(0.05)
        raise SystemExit("durod did not start")

    def req(self, method, path, timeout=600):
        r = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(r, timeout=timeout) as resp:
            return resp.read().decode()

    def control(self, req):
        s = socket.socket(socket.AF_UNIX)
        s.connect(os.path.join(self.data, "control.sock"))
        s.sendall(json.dumps(req).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        return json.loads(data)

    def core_of(self, name):
        self.req("GET", "/call/%s/id" % name)
        return self.control({"cmd": "object", "binding": "CALL", "name": name})["core"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def names_on(d, core, prefix, count):
    out, i = [], 0
    while len(out) < count:
        n = "%s%d" % (prefix, i)
        if d.core_of(n) == core:
            out.append(n)
        i += 1
    return out


def storm(d, caller, targets, n, window, op, run):
    q = "targets=%s&n=%d&window=%d&op=%s&run=%s" % (",".join(targets), n, window, op, run)
    r = json.loads(d.req("POST", "/call/%s/storm?%s" % (caller, q)))
    if r["failed"] or r["ok"] != n:
        raise SystemExit("storm failed: %r" % r)
    return {"calls_per_s": n / (r["elapsed_ns"] / 1e9), "p50_us": r["p50_us"], "p99_us": r["p99_us"]}


def scenario(binary, cores, tmp, caller_core, callee_core, n, window, op, runs):
    out = []
    for run in range(runs):
        d = Durod(binary, cores, tmp)
        try:
            caller = names_on(d, caller_core, "caller", 1)[0]
            callee = names_on(d, callee_core, "callee", 1)[0]
            storm(d, caller, [callee], min(n, 5000), window, op, "warm%d" % run)  # warm-up
            tput = storm(d, caller, [callee], n, window, op, "t%d" % run)
            rtt = storm(d, caller, [callee], min(n, 20000), 1, op, "r%d" % run)
            out.append({"calls_per_s": tput["calls_per_s"], "p50_us": tput["p50_us"],
                        "p99_us": tput["p99_us"], "rtt_p50_us": rtt["p50_us"], "rtt_p99_us": rtt["p99_us"]})
        finally:
            d.stop()
    med = {k: statistics.median(r[k] for r in out) for k in out[0]}
    return med, out


def ordering(binary, tmp, total):
    d = Durod(binary, 2, tmp)
    try:
        callers = names_on(d, 0, "oc", 2) + names_on(d, 1, "oc", 2)
        callees = names_on(d, 0, "ot", 2) + names_on(d, 1, "ot", 2)
        per = total // len(callers)
        import threading
        res = {}

        def go(c):
            q = "targets=%s&n=%d&window=128&op=seq&run=full" % (",".join(callees), per)
            res[c] = json.loads(d.req("POST", "/call/%s/storm?%s" % (c, q)))

        t0 = time.time()
        ts = [threading.Thread(target=go, args=(c,)) for c in callers]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        elapsed = time.time() - t0
        bad = []
        for c in callers:
            cid = d.req("GET", "/call/%s/id" % c)
            for t in callees:
                got = d.req("GET", "/call/%s/check?caller=%s&run=full" % (t, cid))
                if got != "last=%d bad=0" % (per // len(callees)):
                    bad.append((c, t, got))
        ok = sum(r["ok"] for r in res.values())
        return {"calls": per * len(callers), "answered": ok, "pairs": len(callers) * len(callees),
                "pairs_wrong": bad, "seconds": round(elapsed, 2),
                "durable_calls_per_s": round(ok / elapsed)}
    finally:
        d.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--calls", type=int, default=200000)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--order-calls", type=int, default=100000)
    ap.add_argument("--only", default="one,two,durable,order")
    ap.add_argument("--durod", default=os.path.join(ROOT, "build", "tests", "durod-test"))
    a = ap.parse_args()
    only = set(a.only.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        if "one" in only:
            med, runs = scenario(a.durod, 1, tmp, 0, 0, a.calls, a.window, "nop", a.runs)
            print(json.dumps({"scenario": "one core, in memory", **{k: round(v, 1) for k, v in med.items()}, "runs": runs}))
        if "two" in only:
            med, runs = scenario(a.durod, 2, tmp, 0, 1, a.calls, a.window, "nop", a.runs)
            print(json.dumps({"scenario": "two cores, in memory", **{k: round(v, 1) for k, v in med.items()}, "runs": runs}))
        if "durable" in only:
            med, runs = scenario(a.durod, 2, tmp, 0, 1, a.calls // 4, a.window, "seq", a.runs)
            print(json.dumps({"scenario": "two cores, a durable write per call", **{k: round(v, 1) for k, v in med.items()}, "runs": runs}))
        if "order" in only:
            r = ordering(a.durod, tmp, a.order_calls)
            print(json.dumps({"scenario": "ordering, full size", **r}))
            if r["pairs_wrong"] or r["answered"] != r["calls"]:
                sys.exit(1)


if __name__ == "__main__":
    main()
