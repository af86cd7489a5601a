"""Limits and fallbacks: the connection cap refuses and counts without hurting the process;
slow and hostile clients (idle, trickling a body, not reading their answers) are bounded,
cut off, or make room for new clients; and the per-connection receive path (no provided
buffer ring) serves the same HTTP."""
import os
import socket
import time

import requests

import test_counter
import test_http
import wsconformance as wc
from conftest import read_responses
from test_control import ctl_json


def http_stats(d, want=None, timeout=10.0):
    """The total of the cores' HTTP limit counters, waited for until want(stats) holds
    (snapshots are published every 100 ms)."""
    deadline = time.time() + timeout
    while True:
        st = ctl_json(d, "stats")["total"]
        if want is None or want(st) or time.time() > deadline:
            return st
        time.sleep(0.1)


def rss_bytes(d):
    with open("/proc/%d/status" % d.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def test_connection_cap_refuses_and_recovers(durod_factory):
    # WebSockets are never closed to make room (that is for HTTP connections making no
    # progress), so a table full of them refuses new connections, and counts them.
    d = durod_factory(config={"limits": {"max_connections_per_core": 16}})
    held, refused = [], 0
    for i in range(80):
        try:
            c = wc.Conn(d.host, d.port, "/echo/cap%d" % i, timeout=2)
            if c.handshake() != 101:
                raise EOFError("refused")
            held.append(c)
        except (OSError, EOFError, IndexError, ValueError):
            refused += 1
    assert refused > 0 and len(held) <= 32
    for c in held:  # the admitted connections still work
        c.send(wc.frame(wc.OP_TEXT, b"still here"))
        assert c.read_message() == (wc.OP_TEXT, b"still here")
        c.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if requests.post(d.url + "/counter/cap", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.1)
    else:
        assert False, "no room after the WebSockets closed"
    assert "refusing connections: connection table full" in d.logtext()


def test_idle_keepalive_clients_make_room(durod_factory):
    # Idle keep-alive connections fill the table: the oldest is closed for each newcomer.
    d = durod_factory(cores=1, config={"limits": {"max_connections_per_core": 16}})
    idle = []
    for _ in range(16):
        s = d.connect(timeout=2)
        s.sendall(b"GET /counter/idle HTTP/1.1\r\nHost: t\r\n\r\n")
        read_responses(s, 1, timeout=5)
        idle.append(s)
    for i in range(20):
        r = requests.post(d.url + "/counter/newcomer", headers={"Connection": "close"}, timeout=5)
        assert r.status_code == 200 and r.text == str(i + 1)
    assert http_stats(d, lambda st: st["http"]["evicted"] > 0)["http"]["evicted"] > 0
    assert "to make room" in d.logtext()
    for s in idle:
        s.close()


def test_slow_body_clients_do_not_lock_out_new_clients(durod_factory):
    # Issue 14: 100 connections trickling a body one byte at a time filled the table, and
    # 0 of 20 new clients were answered. Now the one that has gone longest without
    # progress makes room. The body timeout is long here so that room is what is tested.
    d = durod_factory(cores=1, config={"limits": {"max_connections_per_core": 16,
                                                  "body_timeout_ms": 600000}})
    slow = []
    for i in range(100):
        try:
            s = d.connect(timeout=2)
            s.sendall(b"POST /echo/slow%d HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nx" % i)
            slow.append(s)
        except OSError:
            pass
    # Once durod has taken (or refused) every one of them, the table is full of them.
    http_stats(d, lambda st: st["accepted"] + st["refused"] >= len(slow))
    for s in slow[-8:]:  # the latest trickle on
        try:
            s.send(b"y")
        except OSError:
            pass
    answered, errors = 0, []
    for i in range(20):
        try:
            r = requests.get(d.url + "/counter/fresh%d" % i, headers={"Connection": "close"}, timeout=5)
            answered += r.status_code == 200
        except requests.RequestException as e:
            errors.append(repr(e))
    assert answered == 20, (errors, d.logtext()[-3000:])
    st = http_stats(d, lambda st: st["http"]["evicted"] >= 20)
    assert st["http"]["evicted"] >= 20 and st["http"]["body_timeouts"] == 0
    assert "to make room" in d.logtext()
    for s in slow:
        s.close()


def test_slow_body_gets_408(durod_factory):
    d = durod_factory(config={"limits": {"body_timeout_ms": 1000, "body_min_rate": 500}})
    s = d.connect()
    s.sendall(b"POST /echo/trickle HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
    t0 = time.time()
    out = b""
    s.settimeout(0.2)
    for _ in range(50):  # a byte every 0.2 s: 10 s at most, and the body never completes
        try:
            s.send(b"x")
            b = s.recv(4096)
            if not b:
                break
            out += b
        except socket.timeout:
            continue
        except OSError:
            break
    assert out.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in out, out[:200]
    assert time.time() - t0 < 8
    s.close()
    # A large body at a fair rate (600 bytes every 0.4 s, over the 500 bytes/s minimum)
    # takes longer than body_timeout_ms and is still read whole.
    s = d.connect()
    s.sendall(b"POST /echo/upload HTTP/1.1\r\nHost: t\r\nContent-Length: 3000\r\n\r\n")
    for i in range(5):
        time.sleep(0.4)
        s.sendall(bytes([65 + i]) * 600)
    (st, _, body), = read_responses(s, 1)
    assert st == 200 and len(body) == 3000
    s.close()
    assert http_stats(d, lambda st: st["http"]["body_timeouts"] == 1)["http"]["body_timeouts"] == 1


def test_non_reading_pipeliners_are_bounded_and_closed(durod_factory):
    # Issue 14: 8 connections pipelining requests for 64 KiB answers and never reading
    # grew durod by 1.25 GB and stayed open. Now reading pauses at max_output_bytes
    # (1 MiB by default) and send_timeout_ms closes them.
    d = durod_factory(config={"limits": {"send_timeout_ms": 1500}})
    value = os.urandom(65536)
    assert requests.put(d.url + "/kv/big/k/v", data=value).status_code == 204
    assert requests.get(d.url + "/kv/big/k/v").content == value
    base = rss_bytes(d)
    socks = []
    req = b"GET /kv/big/k/v HTTP/1.1\r\nHost: t\r\n\r\n"
    for _ in range(8):
        s = d.connect()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(req * 400)  # 25 MiB of answers each, unbounded before the fix
        socks.append(s)
    peak = base
    deadline = time.time() + 20
    st = None
    while time.time() < deadline:
        peak = max(peak, rss_bytes(d))
        st = ctl_json(d, "stats")["total"]
        if st["http"]["send_timeouts"] >= 8 and st["http_connections"] == 0:
            break
        time.sleep(0.1)
    assert peak - base < 64 << 20, "grew by %d MiB" % ((peak - base) >> 20)
    assert st["http"]["send_timeouts"] == 8 and st["http_connections"] == 0, st
    assert st["http"]["output_pauses"] >= 8
    assert "limits.send_timeout_ms" in d.logtext()
    limits = ctl_json(d, "config")["config"]["limits"]
    assert limits["send_timeout_ms"] == 1500 and limits["max_output_bytes"] == 1 << 20
    for s in socks:
        s.close()
    # Others were never held up.
    assert requests.get(d.url + "/kv/big/k/v").content == value


def test_without_buffer_ring(durod_factory):
    d = durod_factory(config={"uring": {"buffer_ring": False}})
    test_http.test_pipeline_deeper_than_limit(d)
    test_http.test_large_body_split_over_many_packets(d)
    test_http.test_chunked_byte_by_byte(d)
    test_http.test_half_close_answers_then_closes(d)
    test_counter.test_concurrent_increments_exact(d)
    for raw, status in test_http.BAD[:4]:
        s = d.connect()
        s.sendall(raw)
        assert test_http.status_of(s.recv(4096)) == status
        s.close()
