"""Alarm benchmarks (bench/README.md): alarms fired per second on one core, start-up time
with N pending alarms, and memory per pending alarm. Usage: bench/alarms.sh [--pending N]"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from conftest import read_responses  # noqa: E402
from run import DUROD, free_port, wait_port  # noqa: E402


def start(data, cores=1, expect_alarms=False):
    """Starts durod; returns when it serves (the port opens once every core has loaded its
    alarms; the log lines are waited for too, to be sure of what was measured)."""
    port = free_port()
    log_path = os.path.join(data, "durod.log")
    open(log_path, "w").close()
    log = open(log_path, "a")
    t0 = time.time()
    p = subprocess.Popen([DUROD, "--cores", str(cores), "--listen", "127.0.0.1:%d" % port,
                          "--data-dir", os.path.join(data, "d")], stdout=log, stderr=subprocess.STDOUT)
    wait_port(port, timeout=600)
    while expect_alarms and "alarms loaded" not in open(log_path).read():
        time.sleep(0.005)
    while "serving on" not in open(log_path).read():
        time.sleep(0.005)
    return p, port, time.time() - t0


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pipelined(port, n, make, conns=8, depth=256):
    socks = [socket.create_connection(("127.0.0.1", port), timeout=120) for _ in range(conns)]
    bodies = []
    for start in range(0, n, conns * depth):
        sizes = []
        for ci, s in enumerate(socks):
            batch = range(start + ci * depth, min(start + (ci + 1) * depth, n))
            s.sendall(b"".join(make(i) for i in batch))
            sizes.append(len(batch))
        for s, size in zip(socks, sizes):
            for st, _, body in read_responses(s, size, timeout=120):
                assert st == 200, body
                bodies.append(body)
    for s in socks:
        s.close()
    return bodies


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fire", type=int, default=100000, help="alarms for the firing rate")
    ap.add_argument("--pending", type=int, default=1000000, help="alarms for start-up and memory")
    a = ap.parse_args()
    data = tempfile.mkdtemp(prefix="alarmbench-", dir=os.path.join(os.path.dirname(DUROD), "..", ".."))
    try:
        # Firing rate: N alarms due at one instant on one core.
        p, port, _ = start(data)
        lead = 8000
        t0 = time.time()
        at = int(t0 * 1000) + lead
        pipelined(port, a.fire, lambda i: b"POST /ticker/f%d?at=%d HTTP/1.1\r\nHost: b\r\n\r\n" % (i, at))
        set_secs = time.time() - t0
        assert set_secs < lead / 1000, "setting took longer than the lead time"
        time.sleep(lead / 1000 - set_secs + 5)
        lates = []
        for body in pipelined(port, a.fire, lambda i: b"GET /ticker/f%d HTTP/1.1\r\nHost: b\r\n\r\n" % i):
            fields = dict(l.split(b" ", 1) for l in body.split(b"\n") if b" " in l)
            assert fields[b"fired"] == b"1"
            lates.append(int(fields[b"late"]))
        span = max(lates) / 1000.0
        print("fired %d alarms due at one instant in %.2f s on one core: %.0f alarms/s (set at %.0f/s)"
              % (a.fire, span, a.fire / span, a.fire / set_secs), flush=True)
        p.send_signal(signal.SIGTERM)
        p.wait()
        shutil.rmtree(os.path.join(data, "d"))

        # Start-up and memory: N pending alarms an hour away.
        p, port, base_start = start(data)
        time.sleep(0.5)
        base_rss = rss_kib(p.pid)
        t0 = time.time()
        pipelined(port, a.pending, lambda i: b"POST /ticker/p%d?in=3600000 HTTP/1.1\r\nHost: b\r\n\r\n" % i)
        print("set %d pending alarms in %.1f s (%.0f/s)" % (a.pending, time.time() - t0,
                                                             a.pending / (time.time() - t0)), flush=True)
        p.send_signal(signal.SIGTERM)
        p.wait()
        p, port, secs = start(data, expect_alarms=True)
        time.sleep(0.5)
        rss = rss_kib(p.pid)
        print("start-up with %d pending alarms: %.2f s (empty: %.2f s)" % (a.pending, secs, base_start))
        print("memory: %d KiB resident vs %d KiB without alarms: %.0f bytes per pending alarm"
              % (rss, base_rss, (rss - base_rss) * 1024.0 / a.pending))
        p.send_signal(signal.SIGTERM)
        p.wait()
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
