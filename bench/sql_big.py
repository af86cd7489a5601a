"""SQL at size (bench/README.md): one Sql object filled to --gb GB (rows of 4,000-byte blobs)
under the default page-cache budget, then point reads by primary key per second
(durobench --sql-point, 64 connections); and the time to restore an object with --commits
commits in its history (SqlCounter increments), to the middle of it and back (the undo).
durod (release) on CPU 0, the load on CPU 1."""
import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

import run

ROOT = run.ROOT
DUROCTL = os.path.join(ROOT, "build", "control", "duroctl")


def start(extra, data):
    port = run.free_port()
    cfg = os.path.join(data, "bench.json")
    with open(cfg, "w") as f:
        json.dump(dict({"idle_spin_us": 0}, **extra), f)
    log = open(os.path.join(data, "durod.log"), "w")
    proc = subprocess.Popen(["taskset", "-c", "0", run.DUROD, "--cores", "1", "--listen",
                             "127.0.0.1:%d" % port, "--data-dir", os.path.join(data, "d"),
                             "--config", cfg], stdout=log, stderr=subprocess.STDOUT)
    run.wait_port(port, timeout=60)
    return proc, port


def post(port, path, body):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", path, body=json.dumps(body))
    r = c.getresponse()
    out = r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError("%s: %d %s" % (path, r.status, out[:300]))
    return json.loads(out) if out.startswith(b"{") else out


def ctl(data, *args):
    out = subprocess.run([DUROCTL, "--socket", os.path.join(data, "d", "control.sock"), "--json"] + list(args),
                         capture_output=True, text=True, timeout=600)
    if out.returncode:
        raise RuntimeError("duroctl %s: %s" % (args, out.stderr))
    return json.loads(out.stdout)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def big(a):
    data = tempfile.mkdtemp(prefix="sqlbig-", dir=os.path.join(ROOT, "build"))
    proc, port = start({"storage": {"pitr_retention": 0 if a.no_pitr else 604800000}}, data)
    try:
        rows = int(a.gb * (1 << 30) / 4000)
        post(port, "/sql/hot", {"sql": "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)"})
        t0 = time.time()
        chunk = 4000
        for lo in range(0, rows, chunk):
            n = min(chunk, rows - lo)
            post(port, "/sql/hot", {"sql": "INSERT INTO t (id, b) SELECT ? + x, randomblob(4000) FROM "
                                           "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                                           "WHERE x < ?) SELECT x FROM c)", "params": [lo, n]})
        fill_s = time.time() - t0
        size = post(port, "/sql/hot", {"sql": "SELECT count(*) FROM t"})
        print("filled %d rows in %.1f s: database_size %d bytes (%.2f GB), %.1f MB/s" %
              (rows, fill_s, size["database_size"], size["database_size"] / 1e9,
               size["database_size"] / 1e6 / fill_s), flush=True)
        # RocksDB flushes and compacts what the fill wrote: reads measured meanwhile would
        # share the CPU with it. Wait until durod is idle (under 5% of a CPU for 2 s).
        t0 = time.time()
        while time.time() - t0 < 300:
            c0 = run.cpu_seconds(proc.pid)
            time.sleep(2)
            if run.cpu_seconds(proc.pid) - c0 < 0.1:
                break
        print("background work after the fill settled in %.0f s" % (time.time() - t0), flush=True)
        for i in range(a.runs):
            out = subprocess.run(["taskset", "-c", "1", run.BENCH, "--port", str(port), "--conns", "64",
                                  "--duration", str(a.seconds), "--prefix", "/sql/", "--sql-point", str(rows),
                                  "--warmup", "0"], capture_output=True, text=True, timeout=a.seconds + 60)
            res = json.loads(out.stdout)
            print("point reads run %d: %.0f/s, p50 %.0f us, p99 %.0f us, non-2xx %d; durod RSS %d MiB" %
                  (i + 1, res["rps"], res["p50_us"], res["p99_us"], res["non2xx"], rss_kib(proc.pid) // 1024),
                  flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        shutil.rmtree(data, ignore_errors=True)


def restore(a):
    data = tempfile.mkdtemp(prefix="sqlrestore-", dir=os.path.join(ROOT, "build"))
    proc, port = start({}, data)
    try:
        half = a.commits // 2
        for i, n in enumerate((half, a.commits - half)):
            subprocess.run(["taskset", "-c", "1", run.BENCH, "--port", str(port), "--conns", "64",
                            "--duration", "600", "--requests", str(n), "--prefix", "/sqlcounter/",
                            "--warmup", "0"], capture_output=True, text=True, timeout=900, check=True)
            if i == 0:
                mid = ctl(data, "bookmark", "SQLCOUNTER", "hot")["bookmark"]
                at_bm = urllib.request.urlopen("http://127.0.0.1:%d/sqlcounter/hot" % port).read().decode()
        latest = post(port, "/sqlcounter/hot", {})  # one more: the count after all of them
        # Another object on the same (only) core, read in a loop while the restores run:
        # its longest answer is how long a restore stalls the core's other objects.
        stop, worst = threading.Event(), [0.0, 0]

        def probe():
            import http.client
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            while not stop.is_set():
                t = time.time()
                c.request("GET", "/counter/probe")
                c.getresponse().read()
                worst[0] = max(worst[0], time.time() - t)
                worst[1] += 1
            c.close()

        prober = threading.Thread(target=probe)
        prober.start()
        time.sleep(0.2)
        t0 = time.time()
        undo = ctl(data, "restore", "SQLCOUNTER", "hot", mid)["undo"]
        t_mid = time.time() - t0
        at_mid = urllib.request.urlopen("http://127.0.0.1:%d/sqlcounter/hot" % port).read().decode()
        t0 = time.time()
        ctl(data, "restore", "SQLCOUNTER", "hot", undo)
        t_undo = time.time() - t0
        back = urllib.request.urlopen("http://127.0.0.1:%d/sqlcounter/hot" % port).read().decode()
        stop.set()
        prober.join()
        st = ctl(data, "status")
        print("history of %d commits (%d bytes of history): restore to commit %d took %.2f s (count %s, %s when bookmarked), "
              "the undo to the newest %.2f s (count %s, was %s)" %
              (a.commits + 1, st["pitr"]["bytes"], half, t_mid, at_mid, at_bm, t_undo, back, latest.decode()))
        print("meanwhile another object on the same core answered %d reads, the slowest in %.1f ms" %
              (worst[1], worst[0] * 1000))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        shutil.rmtree(data, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--commits", type=int, default=100000)
    ap.add_argument("--no-pitr", action="store_true", help="fill with storage.pitr_retention 0")
    ap.add_argument("--only", choices=("big", "restore"))
    a = ap.parse_args()
    if a.only != "restore":
        big(a)
    if a.only != "big":
        restore(a)


if __name__ == "__main__":
    main()
