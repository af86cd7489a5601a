#!/usr/bin/python3
"""Routing between boxes: one object's requests through its owner box against the same
requests through the other box, which forwards them to the owner (cluster mode).

One etcd member and two durods on one core each (box a on CPU 0, box b on CPU 1), the
MemCounter object /memcounter/hot (in memory: the figure is the routing's, not the
disk's). durobench, unpinned, keeps --conns keep-alive connections busy on the owner
("direct") then on the other box ("forwarded"), interleaved in each run; medians printed,
and the ratio of forwarded to direct p50 from each run.

    bench/cluster.py [--runs 3] [--seconds 5] [--conns 16] [--method GET] [--spin-us N] [--pipeline]

With --move N: a slot move with data. Boxes a and b share the slots; one KV object whose
slot the rendezvous target gives to a third box c gets N keys of 10 KB; then c joins and
the rebalancer moves about a third of the slots to it, that one among them. Printed: the
big slot's copy (records, bytes, ms, from c's log), the longest gap between answers that a
client reading the big object in a loop saw, and counter p50/p99 (durobench, --conns
connections over 1,000 counters through box a) in steady state against while slots move.

    bench/cluster.py --move 2000 [--seconds 5] [--conns 16]
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


def siphash24(key, data):
    """SipHash-2-4 as dataplane/base/siphash.c computes it (cluster_weight's)."""
    M = (1 << 64) - 1
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    v = [k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d, k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573]

    def rotl(x, b):
        return ((x << b) | (x >> (64 - b))) & M

    def rnd():
        v[0] = (v[0] + v[1]) & M; v[1] = rotl(v[1], 13); v[1] ^= v[0]; v[0] = rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & M; v[3] = rotl(v[3], 16); v[3] ^= v[2]
        v[0] = (v[0] + v[3]) & M; v[3] = rotl(v[3], 21); v[3] ^= v[0]
        v[2] = (v[2] + v[1]) & M; v[1] = rotl(v[1], 17); v[1] ^= v[2]; v[2] = rotl(v[2], 32)

    n = len(data)
    for i in range(0, n - n % 8, 8):
        m = int.from_bytes(data[i:i + 8], "little")
        v[3] ^= m
        rnd(); rnd()
        v[0] ^= m
    last = (n & 0xff) << 56 | int.from_bytes(data[n - n % 8:], "little")
    v[3] ^= last
    rnd(); rnd()
    v[0] ^= last
    v[2] ^= 0xff
    for _ in range(4):
        rnd()
    return (v[0] ^ v[1] ^ v[2] ^ v[3]) & M


def weight(box, slot):
    return siphash24(b"duro-slot-rendez", box.encode() + b"\0" + slot.to_bytes(4, "little"))


def target(boxes, slot):
    return max(sorted(boxes), key=lambda b: weight(b, slot))


def start_box(tmp, name, cpu, etcd_url, a, procs):
    port = free_port()
    d = os.path.join(tmp, name)
    os.makedirs(d)
    cfg = {"listeners": ["127.0.0.1:%d" % port], "data_dir": d, "cores": 1,
           **({"idle_spin_us": a.spin_us} if a.spin_us is not None else {}),
           "cluster": {"name": "bench", "etcd": [etcd_url], "box": name, "lease_ttl_ms": 2000,
                       "rebalance_interval_ms": 300, "settle_ms": 1000, "pipeline": a.pipeline}}
    with open(os.path.join(d, "duro.json"), "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(d, "log"), "w")
    procs.append(subprocess.Popen(["taskset", "-c", cpu, DUROD, "--config", os.path.join(d, "duro.json")],
                                  stdout=log, stderr=subprocess.STDOUT))
    return port, d


def status(d):
    out = subprocess.run([os.path.join(os.path.dirname(DUROD), "duroctl"), "--socket",
                          os.path.join(d, "control.sock"), "--json", "cluster", "status"],
                         capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else None


def move_bench(a, tmp, etcd_url, procs):
    import threading
    boxes = {}
    for name, cpu in (("a", "0"), ("b", "1")):
        boxes[name] = start_box(tmp, name, cpu, etcd_url, a, procs)
    pa, da = boxes["a"]

    def settled(names):
        st = status(da)
        if not st or st["unowned"] or st["moves"]:
            return None
        per = {b["name"]: b["slots"] for b in st["boxes"] if b["live"]}
        return st if set(per) == set(names) and sum(per.values()) == 4096 else None
    wait(lambda: settled(["a", "b"]), 60, "a and b to share the slots")
    duroctl = os.path.join(os.path.dirname(DUROD), "duroctl")
    big = slot = None
    for i in range(200):
        name = "big-%d" % i
        get(pa, "/kv/%s/k/probe" % name)
        for d in (boxes["a"][1], boxes["b"][1]):
            out = subprocess.run([duroctl, "--socket", os.path.join(d, "control.sock"), "--json",
                                  "object", "KV", name], capture_output=True, text=True)
            if out.returncode == 0:
                break
        hexid = json.loads(out.stdout)["id"]
        s = int(hexid[:3], 16)
        if target(["a", "b", "c"], s) == "c":
            big, slot = name, s
            break
    assert big, "no name of the first 200 moves to c"
    val = "x" * 10240
    t0 = time.time()
    for k in range(0, a.move, 40):
        body = "".join("put k%06d %s\n" % (j, val) for j in range(k, min(a.move, k + 40)))
        c = http.client.HTTPConnection("127.0.0.1", pa, timeout=30)
        c.request("POST", "/kv/%s/batch" % big, body=body.encode())
        r = c.getresponse()
        r.read()
        c.close()
        assert r.status == 200, r.status
    print(json.dumps({"object": big, "slot": slot, "keys": a.move, "value_bytes": 10240,
                      "fill_s": round(time.time() - t0, 1)}), flush=True)

    def bench(seconds):
        out = subprocess.run([BENCH, "--port", str(pa), "--conns", str(a.conns), "--method", "POST",
                              "--prefix", "/counter/", "--names", "1000", "--duration", str(seconds),
                              "--warmup", "1"], capture_output=True, text=True, check=True).stdout
        return json.loads(out)
    steady = bench(a.seconds)
    gaps, stop = [], threading.Event()

    def reader():
        c = http.client.HTTPConnection("127.0.0.1", pa, timeout=30)
        last = time.monotonic()
        while not stop.is_set():
            try:
                c.request("GET", "/kv/%s/k/k000000" % big)
                r = c.getresponse()
                r.read()
                ok = r.status == 200
            except (OSError, http.client.HTTPException):
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", pa, timeout=30)
                ok = False
            now = time.monotonic()
            if ok:
                gaps.append((now - last, now))
                last = now
            else:
                gaps.append((None, now))
        c.close()
    th = threading.Thread(target=reader)
    th.start()
    time.sleep(0.5)
    t_start = time.monotonic()
    pc, dc = start_box(tmp, "c", "0", etcd_url, a, procs)
    during = []
    while True:
        during.append(bench(a.seconds))
        if settled(["a", "b", "c"]) or time.monotonic() - t_start > 600:
            break
    t_moves = time.monotonic() - t_start
    stop.set()
    th.join()
    with open(os.path.join(dc, "log")) as f:
        line = [l for l in f if "slot %d moved to box c" % slot in l]
    failed = sum(1 for g, _ in gaps if g is None)
    longest = max((g for g, _ in gaps if g is not None), default=0)
    print(json.dumps({"big_slot_move": line[0].split("cluster bench: ")[-1].strip() if line else None,
                      "longest_gap_ms_reading_the_big_object": round(longest * 1000, 1),
                      "reads": len(gaps), "failed_reads": failed,
                      "slots_moved_to_c": settled(["a", "b", "c"]) and
                      [b["slots"] for b in status(dc)["boxes"] if b["name"] == "c"][0],
                      "moves_took_s": round(t_moves, 1),
                      "steady": {k: steady[k] for k in ("rps", "p50_us", "p99_us")},
                      "during_moves": [{k: d[k] for k in ("rps", "p50_us", "p99_us")} for d in during],
                      "p99_ratio_worst": round(max(d["p99_us"] for d in during) / steady["p99_us"], 2)}),
          flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--method", default="GET")
    ap.add_argument("--spin-us", type=int, default=None, help="idle_spin_us of both boxes")
    ap.add_argument("--pipeline", action="store_true", help="cluster.pipeline on both boxes")
    ap.add_argument("--move", type=int, default=0, help="keys of 10 KB in the slot to move")
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
        if a.move:
            move_bench(a, tmp, etcd_url, procs)
            return
        ports = {}
        for name, cpu in (("a", "0"), ("b", "1")):
            ports[name], _ = start_box(tmp, name, cpu, etcd_url, a, procs)
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
