"""Durable storage through real requests: the API's semantics (KV class), persistence
across clean restarts and SIGKILL, rollback of failed events, and failed syncs."""
import concurrent.futures
import http.client
import os
import random
import signal
import threading
import time

import pytest
import requests

import conftest

# Tests asking for `durod` share one per module (conftest.py): each uses objects of its own
# names.
SHARED_DUROD = True


def kv(d, name="t"):
    return d.url + "/kv/" + name


def test_put_get_delete(durod):
    u = kv(durod)
    assert requests.get(u + "/k/a").status_code == 404
    assert requests.put(u + "/k/a", data=b"1").status_code == 204
    assert requests.get(u + "/k/a").content == b"1"
    assert requests.put(u + "/k/a", data=b"\x00\xffbinary").status_code == 204
    assert requests.get(u + "/k/a").content == b"\x00\xffbinary"
    assert requests.delete(u + "/k/a").text == "1"
    assert requests.delete(u + "/k/a").text == "0"
    assert requests.get(u + "/k/a").status_code == 404


def test_objects_are_isolated(durod):
    requests.put(kv(durod, "x") + "/k/same", data=b"x")
    requests.put(kv(durod, "y") + "/k/same", data=b"y")
    assert requests.get(kv(durod, "x") + "/k/same").text == "x"
    assert requests.get(kv(durod, "y") + "/k/same").text == "y"


def lines(r):
    return [l for l in r.text.split("\n") if l]


def test_list_order_bounds_prefix_reverse_paging(durod):
    u = kv(durod, "list")
    keys = ["a", "b", "ba", "bb", "bz", "c", "d"]
    body = "\n".join("put %s v%s" % (k, k) for k in keys)
    assert requests.post(u + "/batch", data=body).status_code == 200
    assert lines(requests.get(u + "/list")) == ["%s=v%s" % (k, k) for k in keys]
    assert lines(requests.get(u + "/list?prefix=b")) == ["b=vb", "ba=vba", "bb=vbb", "bz=vbz"]
    assert lines(requests.get(u + "/list?start=bb&end=d")) == ["bb=vbb", "bz=vbz", "c=vc"]
    assert lines(requests.get(u + "/list?start_after=bb&limit=2")) == ["bz=vbz", "c=vc"]
    assert lines(requests.get(u + "/list?reverse=1&limit=3")) == ["d=vd", "c=vc", "bz=vbz"]
    assert lines(requests.get(u + "/list?prefix=b&reverse=1")) == ["bz=vbz", "bb=vbb", "ba=vba", "b=vb"]
    # Paging with start_after visits every key once.
    seen, after = [], None
    while True:
        q = "/list?limit=2" + ("&start_after=" + after if after else "")
        page = lines(requests.get(u + q))
        if not page:
            break
        seen += page
        after = page[-1].split("=")[0]
    assert [s.split("=")[0] for s in seen] == keys


def test_list_sees_writes_in_the_same_event(durod):
    u = kv(durod, "rw")
    r = requests.post(u + "/batch", data="put k1 a\nput k2 b\nget k1\ndel k1\nget k1\nput k1 c\nget k1")
    assert r.status_code == 200 and r.text == "a\n1\n-\nc\n"
    assert lines(requests.get(u + "/list")) == ["k1=c", "k2=b"]


def test_failed_event_rolls_back_everything(durod_factory):
    u = kv(durod_factory(test_classes=True), "rb")  # TestKV: "fail" fails the event
    requests.put(u + "/k/keep", data=b"old")
    r = requests.post(u + "/batch", data="put keep new\nput extra x\nfail")
    assert r.status_code == 500
    assert requests.get(u + "/k/keep").text == "old"
    assert requests.get(u + "/k/extra").status_code == 404
    assert lines(requests.get(u + "/list")) == ["keep=old"]


def test_size_accounting_survives_rollbacks(durod_factory):
    # The size limit is enforced from the tracked size: failed events and rollbacks right
    # after activation must not reset it.
    d = durod_factory(config={"storage": {"max_object_bytes": 3000}, "objects": {"evict_idle_ms": 100}},
                      test_classes=True)
    u = kv(d, "acct")
    assert requests.put(u + "/k/a", data=b"x" * 1990).status_code == 204
    d.wait_evicted("KV", "acct")  # the next event loads the size record afresh
    assert requests.post(u + "/batch", data="put b y\nfail").status_code == 500
    assert requests.post(u + "/batch", data="begin\nput c z\nrollback").status_code == 200
    assert requests.put(u + "/k/big", data=b"x" * 1500).status_code == 507  # 1991 + 1503 > 3000
    assert requests.put(u + "/k/small", data=b"x" * 500).status_code == 204


def test_explicit_transactions_nest(durod):
    u = kv(durod, "tx")
    body = "put a 1\nbegin\nput a 2\nput b 2\nbegin\nput c 3\ncommit\nrollback\nbegin\nput d 4\ncommit\nget a"
    r = requests.post(u + "/batch", data=body)
    assert r.status_code == 200 and r.text == "1\n"
    assert lines(requests.get(u + "/list")) == ["a=1", "d=4"]
    assert requests.post(u + "/batch", data="rollback").status_code == 400


def test_batch_with_a_bad_line_writes_nothing(durod):
    # All or nothing: a line refused with 400 undoes the lines before it, open begins too.
    u = kv(durod, "allornothing")
    assert requests.put(u + "/k/a", data="old").status_code == 204
    for body in ("put a new\nput b 1\nbogus", "begin\nput a new\nput b 1\nrollback\nrollback",
                 "put b 1\nbegin\nput a new\nnot-an-op x", "put b 1\ncommit"):
        r = requests.post(u + "/batch", data=body)
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert lines(requests.get(u + "/list")) == ["a=old"], body
    r = requests.post(u + "/batch", data="begin\nput b 1\ncommit\nput c 2")
    assert r.status_code == 200
    assert lines(requests.get(u + "/list")) == ["a=old", "b=1", "c=2"]


def test_multi_key_calls_and_their_limit(durod):
    u = kv(durod, "multi")
    keys = ["m%03d" % i for i in range(128)]
    put = "mput " + " ".join("%s v%s" % (k, k) for k in keys)
    assert requests.post(u + "/batch", data=put).status_code == 200
    r = requests.post(u + "/batch", data="mget " + " ".join(keys[:3] + ["absent"]))
    assert r.text == "vm000\nvm001\nvm002\n-\n"
    over = ["x%03d" % i for i in range(129)]
    assert requests.post(u + "/batch", data="mput " + " ".join("%s v" % k for k in over)).status_code == 400
    assert requests.post(u + "/batch", data="mget " + " ".join(over)).status_code == 400
    assert requests.post(u + "/batch", data="mdel " + " ".join(over)).status_code == 400
    assert requests.get(u + "/k/x000").status_code == 404  # the refused mput wrote nothing
    assert requests.post(u + "/batch", data="mdel m000 m001 nope").text == "2\n"
    assert len(lines(requests.get(u + "/list"))) == 126


def test_delete_all(durod):
    u = kv(durod, "wipe")
    requests.post(u + "/batch", data="\n".join("put k%03d v" % i for i in range(50)))
    assert requests.delete(u + "/all").status_code == 204
    assert lines(requests.get(u + "/list")) == []
    assert requests.get(u + "/k/k001").status_code == 404
    requests.put(u + "/k/new", data=b"n")
    assert lines(requests.get(u + "/list")) == ["new=n"]


def test_limits(durod_factory):
    d = durod_factory(config={"storage": {"max_key_bytes": 16, "max_value_bytes": 1000,
                                          "max_object_bytes": 4500}})
    u = kv(d, "lim")
    assert requests.put(u + "/k/" + "k" * 16, data=b"v").status_code == 204
    assert requests.put(u + "/k/" + "k" * 17, data=b"v").status_code == 400
    assert requests.put(u + "/k/big", data=b"v" * 1001).status_code == 413
    for i in range(4):
        assert requests.put(u + "/k/f%d" % i, data=b"v" * 990).status_code == 204
    assert requests.put(u + "/k/f9", data=b"v" * 990).status_code == 507  # object full
    assert requests.delete(u + "/k/f0").text == "1"  # freeing space lets writes in again
    assert requests.put(u + "/k/f9", data=b"v" * 990).status_code == 204
    many = "\n".join("get k%d" % i for i in range(200))
    assert requests.post(u + "/batch", data=many).status_code == 200  # single gets, no limit


def test_tiny_cache_stays_correct(durod_factory):
    # With no cache budget every clean entry is dropped as soon as possible: reads and
    # listings must then come from RocksDB and still see every write, including unapplied ones.
    d = durod_factory(config={"storage": {"cache_bytes_per_core": 0}})
    u = kv(d, "tiny")
    for i in range(30):
        assert requests.put(u + "/k/t%02d" % i, data=b"v%d" % i).status_code == 204
    for i in range(0, 30, 3):
        assert requests.delete(u + "/k/t%02d" % i).text == "1"
    for i in range(30):
        r = requests.get(u + "/k/t%02d" % i)
        assert r.status_code == (404 if i % 3 == 0 else 200)
    assert len(lines(requests.get(u + "/list"))) == 20
    for i in range(50):
        requests.post(d.url + "/counter/tiny")
    assert requests.get(d.url + "/counter/tiny").text == "50"


def test_data_survives_restart_and_eviction(durod_factory, tmp_path):
    d = durod_factory(config={"objects": {"evict_idle_ms": 200}})
    for i in range(20):
        requests.post(d.url + "/counter/persist")
    requests.put(kv(d, "p") + "/k/x", data=b"kept")
    d.wait_evicted("COUNTER", "persist")  # the next read comes from RocksDB
    assert requests.get(d.url + "/counter/persist").text == "20"
    assert d.stop() == 0
    assert os.listdir(os.path.join(d.data_dir, "commit-log")) == []  # flushed on shutdown
    d2 = conftest.start_on(tmp_path, "again", d.data_dir)
    try:
        assert requests.get(d2.url + "/counter/persist").text == "20"
        assert requests.get(kv(d2, "p") + "/k/x").text == "kept"
    finally:
        assert d2.stop() == 0


def run_counters(d, names, stop, acked, lock, seed):
    """Increments random counters until stop; records each acknowledged value."""
    c = http.client.HTTPConnection(d.host, d.port, timeout=5)
    rnd = random.Random(seed)
    while not stop.is_set():
        n = rnd.choice(names)
        try:
            c.request("POST", "/counter/" + n)
            r = c.getresponse()
            body = r.read()
        except (OSError, http.client.HTTPException):
            return
        if r.status == 200:
            with lock:
                acked[n] = max(acked.get(n, 0), int(body))


# Commit logs with direct I/O (the default; the test data is on a disk file system) and
# buffered with fdatasync, each named in the log at start.
LOG_MODES = {"direct": (None, "commit log with O_DIRECT and RWF_DSYNC"),
             "buffered": ({"storage": {"log_direct_io": False}}, "commit log with buffered writes and fdatasync")}


def fs_type(path):
    """The file system type of the mount holding path (from /proc/mounts)."""
    path, best, kind = os.path.realpath(path), "", ""
    with open("/proc/mounts") as f:
        for line in f:
            mnt, typ = line.split()[1:3]
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, kind = mnt, typ
    return kind


def wait_log(d, text, timeout=5.0):
    """The cores log their commit-log mode as they start, maybe after the port opened."""
    end = time.time() + timeout
    while text not in d.logtext() and time.time() < end:
        time.sleep(0.05)
    return text in d.logtext()


def log_mode(mode, tmp_path):
    if mode == "direct" and fs_type(tmp_path) == "tmpfs":
        pytest.skip("the test directory is on a tmpfs, which offers no direct I/O")
    return LOG_MODES[mode]


@pytest.mark.parametrize("mode", LOG_MODES)
def test_sigkill_loses_no_acknowledged_increment(durod_factory, tmp_path, mode):
    config, banner = log_mode(mode, tmp_path)
    names = ["c%d" % i for i in range(16)]
    acked, lock = {}, threading.Lock()
    data_dir = tmp_path / "data"
    seed = conftest.test_seed()
    rnd = random.Random(seed)
    for cycle in range(4):
        d = conftest.start_on(tmp_path, "cycle%d" % cycle, data_dir, config=config)
        assert wait_log(d, banner)
        # Everything acknowledged before is there; nothing was invented.
        for n in names:
            v = int(requests.get(d.url + "/counter/" + n).text)
            assert v >= acked.get(n, 0), (n, v, acked.get(n), seed)
            assert v <= acked.get(n, 0) + 8, (n, v, acked.get(n), seed)  # one in flight per client
        stop = threading.Event()
        threads = [threading.Thread(target=run_counters,
                                    args=(d, names, stop, acked, lock, rnd.randrange(1 << 32)))
                   for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.3 + rnd.random())
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        stop.set()
        for t in threads:
            t.join()
    assert sum(acked.values()) > 100


@pytest.mark.parametrize("mode", LOG_MODES)
def test_failed_syncs_are_never_acknowledged(durod_factory, tmp_path, monkeypatch, mode):
    config, banner = log_mode(mode, tmp_path)
    monkeypatch.setenv("DURO_FAULT_SYNC_EVERY", "7")
    d = durod_factory(config=config)
    assert wait_log(d, banner)
    statuses = []
    last_ok = 0
    for i in range(60):
        r = requests.post(d.url + "/counter/flaky")
        statuses.append(r.status_code)
        if r.status_code == 200:
            v = int(r.text)
            assert v == last_ok + 1  # a failed write is never counted by a later answer
            last_ok = v
    assert 500 in statuses and 200 in statuses
    assert int(requests.get(d.url + "/counter/flaky").text) == last_ok
    assert "commit log" in d.logtext() and "cutting the record off" in d.logtext()
    assert d.stop() == 0
    # After a restart, still exactly what was acknowledged: cut records never replay.
    monkeypatch.delenv("DURO_FAULT_SYNC_EVERY")
    d2 = conftest.start_on(tmp_path, "after", d.data_dir, config=config)
    try:
        assert int(requests.get(d2.url + "/counter/flaky").text) == last_ok
    finally:
        assert d2.stop() == 0


def test_failed_syncs_under_concurrency(durod_factory, tmp_path, monkeypatch):
    # Many clients at once keep two commits in flight per core: a failed one voids the one
    # behind it too. Every client still sees its own counter go up by exactly one per 200.
    monkeypatch.setenv("DURO_FAULT_SYNC_EVERY", "5")
    d = durod_factory()
    results = {}

    def client(k):
        c = http.client.HTTPConnection(d.host, d.port, timeout=10)
        last, codes = 0, []
        for _ in range(120):
            c.request("POST", "/counter/conc%d" % k)
            r = c.getresponse()
            body = r.read()
            codes.append(r.status)
            if r.status == 200:
                assert int(body) == last + 1, (k, int(body), last)
                last = int(body)
        results[k] = (last, codes)

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(client, range(16)))
    assert any(500 in codes for _, codes in results.values())
    assert d.stop() == 0
    monkeypatch.delenv("DURO_FAULT_SYNC_EVERY")
    d2 = conftest.start_on(tmp_path, "after", d.data_dir)
    try:
        for k, (last, _) in results.items():
            assert int(requests.get(d2.url + "/counter/conc%d" % k).text) == last
    finally:
        assert d2.stop() == 0


def wait_for_sync(u, timeout=5.0):
    import time
    end = time.time() + timeout
    while time.time() < end:
        r = requests.get(u + "/synced")
        if r.status_code == 200:
            return r.text
        time.sleep(0.02)
    raise AssertionError("no sync outcome")


def test_sync_reports_durability(durod_factory):
    durod = durod_factory(test_classes=True)  # TestKV: the "sync" line and /synced
    u = kv(durod, "sy")
    assert requests.post(u + "/batch", data="put a 1\nsync").status_code == 200
    assert wait_for_sync(u) == "0"
    assert requests.get(u + "/k/a").text == "1"
    # A sync with nothing pending hears at once (next loop turn), on another object too.
    u2 = kv(durod, "sy2")
    assert requests.post(u2 + "/batch", data="sync").status_code == 200
    assert wait_for_sync(u2) == "0"


def test_sync_reports_failure(durod_factory, monkeypatch):
    monkeypatch.setenv("DURO_FAULT_SYNC_EVERY", "2")
    d = durod_factory(test_classes=True)
    outcomes = set()
    for i in range(8):
        u = kv(d, "syf%d" % i)
        requests.post(u + "/batch", data="put x %d\nsync" % i)
        outcomes.add(wait_for_sync(u))
    # -EIO: the write never became durable (the object was reset and heard it afresh).
    assert outcomes == {"0", "-5"}


def model_list(model, prefix=None, start=None, start_after=None, end=None, reverse=False, limit=0):
    keys = sorted(k for k in model if (prefix is None or k.startswith(prefix))
                  and (start is None or k >= start) and (start_after is None or k > start_after)
                  and (end is None or k < end))
    if reverse:
        keys.reverse()
    if limit:
        keys = keys[:limit]
    return ["%s=%s" % (k, model[k]) for k in keys]


def test_oracle_random_operations(durod_factory, tmp_path):
    # Seeded random events against a dict: puts, deletes, failed events (rolled back),
    # nested transactions, delete_all, listings with every option; with no read cache,
    # idle eviction, and a restart halfway.
    seed = conftest.test_seed()
    rnd = random.Random(seed)
    config = {"storage": {"cache_bytes_per_core": 0}, "objects": {"evict_idle_ms": 50}}
    d = durod_factory(config=config, test_classes=True)  # TestKV: "fail"
    u = kv(d, "oracle")
    model = {}
    keys = ["k%02d" % i for i in range(40)] + ["a", "ab", "abc", "b"]
    restarted = None
    for step in range(220):
        if step == 110:
            assert d.stop() == 0
            d = restarted = conftest.start_on(tmp_path, "restart", d.data_dir, config=config,
                                              test_classes=True)
            u = kv(d, "oracle")
        lines_, staged, stack = [], dict(model), []
        for _ in range(rnd.randint(1, 8)):
            op = rnd.random()
            k = rnd.choice(keys)
            if op < 0.45:
                v = "v%d" % rnd.randint(0, 999)
                lines_.append("put %s %s" % (k, v))
                staged[k] = v
            elif op < 0.7:
                lines_.append("del %s" % k)
                staged.pop(k, None)
            elif op < 0.8:
                lines_.append("begin")
                stack.append(dict(staged))
            elif op < 0.9 and stack:
                if rnd.random() < 0.5:
                    lines_.append("rollback")
                    staged = stack.pop()
                else:
                    lines_.append("commit")
                    stack.pop()
            elif op < 0.92:
                lines_.append("mdel " + " ".join(rnd.sample(keys, 3)))
                for kk in lines_[-1].split()[1:]:
                    staged.pop(kk, None)
        failing = rnd.random() < 0.15
        if failing:
            lines_.append("fail")
        r = requests.post(u + "/batch", data="\n".join(lines_))
        if failing:
            assert r.status_code == 500
        else:
            assert r.status_code == 200, (lines_, r.text, seed)
            model = staged
        if rnd.random() < 0.05:
            assert requests.delete(u + "/all").status_code == 204
            model = {}
        if rnd.random() < 0.1:
            d.evict("KV", "oracle")  # the next event reads everything from storage
        if step % 5 == 0:
            q = {}
            if rnd.random() < 0.3:
                q["prefix"] = rnd.choice(["k0", "k1", "a", "ab", "z"])
            if rnd.random() < 0.3:
                q["start" if rnd.random() < 0.5 else "start_after"] = rnd.choice(keys)
            if rnd.random() < 0.3:
                q["end"] = rnd.choice(keys)
            if rnd.random() < 0.3:
                q["reverse"] = True
            if rnd.random() < 0.3:
                q["limit"] = rnd.randint(1, 10)
            url = u + "/list?" + "&".join("%s=%s" % (a, "1" if b is True else b) for a, b in q.items())
            assert lines(requests.get(url)) == model_list(model, **q), (step, q, seed)
            k = rnd.choice(keys)
            r = requests.get(u + "/k/" + k)
            assert (r.status_code, r.text if r.status_code == 200 else None) == \
                ((200, model[k]) if k in model else (404, None)), (step, k, seed)
    assert restarted.stop() == 0


def test_reserved_keys_refused(durod):
    # Keys starting with 0xFF 0xFF are duro's own (alarms live there): classes get -EINVAL.
    u = kv(durod, "res")
    assert requests.post(u + "/batch", data=b"put \xff\xffalarm/x v").status_code == 400
    assert requests.post(u + "/batch", data=b"get \xff\xffx").status_code == 400
    assert requests.post(u + "/batch", data=b"put \xffok v").status_code == 200  # one 0xFF is fine
