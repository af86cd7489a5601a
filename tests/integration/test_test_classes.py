"""Test hooks live in test classes (tests/classes), built only into durod-test and bound
only by the tests' configs: the shipped durod and its default config serve none of them
(issue 14: a KV batch line `spin 100000` used to burn 100 s of a reactor)."""
import asyncio
import json
import os
import subprocess

import requests
import websockets

import conftest
from conftest import DUROD, DUROD_TEST, ROOT

DUROCTL = os.path.join(os.path.dirname(DUROD), "duroctl")
HOOK_LINES = ["spin 100000", "fail", "sync", "timeout 50"]


def test_default_config_serves_no_test_hooks(durod):
    u = durod.url
    for line in HOOK_LINES:
        # Unknown lines: refused at once (the timeout only bounds a regression).
        r = requests.post(u + "/kv/h/batch", data=line, timeout=10)
        assert r.status_code == 400, (line, r.status_code, r.text)
    assert requests.get(u + "/kv/h/synced", timeout=10).status_code == 404

    async def ws():
        async with websockets.connect("ws://%s:%d/kv/h/ws" % (durod.host, durod.port)) as c:
            for line in HOOK_LINES:
                await c.send(line)
                assert await c.recv() == "error -22", line
            await c.send("put a 1")
            assert await c.recv() == "ok\n"
    asyncio.run(asyncio.wait_for(ws(), 30))

    # Echo echoes /fail like any other subpath; Ticker has no /fail.
    r = requests.post(u + "/echo/x/fail", data="b", timeout=10)
    assert r.status_code == 200 and r.headers["X-Subpath"] == "/fail" and r.text == "b"
    assert requests.post(u + "/ticker/x/fail?n=1", timeout=10).status_code == 404


def test_shipped_durod_has_no_test_classes(tmp_path):
    builds = [DUROD] + [p for p in [os.path.join(ROOT, "build", "control", "durod")]
                        if os.path.exists(p) and p != DUROD]
    names = [n.encode() for n in conftest.TEST_CLASSES.values()]
    for path in builds:
        with open(path, "rb") as f:
            data = f.read()
        assert not [n for n in names if n in data], path
    with open(DUROD_TEST, "rb") as f:
        data = f.read()
    assert all(n in data for n in names)  # the check above looks for the right bytes
    # and a config that binds one is refused by durod, accepted by durod-test
    p = tmp_path / "t.json"
    p.write_text(json.dumps(conftest.config_with_test_classes()))
    r = subprocess.run([DUROD, "--check-config", str(p)], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown class" in r.stderr, r.stderr
    r = subprocess.run([DUROD_TEST, "--check-config", str(p)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def effective(d):
    out = subprocess.run([DUROCTL, "--socket", os.path.join(d.data_dir, "control.sock"),
                          "--json", "config"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["config"]


def test_test_config_restates_the_builtin_setup(durod_factory):
    plain = durod_factory()
    hooked = durod_factory(test_classes=True)
    a, b = effective(plain), effective(hooked)
    swap = conftest.TEST_CLASSES
    want = [dict(x, class_name=swap.get(x["class_name"], x["class_name"]))
            for x in a["durable_objects"]["bindings"]]
    assert b["durable_objects"]["bindings"] == want
    assert b["routes"] == a["routes"]
    assert b["migrations"][:len(a["migrations"])] == a["migrations"]
    # the hooks are there, under the usual routes
    assert requests.post(hooked.url + "/kv/h/batch", data="put a 1\nspin 1").status_code == 200
    assert requests.post(hooked.url + "/echo/x/fail").status_code == 500
    assert requests.get(hooked.url + "/counter/c").status_code == 200
