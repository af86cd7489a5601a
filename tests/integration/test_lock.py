"""Lock: fencing tokens, 409 while held, release with stale-token refusal, expiry by alarm,
waiters granted in order the moment the lease frees, waits that time out."""
import concurrent.futures
import time

import requests

from conftest import wait_until

# Tests asking for `durod` share one per module (conftest.py): each uses objects of its own
# names.
SHARED_DUROD = True


def acquire(d, name, owner, ttl=2000, wait=None):
    q = "ttl=%d&owner=%s" % (ttl, owner) + ("&wait=%d" % wait if wait is not None else "")
    return requests.post(d.url + "/lock/%s/acquire?%s" % (name, q), timeout=10)


def test_acquire_release_tokens_increase(durod):
    r = acquire(durod, "l1", "a")
    assert r.status_code == 200
    t1 = r.json()["token"]
    held = acquire(durod, "l1", "b")
    assert held.status_code == 409 and held.json()["owner"] == "a"
    assert requests.post(durod.url + "/lock/l1/release?token=%d" % (t1 + 5)).status_code == 409
    assert requests.post(durod.url + "/lock/l1/release?token=%d" % t1).status_code == 200
    r = acquire(durod, "l1", "b")
    assert r.status_code == 200 and r.json()["token"] > t1
    st = requests.get(durod.url + "/lock/l1").json()
    assert st["holder"] == "b" and st["token"] == r.json()["token"]
    # The old holder's token is stale now.
    assert requests.post(durod.url + "/lock/l1/release?token=%d" % t1).status_code == 409


def test_lease_expires_by_alarm(durod):
    assert acquire(durod, "l2", "crashed", ttl=300).status_code == 200
    wait_until(lambda: requests.get(durod.url + "/lock/l2").json()["holder"] is None, 5,
               what="the lease to expire")
    assert acquire(durod, "l2", "next").status_code == 200


def test_waiters_granted_in_order(durod):
    first = acquire(durod, "l3", "holder", ttl=5000).json()["token"]
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        futs = []
        for name in ("w1", "w2"):
            futs.append(ex.submit(acquire, durod, "l3", name, 5000, 5000))
            # queued (a held response of the object) before the next one asks
            n = len(futs)
            wait_until(lambda: durod.object_info("LOCK", "l3")["deferred"] == n, 5,
                       what="%s to queue" % name)
        t0 = time.time()
        requests.post(durod.url + "/lock/l3/release?token=%d" % first)
        r1 = futs[0].result()
        assert r1.status_code == 200 and r1.json()["owner"] == "w1"
        assert time.time() - t0 < 1.0  # granted at once, not at a poll
        assert not futs[1].done()
        requests.post(durod.url + "/lock/l3/release?token=%d" % r1.json()["token"])
        r2 = futs[1].result()
        assert r2.status_code == 200 and r2.json()["owner"] == "w2"
        assert r2.json()["token"] == r1.json()["token"] + 1


def test_waiter_gets_lease_when_it_expires(durod):
    assert acquire(durod, "l4", "gone", ttl=400).status_code == 200
    t0 = time.time()
    r = acquire(durod, "l4", "patient", ttl=1000, wait=3000)
    assert r.status_code == 200 and r.json()["owner"] == "patient"
    assert 0.2 < time.time() - t0 < 2.0


def test_wait_times_out(durod):
    assert acquire(durod, "l5", "busy", ttl=10000).status_code == 200
    t0 = time.time()
    r = acquire(durod, "l5", "impatient", wait=300)
    assert r.status_code == 409 and 0.2 < time.time() - t0 < 2.0


def test_bad_requests(durod):
    for q in ["ttl=0&owner=a", "ttl=100", "ttl=100&owner=a%20b", "ttl=100&owner=" + "o" * 65, "ttl=x&owner=a"]:
        assert requests.post(durod.url + "/lock/l6/acquire?" + q).status_code == 400, q


def test_contention_from_many_clients(durod):
    # 16 clients each take the lock 5 times (waiting), hold it briefly, release: every
    # grant has its own token, tokens only grow, and no two holders overlap.
    import threading
    spans, lock = [], threading.Lock()

    def client(k):
        for _ in range(5):
            r = acquire(durod, "busy", "c%d" % k, ttl=5000, wait=8000)
            assert r.status_code == 200, r.text
            tok = r.json()["token"]
            t_in = time.time()
            time.sleep(0.005)
            t_out = time.time()
            assert requests.post(durod.url + "/lock/busy/release?token=%d" % tok).status_code == 200
            with lock:
                spans.append((tok, t_in, t_out))

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(client, range(16)))
    spans.sort()
    toks = [t for t, _, _ in spans]
    assert len(set(toks)) == 80 and toks == sorted(toks)
    for (_, _, out1), (_, in2, _) in zip(spans, spans[1:]):
        assert in2 >= out1 - 0.001  # the next holder got it after the previous let go


def test_grant_waits_for_its_token_to_be_durable(durod_factory, monkeypatch):
    """A waiter granted the lease by another request's event hears so only once the token
    written in that event is durable: when that commit fails, the grant is not made (its
    answer is an error) and the token is never handed out twice. A held response answered
    during an event used to leave at once, before the event's writes were even in a batch.
    On one core, every third commit sync fails: the first holder's grant, the waiter's
    queueing, then the release that grants the waiter."""
    monkeypatch.setenv("DURO_FAULT_SYNC_EVERY", "3")
    d = durod_factory(cores=1)
    first = acquire(d, "l7", "a", ttl=60000)
    assert first.status_code == 200
    t1 = first.json()["token"]
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        waiter = ex.submit(acquire, d, "l7", "b", 60000, 30000)
        wait_until(lambda: d.object_info("LOCK", "l7")["deferred"] == 1, 5, what="b to queue")
        released = requests.post(d.url + "/lock/l7/release?token=%d" % t1, timeout=10)
        granted = waiter.result()
    assert released.status_code == 500, released.text  # its commit failed
    if granted.status_code == 200:
        # Then the token must be the waiter's for good: nobody else gets it.
        st = requests.get(d.url + "/lock/l7").json()
        assert st["token"] >= granted.json()["token"], (granted.text, st)
    assert granted.status_code == 500, granted.text
