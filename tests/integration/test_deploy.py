"""Live deploys: `duroctl deploy` switches a class to a new version on a running durod,
with its objects' storage kept and their WebSockets open; `versions` lists what ran;
`rollback` goes back; a deployed version is what runs after a restart; every refusal is
one line naming the file and why, and the running version stays."""
import asyncio
import json
import os

import pytest
import requests
import websockets

from conftest import start_on, wait_until
import modbuild
from modbuild import duroctl

BINDING = ("VERS", "Versioned", "/v/")
MIGRATION = {"tag": "vers-v1", "new_classes": ["Versioned"]}


def config(v1):
    return modbuild.module_config([v1], [BINDING], [MIGRATION])


def answer(d, name, method="GET", sub=""):
    r = requests.request(method, "%s/v/%s%s" % (d.url, name, sub), timeout=10)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.text.split()


def ws_url(d, path):
    return "ws://%s:%d%s" % (d.host, d.port, path)


def test_deploy_switches_objects_keeps_state_and_sockets(tmp_path, durod_factory):
    v1 = modbuild.versioned(tmp_path, "v1")
    v2 = modbuild.versioned(tmp_path, "v2")
    d = durod_factory(config=config(v1), cores=2)
    for _ in range(3):
        answer(d, "a", "POST")
    assert answer(d, "a")[:2] == ["v1", "3"]

    async def run():
        async with websockets.connect(ws_url(d, "/v/room")) as ws:
            await ws.send("hello")
            assert await ws.recv() == "v1:hello"
            r = await asyncio.get_running_loop().run_in_executor(
                None, lambda: duroctl(d, "deploy", "Versioned", v2, "--immediate"))
            assert "deployed version" in r.stdout, r.stdout
            # The same socket, now answered by v2.
            await ws.send("again")
            assert await ws.recv() == "v2:again"
    asyncio.run(run())
    a = answer(d, "a")
    assert a[:2] == ["v2", "3"]  # the count in storage, read by the new version
    assert a[2] == "1"           # the object's state was v2's own, fresh
    assert answer(d, "new-one", "POST")[:2] == ["v2", "1"]

    vs = json.loads(duroctl(d, "--json", "versions", "Versioned").stdout)
    shas = [v["sha"] for v in vs["versions"]]
    assert len(shas) == 2 and vs["current"] == shas[0] and vs["old"] is None
    assert [v["source"] for v in vs["versions"]] == ["deploy", "config"]
    text = duroctl(d, "versions", "Versioned").stdout
    assert "current" in text and shas[0][:12] in text and shas[1][:12] in text
    # The copy it runs is in the data directory, under its SHA-256, only the owner's.
    stored = os.path.join(d.data_dir, "classes", "Versioned", shas[0] + ".so")
    assert os.stat(stored).st_mode & 0o077 == 0

    # A deployed version is what runs after a restart too.
    assert d.stop() == 0
    d2 = start_on(tmp_path, "again", d.data_dir, config=config(v1), cores=2)
    assert answer(d2, "a")[:2] == ["v2", "3"]
    assert "deploy: class Versioned runs version %s" % shas[0][:12] in d2.logtext()

    # Rollback: to the version before.
    r = duroctl(d2, "rollback", "Versioned", "--immediate")
    assert "rolled back to version %s" % shas[1][:12] in r.stdout, r.stdout
    assert answer(d2, "a")[:2] == ["v1", "3"]
    # And forward again by sha prefix.
    duroctl(d2, "rollback", "Versioned", shas[0][:10], "--immediate")
    assert answer(d2, "a")[:2] == ["v2", "3"]


def test_check_validates_without_deploying(tmp_path, durod_factory):
    v1 = modbuild.versioned(tmp_path, "v1")
    v2 = modbuild.versioned(tmp_path, "v2")
    d = durod_factory(config=config(v1), cores=1)
    r = duroctl(d, "deploy", "Versioned", v2, "--check")
    assert "is valid (not deployed)" in r.stdout
    assert answer(d, "x")[0] == "v1"


def test_the_builtin_counter_runs_as_a_module_too(tmp_path, durod_factory):
    """The durable Counter, deployed from its module build (classes/counter.c with
    DURO_MODULE) over the built-in one: the same answers, the same stored counts."""
    d = durod_factory(cores=2)
    for _ in range(5):
        requests.post(d.url + "/counter/c")
    duroctl(d, "deploy", "Counter", modbuild.builtin_module("counter"), "--immediate")
    vs = json.loads(duroctl(d, "--json", "versions", "Counter").stdout)
    assert [v["source"] for v in vs["versions"]] == ["deploy", "builtin"]
    assert requests.post(d.url + "/counter/c").text == "6"
    assert requests.get(d.url + "/counter/c").text == "6"
    assert requests.post(d.url + "/counter/fresh").text == "1"
    assert d.stop() == 0
    d2 = start_on(tmp_path, "again", d.data_dir, cores=2)
    assert requests.post(d2.url + "/counter/c").text == "7"  # durable, on the module
    assert "deploy: class Counter runs version %s" % vs["current"][:12] in d2.logtext()
    duroctl(d2, "rollback", "Counter", "builtin", "--immediate")
    assert requests.post(d2.url + "/counter/c").text == "8"


def deploy_refusal(tmp_path, kind):
    """A module the deploy must refuse, and the words of the refusal."""
    from test_modules import bad_module
    if kind == "class not in the module":
        return modbuild.versioned(tmp_path, "x", class_name="Other"), 'defines no class "Versioned"'
    return bad_module(tmp_path, kind)


DEPLOY_REFUSALS = ["not ELF", "ABI major", "newer minor", "struct size", "no magic block",
                   "constructor", "unresolved symbol", "world-writable", "group-writable",
                   "class not in the module"]


def test_deploy_refuses_bad_files_and_keeps_running(tmp_path, durod_factory):
    v1 = modbuild.versioned(tmp_path, "v1")
    d = durod_factory(config=config(v1), cores=1)
    answer(d, "k", "POST")
    for kind in DEPLOY_REFUSALS:
        path, why = deploy_refusal(tmp_path, kind)
        r = duroctl(d, "deploy", "Versioned", path, check=False)
        assert r.returncode == 1, (kind, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and why in lines[0] and path in lines[0], (kind, r.stderr)
        assert answer(d, "k")[:2] == ["v1", "1"], kind  # still running what it ran
    log = d.logtext()
    assert log.count("deploy: class Versioned refused") == len(DEPLOY_REFUSALS)
    # No refused file is kept in the data directory (those refused before the copy never
    # got there; the others are removed again).
    kept = os.path.join(d.data_dir, "classes", "Versioned")
    assert not os.path.exists(kept) or os.listdir(kept) == [], os.listdir(kept)
    # A class this durod does not bind.
    r = duroctl(d, "deploy", "Nope", v1, check=False)
    assert r.returncode == 1 and "class Nope is not bound" in r.stderr


def test_only_durods_user_may_deploy(tmp_path, durod_factory):
    """The control group may read stats but not deploy: deploying runs code as durod."""
    import grp
    v1 = modbuild.versioned(tmp_path, "v1")
    v2 = modbuild.versioned(tmp_path, "v2")
    import shutil
    import tempfile
    sockdir = tempfile.mkdtemp(prefix="duro-deploy-")  # a directory nobody can reach
    os.chmod(sockdir, 0o755)
    sock = os.path.join(sockdir, "ctl.sock")
    cfg = config(v1)
    cfg["control"] = {"group": "nogroup", "socket": sock}
    d = durod_factory(config=cfg, cores=1)
    nobody = (65534, grp.getgrnam("nogroup").gr_gid)
    r = duroctl(d, "--json", "versions", "Versioned", user=nobody, socket=sock, check=False)
    assert r.returncode == 0, r.stderr
    r = duroctl(d, "deploy", "Versioned", v2, user=nobody, socket=sock, check=False)
    assert r.returncode == 1 and "permission denied: deploy runs code as durod" in r.stderr, r.stderr
    r = duroctl(d, "rollback", "Versioned", user=nobody, socket=sock, check=False)
    assert r.returncode == 1 and "permission denied: rollback runs code as durod" in r.stderr
    assert answer(d, "z")[0] == "v1"
    assert "control: deploy by uid 65534 refused" in d.logtext()
    # durod's own user may.
    duroctl(d, "deploy", "Versioned", v2, "--immediate", socket=sock)
    assert answer(d, "z")[0] == "v2"
    d.stop()
    shutil.rmtree(sockdir)


def get_many(d, names, method="GET", conns=4, depth=32):
    """The first word of each object's answer (its version's marker), by name: pipelined
    over a few connections, `depth` requests in flight on each."""
    import threading
    from conftest import read_responses
    out, errors = {}, []

    def worker(part):
        try:
            s = d.connect(timeout=30)
            for i in range(0, len(part), depth):
                batch = part[i:i + depth]
                s.sendall(b"".join(b"%s /v/%s HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
                                   % (method.encode(), n.encode()) for n in batch))
                for n, (status, _, body) in zip(batch, read_responses(s, len(batch), 30)):
                    assert status == 200, (n, status, body)
                    out[n] = body.split()[0].decode()
            s.close()
        except Exception as e:  # reported by the caller
            errors.append(e)
    parts = [names[i::conns] for i in range(conns)]
    threads = [threading.Thread(target=worker, args=(p,)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return out


def test_percent_splits_objects_and_raising_it_moves_none_back(tmp_path, durod_factory):
    v1 = modbuild.versioned(tmp_path, "v1")
    v2 = modbuild.versioned(tmp_path, "v2")
    d = durod_factory(config=config(v1), cores=2)
    names = ["o%d" % i for i in range(10000)]
    assert set(get_many(d, names, "POST").values()) == {"v1"}  # 10,000 resident objects
    r = duroctl(d, "deploy", "Versioned", v2, "--percent", "30", "--immediate")
    assert "to 30% of objects (the others stay on" in r.stdout, r.stdout
    at30 = get_many(d, names)
    on2 = {n for n, m in at30.items() if m == "v2"}
    assert 2700 < len(on2) < 3300, len(on2)
    assert all(m in ("v1", "v2") for m in at30.values())
    vs = json.loads(duroctl(d, "--json", "versions", "Versioned").stdout)
    assert vs["percent"] == 30 and vs["old"] is not None
    # A v2 deploy of another file is refused while the split runs.
    v3 = modbuild.versioned(tmp_path, "v3")
    r = duroctl(d, "deploy", "Versioned", v3, check=False)
    assert r.returncode == 1 and "a gradual deploy of" in r.stderr and "is at 30%" in r.stderr
    duroctl(d, "deploy", "Versioned", v2, "--percent", "60", "--immediate")
    at60 = get_many(d, names)
    on2_60 = {n for n, m in at60.items() if m == "v2"}
    assert on2 <= on2_60, sorted(on2 - on2_60)[:10]  # none moved back
    assert 5700 < len(on2_60) < 6300, len(on2_60)
    # The objects on each version, as `versions` counts them (all resident).
    vs = json.loads(duroctl(d, "--json", "versions", "Versioned").stdout)
    objs = {v["sha"]: v["objects"] for v in vs["versions"]}
    assert objs[vs["current"]] == len(on2_60) and objs[vs["old"]] == 10000 - len(on2_60)
    # New objects are split the same way, and a restart keeps the split.
    assert d.stop() == 0
    d2 = start_on(tmp_path, "again", d.data_dir, config=config(v1), cores=2)
    assert get_many(d2, names) == at60
    # Finishing it: everyone on v2.
    duroctl(d2, "deploy", "Versioned", v2, "--immediate")
    assert set(get_many(d2, names[:500]).values()) == {"v2"}


def test_a_forced_switch_answers_held_responses_503_and_keeps_storage(tmp_path, durod_factory):
    import threading
    from conftest import read_responses
    v1 = modbuild.versioned(tmp_path, "v1")
    v2 = modbuild.versioned(tmp_path, "v2")
    d = durod_factory(config=config(v1), cores=2)
    answer(d, "h", "POST")
    answer(d, "free", "POST")
    # Three responses held by object h (its Lock-like waiters).
    held = [d.connect(timeout=30) for _ in range(3)]
    for s in held:
        s.sendall(b"POST /v/h/defer HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
    wait_until(lambda: d.object_info("VERS", "h")["deferred"] == 3, what="3 held responses")
    t0 = __import__("time").monotonic()
    duroctl(d, "deploy", "Versioned", v2, "--max-delay", "2")
    # Quiescent objects switch at once; h waits (its held responses are v1's to answer).
    assert answer(d, "free")[:2] == ["v2", "1"]
    assert answer(d, "h")[:2] == ["v1", "1"]
    # At the max delay: forced. Held responses are answered 503, then h runs v2.
    for s in held:
        (status, _, body), = read_responses(s, 1, timeout=30)
        assert status == 503, (status, body)
        s.close()
    took = __import__("time").monotonic() - t0
    assert 1.5 < took < 10, took
    assert answer(d, "h")[:2] == ["v2", "1"]  # storage intact
    def deploys():  # the stats are snapshots the cores publish every 100 ms
        st = json.loads(duroctl(d, "--json", "stats").stdout)["total"]["deploys"]
        return st if st["forced"] >= 1 else None
    st = wait_until(deploys, what="the forced switch in the stats")
    assert st["forced"] == 1 and st["deferred_503"] == 3 and st["waiting"] == 0, st

    # Not forced: a held response answered before the deadline lets the switch happen then.
    v3 = modbuild.versioned(tmp_path, "v3")
    s = d.connect(timeout=30)
    s.sendall(b"POST /v/h/defer HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
    wait_until(lambda: d.object_info("VERS", "h")["deferred"] == 1, what="a held response")
    duroctl(d, "deploy", "Versioned", v3, "--max-delay", "600")
    assert answer(d, "h")[0] == "v2"
    assert requests.post(d.url + "/v/h/release").text.startswith("v2 released 1")
    (status, _, body), = read_responses(s, 1, timeout=30)
    assert status == 200 and body.startswith(b"v2 released"), body
    s.close()
    wait_until(lambda: answer(d, "h")[0] == "v3", what="h to switch once quiescent")
    assert answer(d, "h")[:2] == ["v3", "1"]


def test_the_last_ten_versions_are_kept_for_rollback(tmp_path, durod_factory):
    v1 = modbuild.versioned(tmp_path, "v1")
    d = durod_factory(config=config(v1), cores=1)
    answer(d, "k", "POST")
    shas = []
    for i in range(2, 13):  # 11 deploys over the config's version: 12 in all
        duroctl(d, "deploy", "Versioned", modbuild.versioned(tmp_path, "v%d" % i), "--immediate")
        shas.append(json.loads(duroctl(d, "--json", "versions", "Versioned").stdout)["current"])
        assert answer(d, "k")[:2] == ["v%d" % i, "1"]
    vs = json.loads(duroctl(d, "--json", "versions", "Versioned").stdout)
    kept = [v["sha"] for v in vs["versions"]]
    assert kept == shas[::-1][:10], kept  # newest first; v1 and v2 fell off
    # The files of those that fell off are gone from the data directory.
    files = os.listdir(os.path.join(d.data_dir, "classes", "Versioned"))
    assert sorted(files) == sorted(s + ".so" for s in kept), files
    assert "is no longer among the last 10" in d.logtext()
    # The oldest kept one is reachable; one that fell off is refused by name.
    duroctl(d, "rollback", "Versioned", shas[2][:12], "--immediate")
    assert answer(d, "k")[:2] == ["v4", "1"]
    r = duroctl(d, "rollback", "Versioned", shas[0][:12], check=False)
    assert r.returncode == 1 and "has no version %s among its last 10" % shas[0][:12] in r.stderr, \
        r.stderr
    assert answer(d, "k")[:2] == ["v4", "1"]


def test_deploys_back_to_back_leave_every_object_on_the_last(tmp_path, durod_factory):
    """Each deploy restarts the cores' switch passes; one coming while the last is still
    moving objects must leave none behind, on either core."""
    v = [modbuild.versioned(tmp_path, "v%d" % i) for i in range(1, 5)]
    d = durod_factory(config=config(v[0]), cores=2)
    names = ["b%d" % i for i in range(3000)]
    assert set(get_many(d, names, "POST").values()) == {"v1"}
    for path in v[1:]:
        duroctl(d, "deploy", "Versioned", path, "--immediate")
    duroctl(d, "rollback", "Versioned", "--immediate")  # to v3
    duroctl(d, "deploy", "Versioned", v[3], "--immediate")

    def settled():
        vs = json.loads(duroctl(d, "--json", "versions", "Versioned").stdout)
        objs = {x["sha"]: x["objects"] for x in vs["versions"]}
        return objs[vs["current"]] == len(names) and sum(objs.values()) == len(names)
    wait_until(settled, what="every resident object on the last version")
    assert set(get_many(d, names).values()) == {"v4"}
