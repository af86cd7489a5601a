"""The control plane against a running durod: every duroctl command, bad requests over the
socket, the socket's permissions, Prometheus text parsed by prometheus_client's parser, DPDK
telemetry, drain."""
import json
import os
import socket
import stat
import subprocess
import tempfile
import time

import requests

from conftest import DUROD, control_raw, free_port, wait_until

DUROCTL = os.path.join(os.path.dirname(DUROD), "duroctl")


def ctl(d, *args, check=True, user=None):
    cmd = [DUROCTL, "--socket", os.path.join(d.data_dir, "control.sock")] + list(args)
    if user:
        cmd = ["setpriv", "--reuid=%d" % user[0], "--regid=%d" % user[1], "--clear-groups"] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check:
        assert out.returncode == 0, (args, out.stdout, out.stderr)
    return out


def ctl_json(d, *args):
    return json.loads(ctl(d, "--json", *args).stdout)


def raw(d, line):
    return control_raw(os.path.join(d.data_dir, "control.sock"), line)


def test_status_stats_shards_config(durod):
    for i in range(5):
        requests.post(durod.url + "/counter/ctl-%d" % i)
    st = ctl_json(durod, "status")
    assert st["ok"] and st["version"] and st["cores"] == 2 and st["backend"] == "uring"
    assert st["listeners"] == ["127.0.0.1:%d" % durod.port]
    assert st["data_dir"] == durod.data_dir
    human = ctl(durod, "status").stdout
    assert "backend uring, 2 cores" in human
    # snapshots are published every 100 ms: wait for one that has the requests
    s = wait_until(lambda: (lambda s: s["total"]["requests"] >= 5 and s["total"]["commits"] >= 5 and s)(
        ctl_json(durod, "stats")), 5, what="stats with the 5 requests")
    assert len(s["cores"]) == 2
    assert s["total"]["latency_us"]["p99"] > 0
    assert "total" in ctl(durod, "stats").stdout
    sh = ctl_json(durod, "shards")
    assert sh["slots"] == 4096 and sum(sh["slots_per_core"]) == 4096 and len(sh["owner"]) == 4096
    cfg = ctl_json(durod, "config")["config"]
    assert cfg["cores"] == 2 and cfg["websockets"]["max_per_object"] == 32768
    assert cfg["tls"]["ticket_lifetime_s"] == 7200 and cfg["tls"]["certificates"] == []
    assert any(b["class_name"] == "ChatRoom" for b in cfg["durable_objects"]["bindings"])
    c = ctl_json(durod, "connections")
    assert len(c["cores"]) == 2
    top = ctl(durod, "top", "--iterations", "2").stdout
    assert "req/s" in top and top.count("duro top") == 2


def test_log_level(durod):
    assert ctl(durod, "log-level").stdout.strip() == "info"
    assert ctl(durod, "log-level", "debug").stdout.strip() == "debug"
    requests.get(durod.url + "/nowhere")
    out = ctl(durod, "log-level", "loud", check=False)
    assert out.returncode == 1 and "want error, warn, info or debug" in out.stderr
    ctl(durod, "log-level", "info")
    assert "log level set to debug" in durod.logtext()


def test_objects_names_keys_evict_delete(durod):
    requests.put(durod.url + "/kv/inventory/k/apples", data="12")
    requests.put(durod.url + "/kv/inventory/k/pears", data="7")
    requests.post(durod.url + "/counter/visits")
    r = requests.post(durod.url + "/obj/KV/new")
    anon = r.headers["Duro-Id"]
    requests.put(durod.url + "/obj/KV/%s/k/x" % anon, data="1")
    objs = ctl_json(durod, "objects", "--class", "KV")["objects"]
    by_name = {o.get("name"): o for o in objs}
    assert "inventory" in by_name and by_name["inventory"]["keys"] == 2
    assert by_name["inventory"]["bytes"] > 0
    assert any(o["id"] == anon and "name" not in o for o in objs)
    assert all(o["class"] == "KV" for o in objs)
    # paging: one at a time reaches every object once
    seen, after = [], None
    while True:
        args = ["objects", "--class", "KV", "--limit", "1"] + (["--after", after] if after else [])
        page = ctl_json(durod, *args)
        seen += [o["id"] for o in page["objects"]]
        if "next" not in page:
            break
        after = page["next"]
    assert sorted(seen) == sorted(o["id"] for o in objs)
    inv = by_name["inventory"]["id"]
    info = ctl_json(durod, "object", inv)
    assert info["name"] == "inventory" and info["keys"] == 2 and info["class"] == "KV"
    assert info["core"] in (0, 1)
    keys = ctl_json(durod, "object", inv, "keys")["keys"]
    assert [k["key"] for k in keys] == ["apples", "pears"]
    assert [k["key"] for k in ctl_json(durod, "object", inv, "keys", "--prefix", "pe")["keys"]] == ["pears"]
    assert "name: inventory" in ctl(durod, "object", inv).stdout
    # evict: in memory, then not
    assert ctl_json(durod, "object", inv)["in_memory"]
    assert ctl_json(durod, "evict", inv)["evicted"]
    assert not ctl_json(durod, "object", inv)["in_memory"]
    assert requests.get(durod.url + "/kv/inventory/k/apples").text == "12"
    # delete wants confirmation, then removes data and name
    out = ctl(durod, "delete", inv, check=False)
    assert out.returncode == 2
    assert ctl_json(durod, "delete", inv, "--yes")["deleted"]
    assert requests.get(durod.url + "/kv/inventory/k/apples").status_code == 404
    names = [o.get("name") for o in ctl_json(durod, "objects")["objects"]]
    assert "inventory" not in names and "visits" in names
    # bad IDs
    assert ctl(durod, "object", "zz", check=False).returncode == 1
    other = "00" * 32
    out = ctl(durod, "object", other, check=False)
    assert out.returncode == 1 and "no namespace" in out.stderr


def test_bad_requests_over_the_socket(durod):
    assert json.loads(raw(durod, b"this is not json\n"))["ok"] is False
    assert "want a JSON object" in json.loads(raw(durod, b"[1,2]\n"))["error"]
    assert "unknown command" in json.loads(raw(durod, b'{"cmd":"launch"}\n'))["error"]
    assert "want" in json.loads(raw(durod, b'{"nocmd":1}\n'))["error"]
    assert "confirm" in json.loads(raw(durod, b'{"cmd":"delete","id":"%s"}\n' % (b"0" * 64)))["error"]
    # an endless line is cut off, and the next client is served
    r = raw(durod, b"x" * (70 * 1024))
    assert b"request line over" in r
    # a client that connects and says nothing does not stall others
    idle = socket.socket(socket.AF_UNIX)
    idle.connect(os.path.join(durod.data_dir, "control.sock"))
    assert json.loads(raw(durod, b'{"cmd":"status"}\n'))["ok"]
    idle.close()
    # the cores keep serving
    assert requests.post(durod.url + "/counter/still-fine").status_code == 200
    # and the control socket counted what it was sent
    c = json.loads(raw(durod, b'{"cmd":"status"}\n'))["control"]
    assert c["bad_requests"] >= 2 and c["requests"] >= 6


def test_socket_permissions(durod_factory):
    d = durod_factory()
    path = os.path.join(d.data_dir, "control.sock")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600
    # another user cannot even connect
    out = ctl(d, "status", check=False, user=(65534, 65534))
    assert out.returncode == 3, out.stderr
    # with a group, its members may (the socket in a directory they can reach: the data
    # directory itself is the owner's only)
    sockdir = tempfile.mkdtemp(prefix="duro-ctl-")
    os.chmod(sockdir, 0o755)
    p2 = os.path.join(sockdir, "ctl.sock")
    d2 = durod_factory(config={"control": {"group": "nogroup", "socket": p2}})
    assert stat.S_IMODE(os.stat(p2).st_mode) == 0o660
    gid = __import__("grp").getgrnam("nogroup").gr_gid

    def as_user(uid, gid):
        cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups", DUROCTL,
               "--socket", p2, "status"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    out = as_user(65534, gid)
    assert out.returncode == 0, out.stderr
    # a peer outside the group, on a socket opened up by hand, is refused by its credentials
    os.chmod(p2, 0o666)
    out = as_user(1, 1)  # daemon: not in nogroup
    assert out.returncode == 1 and "permission denied" in out.stderr
    assert "refused" in d2.logtext()
    d2.stop()
    assert not os.path.exists(p2)  # removed at exit
    os.rmdir(sockdir)


def test_prometheus_metrics_parse(durod_factory):
    from prometheus_client.parser import text_string_to_metric_families
    port = free_port()
    d = durod_factory(config={"control": {"metrics": "127.0.0.1:%d" % port}})
    for i in range(20):
        requests.post(d.url + "/counter/m%d" % i)
    # published every 100 ms: wait for the snapshot with the 20 commits
    wait_until(lambda: ctl_json(d, "stats")["total"]["commits"] >= 20, 5, what="a fresh snapshot")
    r = requests.get("http://127.0.0.1:%d/metrics" % port, timeout=5)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    fams = {f.name: f for f in text_string_to_metric_families(r.text)}
    reqs = sum(s.value for s in fams["duro_requests"].samples)
    assert reqs >= 20
    assert {s.labels["core"] for s in fams["duro_requests"].samples} == {"0", "1"}
    assert fams["duro_request_duration_seconds"].type == "histogram"
    assert fams["duro_objects_active"].type == "gauge"
    assert sum(s.value for s in fams["duro_commits"].samples) >= 20
    stats = requests.get("http://127.0.0.1:%d/api/stats" % port).json()
    assert stats["total"]["requests"] >= 20 and stats["status"]["cores"] == 2
    page = requests.get("http://127.0.0.1:%d/dashboard" % port)
    assert page.status_code == 200 and "<canvas" in page.text
    assert requests.get("http://127.0.0.1:%d/nope" % port).status_code == 404
    # a silent client of the metrics listener is dropped, not waited for
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.time()
    assert requests.get("http://127.0.0.1:%d/metrics" % port, timeout=10).status_code == 200
    assert time.time() - t0 < 5
    s.close()


def test_dpdk_telemetry(durod):
    path = "/var/run/dpdk/durod%d/dpdk_telemetry.v2" % durod.proc.pid
    wait_until(lambda: os.path.exists(path), 5, what=path)
    requests.post(durod.url + "/counter/tel")
    wait_until(lambda: ctl_json(durod, "stats")["total"]["requests"] >= 1, 5, what="a fresh snapshot")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    hello = json.loads(s.recv(16384))
    assert "version" in hello
    s.send(b"/")
    cmds = json.loads(s.recv(16384))["/"]
    assert "/duro/stats" in cmds and "/duro/core" in cmds and "/duro/status" in cmds
    s.send(b"/duro/stats")
    st = json.loads(s.recv(65536))["/duro/stats"]
    assert st["requests"] >= 1 and "latency_us_p99" in st
    s.send(b"/duro/core,1")
    assert "requests" in json.loads(s.recv(65536))["/duro/core"]
    s.send(b"/duro/status")
    assert json.loads(s.recv(65536))["/duro/status"]["backend"] == "uring"
    s.close()


def test_drain_stops_accepting(durod_factory):
    d = durod_factory()
    keep = requests.Session()
    assert keep.post(d.url + "/counter/before").status_code == 200
    r = ctl_json(d, "drain")
    assert r["ok"] and r["cores_drained"] == 2

    def refused():
        try:
            requests.post(d.url + "/counter/after", timeout=2)
            return False
        except requests.ConnectionError:
            return True
    wait_until(refused, 5, what="new connections to be refused")
    assert ctl_json(d, "status")["ok"]  # the control socket still answers


def test_export_import_round_trip(durod_factory, tmp_path):
    a = durod_factory()
    for i in range(30):
        requests.put(a.url + "/kv/item%d/k/v" % i, data="value-%d" % i)
        requests.put(a.url + "/kv/item%d/k/big" % i, data=os.urandom(100000))
    anon = requests.post(a.url + "/obj/KV/new").headers["Duro-Id"]
    requests.put(a.url + "/obj/KV/%s/k/x" % anon, data="anonymous")
    # an alarm travels with its object (Ticker keeps its alarm among its keys)
    requests.post(a.url + "/ticker/later?in=3000")
    big = {i: requests.get(a.url + "/kv/item%d/k/big" % i).content for i in range(30)}
    kv_file = str(tmp_path / "kv.dx")
    tick_file = str(tmp_path / "ticker.dx")
    r = ctl_json(a, "export", "--class", "KV", kv_file)
    assert r["objects"] == 31 and r["keys"] == 61
    assert ctl_json(a, "export", "--class", "Ticker", tick_file)["objects"] == 1
    # the same file again is refused rather than overwritten half-way
    out = ctl(a, "export", "--class", "KV", kv_file, check=False)
    assert out.returncode == 1

    b = durod_factory()
    r = ctl_json(b, "import", kv_file)
    assert r["objects"] == 31 and r["failed"] == 0
    for i in range(30):
        assert requests.get(b.url + "/kv/item%d/k/v" % i).text == "value-%d" % i
        assert requests.get(b.url + "/kv/item%d/k/big" % i).content == big[i]
    # IDs minted on box a are valid on box b: the namespace secret came along
    assert requests.get(b.url + "/obj/KV/%s/k/x" % anon).text == "anonymous"
    names = {o.get("name") for o in ctl_json(b, "objects", "--class", "KV")["objects"]}
    assert {"item0", "item29"} <= names
    # importing again changes nothing: every object is already there
    r = ctl_json(b, "import", kv_file)
    assert r["objects"] == 0 and r["already_present"] == 31
    # the alarm fires on box b
    ctl_json(b, "import", tick_file)
    deadline = time.time() + 15
    fired = 0
    while time.time() < deadline and not fired:
        text = requests.get(b.url + "/ticker/later").text
        fired = int(text.split("fired ")[1].split()[0]) if "fired " in text else 0
        time.sleep(0.3)
    assert fired >= 1
    # survives a restart of box b
    b.stop()
    from conftest import start_on
    b2 = start_on(tmp_path, "b2", b.data_dir)
    try:
        assert requests.get(b2.url + "/kv/item7/k/v").text == "value-7"
        assert requests.get(b2.url + "/obj/KV/%s/k/x" % anon).text == "anonymous"
    finally:
        assert b2.stop() == 0


def test_import_refusals(durod_factory, tmp_path):
    a = durod_factory()
    requests.put(a.url + "/kv/one/k/v", data="1")
    path = str(tmp_path / "kv.dx")
    ctl_json(a, "export", "--class", "KV", path)
    # a box whose KV already holds objects under its own secret refuses it
    c = durod_factory()
    requests.put(c.url + "/kv/local/k/v", data="mine")
    out = ctl(c, "import", path, check=False)
    assert out.returncode == 1 and "already holds objects" in out.stderr
    assert requests.get(c.url + "/kv/local/k/v").text == "mine"
    # a damaged file is refused whole
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    bad = str(tmp_path / "bad.dx")
    open(bad, "wb").write(bytes(data))
    d = durod_factory()
    out = ctl(d, "import", bad, check=False)
    assert out.returncode == 1 and "damaged" in out.stderr
    assert ctl_json(d, "objects", "--class", "KV")["objects"] == []
    trunc = str(tmp_path / "trunc.dx")
    open(trunc, "wb").write(bytes(data[:40]))
    out = ctl(d, "import", trunc, check=False)
    assert out.returncode == 1
    out = ctl(d, "import", str(tmp_path / "missing.dx"), check=False)
    assert out.returncode == 1 and "No such file" in out.stderr


# ---- a control plane that no one client can stall (issue 14) ----

def ctl_sock(d):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(os.path.join(d.data_dir, "control.sock"))
    return s


def read_line(s):
    data = b""
    while not data.endswith(b"\n"):
        b = s.recv(65536)
        if not b:
            break
        data += b
    return data


def status_of(d):
    return json.loads(raw(d, b'{"cmd":"status"}\n'))["control"]


def wait_for(cond, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    return cond()


def test_control_client_limit_is_exact(durod):
    # 32 clients, each answered (so each is surely accepted), then 8 more: all refused
    held = []
    for _ in range(32):
        s = ctl_sock(durod)
        s.sendall(b'{"cmd":"status"}\n')
        assert json.loads(read_line(s))["ok"]
        held.append(s)
    for _ in range(8):
        s = ctl_sock(durod)
        line = read_line(s)
        assert b"too many control clients" in line, line
        assert s.recv(100) == b""  # and closed
        s.close()
    out = ctl(durod, "status", check=False)
    assert out.returncode == 1 and "too many control clients" in out.stderr, out.stderr
    held.pop().close()
    assert wait_for(lambda: ctl(durod, "status", check=False).returncode == 0)
    for s in held:
        s.close()
    assert ctl_json(durod, "status")["control"]["refused_limit"] >= 9


def test_flooding_client_stalls_no_one_and_not_shutdown(durod_factory):
    d = durod_factory()
    flood = ctl_sock(d)
    flood.sendall(b'{"cmd":"config"}\n' * 2000)  # and never reads
    # another operator's command is answered at once
    out = subprocess.run([DUROCTL, "--socket", os.path.join(d.data_dir, "control.sock"), "status"],
                         capture_output=True, text=True, timeout=5)
    assert out.returncode == 0, out.stderr
    # the flooder is dropped once its unread replies pass the cap, and counted
    assert wait_for(lambda: status_of(d)["dropped_slow"] >= 1)
    flood.close()
    # a second one that is still connected, not reading, when SIGTERM comes
    flood2 = ctl_sock(d)
    flood2.sendall(b'{"cmd":"config"}\n' * 200)
    pending = ctl_sock(d)
    pending.sendall(b'{"cmd":"sta')  # and a half-sent request
    t0 = time.time()
    rc = d.stop(timeout=10)
    assert rc == 0
    assert time.time() - t0 < 8  # the shutdown budget (5 s) and some margin
    flood2.close()
    pending.close()


def test_control_request_and_idle_deadlines(durod):
    s = ctl_sock(durod)
    s.sendall(b'{"cmd":"stat')  # never finished
    s.settimeout(20)
    line = read_line(s)
    assert b"not complete within" in line, line
    assert s.recv(100) == b""
    s.close()
    assert status_of(durod)["timed_out"] >= 1


def metrics_durod(durod_factory):
    port = free_port()
    return durod_factory(config={"control": {"metrics": "127.0.0.1:%d" % port}}), port


def http_raw(port, data, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    got = b""
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            break
        if not b:
            break
        got += b
    s.close()
    return got


def test_slow_metrics_clients_do_not_block_duroctl(durod_factory):
    d, port = metrics_durod(durod_factory)
    slow = []
    for _ in range(6):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        slow.append(s)
    for _ in range(3):
        out = subprocess.run([DUROCTL, "--socket", os.path.join(d.data_dir, "control.sock"), "status"],
                             capture_output=True, text=True, timeout=3)
        assert out.returncode == 0, out.stderr
    assert requests.get("http://127.0.0.1:%d/metrics" % port, timeout=3).status_code == 200
    # each slow one gets 408 once its deadline passes
    for s in slow:
        s.settimeout(15)
        assert s.recv(100).startswith(b"HTTP/1.1 408 "), "no 408"
        s.close()


def test_metrics_listener_requests(durod_factory):
    d, port = metrics_durod(durod_factory)
    base = "http://127.0.0.1:%d" % port
    r = requests.head(base + "/metrics", timeout=5)
    assert r.status_code == 200 and r.text == "" and int(r.headers["content-length"]) > 100
    assert requests.get(base + "/metrics?x=1", timeout=5).status_code == 200
    r = requests.post(base + "/metrics", data="x", timeout=5)
    assert r.status_code == 405 and "GET" in r.headers["allow"]
    assert http_raw(port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert http_raw(port, b"GET /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 ")  # no Host
    assert http_raw(port, b"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 505 ")
    big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n"
    assert http_raw(port, big).startswith(b"HTTP/1.1 431 ")
    assert http_raw(port, b"GET /nope HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 404 ")
    got = http_raw(port, b"GET /api/stats HTTP/1.0\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 200 ") and b'"total"' in got
    # the listener's own connection cap: beyond it, 503 at once
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
    assert wait_for(lambda: http_raw(port, b"GET /metrics HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 503 "))
    for s in held:
        s.close()
    assert wait_for(lambda: requests.get(base + "/metrics", timeout=5).status_code == 200)
    st = status_of(d)
    assert st["metrics_refused"] >= 1 and st["metrics_bad_requests"] >= 4


def test_objects_by_binding_and_name(durod):
    requests.put(durod.url + "/kv/my shelf/k/apples", data="12")
    requests.put(durod.url + "/kv/my shelf/k/pears", data="7")
    requests.post(durod.url + "/counter/visits")
    by_hex = {o.get("name"): o["id"] for o in ctl_json(durod, "objects")["objects"]}
    shelf = by_hex["my shelf"]
    info = ctl_json(durod, "object", "KV", "my shelf")
    assert info["id"] == shelf and info["keys"] == 2 and info["binding"] == "KV"
    assert "name: my shelf" in ctl(durod, "object", "KV", "my shelf").stdout
    assert ctl_json(durod, "object", "COUNTER", "visits")["id"] == by_hex["visits"]
    keys = ctl_json(durod, "object", "KV", "my shelf", "keys")["keys"]
    assert [k["key"] for k in keys] == ["apples", "pears"]
    keys = ctl_json(durod, "object", "KV", "my shelf", "keys", "--prefix", "pe")["keys"]
    assert [k["key"] for k in keys] == ["pears"]
    # the ID form still works, "keys" included
    assert ctl_json(durod, "object", shelf, "keys")["keys"][0]["key"] == "apples"
    # an object that was never used has a name but no storage
    fresh = ctl_json(durod, "object", "KV", "never used")
    assert fresh["keys"] == 0 and not fresh["in_memory"]
    # evict and delete by name
    assert ctl_json(durod, "object", "KV", "my shelf")["in_memory"]
    assert ctl_json(durod, "evict", "KV", "my shelf")["evicted"]
    assert not ctl_json(durod, "object", "KV", "my shelf")["in_memory"]
    assert ctl(durod, "delete", "KV", "my shelf", check=False).returncode == 2
    assert ctl_json(durod, "delete", "KV", "my shelf", "--yes")["deleted"]
    assert requests.get(durod.url + "/kv/my shelf/k/apples").status_code == 404
    # an unknown binding is named, with the ones there are
    out = ctl(durod, "object", "NOPE", "x", check=False)
    assert out.returncode == 1 and 'no binding "NOPE"' in out.stderr and "KV" in out.stderr
    out = ctl(durod, "evict", "NOPE", "x", check=False)
    assert out.returncode == 1 and 'no binding "NOPE"' in out.stderr
    out = ctl(durod, "delete", "NOPE", "x", "--yes", check=False)
    assert out.returncode == 1 and 'no binding "NOPE"' in out.stderr
    # a name over 256 bytes is refused
    out = ctl(durod, "object", "KV", "n" * 257, check=False)
    assert out.returncode == 1 and "256" in out.stderr
    # too many words is a usage error
    assert ctl(durod, "evict", "KV", "a", "b", check=False).returncode == 2
    # the same over the socket
    r = json.loads(raw(durod, b'{"cmd":"object","binding":"COUNTER","name":"visits"}\n'))
    assert r["ok"] and r["id"] == by_hex["visits"]
    r = json.loads(raw(durod, b'{"cmd":"object","binding":"COUNTER"}\n'))
    assert not r["ok"] and "name" in r["error"]


def test_sigterm_during_import(durod_factory, tmp_path):
    a = durod_factory()
    s = requests.Session()
    for i in range(400):
        assert s.put(a.url + "/kv/many%d/k/v" % i, data="x" * 100).ok
    path = str(tmp_path / "many.dx")
    assert ctl_json(a, "export", "--class", "KV", path)["objects"] == 400
    b = durod_factory()
    imp = subprocess.Popen([DUROCTL, "--socket", os.path.join(b.data_dir, "control.sock"), "import", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # SIGTERM once objects are arriving: the import is cut short between objects, the
    # events already on the cores finish during the drain, and nothing is left behind
    assert wait_for(lambda: ctl_json(b, "objects", "--class", "KV", "--limit", "1")["objects"])
    assert b.stop(timeout=10) == 0
    out, err = imp.communicate(timeout=10)
    assert imp.returncode == 0 or "stopping" in err, (out, err)
    log = b.logtext()
    assert "Sanitizer" not in log, log
