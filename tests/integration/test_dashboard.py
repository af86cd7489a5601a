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


SQL_VIEW = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboard_sql.js")


def test_dashboard_sql_view_in_chromium(durod_factory):
    """The read-only SQL panel: binding and name picked, a SELECT's columns and rows shown,
    SQLite's message for a bad query, the server's refusal for a write (which leaves the
    data as it was)."""
    port = free_port()
    d = durod_factory(config={"control": {"metrics": "127.0.0.1:%d" % port, "dashboard_sql": True}})
    for q in ("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
              "INSERT INTO t (v) VALUES ('one'), (NULL), ('<b>three</b>')"):
        r = requests.post(d.url + "/sql/view", json={"sql": q}, timeout=30)
        assert r.status_code == 200, r.text
    out_dir = os.path.join(ROOT, "tests", "artifacts")
    os.makedirs(out_dir, exist_ok=True)
    png = os.path.join(out_dir, "dashboard_sql.png")
    r = subprocess.run(["node", SQL_VIEW, "http://127.0.0.1:%d/dashboard" % port, png, "SQL", "view",
                        "SELECT id, v FROM t ORDER BY id", "SELECT * FROM missing", "DELETE FROM t",
                        "SELECT count(*) AS n FROM t"],
                       env=dict(os.environ, NODE_PATH=PLAYWRIGHT), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["errors"] == []
    sel, bad, write, count = res["results"]
    assert sel["columns"] == ["id", "v"] and sel["error"] == ""
    assert sel["rows"] == [["1", "one"], ["2", "NULL"], ["3", "<b>three</b>"]]  # text, not markup
    assert sel["info"].startswith("3 rows")
    assert "no such table: missing" in bad["error"] and bad["rows"] == []
    assert "read-only" in write["error"]
    assert count["rows"] == [["3"]] and count["error"] == ""
    assert os.path.getsize(png) > 10000
