"""The built-in Feed class: one upstream WebSocket (python3-websockets, on loopback or, over
dpdk, in the client namespace) fanned out to local clients: every message in order to every
client, ~2,000 clients at once, hibernation with both sides open, re-subscription after the
upstream restarts, and clear errors when the binding's upstream is missing or not allowed."""
import os
import subprocess
import sys
import time

import pytest
import requests

import conftest
from conftest import wait_until
from wsupstream import Upstream

# The upstream: on loopback over uring; over dpdk in the client namespace, where the tests
# run, on the address the stack dials.
HOST = conftest.DPDK_CLIENT if conftest.BACKEND == "dpdk" else "127.0.0.1"

FLOOD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wsflood.py")


def feed_config(upstream_url, allow, extra=None, subscribe="subscribe ticks"):
    v = {"upstream": upstream_url}
    if subscribe:
        v["subscribe"] = subscribe
    c = {
        "durable_objects": {"bindings": [{"name": "FEED", "class_name": "Feed", "vars": v}]},
        "migrations": [{"tag": "builtin-v4", "new_classes": ["Feed"]}],
        "routes": [{"prefix": "/feed/", "binding": "FEED", "id": "name"}],
        "outbound": {"allow": allow},
    }
    c.update(extra or {})
    return c


def client(d, name):
    """A raw WebSocket client of /feed/<name>: a connected socket after the 101."""
    import base64
    import socket
    s = socket.create_connection((d.host, d.port), timeout=10)
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET /feed/" + name.encode() + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(4096)
        assert b, "closed before the answer"
        buf += b
    head, _, rest = buf.partition(b"\r\n\r\n")
    assert b" 101 " in head.split(b"\r\n")[0], head
    return s, bytearray(rest)


def read_text(s, buf, n):
    """n text messages (short, unfragmented) from a server's unmasked frames."""
    out = []
    while len(out) < n:
        while len(buf) >= 2 and len(buf) >= 2 + (buf[1] & 0x7f):
            ln = buf[1] & 0x7f
            assert ln < 126 and buf[0] == 0x81, bytes(buf[:4])
            out.append(bytes(buf[2:2 + ln]).decode())
            del buf[:2 + ln]
            if len(out) == n:
                return out
        b = s.recv(65536)
        assert b, "closed"
        buf += b
    return out


@pytest.fixture
def upstream():
    u = Upstream(host=HOST)
    yield u
    u.close()


def test_feed_fans_out_in_order_and_hibernates(durod_factory, upstream):
    url = "ws://" + HOST + ":%d/ticks" % upstream.port
    d = durod_factory(config=feed_config(url, ["ws://" + HOST + ":%d" % upstream.port],
                                         {"websockets": {"hibernate_idle_ms": 200}}))
    clients = [client(d, "f") for _ in range(5)]
    wait_until(lambda: upstream.conns and "subscribe ticks" in upstream.received,
               what="the feed to subscribe")
    assert upstream.accepts == 1, "one upstream connection for all clients"
    upstream.push_many(["m%d" % i for i in range(100)])
    for s, buf in clients:
        assert read_text(s, buf, 100) == ["m%d" % i for i in range(100)]
    # Idle: evicted with the upstream and the clients open; the next message wakes it.
    d.wait_evicted("FEED", "f")
    info = d.object_info("FEED", "f")
    assert info["sockets"] == 6 and info["hibernated"], info
    upstream.push("after sleep")
    for s, buf in clients:
        assert read_text(s, buf, 1) == ["after sleep"]
    # The upstream restarts: the feed re-subscribes (the var "subscribe" sent again) and
    # the clients keep receiving without reconnecting.
    upstream.stop()
    upstream.received.clear()
    upstream.start()
    wait_until(lambda: "subscribe ticks" in upstream.received, timeout=15,
               what="the re-subscription")
    assert upstream.push("back") == 1
    for s, buf in clients:
        assert read_text(s, buf, 1) == ["back"]
        s.close()


def test_feed_errors_are_clear(durod_factory, upstream):
    allowed = "ws://" + HOST + ":%d" % upstream.port
    d = durod_factory(config=feed_config("ws://" + HOST + ":1/x", [allowed]))
    r = requests.post(d.url + "/feed/x/subscribe", timeout=10)
    assert r.status_code == 500 and "not within outbound.allow" in r.text, r.text
    d.stop()
    cfg = feed_config("", [allowed])
    del cfg["durable_objects"]["bindings"][0]["vars"]["upstream"]
    d2 = durod_factory(config=cfg)
    r = requests.post(d2.url + "/feed/x/subscribe", timeout=10)
    assert r.status_code == 500 and 'var "upstream"' in r.text, r.text
    assert upstream.accepts == 0


def test_feed_two_thousand_clients(durod_factory, upstream):
    n = 2000
    url = "ws://" + HOST + ":%d/ticks" % upstream.port
    d = durod_factory(config=feed_config(url, ["ws://" + HOST + ":%d" % upstream.port]))
    assert requests.post(d.url + "/feed/big/subscribe", timeout=10).text.strip() == "subscribed"
    wait_until(lambda: upstream.conns, what="the feed to subscribe")
    # Over dpdk from the client namespace's one address (ports 10000-65000 there).
    src = "127.0.0.3" if d.host == "127.0.0.1" else conftest.DPDK_CLIENT
    p = subprocess.Popen([sys.executable, FLOOD, str(d.port), "/feed/big", str(n), src, "tick-1"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, WSFLOOD_HOST=d.host))
    try:
        line = p.stdout.readline().split()
        assert line[:2] == ["open", str(n)] and line[3] == "0", line
        assert d.object_info("FEED", "big")["sockets"] == n + 1
        t0 = time.time()
        upstream.push("tick-1")
        assert p.stdout.readline().split() == ["got", str(n)]
        assert time.time() - t0 < 60
    finally:
        p.stdin.close()
        p.wait(60)
