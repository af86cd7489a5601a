"""The dashboard rendered in headless Debian Chromium (driven by npm's playwright-core)
with non-zero figures after some load; the screenshot is kept in tests/artifacts/."""
import json
import os
import subprocess
import threading
import time

import requests

from conftest import ROOT, free_port

PLAYWRIGHT = os.path.join(ROOT, ".cache", "playwright", "node_modules")
SHOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboard_shot.js")


def test_dashboard_in_chromium(durod_factory):
    assert os.path.isdir(os.path.join(PLAYWRIGHT, "playwright-core")), \
        "playwright-core missing: scripts/setup.sh installs it"
    port = free_port()
    d = durod_factory(config={"control": {"metrics": "127.0.0.1:%d" % port}})
    stop = threading.Event()

    def load():
        s = requests.Session()
        i = 0
        deadline = time.time() + 60
        while not stop.is_set() and time.time() < deadline:
            s.post(d.url + "/counter/dash%d" % (i % 50))
            i += 1
    t = threading.Thread(target=load)
    t.start()
    out_dir = os.path.join(ROOT, "tests", "artifacts")
    os.makedirs(out_dir, exist_ok=True)
    png = os.path.join(out_dir, "dashboard.png")
    try:
        r = subprocess.run(["node", SHOT, "http://127.0.0.1:%d/dashboard" % port, png],
                           env=dict(os.environ, NODE_PATH=PLAYWRIGHT), capture_output=True,
                           text=True, timeout=120)
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    f = res["figures"]
    assert res["errors"] == []
    assert "durod" in f["status"] and "2 cores" in f["status"]
    assert float(f["rps"]) > 0, f
    assert int(f["objects"].split("/")[0]) > 0, f
    assert f["rows"] == 2
    # Per class version: the built-in Counter ran events; every bound class has a row.
    counter = [r for r in f["classes"] if r[0] == "Counter"]
    assert len(counter) == 1 and counter[0][1] == "builtin" and int(counter[0][5]) > 0, f
    assert int(counter[0][3]) > 0, f  # events per second
    assert os.path.getsize(png) > 10000
    print("dashboard screenshot: %s (%s)" % (png, f))
