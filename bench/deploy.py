"""Classes as modules, measured (bench/README.md, "Class modules and live deploys").

ratio   durod --cores 1 (CPU 0), durobench on CPU 1, 64 connections over 10,000 names: the
        built-in Counter (durable) and MemCounter (in memory) against the same classes
        built as modules (build/classes/counter.so, memcounter.so), switched in one durod
        by `duroctl deploy --immediate` and `rollback builtin`, alternating A B B A so
        drift hits both alike. Prints each class's module/built-in req/s ratio.
load    durod --cores 2 with the Versioned class (tests/modules/versioned.c, built as an
        author does with pkg-config against build/sdk) loaded from "modules": 1,000
        WebSocket clients in 100 rooms (a message a room every 100 ms) and durobench's 64
        HTTP connections posting to 10,000 names (all resident), with every request's
        send time and latency kept (--timeline). Then a deferred deploy (v2), an
        --immediate one (v3) and a rollback --immediate, a few seconds apart: the p99 of
        requests sent while each was switching objects (from the deploy command until no
        resident object is left on the old version) against the p99 of the steady
        seconds before the first deploy, and that time to switch. Sockets closed and
        failed requests must be 0.
--only ratio|load, --runs N, --seconds S (each ratio measurement).
"""
import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
DUROD = os.path.join(BUILD, "control", "durod")
DUROCTL = os.path.join(BUILD, "control", "duroctl")
BENCH = os.path.join(BUILD, "bench", "durobench")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("durod exited: %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d never opened" % port)


class Durod:
    def __init__(self, tmp, cores, config):
        self.port = free_port()
        self.data = os.path.join(tmp, "data")
        cfg = os.path.join(tmp, "bench.json")
        with open(cfg, "w") as f:
            json.dump(dict({"idle_spin_us": 0}, **config), f)
        self.log_path = os.path.join(tmp, "durod.log")
        self.proc = subprocess.Popen(
            [DUROD, "--cores", str(cores), "--listen", "127.0.0.1:%d" % self.port,
             "--data-dir", self.data, "--config", cfg],
            stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc)

    def ctl(self, *args):
        r = subprocess.run([DUROCTL, "--socket", os.path.join(self.data, "control.sock")] +
                           list(args), capture_output=True, text=True, timeout=120)
        if r.returncode:
            raise RuntimeError("duroctl %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
        return r.stdout

    def control(self, req):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(30)
        s.connect(os.path.join(self.data, "control.sock"))
        s.sendall(json.dumps(req).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            b = s.recv(1 << 20)
            if not b:
                break
            data += b
        s.close()
        return json.loads(data)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


def cpu_seconds(pid):
    """utime + stime of every thread of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def durobench(port, prefix, seconds, names=10000, cpu=None, timeline=None, warmup=1):
    cmd = [BENCH, "--port", str(port), "--conns", "64", "--names", str(names),
           "--duration", str(seconds), "--warmup", str(warmup), "--prefix", prefix]
    if timeline:
        cmd += ["--timeline", timeline]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def bench_result(p, timeout):
    out, err = p.communicate(timeout=timeout)
    if p.returncode:
        raise RuntimeError("durobench failed: %s %s" % (out, err))
    return json.loads(out)


# ---- ratio ----

def ratio(args):
    tmp = tempfile.mkdtemp(prefix="deploybench-")
    d = Durod(tmp, 1, {})
    rows = {"Counter": ("/counter/", "counter"), "MemCounter": ("/memcounter/", "memcounter")}
    res = {c: {"builtin": [], "module": [], "builtin_cpu": [], "module_cpu": []} for c in rows}
    try:
        for run in range(args.runs):
            for cls, (prefix, so) in rows.items():
                order = ["builtin", "module", "module", "builtin"] if run % 2 == 0 else \
                        ["module", "builtin", "builtin", "module"]
                on = "builtin"
                for which in order:
                    if which != on:
                        if which == "module":
                            d.ctl("deploy", cls, os.path.join(BUILD, "classes", so + ".so"),
                                  "--immediate")
                        else:
                            d.ctl("rollback", cls, "builtin", "--immediate")
                        on = which
                    cpu0 = cpu_seconds(d.proc.pid)
                    r = bench_result(durobench(d.port, prefix, args.seconds, cpu=1, warmup=0),
                                     args.seconds + 60)
                    cpu = (cpu_seconds(d.proc.pid) - cpu0) * 1e6 / max(r["requests"], 1)
                    res[cls][which].append(r["rps"])
                    res[cls][which + "_cpu"].append(cpu)
                    print("run %d %-10s %-7s %8.0f req/s  p99 %6.0f us  server CPU %.1f us/req" % (
                        run, cls, which, r["rps"], r["p99_us"], cpu), flush=True)
                if on != "builtin":
                    d.ctl("rollback", cls, "builtin", "--immediate")
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    out = {}
    for cls in rows:
        b = statistics.median(res[cls]["builtin"])
        m = statistics.median(res[cls]["module"])
        bc = statistics.median(res[cls]["builtin_cpu"])
        mc = statistics.median(res[cls]["module_cpu"])
        out[cls] = {"builtin_rps": b, "module_rps": m, "ratio": m / b,
                    "builtin_cpu_us": bc, "module_cpu_us": mc, "cpu_ratio": mc / bc,
                    "runs": res[cls]}
        print("%-10s built in %8.0f req/s %5.1f us CPU/req   module %8.0f req/s %5.1f us CPU/req"
              "   module/built-in: req/s %.3f, CPU per request %.3f" % (cls, b, bc, m, mc, m / b, mc / bc))
    return out


# ---- load ----

def build_versioned(tmp, marker):
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(BUILD, "sdk"))
    cflags = subprocess.run(["pkg-config", "--cflags", "duro"], env=env, check=True,
                            capture_output=True, text=True).stdout.split()
    out = os.path.join(tmp, "versioned-%s.so" % marker)
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", out] + cflags +
                   ['-DMARKER="%s"' % marker,
                    os.path.join(ROOT, "tests", "modules", "versioned.c")], check=True)
    os.chmod(out, 0o755)
    return out


class Rooms:
    """WebSocket members in rooms on their own thread and event loop."""

    def __init__(self, port, rooms, members):
        self.port, self.rooms, self.members = port, rooms, members
        self.closed = 0
        self.sent = 0
        self.received = 0
        self.markers = set()
        self.stop = False
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self.main()))
        self.thread.start()
        if not self.ready.wait(120):
            raise RuntimeError("WebSocket members did not connect")

    async def main(self):
        import websockets
        sem = asyncio.Semaphore(64)
        socks = []

        async def join(r):
            async with sem:
                return await websockets.connect("ws://127.0.0.1:%d/v/room%d" % (self.port, r),
                                                max_queue=None)
        for r in range(self.rooms):
            socks.append([await join(r) for _ in range(self.members)])

        async def recv(ws):
            try:
                async for msg in ws:
                    self.received += 1
                    self.markers.add(msg.split(":", 1)[0])
            finally:
                if not self.stop:
                    self.closed += 1
        tasks = [asyncio.ensure_future(recv(ws)) for room in socks for ws in room]
        self.ready.set()
        while not self.stop:
            for room in socks:
                await room[0].send("m")
                self.sent += 1
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)  # the last messages
        for room in socks:
            for ws in room:
                await ws.close()
        await asyncio.gather(*tasks, return_exceptions=True)

    def finish(self):
        self.stop = True
        self.thread.join(60)


def touch_all(port, n, conns=8, depth=32):
    """POST /v/n<i> for every i < n (durobench's names), pipelined."""
    def worker(names):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        f = s.makefile("rb")
        for i in range(0, len(names), depth):
            batch = names[i:i + depth]
            s.sendall(b"".join(b"POST /v/n%d HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n"
                               % k for k in batch))
            for _ in batch:
                status = int(f.readline().split()[1])
                length = 0
                while True:
                    line = f.readline()
                    if line in (b"\r\n", b""):
                        break
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                f.read(length)
                if status != 200:
                    raise RuntimeError("POST while touching the names: %d" % status)
        s.close()
    threads = [threading.Thread(target=worker, args=(list(range(c, n, conns)),))
               for c in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def versions(d):
    return d.control({"cmd": "versions", "class": "Versioned"})


def switch_time(d, deploy_args, old_sha, resident):
    """Runs the deploy; returns (t_start, t_switched) on the monotonic clock: until no
    resident object is left on old_sha."""
    t0 = time.monotonic()
    d.ctl(*deploy_args)
    while True:
        vs = versions(d)
        objs = {v["sha"]: v["objects"] for v in vs["versions"]}
        if objs.get(old_sha, 0) == 0 and objs.get(vs["current"], 0) >= resident:
            return t0, time.monotonic(), vs["current"]
        if time.monotonic() - t0 > 120:
            raise RuntimeError("objects did not switch: %s" % objs)
        time.sleep(0.002)


def p99(lats):
    if not lats:
        return 0.0
    s = sorted(lats)
    return s[min(len(s) - 1, int(0.99 * len(s)))] / 1000.0


def load(args):
    tmp = tempfile.mkdtemp(prefix="deploybench-")
    v1, v2, v3 = (build_versioned(tmp, m) for m in ("v1", "v2", "v3"))
    cfg = {"modules": [v1],
           "durable_objects": {"bindings": [{"name": "VERS", "class_name": "Versioned"}]},
           "migrations": [{"tag": "v1", "new_classes": ["Versioned"]}],
           "routes": [{"prefix": "/v/", "binding": "VERS", "id": "name"}],
           "objects": {"evict_idle_ms": 600000},
           "websockets": {"hibernate_idle_ms": 600000}}
    d = Durod(tmp, 2, cfg)
    rooms = None
    try:
        rooms = Rooms(d.port, args.members // 10, 10)
        touch_all(d.port, args.objects)  # every name resident before the clock starts
        resident = versions(d)["versions"][0]["objects"]
        print("resident objects: %d, WebSocket members: %d" % (resident, args.members))
        timeline = os.path.join(tmp, "timeline")
        steady = args.steady
        total = steady + 3 * args.gap + 2
        p = durobench(d.port, "/v/", total, names=args.objects, timeline=timeline)
        time.sleep(1 + steady)  # warmup, then steady seconds
        sha1 = versions(d)["current"]
        w_deploy = switch_time(d, ["deploy", "Versioned", v2], sha1, resident)
        time.sleep(args.gap)
        w_immediate = switch_time(d, ["deploy", "Versioned", v3, "--immediate"],
                                  w_deploy[2], resident)
        time.sleep(args.gap)
        w_rollback = switch_time(d, ["rollback", "Versioned", "--immediate"],
                                 w_immediate[2], resident)
        summary = bench_result(p, total + 60)
        rooms.finish()
        sent = []
        with open(timeline) as f:
            for line in f:
                a, b = line.split()
                sent.append((int(a) / 1e9, int(b)))
        t_first = sent[0][0]
        steady_l = [lat for t, lat in sent if t < w_deploy[0]]
        out = {"requests": summary["requests"], "rps": summary["rps"],
               "non2xx": summary["non2xx"], "errors": summary["errors"],
               "ws_closed": rooms.closed, "ws_sent": rooms.sent,
               "ws_received": rooms.received, "resident": resident,
               "steady_seconds": w_deploy[0] - t_first, "steady_p99_us": p99(steady_l)}
        for name, w in (("deploy", w_deploy), ("immediate", w_immediate),
                        ("rollback", w_rollback)):
            lats = [lat for t, lat in sent if w[0] <= t <= w[1]]
            second = [lat for t, lat in sent if w[0] <= t <= w[0] + 1]
            base = max(out["steady_p99_us"], 1e-9)
            out[name] = {"switch_ms": (w[1] - w[0]) * 1000, "requests": len(lats),
                         "p99_us": p99(lats), "p99_ratio": p99(lats) / base,
                         "second_p99_us": p99(second), "second_p99_ratio": p99(second) / base}
        print(json.dumps(out, indent=1))
        return out
    finally:
        if rooms and rooms.thread.is_alive():
            rooms.finish()
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=("ratio", "load"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--objects", type=int, default=10000)
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--steady", type=float, default=5, help="steady seconds before the first deploy")
    ap.add_argument("--gap", type=float, default=3, help="seconds between deploys")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    for p in (DUROD, DUROCTL, BENCH):
        if not os.path.exists(p):
            sys.exit("%s is missing: scripts/setup.sh release" % p)
    res = {}
    if args.only in (None, "ratio"):
        res["ratio"] = ratio(args)
    if args.only in (None, "load"):
        res["load"] = load(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
