"""Runs the foundation benchmarks and prints medians and same-run ratios (bench/README.md).

Scenarios, each repeated --runs times, interleaved so drift hits every scenario alike:
  redis     redis-server (appendfsync no, no snapshots) on CPU 0, redis-benchmark -t incr -c 64 on CPU 1
  hot-1c    durod --cores 1 (CPU 0), durobench on CPU 1: POST /counter/hot, 64 connections
  names-1c  the same over 10,000 names
  hot-2c    durod --cores 2 (CPUs 0-1), durobench unpinned (it shares the two CPUs)
durod runs with idle_spin_us 0 so that its CPU time (from /proc) is work, not polling.
  names-2c  the same over 10,000 names
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DUROD = os.path.join(ROOT, "build", "control", "durod")
BENCH = os.path.join(ROOT, "build", "bench", "durobench")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d never opened" % port)


def cpu_seconds(pid):
    """utime + stime of every thread of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_durod(cores, names, seconds, conns):
    port = free_port()
    data = tempfile.mkdtemp(prefix="durobench-")
    # Reactors sleep as soon as they are idle, so their CPU time is work, not polling:
    # that makes server CPU per request a fair figure when the client shares the CPUs.
    cfg = os.path.join(data, "bench.json")
    with open(cfg, "w") as f:
        json.dump({"idle_spin_us": 0}, f)
    proc = subprocess.Popen([DUROD, "--cores", str(cores), "--listen", "127.0.0.1:%d" % port,
                             "--data-dir", os.path.join(data, "d"), "--config", cfg, "--log-level", "warn"])
    try:
        wait_port(port)
        cmd = [BENCH, "--port", str(port), "--conns", str(conns), "--names", str(names),
               "--duration", str(seconds)]
        if cores == 1:
            cmd = ["taskset", "-c", "1"] + cmd
        cmd += ["--warmup", "0"]
        cpu0 = cpu_seconds(proc.pid)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
        cpu1 = cpu_seconds(proc.pid)
        if out.returncode:
            raise RuntimeError("durobench failed: " + out.stderr)
        res = json.loads(out.stdout)
        res["server_cpu_us_per_req"] = (cpu1 - cpu0) * 1e6 / max(res["requests"], 1)
        return res
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        shutil.rmtree(data, ignore_errors=True)


def run_redis(seconds, conns):
    port = free_port()
    data = tempfile.mkdtemp(prefix="redisbench-")
    proc = subprocess.Popen(["taskset", "-c", "0", "redis-server", "--port", str(port), "--dir", data,
                             "--appendonly", "no", "--appendfsync", "no", "--save", "",
                             "--daemonize", "no", "--logfile", ""],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        n = int(110000 * seconds)  # about `seconds` at the rates seen here
        out = subprocess.run(["taskset", "-c", "1", "redis-benchmark", "-p", str(port), "-t", "incr",
                              "-c", str(conns), "-n", str(n), "--csv"],
                             capture_output=True, text=True, timeout=seconds * 10 + 60)
        lines = [l for l in out.stdout.splitlines() if l.startswith('"INCR"')]
        f = [x.strip('"') for x in lines[-1].split(",")]
        return {"rps": float(f[1]), "p50_us": float(f[4]) * 1000, "p99_us": float(f[6]) * 1000}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(data, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--json", help="also write every run to this file")
    a = ap.parse_args()
    scen = {
        "redis": lambda: run_redis(a.seconds, a.conns),
        "hot-1c": lambda: run_durod(1, 0, a.seconds, a.conns),
        "names-1c": lambda: run_durod(1, 10000, a.seconds, a.conns),
        "hot-2c": lambda: run_durod(2, 0, a.seconds, a.conns),
        "names-2c": lambda: run_durod(2, 10000, a.seconds, a.conns),
    }
    results = {k: [] for k in scen}
    ratios = []
    for r in range(a.runs):
        for k, fn in scen.items():
            results[k].append(fn())
        ratios.append(results["hot-1c"][-1]["rps"] / results["redis"][-1]["rps"])
        print("run %d: " % (r + 1) + ", ".join("%s %.0f/s" % (k, v[-1]["rps"]) for k, v in results.items()),
              flush=True)
    print()
    print("%-9s %12s %10s %10s %14s" % ("scenario", "median req/s", "p50 µs", "p99 µs", "server CPU µs/req"))
    for k, v in results.items():
        cpu = statistics.median(x.get("server_cpu_us_per_req", 0) for x in v)
        print("%-9s %12.0f %10.0f %10.0f %14s" % (k, statistics.median(x["rps"] for x in v),
                                                 statistics.median(x["p50_us"] for x in v),
                                                 statistics.median(x["p99_us"] for x in v),
                                                 "%.2f" % cpu if cpu else "-"))
    print()
    print("hot-1c / redis, same run: median %.2fx (runs: %s)" %
          (statistics.median(ratios), ", ".join("%.2f" % x for x in ratios)))
    two = [results["hot-2c"][i]["rps"] / results["hot-1c"][i]["rps"] for i in range(a.runs)]
    print("hot-2c / hot-1c, same run: median %.2fx" % statistics.median(two))
    two_n = [results["names-2c"][i]["rps"] / results["names-1c"][i]["rps"] for i in range(a.runs)]
    print("names-2c / names-1c, same run: median %.2fx" % statistics.median(two_n))
    for sc in ("names-1c", "names-2c"):
        cpu = statistics.median(x["server_cpu_us_per_req"] for x in results[sc])
        print("%s: server CPU %.2f µs per request, i.e. %.0f req/s per fully used core" % (sc, cpu, 1e6 / cpu))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
