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
