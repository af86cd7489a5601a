"""A short threaded run of a ThreadSanitizer build of durod (DUROD=build-tsan/...): two
cores under concurrent HTTP, WebSockets, alarms, idle eviction, control requests (status,
stats, objects, describe, evict, connections, an export on a worker thread, a deploy of the
Counter's module build and a rollback to the built-in one while its counters are being
incremented, a new class deployed live, its column family made while the cores write, and
used at once), Prometheus scrapes, SQL with bookmarks and restores while the history
sweeper folds, then a restart on the same data. What the cores, the control thread and its
workers, the metrics listener and the storage threads share is checked by TSan; the
fixture fails the test on any report in either log. Counts are checked too. Bounded: a
fixed number of operations per client, with deadlines."""
import asyncio
import concurrent.futures
import http.client
import os
import socket

import subprocess

import requests
import websockets

import duro_fixtures as df

def config():
    return {
        "objects": {"evict_idle_ms": 200},  # eviction scans unload objects mid-run
        "websockets": {"hibernate_idle_ms": 300},
        "control": {"metrics": "127.0.0.1:%d" % df.free_port()},
        # the history sweeper thread folds while the cores write history and restore
        "storage": {"pitr_retention": 1000, "pitr_sweep_ms": 100},
    }


def http_client(d, k, rounds, acked):
    """Counter increments (each answer exactly one more) and key-value writes and reads."""
    c = http.client.HTTPConnection(d.host, d.port, timeout=30)
    last = acked.get("tsan-%d" % k, 0)
    for i in range(rounds):
        c.request("POST", "/counter/tsan-%d" % k)
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, body
        assert int(body) == last + 1, (k, int(body), last)
        last = int(body)
        c.request("PUT", "/kv/tsan-%d/k/key%d" % (k % 3, i % 7), body=b"v%d" % i)
        r = c.getresponse()
        r.read()
        assert r.status == 204
        c.request("GET", "/kv/tsan-%d/list?limit=3" % (k % 3))
        r = c.getresponse()
        r.read()
        assert r.status == 200
    c.close()
    acked["tsan-%d" % k] = last


async def ws_client(d, k, rounds):
    """Room members on both cores: every message comes back to its sender, through the
    object's broadcast, whichever core holds the socket."""
    url = "ws://%s:%d/room/tsan-room?name=m%d" % (d.host, d.port, k)
    async with websockets.connect(url) as ws:
        for i in range(rounds):
            msg = "m%d-%d" % (k, i)
            await ws.send(msg)
            while True:  # others' messages arrive too
                got = await asyncio.wait_for(ws.recv(), 30)
                if got == msg:
                    break
    async with websockets.connect("ws://%s:%d/echo/tsan-%d" % (d.host, d.port, k)) as ws:
        for i in range(rounds):
            await ws.send(b"x" * (i * 37 % 3000))
            assert await asyncio.wait_for(ws.recv(), 30) == b"x" * (i * 37 % 3000)


def ws_clients(d, n, rounds):
    async def all_of():
        await asyncio.gather(*(ws_client(d, k, rounds) for k in range(n)))
    asyncio.run(asyncio.wait_for(all_of(), 120))


# The durable Counter built as a module, beside the durod under test (classes/meson.build).
COUNTER_SO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(df.DUROD))),
                          "classes", "counter.so")


def sql_client(d, k, rounds):
    """SQL on both cores (SqlCounter, the Sql class) with bookmarks and restores from the
    control plane's workers, while the sweeper thread folds history."""
    name = "tsan-sql-%d" % k
    for i in range(rounds):
        assert requests.post(d.url + "/sqlcounter/tsan-%d" % k, timeout=30).status_code == 200
        r = requests.post(d.url + "/sql/" + name, json={
            "sql": "CREATE TABLE IF NOT EXISTS t (v); INSERT INTO t VALUES (?)",
            "params": [i]}, timeout=30)
        assert r.status_code == 200, r.text
        if i % 10 == 9:
            b = d.control({"cmd": "bookmark", "binding": "SQL", "name": name}, timeout=30)
            assert b.get("ok"), b
            r = d.control({"cmd": "restore", "binding": "SQL", "name": name,
                           "bookmark": b["bookmark"]}, timeout=60)
            assert r.get("ok") or "busy" in r.get("error", ""), r


# A class no binding names, built as a module against this build tree's SDK.
BUILD = os.path.dirname(os.path.dirname(os.path.abspath(df.DUROD)))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fresh_module(tmp_path):
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(BUILD, "sdk"))
    flags = subprocess.run(["pkg-config", "--cflags", "duro"], env=env, check=True,
                           capture_output=True, text=True).stdout.split()
    out = str(tmp_path / "fresh.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", out] + flags +
                   ['-DCLASS_NAME="TsanFresh"', '-DMARKER="f1"',
                    os.path.join(ROOT, "tests", "modules", "versioned.c")], check=True)
    os.chmod(out, 0o755)
    return out


def fresh_client(d, path, rounds):
    """Deploys TsanFresh live while the others run, then increments one of its objects."""
    if path:
        r = d.control({"cmd": "deploy", "class": "TsanFresh", "path": path, "tag": "tsan-fresh",
                       "binding": "TSANFRESH", "route": "/fresh/"}, timeout=60)
        assert r.get("ok"), r
    c = http.client.HTTPConnection(d.host, d.port, timeout=30)
    c.request("GET", "/fresh/tsan")
    r = c.getresponse()
    last = int(r.read().split()[1])
    for i in range(rounds):
        c.request("POST", "/fresh/tsan")
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, body
        assert int(body.split()[1]) == last + 1, body
        last += 1
    c.close()


def control_client(d, rounds, export_path):
    metrics = "http://%s/metrics" % d.metrics_addr
    for i in range(rounds):
        # Counters switch versions under the HTTP clients' increments (each checks its
        # count): the deploy's publication, the cores' switch passes and the per-version
        # counters the stats read, all across threads.
        if i == 1:
            r = d.control({"cmd": "deploy", "class": "Counter", "path": COUNTER_SO,
                           "immediate": True}, timeout=60)
            assert r.get("ok"), r
        if i == rounds - 1:
            r = d.control({"cmd": "rollback", "class": "Counter", "sha": "builtin",
                           "immediate": True}, timeout=60)
            assert r.get("ok"), r
        for req in ({"cmd": "status"}, {"cmd": "stats"}, {"cmd": "objects", "limit": 20},
                    {"cmd": "connections"},
                    {"cmd": "object", "binding": "COUNTER", "name": "tsan-%d" % (i % 4)},
                    {"cmd": "evict", "binding": "KV", "name": "tsan-%d" % (i % 3)}):
            r = d.control(req, timeout=30)
            assert r.get("ok") or "busy" in r.get("error", ""), (req, r)
        assert requests.get(metrics, timeout=30).status_code == 200
        if i == rounds // 2 and export_path:
            r = d.control({"cmd": "export", "class": "KV", "path": export_path}, timeout=60)
            assert r.get("ok"), r


def load(d, tmp_path, rounds, acked, export, fresh=None):
    for n in range(3):
        assert requests.post(d.url + "/ticker/tsan-%d?in=20&every=60" % n, timeout=30).status_code == 200
    with concurrent.futures.ThreadPoolExecutor(9) as ex:
        futs = [ex.submit(http_client, d, k, rounds, acked) for k in range(4)]
        futs.append(ex.submit(fresh_client, d, fresh, rounds))
        futs.append(ex.submit(ws_clients, d, 3, rounds))
        futs += [ex.submit(sql_client, d, k, rounds) for k in range(2)]
        futs.append(ex.submit(control_client, d, max(3, rounds // 4),
                              str(tmp_path / "kv-export.dx") if export else None))
        for f in futs:
            f.result(timeout=300)
    for n in range(3):
        fired = df.wait_until(lambda: int(requests.get(d.url + "/ticker/tsan-%d" % n, timeout=30)
                                          .text.split("fired ")[1].split()[0]), 30,
                              what="ticker tsan-%d to fire" % n)
        assert fired >= 1
        assert requests.delete(d.url + "/ticker/tsan-%d" % n, timeout=30).status_code == 200


def start(durod_factory, tmp_path, data_dir=None):
    cfg = config()
    if data_dir:
        d = df.start_on(tmp_path, "again", data_dir, config=cfg, cores=2)
    else:
        d = durod_factory(config=cfg, cores=2)
    d.metrics_addr = cfg["control"]["metrics"]
    return d


def test_threads_under_tsan(durod_factory, tmp_path):
    assert os.environ.get("TSAN_OPTIONS"), "run with TSAN_OPTIONS (scripts/test.sh sets it)"
    acked = {}
    d = start(durod_factory, tmp_path)
    load(d, tmp_path, 40, acked, export=True, fresh=fresh_module(tmp_path))
    vs = d.control({"cmd": "versions", "class": "Counter"})
    assert vs["current"] == "builtin" and [v["source"] for v in vs["versions"]] == \
        ["builtin", "deploy"], vs
    assert d.stop() == 0
    # a restart on the same data: replay, alarms loaded, the same load again
    d2 = start(durod_factory, tmp_path, data_dir=d.data_dir)
    for k, v in acked.items():
        assert int(requests.get(d2.url + "/counter/" + k, timeout=30).text) == v
    load(d2, tmp_path, 20, acked, export=False)
    assert d2.stop() == 0


def test_tls_handshakes_and_reloads_under_tsan(durod_factory, tmp_path):
    """TLS on both cores with one RSA key (mbedTLS's RSA blinding state is shared by the
    cores' handshakes), while the control thread reloads the certificates."""
    import ssl
    import subprocess
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    d = durod_factory(cores=2, extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])
    ctx = ssl.create_default_context(cafile=str(cert))

    def client(k):
        for i in range(15):  # a new connection, so a full handshake, each time
            with socket.create_connection((d.host, d.port), timeout=30) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as t:
                    t.sendall(b"POST /counter/tls-%d HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" % k)
                    data = b""
                    while not data.endswith(b"\r\n\r\n%d" % (i + 1)):
                        b = t.recv(4096)
                        assert b, data
                        data += b

    def reloads():
        for _ in range(4):
            r = d.control({"cmd": "tls-reload"}, timeout=60)
            assert r.get("ok"), r

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        futs = [ex.submit(client, k) for k in range(3)] + [ex.submit(reloads)]
        for f in futs:
            f.result(timeout=300)
