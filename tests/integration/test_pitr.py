"""Point-in-time recovery against a real durod: a recorded history of writes (SQL rows, a
growing and shrinking table of blobs, keys, the alarm, a delete_all) with a bookmark after
each; restoring to 20 random bookmarks gives exactly the state recorded there, and the undo
bookmark brings the latest back; a restore survives SIGKILL during and after it; bookmarks
of another object and times before the retention window are refused; history past the
window is folded away. Seeded: DURO_TEST_SEED=N replays a run."""
import os
import random
import signal
import threading
import time

import requests

import conftest

SEED = int(os.environ.get("DURO_TEST_SEED", random.randrange(1 << 30)))


def sql(d, name, text, params=None, status=200):
    body = {"sql": text}
    if params is not None:
        body["params"] = params
    r = requests.post(d.url + "/sql/" + name, json=body, timeout=30)
    assert r.status_code == status, (text, r.status_code, r.text)
    return r.json()


def snapshot(d, name):
    """Everything of the object a restore must bring back: rows, keys, alarm, blobs."""
    s = requests.get(d.url + "/sql/%s/mixed" % name, timeout=30).json()
    # One event: a restore on next session may land between two requests, and would
    # take away the table the first one made.
    big = sql(d, name, "CREATE TABLE IF NOT EXISTS big (id INTEGER PRIMARY KEY, b BLOB); "
              "SELECT id, length(b), hex(substr(b, 1, 16)) FROM big ORDER BY id")["rows"]
    return {"sql": s["sql"], "kv": sorted(s["kv"]), "alarm": s["alarm"], "big": big}


def ctl(d, req):
    r = d.control(req, timeout=60)
    return r


def bookmark(d, name, at_ms=None):
    req = {"cmd": "bookmark", "binding": "SQL", "name": name}
    if at_ms is not None:
        req["at_ms"] = at_ms
    return ctl(d, req)


def restore(d, name, bm):
    return ctl(d, {"cmd": "restore", "binding": "SQL", "name": name, "bookmark": bm})


def one_write(d, name, rng, n):
    op = rng.random()
    if op < 0.5:
        assert requests.post(d.url + "/sql/%s/mixed?n=%d" % (name, n), timeout=30).status_code == 200
    elif op < 0.7:
        sql(d, name, "CREATE TABLE IF NOT EXISTS big (id INTEGER PRIMARY KEY, b BLOB); "
                     "INSERT INTO big (b) SELECT randomblob(?) FROM (WITH RECURSIVE c(x) AS "
                     "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 8) SELECT x FROM c)",
            [rng.randrange(100, 6000)])
    elif op < 0.85:
        sql(d, name, "CREATE TABLE IF NOT EXISTS big (id INTEGER PRIMARY KEY, b BLOB); "
                     "DELETE FROM big WHERE id % 3 = ?", [rng.randrange(3)])
    elif op < 0.95:
        sql(d, name, "CREATE TABLE IF NOT EXISTS mixed (n INTEGER PRIMARY KEY); "
                     "DELETE FROM mixed WHERE n % 4 = ?", [rng.randrange(4)])
    else:
        r = ctl(d, {"cmd": "delete", "binding": "SQL", "name": name, "confirm": True})
        assert r.get("ok"), r


def test_restore_to_random_bookmarks_and_undo(durod_factory):
    print("seed", SEED)
    rng = random.Random(SEED)
    d = durod_factory(test_classes=True)
    name = "hist"
    history = []  # (bookmark, state)
    for n in range(1, 61):
        one_write(d, name, rng, n)
        r = bookmark(d, name)
        assert r.get("ok"), r
        history.append((r["bookmark"], snapshot(d, name)))
    bms = [b for b, _ in history]
    assert bms == sorted(bms)  # string order is time order
    latest = history[-1][1]
    assert len({repr(st) for _, st in history}) > 30  # the history really moves
    undo = None
    for b, want in rng.sample(history, 20):
        r = restore(d, name, b)
        assert r.get("ok"), r
        undo = undo or r["undo"]
        assert snapshot(d, name) == want, b
    st = d.control({"cmd": "status"})
    assert st["pitr"]["retention_ms"] == 7 * 86400 * 1000 and st["pitr"]["bytes"] > 0, st
    # the first restore's undo bookmark brings the latest state back
    r = restore(d, name, undo)
    assert r.get("ok"), r
    assert snapshot(d, name) == latest
    # refusals: another object's bookmark, a malformed one, a time before the window
    sql(d, "other", "CREATE TABLE t (v)")
    r = restore(d, "other", bms[3])
    assert not r.get("ok") and "not one of this object's" in r["error"], r
    r = restore(d, name, "0" * 50)
    assert not r.get("ok") and "not a bookmark" in r["error"], r
    r = bookmark(d, name, at_ms=int(time.time() * 1000) - 8 * 86400 * 1000)
    assert not r.get("ok") and "before the retention window" in r["error"], r
    # a time between two writes gives the earlier one's bookmark
    t1 = int(bms[10][:16], 16)
    t2 = int(bms[11][:16], 16)
    if t2 > t1:
        assert bookmark(d, name, at_ms=t1)["bookmark"] <= bms[10]


def test_restore_survives_sigkill_during_and_after(tmp_path):
    print("seed", SEED)
    rng = random.Random(SEED)
    data = str(tmp_path / "data")
    d = conftest.start_on(tmp_path, "a", data, test_classes=True)
    name = "killed"
    for n in range(1, 6):
        requests.post(d.url + "/sql/%s/mixed?n=%d" % (name, n), timeout=30)
    old_bm = bookmark(d, name)["bookmark"]
    old = snapshot(d, name)
    for n in range(6, 12):
        one_write(d, name, rng, n)
    new = snapshot(d, name)
    # after: a restore that was answered is there after SIGKILL
    r = restore(d, name, old_bm)
    assert r.get("ok"), r
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    d2 = conftest.start_on(tmp_path, "b", data, test_classes=True)
    assert snapshot(d2, name) == old
    # during: killed while a restore runs, the object is whole, before or after it
    r = restore(d2, name, r["undo"])
    assert r.get("ok") and snapshot(d2, name) == new
    def racing_restore():
        try:
            restore(d2, name, old_bm)
        except (OSError, ValueError):
            pass  # killed before it answered

    t = threading.Thread(target=racing_restore)
    t.start()
    time.sleep(rng.random() * 0.05)
    d2.proc.send_signal(signal.SIGKILL)
    d2.proc.wait()
    t.join()
    d3 = conftest.start_on(tmp_path, "c", data, test_classes=True)
    assert snapshot(d3, name) in (old, new)


def test_retention_expiry_folds_history_and_refuses_older(durod_factory):
    d = durod_factory(test_classes=True, extra_args=["--set", "storage.pitr_retention=3000",
                                                     "--set", "storage.pitr_sweep_ms=200"])
    name = "short"
    for n in range(1, 6):
        requests.post(d.url + "/sql/%s/mixed?n=%d" % (name, n), timeout=30)
    old_bm = bookmark(d, name)["bookmark"]
    old_t = int(old_bm[:16], 16)
    conftest.wait_until(lambda: "history of" in d.logtext() and "folded" in d.logtext(), 15,
                        what="the sweeper folding history past the window")
    conftest.wait_until(lambda: int(time.time() * 1000) > old_t + 3500, 10, what="the window to pass")
    r = bookmark(d, name, at_ms=old_t)
    assert not r.get("ok") and "before the retention window" in r["error"], r
    r = restore(d, name, old_bm)
    assert not r.get("ok") and "retention window" in r["error"], r
    # inside the window everything still works, from the folded base on
    requests.post(d.url + "/sql/%s/mixed?n=6" % name, timeout=30)
    b6 = bookmark(d, name)["bookmark"]
    s6 = snapshot(d, name)
    requests.post(d.url + "/sql/%s/mixed?n=7" % name, timeout=30)
    r = restore(d, name, b6)
    assert r.get("ok"), r
    assert snapshot(d, name) == s6
    assert s6["sql"] == [1, 2, 3, 4, 5, 6]


def test_class_api_bookmarks_and_restore_on_next_session(durod_factory):
    d = durod_factory(test_classes=True)
    name = "api"
    url = d.url + "/sql/%s" % name
    for n in range(1, 4):
        requests.post(url + "/mixed?n=%d" % n, timeout=30)
    b3 = requests.get(url + "/bookmark", timeout=30).text.strip()
    assert b3 == bookmark(d, name)["bookmark"]  # the class and duroctl agree
    s3 = snapshot(d, name)
    t3 = int(b3[:16], 16)
    for n in range(4, 7):
        requests.post(url + "/mixed?n=%d" % n, timeout=30)
    b6 = requests.get(url + "/bookmark", timeout=30).text.strip()
    assert requests.get(url + "/bookmark?at=%d" % t3, timeout=30).text.strip() <= b6
    assert requests.get(url + "/bookmark?at=%d" % (t3 - 8 * 86400 * 1000), timeout=30).status_code == 400
    r = requests.post(url + "/restore-next?bookmark=" + "1" * 50, timeout=30)
    assert r.status_code == 400 and "-22" in r.text
    r = requests.post(url + "/restore-next?bookmark=" + b3, timeout=30)
    assert r.status_code == 200
    undo = r.text.strip()
    assert undo == b6
    # the next session starts from the restored state
    conftest.wait_until(lambda: snapshot(d, name)["sql"] == s3["sql"], 10, what="the restore on next session")
    assert snapshot(d, name) == s3
    r = requests.post(url + "/restore-next?bookmark=" + undo, timeout=30)
    assert r.status_code == 200
    conftest.wait_until(lambda: snapshot(d, name)["sql"] == [1, 2, 3, 4, 5, 6], 10, what="the undo")
