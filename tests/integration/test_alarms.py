"""Alarms: fire once and clear, overwrite, delete, retries with backoff then drop, named
alarms, delete_all, survive restarts (also when due while down, and across a change of the
core count), fire for evicted objects, runaway re-arming throttled."""
import time

import requests

import conftest


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
    d = durod_factory(config={"alarms": {"retry_initial_ms": 150}})
    post(d, "r/fail?n=2")
    post(d, "r?in=50")
    t0 = time.time()
    s = wait_fired(d, "r", 1, timeout=5)
    # Two failures: retries after 150 ms and then 300 ms.
    assert s["retry"] == "2" and 0.4 < time.time() - t0 < 2.5
    assert s["alarm"] == "-1"


def test_dropped_after_max_retries(durod_factory):
    d = durod_factory(config={"alarms": {"retry_initial_ms": 50, "max_retries": 2}})
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
    d = durod_factory(config={"objects": {"evict_idle_ms": 50}})
    post(d, "ev?in=1500")
    time.sleep(0.2)  # evicted long before it is due
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
    d3 = conftest.Durod(sub, cores=1, extra_args=["--data-dir", d.data_dir])
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
