"""TLS with real clients: curl, openssl s_client, python3 ssl, websockets over wss, node
https; a certificate chain made by the test itself with the openssl CLI (no committed keys);
bad handshakes and config errors.

Over the dpdk backend (DURO_TEST_BACKEND=dpdk) each durod has its own address on the veth's
subnet: the leaf certificate names all of them too, and clients connect to and verify
d.host (an IP address, so they send no SNI: durod answers with its default certificate)."""
import asyncio
import json
import os
import socket
import ssl
import subprocess
import time

import pytest
import requests
import websockets

import conftest
from conftest import DUROD, Durod, free_port, run_durod, wait_port

DPDK = conftest.BACKEND == "dpdk"


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """root CA -> intermediate CA -> leaf for localhost and 127.0.0.1 (and, over dpdk, the
    addresses durods get there); the server's cert file holds the leaf and the
    intermediate, clients trust the root only."""
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
    sans = ["DNS:localhost", "IP:127.0.0.1"] + (
        ["IP:" + a for a in conftest.DPDK_ADDRESSES] if DPDK else [])
    (d / "leaf.ext").write_text("subjectAltName=%s\nextendedKeyUsage=serverAuth\n" % ",".join(sans))
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


@pytest.fixture(scope="module")
def tls_durod(tmp_path_factory, pki):
    # One for the module (conftest.start_shared): its tests use counters of their own names
    # and read the TLS counters as lower bounds.
    d = conftest.start_shared(tmp_path_factory, "tls-durod", config={"tls": {"handshake_timeout_ms": 1000}},
                              extra_args=["--tls-cert", str(pki / "chain.pem"), "--tls-key", str(pki / "leaf.key")])
    d.tls_port = d.port
    yield d
    conftest.stop_shared(d)


def server_name(d):
    """The name a client connects to and verifies: one the leaf certificate holds."""
    return d.host if DPDK else "localhost"


def https(d, path):
    return "https://%s:%d%s" % (server_name(d), d.tls_port, path)


def test_curl_and_alpn(tls_durod, pki):
    out = subprocess.run(["curl", "-sv", "--cacert", str(pki / "root.pem"), "-XPOST",
                          https(tls_durod, "/counter/tls")], capture_output=True, text=True, timeout=30)
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
    s = requests.Session()
    for i in range(20):
        r = s.post(https(tls_durod, "/counter/py"), verify=str(pki / "root.pem"))
        assert r.status_code == 200 and r.text.strip() == str(i + 1)
    body = os.urandom(900 * 1024)
    assert s.put(https(tls_durod, "/kv/tls/k/big"), data=body, verify=str(pki / "root.pem")).status_code == 204
    assert s.get(https(tls_durod, "/kv/tls/k/big"), verify=str(pki / "root.pem")).content == body
    ctx = ssl.create_default_context(cafile=str(pki / "root.pem"))
    with socket.create_connection((tls_durod.host, tls_durod.tls_port)) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name(tls_durod)) as t:
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
        url = "wss://%s:%d" % (server_name(tls_durod), tls_durod.tls_port)
        async with websockets.connect(url + "/echo/wss", ssl=ctx, max_size=None) as ws:
            await ws.send("over tls")
            assert await ws.recv() == "over tls"
            big = os.urandom(512 * 1024)
            await ws.send(big)
            assert await ws.recv() == big
        a = await websockets.connect(url + "/room/tls", ssl=ctx)
        b = await websockets.connect(url + "/room/tls", ssl=ctx)
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
https.get({ host, port, path: '/counter/node', ca: fs.readFileSync(ca),
            method: 'GET' }, (res) => {
  const proto = res.socket.getProtocol();
  let body = '';
  res.on('data', (d) => body += d);
  res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body,
                                                   proto })));
}).on('error', (e) => { console.error(e); process.exit(1); });
"""


def test_node_https(tls_durod, pki):
    out = subprocess.run(["node", "-e", NODE, server_name(tls_durod), str(tls_durod.tls_port), str(pki / "root.pem")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["status"] == 200 and r["proto"] == "TLSv1.2"


def test_bad_handshakes_closed_cleanly(tls_durod, pki):
    addr = (tls_durod.host, tls_durod.tls_port)

    def until_closed(s):
        """What durod sent before closing. Closed means a FIN or a reset: durod aborts
        these connections, which the kernel (uring) ends with a FIN when it holds no
        unread bytes and duro's own stack (dpdk) with a reset."""
        got = b""
        try:
            while True:
                b = s.recv(100)
                if not b:
                    break
                got += b
        except ConnectionResetError:
            pass
        s.close()
        return got
    # plaintext HTTP on the TLS port
    s = socket.create_connection(addr, timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert until_closed(s) == b""
    # a record header that claims a handshake, then garbage
    s = socket.create_connection(addr, timeout=5)
    s.sendall(b"\x16\x03\x01\x00\x30" + os.urandom(48))
    got = until_closed(s)
    assert not got or got[0] == 0x15  # nothing, or an alert
    # a client that stalls mid-handshake is cut off after the handshake timeout (1 s here)
    s = socket.create_connection(addr, timeout=5)
    s.sendall(b"\x16\x03\x01\x02\x00\x01")  # a ClientHello that never finishes
    t0 = time.time()
    assert until_closed(s) == b""
    assert time.time() - t0 < 4
    # everyone else is still served
    r = requests.post(https(tls_durod, "/counter/after-bad"), verify=str(pki / "root.pem"))
    assert r.status_code == 200
    # and each refusal was counted
    time.sleep(0.3)
    t = json.loads(ctl_cmd(tls_durod, "--json", "stats").stdout)["total"]["tls"]
    assert t["not_tls"] >= 1 and t["failures"] >= 2 and t["timeouts"] >= 1 and t["handshakes"] >= 1


@pytest.mark.uring_only("durod --check-config only: no connection to make")
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
    plain, tls = free_port(), free_port()
    host = conftest.dpdk_address() if DPDK else "127.0.0.1"
    d = Durod(tmp_path, host=host, listen=False, config={"listeners": [
        "%s:%d" % (host, plain),
        {"address": "%s:%d" % (host, tls),
         "tls": {"cert": str(pki / "chain.pem"), "key": str(pki / "leaf.key")}}]})
    d.tls_port = tls
    wait_port(plain, d.proc, host=host)
    wait_port(tls, d.proc, host=host)
    assert requests.post("http://%s:%d/counter/both" % (host, plain)).text.strip() == "1"
    r = requests.post(https(d, "/counter/both"), verify=str(pki / "root.pem"))
    assert r.text.strip() == "2" and "max-age" in r.headers["strict-transport-security"]
    # plain responses do not claim HSTS
    assert "strict-transport-security" not in requests.get("http://%s:%d/counter/both" % (host, plain)).headers


def peer_cn(d, pki, sni):
    """The common name of the certificate d shows a client that asks for `sni`."""
    ctx = ssl.create_default_context(cafile=str(pki / "root.pem"))
    ctx.check_hostname = False
    with socket.create_connection((d.host, d.port)) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as t:
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
        with socket.create_connection((tls_durod.host, tls_durod.tls_port)) as raw:
            with ctx.wrap_socket(raw, server_hostname=server_name(tls_durod), session=session) as t:
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
    raw = socket.create_connection((d.host, d.port))
    old = ctx.wrap_socket(raw, server_hostname="nomatch.example")
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
    with socket.create_connection((d.host, d.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name(d)) as t:
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
            # Over dpdk the stack holds the answers itself and sends nothing into the
            # client's closed window, so the pipelining cap's pause is never seen to
            # become the output cap's (that is decided on send progress): either counts.
            pauses = r["output_pauses"] + (r["pipeline_pauses"] if DPDK else 0)
            assert r["send_timeouts"] == 1 and pauses >= 1, json.dumps(r)


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
