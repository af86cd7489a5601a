"""Restarts durod on one data directory and port, many times, the way a user or a load
balancer meets it: poll until the port takes a TCP connection, then at once send requests
on fresh connections and count every one not answered (reset, closed without an answer,
refused after the port was open, timed out). The data directory holds real data: counters,
KV pairs and alarms written before each stop, so every start replays commit logs and
loads alarms. Used by tests/integration/test_startup.py and bench/restart.py.
"""
import json
import os
import signal
import socket
import subprocess
import threading
import time

OK, RESET, EOF, REFUSED, TIMEOUT, BAD = "ok", "reset", "eof", "refused", "timeout", "bad"
# scripts/netns-dpdk.sh's topology, named by the same variables (as in conftest.py).
DPDK_HOST_NS = os.environ.get("DURO_NETNS_HOST", "duro-host")
DPDK_IFACE = os.environ.get("DURO_NETNS_HOST_IF", "duro-dpdk0")


def request(host, port, method, path, body=b"", timeout=10.0):
    """One request on a fresh connection; returns one of the outcomes above."""
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return REFUSED
    except ConnectionResetError:
        return RESET
    except socket.timeout:
        return TIMEOUT
    try:
        s.sendall(b"%s %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                  % (method, path, len(body), body))
        buf = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            buf += b
        if not buf:
            return EOF
        status = buf.split(b" ", 2)[1] if buf.startswith(b"HTTP/1.1 ") else b""
        return OK if status in (b"200", b"204") else BAD
    except (ConnectionResetError, BrokenPipeError):
        return RESET
    except socket.timeout:
        return TIMEOUT
    finally:
        s.close()


def poll_port(host, port, proc, timeout):
    """What wait_port and a user do: connect until a connection is taken."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("durod exited early with %s" % proc.returncode)
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.005)
    raise RuntimeError("durod did not listen on %d" % port)


def fire(host, port, count, window_s, threads=16):
    """`count` requests on fresh connections from `threads` threads, the first ones at once,
    the rest spread over about `window_s` seconds. Returns [(seconds, outcome, path)]."""
    out = []
    lock = threading.Lock()
    issued = [0]
    t0 = time.time()
    spacing = window_s / max(1, count)

    def worker():
        while True:
            with lock:
                i = issued[0]
                if i >= count:
                    return
                issued[0] += 1
            due = t0 + i * spacing if i >= threads else t0
            if due > time.time():
                time.sleep(due - time.time())
            if i % 3 == 0:
                path = b"/counter/c%d" % (i % 40)
                r = request(host, port, b"POST", path)
            elif i % 3 == 1:
                path = b"/kv/k%d/k/a" % (i % 10)
                r = request(host, port, b"GET", path)
            else:
                path = b"/ticker/t%d" % (i % 10)
                r = request(host, port, b"GET", path)
            with lock:
                out.append((time.time() - t0, r, path.decode()))

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def write_data(host, port, k):
    """Counters, KV pairs and alarms (some due during the next start), so that the next
    start replays commit logs and loads alarms. Returns [(outcome, path)] of the failed."""
    failed = []
    for j in range(10):
        for method, path, body in ((b"POST", b"/counter/c%d" % j, b""),
                                   (b"PUT", b"/kv/k%d/k/a" % j, b"v%d" % k * 50),
                                   (b"POST", b"/ticker/t%d?in=%d" % (j, 50 + 100 * j), b"")):
            r = request(host, port, method, path, body)
            if r != OK:
                failed.append((r, path.decode()))
    return failed


def start(durod, host, port, data_dir, cfg_path, log_path, cores=2, backend="uring"):
    prefix, extra = [], []
    if backend == "dpdk":
        # As conftest.Durod: durod on scripts/netns-dpdk.sh's veth, in the host namespace.
        prefix = ["ip", "netns", "exec", DPDK_HOST_NS]
        extra = ["--backend", "dpdk", "--dpdk-ipv4", host + "/24", "--dpdk-vdev",
                 "net_af_packet0,iface=%s,qpairs=%d" % (DPDK_IFACE, cores)]
    log = open(log_path, "w")
    p = subprocess.Popen(prefix + [durod, "--listen", "%s:%d" % (host, port), "--data-dir", data_dir,
                                   "--cores", str(cores), "--config", cfg_path] + extra,
                         stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return p


def run(durod, workdir, port, restarts, per_start, window_s, host="127.0.0.1", config=None,
        report=None, backend="uring"):
    """Restarts durod `restarts` times (stopping it by SIGTERM and SIGKILL in turn), firing
    `per_start` requests after each start. Returns (outcomes by kind, failures)."""
    data_dir = os.path.join(workdir, "data")
    cfg_path = os.path.join(workdir, "duro.json")
    # Small commit logs: each is zero-filled when made.
    with open(cfg_path, "w") as f:
        json.dump({"storage": {"log_rotate_bytes": 4 << 20}, **(config or {})}, f)
    totals = {}
    failures = []
    for k in range(restarts + 1):
        log_path = os.path.join(workdir, "durod-%d.log" % k)
        p = start(durod, host, port, data_dir, cfg_path, log_path, backend=backend)
        try:
            poll_port(host, port, p, 60)
            if k > 0:  # the first start only makes the data
                for at, outcome, path in fire(host, port, per_start, window_s):
                    totals[outcome] = totals.get(outcome, 0) + 1
                    if outcome != OK:
                        failures.append((k, round(at * 1000), outcome, path, log_path))
            for outcome, path in write_data(host, port, k):
                totals[outcome] = totals.get(outcome, 0) + 1
                failures.append((k, None, outcome, path, log_path))
        finally:
            sig = signal.SIGKILL if k % 2 else signal.SIGTERM
            p.send_signal(sig)
            rc = p.wait(timeout=30)
        if sig == signal.SIGTERM:
            assert rc == 0, "durod exited %s on SIGTERM; log:\n%s" % (rc, open(log_path).read())
        with open(log_path) as f:
            text = f.read()
        for bad in ("assertion failed", "AddressSanitizer", "runtime error"):
            assert bad not in text, text
        if report:
            report(k, totals, failures)
    return totals, failures
