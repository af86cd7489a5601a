"""TLS with real clients: curl, openssl s_client, python3 ssl, websockets over wss, node
https; a certificate chain made by the test itself with the openssl CLI (no committed keys);
bad handshakes and config errors. Clients connect to the durod's own address (127.0.0.1, or
the dpdk stack's) and check the certificate for "localhost", so the same tests run over
either backend."""
import asyncio
import json
import os
import socket
import ssl
import subprocess
import time

import pytest
import requests
import requests.adapters
import websockets

from conftest import DUROD, Durod, check_output, durod_env, free_port, run_durod


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """root CA -> intermediate CA -> leaf for localhost and 127.0.0.1; the server's cert
    file holds the leaf and the intermediate, clients trust the root only."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "root.key", "-out", "root.pem", "-days", "2",
            "-subj", "/CN=duro test root", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign", cwd=d)
    openssl("req", *ec, "-keyout", "inter.key", "-out", "inter.csr", "-subj", "/CN=duro test intermediate", cwd=d)
    (d / "inter.ext").write_text("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\n")
    openssl("x509", "-req", "-in", "inter.csr", "-CA", "root.pem", "-CAkey", "root.key",
            "-CAcreateserial", "-out", "inter.pem", "-days", "2", "-extfile", "inter.ext", cwd=d)
    openssl("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost", cwd=d)
    (d / "leaf.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "inter.pem", "-CAkey", "inter.key",
            "-CAcreateserial", "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext", cwd=d)
    (d / "chain.pem").write_text((d / "leaf.pem").read_text() + (d / "inter.pem").read_text())
    # a second server certificate, for SNI
    openssl("req", *ec, "-keyout", "other.key2", "-out", "other.csr", "-subj", "/CN=other.test", cwd=d)
    (d / "other.ext").write_text("subjectAltName=DNS:other.test,DNS:*.wild.test\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "other.csr", "-CA", "inter.pem", "-CAkey", "inter.key",
            "-CAcreateserial", "-out", "other.pem", "-days", "2", "-extfile", "other.ext", cwd=d)
    (d / "other-chain.pem").write_text((d / "other.pem").read_text() + (d / "inter.pem").read_text())
    # a key that matches nothing here
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-out", "other.key", cwd=d)
    return d


@pytest.fixture
def tls_durod(durod_factory, pki):
    d = durod_factory(config={"tls": {"handshake_timeout_ms": 1000}},
                      extra_args=["--tls-cert", str(pki / "chain.pem"), "--tls-key", str(pki / "leaf.key")])
    d.tls_port = d.port
    return d


def https(d, path):
    """A URL by d's address, for requests sessions from tls_session."""
    return "https://%s:%d%s" % (d.host, d.tls_port, path)


class _AsLocalhost(requests.adapters.HTTPAdapter):
    """Sends SNI "localhost" and checks the certificate for it, whatever the address."""

    def init_poolmanager(self, *args, **kw):
        kw["server_hostname"] = kw["assert_hostname"] = "localhost"
        super().init_poolmanager(*args, **kw)


def tls_session():
    s = requests.Session()
    s.mount("https://", _AsLocalhost())
    return s


def curl_to(d, path):
    """curl's arguments for https://localhost:PORT/path reaching d's address."""
    return ["--resolve", "localhost:%d:%s" % (d.tls_port, d.host),
            "https://localhost:%d%s" % (d.tls_port, path)]


def tls_connect(d, ctx, name="localhost", timeout=None, **kw):
    """A TLS socket to d (its address), asking for `name`."""
    raw = socket.create_connection((d.host, getattr(d, "tls_port", d.port)), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=name, **kw)
    except BaseException:
        raw.close()
        raise


def test_curl_and_alpn(tls_durod, pki):
    out = subprocess.run(["curl", "-sv", "--cacert", str(pki / "root.pem"), "-XPOST"] +
                         curl_to(tls_durod, "/counter/tls"), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
    assert "TLSv1.2" in out.stderr and "server accepted http/1.1" in out.stderr
    assert "ECDHE" in out.stderr and "GCM" in out.stderr


def test_old_versions_refused(tls_durod, pki):
    for flag in ("-tls1", "-tls1_1"):
        out = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (tls_durod.host, tls_durod.tls_port),
                              flag, "-CAfile", str(pki / "root.pem")], input="", capture_output=True,
                             text=True, timeout=30)
        assert "Cipher is (NONE)" in out.stdout or out.returncode != 0, out.stdout
    out = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (tls_durod.host, tls_durod.tls_port),
                          "-tls1_2", "-CAfile", str(pki / "root.pem"), "-servername", "localhost"],
                         input="", capture_output=True, text=True, timeout=30)
    assert "Verify return code: 0 (ok)" in out.stdout, out.stdout
    # CBC and non-ECDHE suites are not offered
    out = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (tls_durod.host, tls_durod.tls_port),
                          "-tls1_2", "-cipher", "AES128-SHA:ECDHE-ECDSA-AES128-SHA"], input="",
                         capture_output=True, text=True, timeout=30)
    assert "Cipher is (NONE)" in out.stdout or out.returncode != 0


def test_python_ssl_and_keepalive(tls_durod, pki):
    s = tls_session()
    for i in range(20):
        r = s.post(https(tls_durod, "/counter/py"), verify=str(pki / "root.pem"))
        assert r.status_code == 200 and r.text.strip() == str(i + 1)
    body = os.urandom(900 * 1024)
    assert s.put(https(tls_durod, "/kv/tls/k/big"), data=body, verify=str(pki / "root.pem")).status_code == 204
    assert s.get(https(tls_durod, "/kv/tls/k/big"), verify=str(pki / "root.pem")).content == body
    ctx = ssl.create_default_context(cafile=str(pki / "root.pem"))
    with tls_connect(tls_durod, ctx) as t:
        assert t.version() == "TLSv1.2"
        name, version, bits = t.cipher()
        assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name)
        # pipelined requests in one write
        t.sendall(b"GET /counter/pipe HTTP/1.1\r\nHost: x\r\n\r\n" * 5)
        data = b""
        while data.count(b"HTTP/1.1 200") < 5:
            data += t.recv(65536)


def test_wss(tls_durod, pki):
    ctx = ssl.create_default_context(cafile=str(pki / "root.pem"))

    async def go():
        url = "wss://%s:%d" % (tls_durod.host, tls_durod.tls_port)
        async with websockets.connect(url + "/echo/wss", ssl=ctx, server_hostname="localhost",
                                      max_size=None) as ws:
            await ws.send("over tls")
            assert await ws.recv() == "over tls"
            big = os.urandom(512 * 1024)
            await ws.send(big)
            assert await ws.recv() == big
        a = await websockets.connect(url + "/room/tls", ssl=ctx, server_hostname="localhost")
        b = await websockets.connect(url + "/room/tls", ssl=ctx, server_hostname="localhost")
        await a.send("to the room")
        assert await b.recv() == "to the room"
        assert await a.recv() == "to the room"
        await a.close()
        await b.close()
    asyncio.run(asyncio.wait_for(go(), 60))


NODE = r"""
const https = require('https');
const fs = require('fs');
const [host, port, ca] = process.argv.slice(1);
https.get({ host, servername: 'localhost', port, path: '/counter/node', ca: fs.readFileSync(ca),
            method: 'GET' }, (res) => {
  const proto = res.socket.getProtocol();
  let body = '';
  res.on('data', (d) => body += d);
  res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body,
                                                   proto })));
}).on('error', (e) => { console.error(e); process.exit(1); });
"""


def test_node_https(tls_durod, pki):
    out = subprocess.run(["node", "-e", NODE, tls_durod.host, str(tls_durod.tls_port), str(pki / "root.pem")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["status"] == 200 and r["proto"] == "TLSv1.2"


def test_bad_handshakes_closed_cleanly(tls_durod, pki):
    port = tls_durod.tls_port
    # plaintext HTTP on the TLS port
    s = socket.create_connection((tls_durod.host, port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    # Nothing back, and the connection aborted: uring's kernel ends a socket whose bytes
    # were all read with a FIN, the dpdk stack aborts with a reset.
    try:
        assert s.recv(100) == b""
    except ConnectionResetError:
        pass
    s.close()
    # a record header that claims a handshake, then garbage
    s = socket.create_connection((tls_durod.host, port), timeout=5)
    s.sendall(b"\x16\x03\x01\x00\x30" + os.urandom(48))
    got = b""
    try:
        while True:
            b = s.recv(100)
            if not b:
                break
            got += b
    except ConnectionResetError:
        pass
    assert not got or got[0] == 0x15  # nothing, or an alert
    s.close()
    # a client that stalls mid-handshake is cut off after the handshake timeout (1 s here)
    s = socket.create_connection((tls_durod.host, port), timeout=5)
    s.sendall(b"\x16\x03\x01\x02\x00\x01")  # a ClientHello that never finishes
    t0 = time.time()
    try:
        assert s.recv(100) in (b"",)
    except ConnectionResetError:
        pass
    assert time.time() - t0 < 4
    s.close()
    # everyone else is still served
    r = tls_session().post(https(tls_durod, "/counter/after-bad"), verify=str(pki / "root.pem"))
    assert r.status_code == 200
    # and each refusal was counted
    time.sleep(0.3)
    t = json.loads(ctl_cmd(tls_durod, "--json", "stats").stdout)["total"]["tls"]
    assert t["not_tls"] >= 1 and t["failures"] >= 2 and t["timeouts"] >= 1 and t["handshakes"] >= 1


def test_tls_config_errors(tmp_path, pki):
    def check(cert, key):
        cfg = tmp_path / ("c%d.json" % len(list(tmp_path.iterdir())))
        cfg.write_text(json.dumps({"listeners": [{"address": "127.0.0.1:1", "tls": {"cert": cert, "key": key}}]}))
        return run_durod(["--check-config", str(cfg)])
    out = check(str(pki / "missing.pem"), str(pki / "leaf.key"))
    assert out.returncode == 2 and "missing.pem" in out.stderr and "No such file" in out.stderr
    out = check(str(pki / "chain.pem"), str(pki / "other.key"))
    assert out.returncode == 2 and "does not match" in out.stderr
    out = check(str(pki / "leaf.key"), str(pki / "leaf.key"))
    assert out.returncode == 2 and "not a PEM certificate" in out.stderr
    out = run_durod(["--tls-cert", str(pki / "chain.pem")])
    assert out.returncode == 2 and "go together" in out.stderr


def test_tls_listener_from_config_beside_plain(tmp_path, pki):
    """Listeners from the config file (no --listen): one plain, one TLS, served together."""
    from conftest import wait_port
    plain, tls = free_port(), free_port()
    cfg = tmp_path / "duro.json"
    cfg.write_text(json.dumps({"listeners": [
        "127.0.0.1:%d" % plain,
        {"address": "127.0.0.1:%d" % tls,
         "tls": {"cert": str(pki / "chain.pem"), "key": str(pki / "leaf.key")}}],
        "storage": {"log_rotate_bytes": 4 << 20}}))
    log = open(tmp_path / "durod.log", "w")
    p = subprocess.Popen([DUROD, "--config", str(cfg), "--data-dir", str(tmp_path / "data"), "--cores", "2"],
                         stdout=log, stderr=subprocess.STDOUT, env=durod_env())
    try:
        wait_port(plain, p)
        wait_port(tls, p)
        assert requests.post("http://127.0.0.1:%d/counter/both" % plain).text.strip() == "1"
        r = requests.post("https://localhost:%d/counter/both" % tls, verify=str(pki / "root.pem"))
        assert r.text.strip() == "2" and "max-age" in r.headers["strict-transport-security"]
        # plain responses do not claim HSTS
        assert "strict-transport-security" not in requests.get("http://127.0.0.1:%d/counter/both" % plain).headers
    finally:
        p.terminate()
        assert p.wait(timeout=30) == 0
        log.close()
        check_output((tmp_path / "durod.log").read_text(errors="replace"))


def peer_cn(d, pki, name):
    ctx = ssl.create_default_context(cafile=str(pki / "root.pem"))
    ctx.check_hostname = False
    with tls_connect(d, ctx, name) as t:
        subject = dict(x[0] for x in t.getpeercert()["subject"])
        return subject["commonName"]


def test_sni_picks_the_certificate(durod_factory, pki):
    d = durod_factory(config={"tls": {"certificates": [
        {"cert": str(pki / "chain.pem"), "key": str(pki / "leaf.key")},
        {"cert": str(pki / "other-chain.pem"), "key": str(pki / "other.key2")}]}},
        extra_args=["--tls-cert", str(pki / "chain.pem"), "--tls-key", str(pki / "leaf.key")])
    assert peer_cn(d, pki, "localhost") == "localhost"
    assert peer_cn(d, pki, "other.test") == "other.test"
    assert peer_cn(d, pki, "a.wild.test") == "other.test"
    assert peer_cn(d, pki, "a.b.wild.test") == "localhost"  # one label only
    assert peer_cn(d, pki, "unknown.example") == "localhost"  # the default


def test_session_resumption(tls_durod, pki):
    ctx = ssl.create_default_context(cafile=str(pki / "root.pem"))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    def one(session=None):
        with tls_connect(tls_durod, ctx, session=session) as t:
            t.sendall(b"GET /counter/resume HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"200" in t.recv(4096)
            return t.session, t.session_reused
    sess, reused = one()
    assert not reused and sess.has_ticket
    for _ in range(3):
        _, reused = one(sess)
        assert reused
    time.sleep(0.3)
    assert json.loads(ctl_cmd(tls_durod, "--json", "stats").stdout)["total"]["tls"]["resumed"] >= 3
    out = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (tls_durod.host, tls_durod.tls_port),
                          "-tls1_2", "-reconnect", "-CAfile", str(pki / "root.pem")], input="",
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.count("Reused, TLSv1.2") >= 5, out.stdout[-2000:]


def test_reload_keeps_connections_and_serves_new_cert(durod_factory, pki, tmp_path):
    import shutil
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    shutil.copy(pki / "chain.pem", cert)
    shutil.copy(pki / "leaf.key", key)
    d = durod_factory(extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])
    ctx = ssl.create_default_context(cafile=str(pki / "root.pem"))
    ctx.check_hostname = False
    old = tls_connect(d, ctx, "nomatch.example")
    assert dict(x[0] for x in old.getpeercert()["subject"])["commonName"] == "localhost"

    def request(t):
        t.sendall(b"POST /counter/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += t.recv(4096)
        return data
    assert b" 200 " in request(old)
    # SIGHUP with new files: new connections get the new certificate
    shutil.copy(pki / "other-chain.pem", cert)
    shutil.copy(pki / "other.key2", key)
    d.proc.send_signal(1)
    deadline = time.time() + 10
    while time.time() < deadline and peer_cn(d, pki, "nomatch.example") != "other.test":
        time.sleep(0.1)
    assert peer_cn(d, pki, "nomatch.example") == "other.test"
    assert b" 200 " in request(old)  # the old connection lives on
    # a broken file is refused and the certificate in use stays
    key.write_text("not a key")
    out = ctl_cmd(d, "tls-reload")
    assert out.returncode == 1 and "not a PEM private key" in out.stderr
    assert peer_cn(d, pki, "nomatch.example") == "other.test"
    # back by the control command
    shutil.copy(pki / "chain.pem", cert)
    shutil.copy(pki / "leaf.key", key)
    assert ctl_cmd(d, "tls-reload").returncode == 0
    deadline = time.time() + 10
    while time.time() < deadline and peer_cn(d, pki, "nomatch.example") != "localhost":
        time.sleep(0.1)
    assert peer_cn(d, pki, "nomatch.example") == "localhost"
    assert b" 200 " in request(old)
    old.close()
    assert "TLS certificates reloaded" in d.logtext()


def test_non_reading_client_closed_over_tls(durod_factory, pki):
    # The send timeout sees a stalled reader through TLS too: the TLS layer stops taking
    # plaintext once its ciphertext queue is full, so no progress is reported.
    d = durod_factory(config={"limits": {"send_timeout_ms": 1000}},
                      extra_args=["--tls-cert", str(pki / "chain.pem"), "--tls-key", str(pki / "leaf.key")])
    value = b"v" * 65536
    ctx = ssl.create_default_context(cafile=str(pki / "root.pem"))

    def http_stats():
        return json.loads(ctl_cmd(d, "--json", "stats").stdout)["total"]["http"]
    with tls_connect(d, ctx, timeout=10) as t:
        t.sendall(b"PUT /kv/tlsbig/k/v HTTP/1.1\r\nHost: t\r\nContent-Length: 65536\r\n\r\n" + value)
        assert t.recv(4096).startswith(b"HTTP/1.1 204")
        t.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # Ask for more until durod gives up on the reader: requests keep its output queue
        # full (the kernel's send buffer takes megabytes first) and, once the unsent
        # answers pass max_output_bytes, reading pauses. A send that cannot finish
        # because durod stopped reading ends the asking (the TLS stream is then spent).
        t.settimeout(0.5)
        r = http_stats()
        deadline = time.time() + 20
        asking = True
        while time.time() < deadline and r["send_timeouts"] != 1:
            if asking:
                try:
                    t.sendall(b"GET /kv/tlsbig/k/v HTTP/1.1\r\nHost: t\r\n\r\n" * 8)
                except (socket.timeout, ssl.SSLError, OSError):
                    asking = False
            else:
                time.sleep(0.1)
            r = http_stats()
        assert r["send_timeouts"] == 1 and r["output_pauses"] >= 1, json.dumps(r)


def ctl_cmd(d, *args):
    duroctl = os.path.join(os.path.dirname(DUROD), "duroctl")
    return subprocess.run([duroctl, "--socket", os.path.join(d.data_dir, "control.sock")] + list(args),
                          capture_output=True, text=True, timeout=30)


def test_testssl_finds_nothing_medium_or_above(durod_factory, pki, tmp_path):
    """Debian's testssl.sh over what the server controls: protocols, cipher categories,
    forward secrecy, vulnerabilities, HTTP security headers. (Certificate findings are
    about the test's own throwaway CA and are not run.)"""
    d = durod_factory(extra_args=["--tls-cert", str(pki / "chain.pem"), "--tls-key", str(pki / "leaf.key")])
    out_json = tmp_path / "testssl.json"
    r = subprocess.run(["testssl", "--quiet", "--color", "0", "--warnings", "off", "--add-ca",
                        str(pki / "root.pem"), "--jsonfile", str(out_json), "-p", "-s", "-f", "-U", "-h",
                        "--ip", "one", "%s:%d" % (d.host, d.port)], capture_output=True, text=True, timeout=600)
    findings = json.loads(out_json.read_text())
    bad = [f for f in findings if f["severity"] in ("MEDIUM", "HIGH", "CRITICAL")
           and f["id"] not in ("engine_problem",)]
    assert not bad, bad
    by_id = {f["id"]: f for f in findings}
    assert "not offered" in by_id["TLS1"]["finding"] and "not offered" in by_id["TLS1_1"]["finding"]
    assert by_id["TLS1_2"]["finding"].startswith("offered")
