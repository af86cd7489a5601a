"""Atomicity of events that write SQL, key-value pairs and an alarm together (TestSql's
mixed events), under injected commit-log sync failures and SIGKILL cycles: after a restart
every acknowledged event is there in full, and no failed one in part. Seeded: the seed is
printed, DURO_TEST_SEED=N replays it."""
import concurrent.futures
import http.client
import os
import random
import signal
import threading
import time

import requests

import conftest

SEED = int(os.environ.get("DURO_TEST_SEED", random.randrange(1 << 30)))


def state(d, name):
    r = requests.get(d.url + "/sql/%s/mixed" % name, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def check_whole(d, name, acked, failed):
    """Every event of the object in all three kinds of storage or in none."""
    s = state(d, name)
    assert s["sql"] == sorted(s["kv"]), repr((name, s, sorted(acked), sorted(failed)))
    assert s["alarm"] == (max(s["sql"]) if s["sql"] else None), (name, s)
    got = set(s["sql"])
    assert acked <= got, (name, sorted(acked - got))
    assert not (failed & got), (name, sorted(failed & got))
    return got


def client(d, names, start, count, rng, stop=None):
    """Sends mixed events n = start.. to each object in turn, some failing on purpose;
    returns {name: (acked, failed)}. Stops quietly when the server goes away."""
    out = {n: (set(), set()) for n in names}
    c = http.client.HTTPConnection(d.host, d.port, timeout=20)
    try:
        for i in range(count):
            if stop is not None and stop.is_set():
                break
            for name in names:
                n = start[name] + i
                fail = rng.random() < 0.2
                c.request("POST", "/sql/%s/mixed?n=%d%s" % (name, n, "&fail=1" if fail else ""))
                r = c.getresponse()
                r.read()
                if r.status == 200:
                    assert not fail
                    out[name][0].add(n)
                else:
                    assert r.status == 500, r.status
                    out[name][1].add(n)
    except (OSError, http.client.HTTPException):
        pass
    finally:
        c.close()
    return out


def test_mixed_events_under_failed_syncs(durod_factory, tmp_path, monkeypatch):
    print("seed", SEED)
    monkeypatch.setenv("DURO_FAULT_SYNC_EVERY", "5")
    d = durod_factory(test_classes=True)
    names = ["m%d" % i for i in range(8)]
    start = {n: 1 for n in names}
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        parts = list(ex.map(lambda k: client(d, names[2 * k:2 * k + 2], start, 30,
                                             random.Random(SEED + k)), range(4)))
    results = {}
    for p in parts:
        results.update(p)
    assert any(r[1] for r in results.values())
    for name, (acked, failed) in results.items():
        # no event was left unanswered: what is there is exactly what was acknowledged
        assert check_whole(d, name, acked, failed) == acked
    assert "cutting the record off" in d.logtext()
    assert d.stop() == 0
    monkeypatch.delenv("DURO_FAULT_SYNC_EVERY")
    d2 = conftest.start_on(tmp_path, "after", d.data_dir, test_classes=True)
    for name, (acked, failed) in results.items():
        assert check_whole(d2, name, acked, failed) == acked


def test_mixed_events_survive_sigkill_cycles(tmp_path):
    print("seed", SEED)
    rng = random.Random(SEED)
    data = str(tmp_path / "data")
    names = ["k%d" % i for i in range(6)]
    acked = {n: set() for n in names}
    failed = {n: set() for n in names}
    nxt = {n: 1 for n in names}
    for cycle in range(4):
        d = conftest.start_on(tmp_path, "c%d" % cycle, data, test_classes=True)
        # what the last cycle left: whole events only, every acknowledged one
        for name in names:
            got = check_whole(d, name, acked[name], failed[name])
            nxt[name] = max(got | acked[name] | failed[name] | {0}) + 1000
        stop = threading.Event()
        with concurrent.futures.ThreadPoolExecutor(3) as ex:
            futs = [ex.submit(client, d, names[2 * k:2 * k + 2], dict(nxt), 10000,
                              random.Random(rng.random()), stop) for k in range(3)]
            time.sleep(0.3 + rng.random() * 0.7)
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait()
            stop.set()
            for f in futs:
                for name, (a, fl) in f.result().items():
                    acked[name] |= a
                    failed[name] |= fl
    assert sum(len(a) for a in acked.values()) > 50
    d = conftest.start_on(tmp_path, "last", data, test_classes=True)
    for name in names:
        check_whole(d, name, acked[name], failed[name])
