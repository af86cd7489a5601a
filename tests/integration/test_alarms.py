"""Alarms: fire once and clear, overwrite, delete, retries with backoff then drop, named
alarms, delete_all, survive restarts (also when due while down, and across a change of the
core count), fire for evicted objects, runaway re-arming throttled."""
import time

import pytest
import requests

import conftest

# Tests asking for `durod` share one per module (conftest.py): each uses objects of its own
# names.
SHARED_DUROD = True


def state(d, name):
    lines = requests.get(d.url + "/ticker/" + name).text.strip().split("\n")
    return {l.split(" ", 1)[0]: l.split(" ", 1)[1] if " " in l else "" for l in lines}


def wait_fired(d, name, n, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if int(state(d, name)["fired"]) >= n:
            return state(d, name)
        time.sleep(0.02)
    raise AssertionError("%s fired %s times, want %d" % (name, state(d, name)["fired"], n))


def post(d, path):
    r = requests.post(d.url + "/ticker/" + path)
    assert r.status_code == 200, r.text
    return r


def test_fires_once_and_clears(durod):
    post(durod, "a?in=200")
    assert state(durod, "a")["alarm"] != "-1"
    s = wait_fired(durod, "a", 1)
    assert s["alarm"] == "-1" and s["retry"] == "0" and s["name"] == "-"
    time.sleep(0.4)
    assert state(durod, "a")["fired"] == "1"


def test_past_fires_at_once_and_overwrite(durod):
    t0 = time.time()
    post(durod, "p?in=-5000")
    wait_fired(durod, "p", 1, timeout=1)
    assert time.time() - t0 < 1
    post(durod, "o?in=3000")
    post(durod, "o?in=100")  # one alarm per object: this replaces it
    wait_fired(durod, "o", 1, timeout=1.5)
    time.sleep(0.3)
    assert state(durod, "o")["fired"] == "1"


def test_delete(durod):
    post(durod, "del?in=300")
    assert requests.delete(durod.url + "/ticker/del").text.strip() == "1"
    assert requests.delete(durod.url + "/ticker/del").text.strip() == "0"
    time.sleep(0.6)
    assert state(durod, "del")["fired"] == "0"


def test_retry_with_backoff(durod_factory):
    d = durod_factory(config={"alarms": {"retry_initial_ms": 150}}, test_classes=True)
    post(d, "r/fail?n=2")
    post(d, "r?in=50")
    t0 = time.time()
    s = wait_fired(d, "r", 1, timeout=5)
    # Two failures: retries after 150 ms and then 300 ms.
    assert s["retry"] == "2" and 0.4 < time.time() - t0 < 2.5
    assert s["alarm"] == "-1"


def test_dropped_after_max_retries(durod_factory):
    d = durod_factory(config={"alarms": {"retry_initial_ms": 50, "max_retries": 2}},
                      test_classes=True)  # TestTicker: /fail?n=
    post(d, "x/fail?n=100")
    post(d, "x?in=10")
    end = time.time() + 5
    while time.time() < end and state(d, "x")["alarm"] != "-1":
        time.sleep(0.05)
    assert state(d, "x")["alarm"] == "-1" and state(d, "x")["fired"] == "0"
    assert "still failed after 2 retries: dropped" in d.logtext()


def test_named_alarms(durod):
    post(durod, "n?in=200&alarm=one")
    post(durod, "n?in=60000&alarm=two")
    assert state(durod, "n")["named"] == "one,two,"
    s = wait_fired(durod, "n", 1)
    assert s["name"] == "one" and s["named"] == "two,"
    assert requests.delete(durod.url + "/ticker/n?alarm=two").text.strip() == "1"
    for i in range(16):
        post(durod, "m?in=60000&alarm=a%02d" % i)
    r = requests.post(durod.url + "/ticker/m?in=60000&alarm=a16")
    assert r.status_code == 409
    post(durod, "m?in=50000&alarm=a05")  # re-setting an existing one is fine
    assert requests.post(durod.url + "/ticker/m?in=1&alarm=" + "n" * 65).status_code == 400


def test_delete_all_deletes_alarms(durod):
    post(durod, "w?in=300&alarm=k")
    post(durod, "w?in=300")
    assert requests.delete(durod.url + "/ticker/w/all").status_code == 200
    time.sleep(0.7)
    s = state(durod, "w")
    assert s["fired"] == "0" and s["alarm"] == "-1" and s["named"] == ""


def test_fires_for_evicted_objects(durod_factory):
    d = durod_factory()
    post(d, "ev?in=1500")
    d.evict("TICKER", "ev")  # out of memory (checked) long before it is due
    assert d.object_info("TICKER", "ev")["alarms"], "the alarm is stored"
    wait_fired(d, "ev", 1, timeout=4)


def test_survives_restart_and_core_count_change(durod_factory, tmp_path):
    d = durod_factory()
    names = ["s%02d" % i for i in range(20)]
    for n in names[:10]:
        post(d, n + "?in=1200")   # due after the restart
    for n in names[10:]:
        post(d, n + "?in=200")    # due while durod is down
    assert d.stop() == 0
    time.sleep(0.5)
    # Restart with one core instead of two: every alarm is this core's now.
    sub = tmp_path / "one"
    sub.mkdir()
    d3 = conftest.Durod(sub, cores=1, data_dir=d.data_dir)
    try:
        for n in names:
            wait_fired(d3, n, 1, timeout=5)
    finally:
        assert d3.stop() == 0


def test_runaway_rearm_throttled(durod_factory):
    d = durod_factory(config={"alarms": {"min_interval_ms": 100}})
    post(d, "run?in=1&every=1")  # tries to fire every millisecond
    time.sleep(1.0)
    fired = int(state(d, "run")["fired"])
    assert 3 <= fired <= 13, fired
    assert "throttled" in d.logtext()
    requests.delete(d.url + "/ticker/run/all")


@pytest.mark.own_durod  # timing on an idle durod
def test_firing_accuracy_when_idle(durod):
    lates = []
    for i in range(5):
        post(durod, "acc%d?in=%d" % (i, 150 + 50 * i))
    for i in range(5):
        lates.append(int(wait_fired(durod, "acc%d" % i, 1)["late"]))
    assert all(0 <= l <= 50 for l in lates), lates


def test_restart_after_sigkill_with_pending_and_overdue(durod_factory, tmp_path):
    import signal
    d = durod_factory()
    for i in range(10):
        post(d, "k%d?in=%d" % (i, 300 if i < 5 else 1500))
    time.sleep(0.1)  # the sets are durable (answered after their commit)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    time.sleep(0.5)  # the first five came due while down
    d2 = conftest.start_on(tmp_path, "again", d.data_dir)
    try:
        for i in range(10):
            wait_fired(d2, "k%d" % i, 1, timeout=5)
        time.sleep(0.3)
        assert all(state(d2, "k%d" % i)["fired"] == "1" for i in range(10))
    finally:
        assert d2.stop() == 0


def test_100k_alarms_fire_once_each(durod_factory):
    # 100,000 alarms over as many objects, set through pipelined connections; every one
    # fires, none twice.
    from conftest import read_responses
    d = durod_factory(config={"objects": {"evict_idle_ms": 2000}})
    n, conns, depth = 100000, 8, 200
    socks = [d.connect(timeout=60) for _ in range(conns)]

    def run(reqs_for):
        for start in range(0, n, conns * depth):
            sizes = []
            for ci, s in enumerate(socks):
                batch = range(start + ci * depth, min(start + (ci + 1) * depth, n))
                s.sendall(b"".join(reqs_for(i) for i in batch))
                sizes.append(len(batch))
            out = []
            for s, size in zip(socks, sizes):
                out += read_responses(s, size, timeout=60)
            yield out

    t0 = time.time()
    for out in run(lambda i: b"POST /ticker/h%d?in=%d HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
                   % (i, 2000 + i % 2000)):
        assert all(st == 200 for st, _, _ in out)
    set_secs = time.time() - t0
    time.sleep(max(0.5, 4.5 - set_secs))
    fired = {}
    for attempt in range(20):
        fired = {}
        for out in run(lambda i: b"GET /ticker/h%d HTTP/1.1\r\nHost: t\r\n\r\n" % i):
            for _, _, body in out:
                c = int(body.split(b"\n")[0].split()[1])
                fired[c] = fired.get(c, 0) + 1
        if fired.get(1, 0) == n:
            break
        time.sleep(1)
    assert fired == {1: n}, fired
    for s in socks:
        s.close()
