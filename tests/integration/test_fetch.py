"""Outbound HTTP from objects (duro_fetch) through TestCall, against local origins: answers
with Content-Length, chunked and close-delimited bodies, keep-alive reuse (connections
counted by the origin), refused destinations (a listener that counts accepts sees none),
slow and dead origins (timeouts), oversized answers, the per-object limit, and the output
gate under injected sync failures."""
import http.server
import socket
import threading
import time

import pytest
import requests

import conftest
from conftest import wait_until

# The origins: on loopback over uring; over dpdk in the client namespace, where the tests
# run, on the address the stack dials (its TLS certificates name that address).
HOST = conftest.DPDK_CLIENT if conftest.BACKEND == "dpdk" else "127.0.0.1"
TLS_HOST = conftest.DPDK_CLIENT if conftest.BACKEND == "dpdk" else "localhost"

CONFIG = {
    "durable_objects": {"bindings": [{"name": "CALL", "class_name": "TestCall"}]},
    "migrations": [{"tag": "calls-v1", "new_classes": ["TestCall"]}],
    "routes": [{"prefix": "/call/", "binding": "CALL", "id": "name"}],
}


class Origin(http.server.ThreadingHTTPServer):
    """An HTTP/1.1 origin that counts the connections it accepts and records /rec?v=V."""
    daemon_threads = True

    def __init__(self):
        self.connections = 0
        self.recorded = set()
        self.lock = threading.Lock()
        super().__init__((HOST, 0), Handler)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def get_request(self):
        conn = super().get_request()
        with self.lock:
            self.connections += 1
        return conn

    def close(self):
        self.shutdown()
        self.server_close()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.do_GET()

    def do_GET(self):
        path, _, query = self.path.partition("?")
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if path == "/hello":
            self.reply(200, b"hello from origin", [("X-Origin", "yes"),
                                                   ("X-Saw-From", self.headers.get("X-From", "-"))])
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"chunk one,", b" chunk two,", b" end"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/big":
            self.reply(200, b"x" * int(query.split("=")[1]))
        elif path == "/slow":
            time.sleep(int(query.split("=")[1]) / 1000)
            self.reply(200, b"slow")
        elif path == "/rec":
            with self.server.lock:
                self.server.recorded.add(query.split("=")[1])
            self.reply(200, b"ok")
        else:
            self.reply(404, b"no")


@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.close()


def start(durod_factory, origin_port, **outbound):
    cfg = dict(CONFIG)
    cfg["outbound"] = {"allow": ["http://" + HOST + ":%d" % origin_port], **outbound}
    return durod_factory(config=cfg, test_classes="raw", cores=2)


def fetch(d, name, url, params="", timeout=30):
    r = requests.post(d.url + "/call/%s/fetch%s" % (name, params), data=url.encode(), timeout=timeout)
    assert r.status_code == 200, r.text
    return r.text


def first(text):
    head, _, body = text.partition("\n")
    return dict(kv.split("=", 1) for kv in head.split()), body


def test_fetch_answers_and_keep_alive(durod_factory, origin):
    d = start(durod_factory, origin.port)
    base = "http://" + HOST + ":%d" % origin.port
    o, body = first(fetch(d, "f1", base + "/hello"))
    assert o["err"] == "0" and o["status"] == "200" and body == "hello from origin"
    o, body = first(fetch(d, "f1", base + "/chunked"))
    assert o["err"] == "0" and body == "chunk one, chunk two, end"
    o, body = first(fetch(d, "f1", base + "/nothing"))
    assert o["status"] == "404" and body == "no"
    # Sequential fetches from one object reuse one pooled connection.
    before = origin.connections
    for _ in range(5):
        assert first(fetch(d, "f1", base + "/hello"))[0]["err"] == "0"
    assert origin.connections == before
    wait_until(lambda: d.control({"cmd": "stats"})["outbound"]["reused"] >= 5, what="reuse counted")
    # Several at once: at most outbound.max_per_object (6) connections, all answered.
    text = fetch(d, "f2", base + "/hello", "?n=6")
    assert text.count("err=0 status=200") == 6, text


def test_refused_destinations_attempt_no_connection(durod_factory, origin):
    d = start(durod_factory, origin.port)
    # A listener the allow list does not name: it must never see a connection.
    trap = socket.socket()
    trap.bind((HOST, 0))
    trap.listen(16)
    trap.settimeout(0.5)
    port = trap.getsockname()[1]
    for url in ["http://" + HOST + ":%d/x" % port, "https://" + HOST + ":%d/x" % origin.port,
                "http://localhost:%d/x" % port]:
        assert fetch(d, "r", url).startswith("refused=-13"), url  # -EACCES
    for bad in ["ftp://127.0.0.1/", "http://", "http://a@127.0.0.1/", "nonsense"]:
        assert fetch(d, "r", bad).startswith("refused=-22"), bad  # -EINVAL
    with pytest.raises(socket.timeout):
        trap.accept()
    trap.close()
    wait_until(lambda: d.control({"cmd": "stats"})["calls"].get("CALL", {}).get("fetch_refused", 0) == 3,
               what="refusals counted")


def test_a_bad_allow_pattern_names_the_key(durod_factory, tmp_path):
    import subprocess, json, conftest
    cfg = dict(CONFIG)
    cfg["outbound"] = {"allow": ["http://127.0.0.1:80", "http://exa*mple.com"]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(cfg))
    r = subprocess.run([conftest.DUROD_TEST, "--config", str(path), "--data-dir", str(tmp_path / "d"),
                        "--listen", "127.0.0.1:%d" % conftest.free_port()], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "outbound.allow[1]" in r.stderr + r.stdout


def test_timeouts_slow_and_dead_origins(durod_factory, origin):
    dead = socket.socket()
    dead.bind((HOST, 0))
    dead.listen(16)  # takes connections, never answers
    d = durod_factory(config={**CONFIG, "outbound": {"allow": ["http://" + HOST + ":*"], "timeout_ms": 600}},
                      test_classes="raw", cores=2)
    t0 = time.time()
    o, _ = first(fetch(d, "t", "http://" + HOST + ":%d/x" % dead.getsockname()[1]))
    assert o["err"] == str(-110) and time.time() - t0 < 5  # -ETIMEDOUT
    o, _ = first(fetch(d, "t", "http://" + HOST + ":%d/slow?ms=1500" % origin.port))
    assert o["err"] == str(-110)
    # A fetch's own timeout beats the config's.
    o, body = first(fetch(d, "t", "http://" + HOST + ":%d/slow?ms=700" % origin.port, "?timeout=5000"))
    assert o["err"] == "0" and body == "slow"
    # Nobody listening: refused at once.
    closed = socket.socket()
    closed.bind((HOST, 0))
    port = closed.getsockname()[1]
    closed.close()
    o, _ = first(fetch(d, "t", "http://" + HOST + ":%d/x" % port))
    assert o["err"] == str(-111)  # -ECONNREFUSED
    dead.close()


def test_oversized_answers_fail(durod_factory, origin):
    d = start(durod_factory, origin.port, max_response_bytes=1000)
    base = "http://" + HOST + ":%d" % origin.port
    assert first(fetch(d, "b", base + "/big?n=1000"))[0]["err"] == "0"
    assert first(fetch(d, "b", base + "/big?n=1001"))[0]["err"] == str(-27)  # -EFBIG
    assert first(fetch(d, "b", base + "/big?n=5000000"))[0]["err"] == str(-27)
    # The pool still works afterwards.
    assert first(fetch(d, "b", base + "/hello"))[0]["err"] == "0"


def test_per_object_limit(durod_factory, origin):
    d = start(durod_factory, origin.port, max_per_object=2)
    text = fetch(d, "lim", "http://" + HOST + ":%d/slow?ms=200" % origin.port, "?n=4")
    assert text.count("refused=-16") == 2 and text.count("err=0 status=200") == 2, text


def test_a_fetch_after_a_failed_commit_is_never_sent(durod_factory, origin, monkeypatch):
    monkeypatch.setenv("DURO_FAULT_SYNC_EVERY", "4")
    d = start(durod_factory, origin.port)
    url = ("http://" + HOST + ":%d/rec" % origin.port).encode()
    statuses = []
    for v in range(160):
        r = requests.post(d.url + "/call/w%d/wfetch?v=%d" % (v % 4, v), data=url, timeout=10)
        statuses.append(r.status_code)
    assert 500 in statuses and 200 in statuses
    acked = {str(v) for v, s in enumerate(statuses) if s == 200}
    wait_until(lambda: acked <= origin.recorded, 10, what="acknowledged fetches arrived")
    written = set()
    for i in range(4):
        # A read answered after a failed commit is a 500 (it waits behind the writes): again.
        r = wait_until(lambda: (lambda r: r if r.status_code == 200 else None)(
            requests.get(d.url + "/call/w%d/keys?prefix=v:" % i)), 10, what="listing")
        written |= {k[2:] for k in r.text.split("\n") if k}
    # The origin saw only values whose writes are durable.
    assert origin.recorded <= written, sorted(origin.recorded - written)
    assert written == acked


# ---- https: certificates made by the test (python3-cryptography), checked by duro ----

def make_cert(subject, issuer_name, issuer_key, key, days_from, days_to, ca=False, san=None):
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID
    now = datetime.datetime.utcnow()
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now + datetime.timedelta(days=days_from))
         .not_valid_after(now + datetime.timedelta(days=days_to))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def write_pem(path, cert=None, key=None):
    from cryptography.hazmat.primitives import serialization
    with open(path, "wb") as f:
        if cert is not None:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        if key is not None:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))


@pytest.fixture
def tls_origins(tmp_path):
    """https origins on TLS_HOST: good, wrong name, expired, unknown CA; and the CA file."""
    import ssl
    from cryptography.hazmat.primitives.asymmetric import ec
    root_key, other_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = make_cert("duro fetch test CA", "duro fetch test CA", root_key, root_key, -1, 30, ca=True)
    other = make_cert("some other CA", "some other CA", other_key, other_key, -1, 30, ca=True)
    write_pem(tmp_path / "ca.pem", root)
    leaves = {
        "good": (TLS_HOST, root_key, -1, 30, "duro fetch test CA"),
        "wrong_name": ("other.test", root_key, -1, 30, "duro fetch test CA"),
        "expired": (TLS_HOST, root_key, -30, -1, "duro fetch test CA"),
        "unknown_ca": (TLS_HOST, other_key, -1, 30, "some other CA"),
    }
    servers = {}
    for name, (cn, signer, a, b, issuer) in leaves.items():
        key = ec.generate_private_key(ec.SECP256R1())
        write_pem(tmp_path / (name + ".pem"), make_cert(cn, issuer, signer, key, a, b, san=cn), key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tmp_path / (name + ".pem")))
        srv = Origin()
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        servers[name] = srv
    yield servers, str(tmp_path / "ca.pem")
    for s in servers.values():
        s.close()


def test_https_with_certificate_checks(durod_factory, tls_origins):
    servers, ca = tls_origins
    d = durod_factory(config={**CONFIG, "outbound": {"allow": ["https://" + TLS_HOST + ":*"], "ca_file": ca}},
                      test_classes="raw", cores=2)
    good = "https://" + TLS_HOST + ":%d" % servers["good"].port
    o, body = first(fetch(d, "s", good + "/hello"))
    assert (o["err"], o["status"], body) == ("0", "200", "hello from origin")
    before = servers["good"].connections
    for _ in range(3):  # kept alive over TLS too
        assert first(fetch(d, "s", good + "/chunked"))[1] == "chunk one, chunk two, end"
    assert servers["good"].connections == before
    for name in ("wrong_name", "expired", "unknown_ca"):
        o, _ = first(fetch(d, "s", "https://" + TLS_HOST + ":%d/hello" % servers[name].port))
        assert o["err"] == str(-129), (name, o)  # -EKEYREJECTED
    log = d.logtext()
    assert "refused the certificate of " + TLS_HOST in log and "expired" in log
    # https is not http: an http-only allow list refuses it.
    assert fetch(d, "s", "http://" + TLS_HOST + ":%d/hello" % servers["good"].port).startswith("refused=-13")


def test_a_missing_ca_file_names_the_key(durod_factory, tmp_path):
    import subprocess, json, conftest
    cfg = {**CONFIG, "outbound": {"allow": ["https://localhost:*"], "ca_file": str(tmp_path / "nope.pem")}}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    r = subprocess.run([conftest.DUROD_TEST, "--config", str(path), "--data-dir", str(tmp_path / "d"),
                        "--listen", "127.0.0.1:%d" % conftest.free_port()], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "outbound.ca_file" in r.stderr + r.stdout


@pytest.mark.uring_only("localhost resolves to 127.0.0.1, which the dpdk stack cannot reach")
def test_names_spelled_out_resolve_wildcard_ones_do_not(durod_factory, origin):
    # localhost is spelled out: resolved by the resolver thread. A name only a wildcard
    # covers cannot be (no lookups on a reactor): -EHOSTUNREACH, nothing sent.
    d = durod_factory(config={**CONFIG, "outbound": {
        "allow": ["http://localhost:%d" % origin.port, "http://*.example.invalid"]}},
        test_classes="raw", cores=2)
    o, body = first(fetch(d, "n", "http://localhost:%d/hello" % origin.port))
    assert (o["err"], body) == ("0", "hello from origin")
    assert fetch(d, "n", "http://api.example.invalid/x").startswith("refused=-113")


# ---- resets: an origin that ends connections with RST (SO_LINGER 0) ----

class ResetOrigin:
    """A keep-alive origin on raw sockets that resets on cue. Per connection it answers
    requests in order; the path says what to do with one:
      /ok          200 "ok"
      /rst         reset at once, no answer
      /half        the head and 3 of 100 body bytes, then a reset
      /second-rst  200 "ok" as a connection's first request, a reset as any later one
      /idle-rst    200 "ok", then a reset 0.2 s later while the connection is idle
      /bye         200 "ok" with Connection: close, then a plain close
      /stall       no answer; closed after 3 s"""

    def __init__(self, host=HOST, port=0):
        self.lock = threading.Lock()
        self.connections = self.idle_resets = 0
        self.sock = socket.socket()
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closing = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while not self.closing:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self.serve, args=(s,), daemon=True).start()

    @staticmethod
    def reset(s):
        import struct
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()

    def serve(self, s):
        buf, nth = b"", 0
        s.settimeout(30)
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    b = s.recv(65536)
                    if not b:
                        s.close()
                        return
                    buf += b
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                path = lines[0].split(" ")[1]
                n = 0
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    if k.strip().lower() == "content-length":
                        n = int(v)
                while len(buf) < n:
                    buf += s.recv(65536)
                buf = buf[n:]
                nth += 1
                ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                if path == "/rst" or (path == "/second-rst" and nth > 1):
                    self.reset(s)
                    return
                if path == "/half":
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
                    time.sleep(0.1)
                    self.reset(s)
                    return
                if path == "/stall":
                    time.sleep(3)
                    s.close()
                    return
                if path == "/bye":
                    s.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
                    s.close()
                    return
                s.sendall(ok)
                if path == "/idle-rst":
                    time.sleep(0.2)
                    self.reset(s)
                    with self.lock:
                        self.idle_resets += 1
                    return
        except OSError:
            s.close()

    def close(self):
        self.closing = True
        try:  # wakes the accept() under way; a close alone leaves the socket listening
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


@pytest.fixture
def reset_origin():
    o = ResetOrigin()
    yield o
    o.close()


def outbound(d):
    return d.control({"cmd": "stats"})["outbound"]


def test_a_reset_reaches_the_object_as_econnreset(durod_factory, reset_origin):
    d = start(durod_factory, reset_origin.port)
    base = "http://%s:%d" % (HOST, reset_origin.port)
    # Before any answer, on a new connection: nothing to retry on.
    o, _ = first(fetch(d, "x", base + "/rst"))
    assert o["err"] == str(-104), o  # -ECONNRESET
    # In the middle of the body.
    o, _ = first(fetch(d, "x", base + "/half"))
    assert o["err"] == str(-104), o
    # The pool holds nothing broken: the next fetch is answered.
    o, body = first(fetch(d, "x", base + "/ok"))
    assert (o["err"], body) == ("0", "ok")


def test_a_pooled_connection_reset_while_idle_is_dropped(durod_factory, reset_origin):
    d = start(durod_factory, reset_origin.port)
    base = "http://%s:%d" % (HOST, reset_origin.port)
    assert first(fetch(d, "i", base + "/idle-rst"))[0]["err"] == "0"
    assert reset_origin.connections == 1
    # The reset arrives while the connection is pooled: it leaves the pool then.
    wait_until(lambda: reset_origin.idle_resets == 1, 10, what="the origin's reset")
    time.sleep(0.3)
    wait_until(lambda: outbound(d)["idle"] == 0, 10, what="the reset connection left the pool")
    o, body = first(fetch(d, "i", base + "/ok"))
    assert (o["err"], body) == ("0", "ok")
    assert reset_origin.connections == 2
    time.sleep(0.5)  # stats are per-core snapshots, taken every few hundred ms
    assert outbound(d)["retries"] == 0  # a new connection, not a retry


def test_a_reset_of_a_reused_connection_retries_only_what_may_repeat(durod_factory, reset_origin):
    d = start(durod_factory, reset_origin.port)
    url = "http://%s:%d/second-rst" % (HOST, reset_origin.port)
    # One object, so one core and one pool: the first GET opens connection A.
    assert first(fetch(d, "r", url))[0]["err"] == "0"
    assert reset_origin.connections == 1
    # The second goes on pooled A, which the origin resets after reading it: a GET may be
    # repeated, so it is sent again on a new connection B and answered there.
    o, body = first(fetch(d, "r", url))
    assert (o["err"], body) == ("0", "ok")
    assert reset_origin.connections == 2
    wait_until(lambda: outbound(d)["retries"] == 1, 10, what="the retry counted")
    # A POST on pooled B meets the same reset after the origin read it: it may have acted,
    # so the object hears the reset and no third connection is made.
    o, _ = first(fetch(d, "r", url, "?method=POST"))
    assert o["err"] == str(-104), o
    assert reset_origin.connections == 2
    time.sleep(0.5)
    assert outbound(d)["retries"] == 1


# ---- names looked up again while running (outbound.hosts_file, outbound.resolve_interval_ms) ----

def write_hosts(path, addr):
    """hosts(5) lines naming origin.test, replaced whole (a reader never sees half)."""
    import os
    tmp = str(path) + ".new"
    with open(tmp, "w") as f:
        f.write("# duro test hosts\n127.0.0.9 unrelated.test\n%s  origin.test other.test\n" % addr)
    os.replace(tmp, str(path))


@pytest.fixture
def two_addresses():
    """Origins on one port at 127.0.0.2 and 127.0.0.3: where origin.test points decides."""
    for _ in range(50):
        a = ResetOrigin("127.0.0.2")
        try:
            b = ResetOrigin("127.0.0.3", a.port)
            break
        except OSError:  # taken on 127.0.0.3 (a listener on the wildcard address): another
            a.close()
    else:
        raise AssertionError("no port free on both 127.0.0.2 and 127.0.0.3")
    yield a, b
    a.close()
    b.close()


@pytest.mark.uring_only("two origin addresses; the dpdk client namespace has one")
def test_a_name_follows_its_new_address_while_running(durod_factory, two_addresses, tmp_path):
    a, b = two_addresses
    hosts = tmp_path / "hosts"
    write_hosts(hosts, "127.0.0.2")
    d = durod_factory(config={**CONFIG, "outbound": {
        "allow": ["http://origin.test:%d" % a.port], "hosts_file": str(hosts), "resolve_interval_ms": 200}},
        test_classes="raw", cores=2)
    url = "http://origin.test:%d/ok" % a.port
    o, body = first(fetch(d, "h", url))
    assert (o["err"], body) == ("0", "ok")
    assert (a.connections, b.connections) == (1, 0)
    write_hosts(hosts, "127.0.0.3")
    # The pooled connection to the old address is not taken for the new one.
    wait_until(lambda: first(fetch(d, "h", url))[0]["err"] == "0" and b.connections >= 1, 10,
               what="fetches reach the name's new address")
    assert a.connections == 1
    assert "origin.test now resolves to 127.0.0.3 (was 127.0.0.2)" in d.logtext()


@pytest.mark.uring_only("two origin addresses; the dpdk client namespace has one")
def test_a_failed_connect_looks_the_name_up_again(durod_factory, two_addresses, tmp_path):
    a, b = two_addresses
    hosts = tmp_path / "hosts"
    write_hosts(hosts, "127.0.0.2")
    # An hour between refreshes: only the failed connect can explain a new lookup.
    d = durod_factory(config={**CONFIG, "outbound": {
        "allow": ["http://origin.test:%d" % a.port], "hosts_file": str(hosts),
        "resolve_interval_ms": 3600000}}, test_classes="raw", cores=2)
    url = "http://origin.test:%d/bye" % a.port  # Connection: close: nothing pooled
    assert first(fetch(d, "h", url))[0]["err"] == "0"
    write_hosts(hosts, "127.0.0.3")
    a.close()  # 127.0.0.2 now refuses
    o, _ = first(fetch(d, "h", url))
    assert o["err"] == str(-111), o  # -ECONNREFUSED: this one fails as it did
    t0 = time.time()
    wait_until(lambda: first(fetch(d, "h", url))[0]["err"] == "0", 10, what="the name looked up again")
    assert time.time() - t0 < 5 and b.connections >= 1


def test_a_reused_connection_that_times_out_is_closed_cleanly(durod_factory, reset_origin):
    # Regression: the connection given up after a timeout on a reused connection, before
    # any byte of the answer, closes with no request on it: nothing to retry or tell.
    d = start(durod_factory, reset_origin.port)
    base = "http://%s:%d" % (HOST, reset_origin.port)
    assert first(fetch(d, "t", base + "/ok"))[0]["err"] == "0"
    o, _ = first(fetch(d, "t", base + "/stall", "?timeout=300"))
    assert o["err"] == str(-110), o  # -ETIMEDOUT
    assert reset_origin.connections == 1  # it went on the pooled connection
    o, body = first(fetch(d, "t", base + "/ok"))
    assert (o["err"], body) == ("0", "ok")
    assert d.proc.poll() is None
