"""Outbound WebSockets (duro_ws_connect) through TestWsOut against a local python3-websockets
upstream: refused destinations (no connection attempted), messages both ways, the output
gate, hibernation (the object is evicted, an upstream message wakes it), durable reconnect
after the upstream restarts and after durod is killed, wss with a test CA, and protocol
errors from a hostile upstream."""
import socket
import threading
import time

import pytest
import requests

import conftest
from conftest import wait_until, start_on
from wsupstream import Upstream, Hostile, close_code_from

# The upstreams: on loopback over uring; over dpdk in the client namespace, where the tests
# run, on the address the stack dials (the wss certificates name that address).
HOST = conftest.DPDK_CLIENT if conftest.BACKEND == "dpdk" else "127.0.0.1"
TLS_HOST = conftest.DPDK_CLIENT if conftest.BACKEND == "dpdk" else "localhost"


def config(allow, extra=None):
    c = {
        "durable_objects": {"bindings": [{"name": "WSOUT", "class_name": "TestWsOut"}]},
        "migrations": [{"tag": "wsout-v1", "new_classes": ["TestWsOut"]}],
        "routes": [{"prefix": "/wsout/", "binding": "WSOUT", "id": "name"}],
        "outbound": {"allow": allow},
    }
    c.update(extra or {})
    return c


def post(d, name, op, body=b"", **q):
    r = requests.post("%s/wsout/%s/%s" % (d.url, name, op), params=q, data=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.text.strip()


def log(d, name):
    r = requests.get("%s/wsout/%s/log" % (d.url, name), timeout=10)
    assert r.status_code == 200
    return r.text.splitlines()


def wait_log(d, name, line, timeout=10):
    return wait_until(lambda: line in log(d, name), timeout, what="%r in the log" % line)


@pytest.fixture
def upstream():
    u = Upstream(host=HOST)
    yield u
    u.close()


def test_messages_both_ways(durod_factory, upstream):
    d = durod_factory(config=config(["ws://" + HOST + ":%d" % upstream.port]), test_classes="raw")
    url = "ws://" + HOST + ":%d/feed?x=1" % upstream.port
    assert post(d, "a", "connect", url=url).startswith("ok ")
    wait_log(d, "a", "open err=0 reconnect=0 outbound=1")
    assert upstream.accepts == 1
    # object -> upstream, upstream -> object (the "say" answer), and back again.
    assert post(d, "a", "send", b"say echo hello") == "1"
    wait_log(d, "a", "msg echo hello")
    wait_until(lambda: "re hello" in upstream.received, what="the object's answer upstream")
    assert upstream.received[0] == "say echo hello"
    # A large message from upstream (1 MiB limit by default: 512 KiB fits).
    big = "echo " + "z" * (512 << 10)
    upstream.push(big)
    wait_until(lambda: any(m.startswith("re zzz") for m in upstream.received), what="big answer")
    # The object closes: no close event for its own close, the upstream sees 1000.
    assert post(d, "a", "close") == "1"
    wait_until(lambda: not upstream.conns, what="upstream to see the close")
    assert post(d, "a", "count") == "0"


def test_refused_destination_sends_nothing(durod_factory):
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepts = []

    def count():
        while True:
            try:
                c, _ = listener.accept()
                accepts.append(c)
            except socket.timeout:
                continue
            except OSError:
                return

    t = threading.Thread(target=count, daemon=True)
    t.start()
    # Allowed: another port of the same host, and wss (TLS) to this one.
    d = durod_factory(config=config(["ws://" + HOST + ":%d" % (port + 1 if port < 65535 else port - 1)]),
                      test_classes="raw")
    for url in ("ws://" + HOST + ":%d/" % port, "ws://localhost:%d/" % port,
                "ws://127.0.0.2:%d/" % port):
        assert post(d, "r", "connect", url=url) == "err=-13", url  # -EACCES
    assert post(d, "r", "connect", url="http://" + HOST + ":%d/" % port) == "err=-22"
    assert post(d, "r", "connect", url="wss://" + HOST + ":%d/" % port) == "err=-13"
    time.sleep(0.5)
    assert accepts == [], "a refused destination saw a connection"
    assert post(d, "r", "count") == "0"
    listener.close()


def test_connect_failure_is_an_open_event(durod_factory):
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]  # bound, never listening: refused
        d = durod_factory(config=config(["ws://" + HOST + ":%d" % port]), test_classes="raw")
        assert post(d, "f", "connect", url="ws://" + HOST + ":%d/" % port).startswith("ok ")
        wait_log(d, "f", "open err=-111 reconnect=0 outbound=1")  # -ECONNREFUSED
    assert post(d, "f", "count") == "0"


@pytest.mark.parametrize("mode,err", [("bad_accept", -71), ("status404", -111), ("garbage", -71)])
def test_bad_handshake(durod_factory, mode, err):
    h = Hostile(mode, HOST)
    try:
        d = durod_factory(config=config(["ws://" + HOST + ":%d" % h.port]), test_classes="raw")
        assert post(d, "h", "connect", url="ws://" + HOST + ":%d/" % h.port).startswith("ok ")
        wait_log(d, "h", "open err=%d reconnect=0 outbound=1" % err)
        assert post(d, "h", "count") == "0"
    finally:
        h.close()


@pytest.mark.parametrize("mode,code", [("masked", 1002), ("oversized", 1009)])
def test_hostile_frames(durod_factory, mode, code):
    h = Hostile(mode, HOST)
    try:
        d = durod_factory(config=config(["ws://" + HOST + ":%d" % h.port]), test_classes="raw")
        assert post(d, "h", "connect", url="ws://" + HOST + ":%d/" % h.port).startswith("ok ")
        wait_log(d, "h", "open err=0 reconnect=0 outbound=1")
        wait_log(d, "h", "error code=%d" % code)
        wait_log(d, "h", "close code=%d clean=0" % code)
        wait_until(lambda: h.after, what="the connection to end")
        assert close_code_from(h.after[0]) == code
        assert h.after[0][1] & 0x80, "a client's close frame must be masked"
    finally:
        h.close()


def test_gate_holds_the_dial(durod_factory, upstream, monkeypatch):
    """A connect made after a write leaves once the write is durable: with every fourth
    sync failing, the upstream sees exactly the connects whose writes were acknowledged;
    the others are never dialed (their open fails with -EIO)."""
    monkeypatch.setenv("DURO_FAULT_SYNC_EVERY", "4")
    d = durod_factory(config=config(["ws://" + HOST + ":%d" % upstream.port]), test_classes="raw")
    statuses = []
    for v in range(40):
        r = requests.post("%s/wsout/g%d/connect" % (d.url, v), timeout=10, params={
            "url": "ws://" + HOST + ":%d/p%d" % (upstream.port, v), "write": 1})
        statuses.append(r.status_code)
    assert 500 in statuses and 200 in statuses, statuses
    acked = {"/p%d" % v for v, s in enumerate(statuses) if s == 200}
    wait_until(lambda: acked <= set(upstream.paths), what="the acknowledged connects")
    time.sleep(0.5)
    assert set(upstream.paths) == acked, sorted(set(upstream.paths) - acked)


def test_hibernates_and_wakes(durod_factory, upstream):
    d = durod_factory(config=config(["ws://" + HOST + ":%d" % upstream.port],
                                    {"websockets": {"hibernate_idle_ms": 200}}),
                      test_classes="raw")
    assert post(d, "h", "connect", url="ws://" + HOST + ":%d/" % upstream.port).startswith("ok ")
    wait_log(d, "h", "open err=0 reconnect=0 outbound=1")
    first = int(post(d, "h", "loads"))
    # Auto-response works on the outbound socket without waking the object.
    assert post(d, "h", "auto", req="ping", res="pong") == "ok"
    d.wait_evicted("WSOUT", "h")
    info = d.object_info("WSOUT", "h")
    assert info["sockets"] == 1 and info["hibernated"], info
    stats = d.control({"cmd": "stats"})
    upstream.push("ping")
    wait_until(lambda: "pong" in upstream.received, what="the auto-response")
    assert not d.object_info("WSOUT", "h")["in_memory"], "the auto-response woke the object"
    upstream.push("echo awake")
    wait_until(lambda: "re awake" in upstream.received, what="the woken object's answer")
    assert d.object_info("WSOUT", "h")["in_memory"]
    assert int(post(d, "h", "loads")) > first, "the object was not activated again"
    assert "msg echo awake" in log(d, "h")
    assert "msg ping" not in log(d, "h")
    assert requests.get(d.url + "/wsout/h/att").text == "opened 1"  # kept while it slept


def test_upstream_restart_reconnects(durod_factory):
    u = Upstream(host=HOST)
    port = u.port
    try:
        d = durod_factory(config=config(["ws://" + HOST + ":%d" % port]), test_classes="raw")
        assert post(d, "r", "connect", url="ws://" + HOST + ":%d/" % port, reconnect=1).startswith("ok ")
        wait_log(d, "r", "open err=0 reconnect=0 outbound=1")
        # Without the flag, a drop is a close event.
        assert post(d, "plain", "connect", url="ws://" + HOST + ":%d/" % port).startswith("ok ")
        wait_log(d, "plain", "open err=0 reconnect=0 outbound=1")
        u.stop()
        wait_log(d, "plain", "close code=1001 clean=1")
        assert post(d, "plain", "count") == "0"
        time.sleep(1.0)  # a few redials fail meanwhile (refused): no event for them
        assert "open err=0 reconnect=1 outbound=1" not in log(d, "r")
        assert post(d, "r", "count") == "1"
        u.start()
        wait_log(d, "r", "open err=0 reconnect=1 outbound=1", timeout=15)
        assert [l for l in log(d, "r") if l.startswith("close")] == []
        # The same socket: its attachment came through the drop.
        assert requests.get(d.url + "/wsout/r/att").text == "opened 2"
        # The same duro_ws works again: the object's send reaches the new connection.
        assert post(d, "r", "send", b"say echo again") == "1"
        wait_log(d, "r", "msg echo again")
        # Closed by the object: the intent goes, no more redials.
        assert post(d, "r", "close") == "1"
        u.stop()
        u.start()
        time.sleep(1.5)
        assert u.accepts == 3, u.accepts  # r twice and plain once
        assert post(d, "r", "count") == "0"
    finally:
        u.close()


def test_durable_across_sigkill(tmp_path, durod_factory):
    u = Upstream(host=HOST)
    try:
        cfg = config(["ws://" + HOST + ":%d" % u.port], {"websockets": {"hibernate_idle_ms": 200}})
        d = durod_factory(config=cfg, test_classes="raw")
        for name in ("k1", "k2"):
            assert post(d, name, "connect", url="ws://" + HOST + ":%d/%s" % (u.port, name),
                        reconnect=1, tag="up").startswith("ok ")
            wait_log(d, name, "open err=0 reconnect=0 outbound=1")
        # One more, closed again: not dialed after the restart.
        assert post(d, "k3", "connect", url="ws://" + HOST + ":%d/k3" % u.port, reconnect=1).startswith("ok ")
        wait_log(d, "k3", "open err=0 reconnect=0 outbound=1")
        assert post(d, "k3", "close") == "1"
        wait_until(lambda: len(u.conns) == 2, what="k3 to be closed upstream")
        before = u.accepts
        d.proc.kill()
        d.proc.wait()
        if conftest.BACKEND == "dpdk":
            # A killed stack's connections end silently (no kernel is left to send their
            # FIN or RST): the upstream learns of it when it sends on them, and durod, back
            # on the same address, answers that with RST.
            d2 = start_on(tmp_path, "after", d.data_dir, config=cfg, test_classes="raw",
                          host=d.host)
            wait_until(lambda: u.accepts == before + 2, timeout=15,
                       what="both durable sockets dialed again")
            u.push("probe")
            wait_until(lambda: len(u.conns) == 2, what="the upstream to drop the dead ones")
        else:
            wait_until(lambda: not u.conns, what="the upstream to see the connections drop")
            d2 = start_on(tmp_path, "after", d.data_dir, config=cfg, test_classes="raw")
            wait_until(lambda: u.accepts == before + 2 and len(u.conns) == 2, timeout=15,
                       what="both durable sockets dialed again")
        for name in ("k1", "k2"):
            wait_log(d2, name, "open err=0 reconnect=1 outbound=1")
        time.sleep(0.5)
        assert u.accepts == before + 2, "k3, closed before the crash, was dialed again"
        # They work, and the objects sleep with them open, then wake on a message.
        d2.wait_evicted("WSOUT", "k1")
        u.push("echo back")
        wait_until(lambda: u.received.count("re back") == 2, what="both objects to answer")
    finally:
        u.close()


def test_wss_with_certificate_checks(tmp_path, durod_factory):
    """wss through the TLS client of https fetches: a good certificate works; a wrong name
    and an unknown CA fail the open with -EKEYREJECTED, logged with why."""
    import ssl
    from cryptography.hazmat.primitives.asymmetric import ec
    from test_fetch import make_cert, write_pem
    root_key, other_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = make_cert("duro ws test CA", "duro ws test CA", root_key, root_key, -1, 30, ca=True)
    write_pem(tmp_path / "ca.pem", root)
    leaves = {"good": (TLS_HOST, root_key, "duro ws test CA"),
              "wrong_name": ("other.test", root_key, "duro ws test CA"),
              "unknown_ca": (TLS_HOST, other_key, "some other CA")}
    ups = {}
    try:
        for name, (cn, signer, issuer) in leaves.items():
            key = ec.generate_private_key(ec.SECP256R1())
            write_pem(tmp_path / (name + ".pem"), make_cert(cn, issuer, signer, key, -1, 30, san=cn), key)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tmp_path / (name + ".pem")))
            ups[name] = Upstream(ssl_context=ctx, host=HOST)
        d = durod_factory(config=config(["wss://" + TLS_HOST + ":*"], {"outbound": {
            "allow": ["wss://" + TLS_HOST + ":*"], "ca_file": str(tmp_path / "ca.pem")}}), test_classes="raw")
        good = "wss://" + TLS_HOST + ":%d/s" % ups["good"].port
        assert post(d, "t", "connect", url=good).startswith("ok ")
        wait_log(d, "t", "open err=0 reconnect=0 outbound=1")
        assert post(d, "t", "send", b"say echo over tls") == "1"
        wait_log(d, "t", "msg echo over tls")
        wait_until(lambda: "re over tls" in ups["good"].received, what="the answer over TLS")
        for name in ("wrong_name", "unknown_ca"):
            assert post(d, name, "connect", url="wss://" + TLS_HOST + ":%d/" % ups[name].port).startswith("ok ")
            wait_log(d, name, "open err=-129 reconnect=0 outbound=1")  # -EKEYREJECTED
        assert "refused the certificate of " + TLS_HOST in d.logtext()
        # ws is not wss: a wss-only allow list refuses it.
        assert post(d, "t", "connect", url="ws://" + TLS_HOST + ":%d/" % ups["good"].port) == "err=-13"
    finally:
        for u in ups.values():
            u.close()
