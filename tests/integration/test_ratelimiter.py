"""RateLimiter: a persisted token bucket per key, 429 with Retry-After when empty."""
import time

import requests

import conftest
from conftest import wait_until

# Tests asking for `durod` share one per module (conftest.py): each uses objects of its own
# names.
SHARED_DUROD = True


def test_burst_then_429_then_refill(durod):
    u = durod.url + "/limit/user1?rate=2&burst=3"
    assert [requests.post(u).status_code for _ in range(3)] == [200, 200, 200]
    r = requests.post(u)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    # 2 tokens per second: one comes back within half a second, and taking it empties the
    # bucket again. A try where the two posts were more than 0.4 s apart (a stalled
    # machine could have refilled a second token) is repeated, not judged.
    for _ in range(5):
        t = wait_until(lambda: requests.post(u).status_code == 200 and time.time(), 3,
                       what="a token to come back")
        code = requests.post(u).status_code
        if time.time() - t < 0.4:
            break
    assert code == 429
    # Keys are independent objects.
    assert requests.post(durod.url + "/limit/user2?rate=2&burst=3").status_code == 200


def test_bad_parameters(durod):
    for q in ["rate=0", "rate=x", "burst=0", "rate=", "burst=1e99"]:
        assert requests.post(durod.url + "/limit/k?" + q).status_code == 400, q
    assert requests.delete(durod.url + "/limit/k").status_code == 405


def test_bucket_persists_across_restart(durod_factory, tmp_path):
    d = durod_factory()
    u = "/limit/persist?rate=0.01&burst=2"  # one token per 100 s: no refill during the test
    assert [requests.post(d.url + u).status_code for _ in range(3)] == [200, 200, 429]
    assert d.stop() == 0
    d2 = conftest.start_on(tmp_path, "again", d.data_dir)
    try:
        r = requests.post(d2.url + u)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 90
    finally:
        assert d2.stop() == 0


def test_defaults_from_binding_vars(durod_factory):
    d = durod_factory(config={
        "durable_objects": {"bindings": [{"name": "API", "class_name": "RateLimiter",
                                          "vars": {"rate": 0.01, "burst": 2}}]},
        "routes": [{"prefix": "/api-limit/", "binding": "API"}]})
    u = d.url + "/api-limit/client7"
    assert [requests.post(u).status_code for _ in range(3)] == [200, 200, 429]
    # the query string wins: at 1000/s a token is back within a millisecond or two
    wait_until(lambda: requests.post(u + "?rate=1000").status_code == 200, 2,
               what="a token at the query's rate")


def test_bad_vars_refused(tmp_path):
    import json
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"durable_objects": {"bindings": [
        {"name": "A", "class_name": "RateLimiter", "vars": {"rate": [1]}}]}}))
    r = conftest.run_durod(["--check-config", str(p)])
    assert r.returncode == 2 and "durable_objects.bindings[0].vars.rate: want a string, number or boolean" in r.stderr
