"""SqlCounter on duro against the same SQL counter on workerd (Cloudflare's open-source
Durable Objects runtime, npm `workerd`, a SQLite-backed class using sql.exec), in the same
run, interleaved: durable increments per second. bench/workerd.sh installs workerd from npm
into .cache/workerd. See bench/README.md.

Scenarios, each --runs times:
  sql-1c         durod --cores 1 (CPU 0), durobench on CPU 1: POST /sqlcounter/hot
  workerd        workerd serve (its event loop on CPU 0), the same load and names
  sql-names-1c / workerd-names   the same over --names objects
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import tempfile

import run

ROOT = run.ROOT
WORKERD = os.path.join(ROOT, ".cache", "workerd", "node_modules", ".bin", "workerd")
HERE = os.path.join(ROOT, "bench", "workerd")


def run_workerd(names, seconds, conns):
    port = run.free_port()
    data = tempfile.mkdtemp(prefix="workerdbench-", dir=os.path.join(ROOT, "build"))
    os.mkdir(os.path.join(data, "do"))
    with open(os.path.join(HERE, "config.capnp.in")) as f:
        cfg = f.read().replace("@DIR@", os.path.join(data, "do")).replace("@ADDR@", "127.0.0.1:%d" % port)
    cfg_path = os.path.join(HERE, ".bench-%d.capnp" % port)  # beside sqlcounter.js (embed)
    with open(cfg_path, "w") as f:
        f.write(cfg)
    log = open(os.path.join(data, "workerd.log"), "w")
    proc = subprocess.Popen(["taskset", "-c", "0", WORKERD, "serve", cfg_path], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        run.wait_port(port, timeout=30)
        cmd = ["taskset", "-c", "1", run.BENCH, "--port", str(port), "--conns", str(conns),
               "--names", str(names), "--duration", str(seconds), "--prefix", "/sqlcounter/",
               "--warmup", "0"]
        cpu0 = run.cpu_seconds(proc.pid)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
        cpu1 = run.cpu_seconds(proc.pid)
        if out.returncode:
            raise RuntimeError("durobench failed: " + out.stderr)
        res = run.json.loads(out.stdout)
        res["server_cpu_us_per_req"] = (cpu1 - cpu0) * 1e6 / max(res["requests"], 1)
        return res
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        os.unlink(cfg_path)
        shutil.rmtree(data, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--names", type=int, default=1000)
    a = ap.parse_args()
    scen = {
        "sql-1c": lambda: run.run_durod(1, 0, a.seconds, a.conns, prefix="/sqlcounter/"),
        "workerd": lambda: run_workerd(0, a.seconds, a.conns),
        "sql-names-1c": lambda: run.run_durod(1, a.names, a.seconds, a.conns, prefix="/sqlcounter/"),
        "workerd-names": lambda: run_workerd(a.names, a.seconds, a.conns),
    }
    results = {k: [] for k in scen}
    for r in range(a.runs):
        for k, fn in scen.items():
            results[k].append(fn())
        print("run %d: " % (r + 1) + ", ".join("%s %.0f/s" % (k, v[-1]["rps"]) for k, v in results.items()),
              flush=True)
    print()
    print("%-16s %12s %10s %10s %14s" % ("scenario", "median req/s", "p50 µs", "p99 µs", "server CPU µs/req"))
    for k, v in results.items():
        print("%-16s %12.0f %10.0f %10.0f %14.2f" % (k, statistics.median(x["rps"] for x in v),
                                                   statistics.median(x["p50_us"] for x in v),
                                                   statistics.median(x["p99_us"] for x in v),
                                                   statistics.median(x["server_cpu_us_per_req"] for x in v)))
    print()
    for x, y in (("sql-1c", "workerd"), ("sql-names-1c", "workerd-names")):
        rs = [results[x][i]["rps"] / results[y][i]["rps"] for i in range(a.runs)]
        print("%s / %s, same run: median %.1fx (runs: %s)" % (x, y, statistics.median(rs),
                                                             ", ".join("%.1f" % r for r in rs)))


if __name__ == "__main__":
    main()
