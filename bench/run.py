"""Runs the benchmarks and prints medians and same-run ratios (bench/README.md).

Scenarios, each repeated --runs times, interleaved so drift hits every scenario alike:
  redis             redis-server (appendfsync no, no snapshots) on CPU 0,
                    redis-benchmark -t incr -c 64 on CPU 1
  redis-always      the same with appendonly yes, appendfsync always (every write synced)
  hot-1c            durod --cores 1 (CPU 0), durobench on CPU 1: POST /memcounter/hot
                    (in memory), 64 connections
  names-1c          the same over 10,000 names
  hot-2c            durod --cores 2 (CPUs 0-1), durobench unpinned (it shares the CPUs)
  names-2c          the same over 10,000 names
  durable-1c        like hot-1c on the durable Counter: POST /counter/hot
  durable-names-1c  the durable Counter over 10,000 names
  durable-buffered-1c  durable-1c with storage.log_direct_io false (buffered commit logs)
  sql-1c            like durable-1c on the SQL-backed SqlCounter: POST /sqlcounter/hot
                    (an upsert with RETURNING in the object's SQLite database)
  sql-names-1c      SqlCounter over 10,000 names (10,000 databases)
  *-names-warm-1c   the same after 40,000 unmeasured requests (the objects exist)
  sql-names-ahead-1c, sql-names-warm-ahead-1c   the same with sql.open_ahead true
                    (connections opened on the core's opener thread, not on the core)
  durable-nopitr-1c, sql-nopitr-1c   durable-1c and sql-1c with storage.pitr_retention 0
                    (no history records: what point-in-time recovery costs)
durod runs with idle_spin_us 0 so that its CPU time (from /proc) is work, not polling.
--only a,b runs just those scenarios.
--layout shared runs the one-core scenarios' load (and redis-benchmark) on CPU 0 too, beside
the server, leaving CPU 1 to the kernel (here it takes the disk's interrupts and runs their
completion work); split (the default) puts the load on CPU 1; both runs each one-core
scenario in both layouts (the shared ones named <scenario>@shared) within every run.
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

CLIENT_CPU = {"split": "1", "shared": "0"}
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


def thread_cpu_seconds(pid, prefix):
    """utime + stime of pid's threads whose name starts with prefix, in seconds."""
    total = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                s = f.read()
        except OSError:
            continue
        if s[s.index("(") + 1:s.rindex(")")].startswith(prefix):
            fields = s.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def commits_per_sync(log_text):
    """From durod's shutdown lines "core N: A commits in B syncs (C per sync)"."""
    import re
    per = [float(m) for m in re.findall(r"\(([0-9.]+) per sync\)", log_text)]
    return sum(per) / len(per) if per else 0.0


def run_durod(cores, names, seconds, conns, prefix="/memcounter/", extra=None, layout="split", warm=0):
    port = free_port()
    data = tempfile.mkdtemp(prefix="durobench-")
    # Reactors sleep as soon as they are idle, so their CPU time is work, not polling:
    # that makes server CPU per request a fair figure when the client shares the CPUs.
    cfg = os.path.join(data, "bench.json")
    with open(cfg, "w") as f:
        json.dump(dict({"idle_spin_us": 0}, **(extra or {})), f)
    log_path = os.path.join(data, "durod.log")
    log = open(log_path, "w")
    proc = subprocess.Popen([DUROD, "--cores", str(cores), "--listen", "127.0.0.1:%d" % port,
                             "--data-dir", os.path.join(data, "d"), "--config", cfg],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, timeout=30)
        cmd = [BENCH, "--port", str(port), "--conns", str(conns), "--names", str(names),
               "--duration", str(seconds), "--prefix", prefix]
        if cores == 1:
            cmd = ["taskset", "-c", CLIENT_CPU[layout]] + cmd
        if warm:
            # Unmeasured: `warm` requests over the names first (40,000 over 10,000 names
            # reach 98% of them), so the run measures objects that exist, not their creation.
            subprocess.run(cmd + ["--warmup", "0", "--requests", str(warm), "--duration", str(seconds * 20)],
                           capture_output=True, text=True, timeout=seconds * 20 + 30, check=True)
        cmd += ["--warmup", "0"]
        cpu0 = cpu_seconds(proc.pid)
        op0 = thread_cpu_seconds(proc.pid, "sql-open")
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
        cpu1 = cpu_seconds(proc.pid)
        op1 = thread_cpu_seconds(proc.pid, "sql-open")
        if out.returncode:
            raise RuntimeError("durobench failed: " + out.stderr)
        res = json.loads(out.stdout)
        res["server_cpu_us_per_req"] = (cpu1 - cpu0) * 1e6 / max(res["requests"], 1)
        # Of which SQL connections' opener threads (not pinned: they may run beside the load).
        res["opener_cpu_us_per_req"] = (op1 - op0) * 1e6 / max(res["requests"], 1)
        with open("/proc/%d/status" % proc.pid) as f:
            res["rss_mib"] = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()
        with open(log_path) as f:
            res["commits_per_sync"] = commits_per_sync(f.read())
        return res
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
        shutil.rmtree(data, ignore_errors=True)


def run_redis(seconds, conns, always=False, layout="split"):
    # On a shared box the port free_port() found is now and then taken before redis binds
    # it (redis then exits): another port, up to three times.
    for attempt in range(3):
        try:
            return run_redis_once(seconds, conns, always, layout)
        except RuntimeError:
            if attempt == 2:
                raise


def run_redis_once(seconds, conns, always, layout):
    port = free_port()
    # Beside durod's data (the same disk), not in a tmpfs.
    data = tempfile.mkdtemp(prefix="redisbench-", dir=os.path.join(ROOT, "build"))
    aof = ["--appendonly", "yes", "--appendfsync", "always"] if always else ["--appendonly", "no", "--appendfsync", "no"]
    proc = subprocess.Popen(["taskset", "-c", "0", "redis-server", "--port", str(port), "--dir", data] + aof + ["--save", "",
                             "--daemonize", "no", "--logfile", ""],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, timeout=30)
        n = int((40000 if always else 50000) * seconds)  # about `seconds` at the rates seen here
        out = subprocess.run(["taskset", "-c", CLIENT_CPU[layout], "redis-benchmark", "-p", str(port), "-t", "incr",
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
    ap.add_argument("--only", help="comma-separated scenarios to run")
    ap.add_argument("--layout", choices=("split", "shared", "both"), default="split")
    a = ap.parse_args()
    scen = {
        "redis": lambda **kw: run_redis(a.seconds, a.conns, **kw),
        "redis-always": lambda **kw: run_redis(a.seconds, a.conns, always=True, **kw),
        "hot-1c": lambda **kw: run_durod(1, 0, a.seconds, a.conns, **kw),
        "names-1c": lambda **kw: run_durod(1, 10000, a.seconds, a.conns, **kw),
        "hot-2c": lambda **kw: run_durod(2, 0, a.seconds, a.conns, **kw),
        "names-2c": lambda **kw: run_durod(2, 10000, a.seconds, a.conns, **kw),
        "durable-1c": lambda **kw: run_durod(1, 0, a.seconds, a.conns, prefix="/counter/", **kw),
        "durable-names-1c": lambda **kw: run_durod(1, 10000, a.seconds, a.conns, prefix="/counter/", **kw),
        "durable-buffered-1c": lambda **kw: run_durod(1, 0, a.seconds, a.conns, prefix="/counter/",
                                                 extra={"storage": {"log_direct_io": False}}, **kw),
        "sql-1c": lambda **kw: run_durod(1, 0, a.seconds, a.conns, prefix="/sqlcounter/", **kw),
        "sql-names-1c": lambda **kw: run_durod(1, 10000, a.seconds, a.conns, prefix="/sqlcounter/", **kw),
        "durable-names-warm-1c": lambda **kw: run_durod(1, 10000, a.seconds, a.conns, prefix="/counter/",
                                                       warm=40000, **kw),
        "sql-names-warm-1c": lambda **kw: run_durod(1, 10000, a.seconds, a.conns, prefix="/sqlcounter/",
                                                   warm=40000, **kw),
        "sql-names-ahead-1c": lambda **kw: run_durod(1, 10000, a.seconds, a.conns, prefix="/sqlcounter/",
                                                    extra={"sql": {"open_ahead": True}}, **kw),
        "sql-names-warm-ahead-1c": lambda **kw: run_durod(1, 10000, a.seconds, a.conns,
                                                         prefix="/sqlcounter/", warm=40000,
                                                         extra={"sql": {"open_ahead": True}}, **kw),
        "durable-nopitr-1c": lambda **kw: run_durod(1, 0, a.seconds, a.conns, prefix="/counter/",
                                                   extra={"storage": {"pitr_retention": 0}}, **kw),
        "sql-nopitr-1c": lambda **kw: run_durod(1, 0, a.seconds, a.conns, prefix="/sqlcounter/",
                                               extra={"storage": {"pitr_retention": 0}}, **kw),
    }
    if a.only:
        scen = {k: v for k, v in scen.items() if k in a.only.split(",")}
    one_core = {k: v for k, v in scen.items() if "2c" not in k}
    shared = {k + "@shared": (lambda fn: lambda: fn(layout="shared"))(v) for k, v in one_core.items()}
    if a.layout == "shared":
        scen = dict({k: v for k, v in scen.items() if k not in one_core}, **shared)
    elif a.layout == "both":
        scen = dict(scen, **shared)
    results = {k: [] for k in scen}
    for r in range(a.runs):
        for k, fn in scen.items():
            results[k].append(fn())
        print("run %d: " % (r + 1) + ", ".join("%s %.0f/s" % (k, v[-1]["rps"]) for k, v in results.items()),
              flush=True)
    print()
    print("%-27s %12s %10s %10s %14s" % ("scenario", "median req/s", "p50 µs", "p99 µs", "server CPU µs/req"))
    for k, v in results.items():
        cpu = statistics.median(x.get("server_cpu_us_per_req", 0) for x in v)
        print("%-27s %12.0f %10.0f %10.0f %14s" % (k, statistics.median(x["rps"] for x in v),
                                                 statistics.median(x["p50_us"] for x in v),
                                                 statistics.median(x["p99_us"] for x in v),
                                                 "%.2f" % cpu if cpu else "-"))
    print()

    def ratio(x, y):
        if x not in results or y not in results:
            return
        rs = [results[x][i]["rps"] / results[y][i]["rps"] for i in range(a.runs)]
        print("%s / %s, same run: median %.2fx (runs: %s)" %
              (x, y, statistics.median(rs), ", ".join("%.2f" % r for r in rs)))

    pairs = [("hot-1c", "redis"), ("hot-2c", "hot-1c"), ("names-2c", "names-1c"),
             ("durable-1c", "redis-always"), ("durable-1c", "hot-1c"), ("durable-names-1c", "names-1c"),
             ("durable-buffered-1c", "hot-1c"), ("durable-1c", "durable-buffered-1c"),
             ("sql-1c", "durable-1c"), ("sql-1c", "redis-always"), ("sql-names-1c", "durable-names-1c"),
             ("sql-names-warm-1c", "durable-names-warm-1c"),
             ("sql-names-ahead-1c", "durable-names-1c"), ("sql-names-warm-ahead-1c", "durable-names-warm-1c"),
             ("sql-names-ahead-1c", "sql-names-1c"), ("sql-names-warm-ahead-1c", "sql-names-warm-1c"),
             ("durable-1c", "durable-nopitr-1c"), ("sql-1c", "sql-nopitr-1c")]
    for x, y in pairs:
        ratio(x, y)
    for x, y in pairs:
        ratio(x + "@shared", y + "@shared")
    # Each path in its own best layout, same run: the durable one with the disk's CPU free.
    ratio("durable-1c@shared", "hot-1c")
    for sc in results:
        if sc.startswith("durable") or sc.startswith("sql"):
            print("%s: median %.1f commits per sync" %
                  (sc, statistics.median(x["commits_per_sync"] for x in results[sc])))
    for sc in results:
        if "names" in sc and results[sc] and "rss_mib" in results[sc][0]:
            print("%s: durod's RSS after the run: median %.0f MiB" %
                  (sc, statistics.median(x["rss_mib"] for x in results[sc])))
    for sc in ("names-1c", "names-2c"):
        if sc in results:
            cpu = statistics.median(x["server_cpu_us_per_req"] for x in results[sc])
            print("%s: server CPU %.2f µs per request, i.e. %.0f req/s per fully used core" % (sc, cpu, 1e6 / cpu))
    for k, v in results.items():
        op = statistics.median(x.get("opener_cpu_us_per_req", 0) for x in v)
        if op:
            print("%s: of the server's CPU, %.2f µs per request on the SQL opener thread (not pinned)"
                  % (k, op))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
