"""Cluster mode, part 2 (issue 19), first stage: each slot's voters (its owner and
cluster.replicas followers) in the etcd slot table, chosen by the rebalancer; too few live
boxes for K is refused with a message naming the keys unless cluster.allow_fewer_copies;
a dead owner's slots go to a live voter and keep their voters. Three etcd members and
durods on loopback, with test_cluster.py's harness."""
import base64
import http.client
import json
import os
import signal
import threading
import time
import urllib.request

import pytest

from conftest import DUROD_TEST, wait_port, wait_until
from test_cluster import (ETCD, TTL_MS, Box, EtcdCluster, owner_of, settled,  # noqa: F401
                          slots_by_box)

pytestmark = [
    pytest.mark.skipif(not ETCD and os.environ.get("CI") != "true",
                       reason="etcd-server is not installed (scripts/setup.sh installs it with DURO_TEST_DEPS=1)"),
    pytest.mark.uring_only("cluster mode runs on loopback; the dpdk backend adds nothing here"),
]


def b64(s):
    return base64.b64encode(s.encode()).decode()


def etcd_slots(etcd, cluster):
    """{slot number: its value as a dict} read from etcd's JSON gateway."""
    prefix = "/duro/%s/slots/" % cluster
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    body = json.dumps({"key": b64(prefix), "range_end": b64(end)}).encode()
    req = urllib.request.Request(etcd.urls[0] + "/v3/kv/range", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        out = json.loads(r.read())
    slots = {}
    for kv in out.get("kvs", []):
        key = base64.b64decode(kv["key"]).decode()
        slots[int(key[len(prefix):])] = json.loads(base64.b64decode(kv["value"]))
    return slots


@pytest.fixture(scope="module")
def etcd():
    e = EtcdCluster(3)
    try:
        e.start_all()
        yield e
    finally:
        e.close()


def start(boxes):
    """Together, so all are members before the rebalancer's first round."""
    for b in boxes:
        b.start(wait=False)
    for b in boxes:
        wait_port(b.port, b.proc, timeout=30)


def start_settled(boxes):
    """Started together, then every slot assigned over all of them."""
    start(boxes)
    wait_until(lambda: settled(boxes, [b.name for b in boxes]), timeout=40, interval=0.3,
               what="all slots assigned over %d boxes" % len(boxes))


def test_too_few_boxes_for_replicas_refused_then_assigned_with_voters(etcd):
    """Two boxes with the default cluster.replicas (2) assign nothing and say why (log,
    status, 503 to requests); a third box lets the rebalancer assign every slot with three
    distinct voters, the owner first, and no slot is under-replicated."""
    boxes = [Box("k%d" % i, etcd.urls, extra={"name": "k"}) for i in range(3)]
    try:
        start(boxes[:2])
        words = "cluster.replicas is 2, so a slot needs 3 live boxes and 2 are live"
        wait_until(lambda: any(words in b.log() for b in boxes[:2]), timeout=30, interval=0.3,
                   what="the rebalancer to refuse with a clear message")
        rebalancer = [b for b in boxes[:2] if words in b.log()][0]
        # the status text is rebuilt at least every 500 ms
        st = wait_until(lambda: (lambda s: s if s["replication"]["refused"] else None)(
            rebalancer.cluster_status()), timeout=5, interval=0.2, what="status to say why")
        assert st["unowned"] == 4096, st
        assert words in st["replication"]["refused"]
        assert "cluster.allow_fewer_copies" in st["replication"]["refused"]
        assert st["replication"]["replicas"] == 2
        status, _, text = boxes[0].get("/counter/refused")
        assert status == 503, (status, text)
        assert "set cluster.allow_fewer_copies" in rebalancer.ctl("cluster", "status").stdout
        start(boxes[2:])
        wait_until(lambda: settled(boxes, ["k0", "k1", "k2"]), timeout=40, interval=0.3,
                   what="all slots assigned once three boxes are live")
        slots = etcd_slots(etcd, "k")
        assert len(slots) == 4096
        for n, v in slots.items():
            assert v["voters"][0] == v["owner"], (n, v)
            assert sorted(v["voters"]) == ["k0", "k1", "k2"], (n, v)
        st = boxes[0].cluster_status()
        assert st["replication"]["under_replicated"] == 0, st["replication"]
        assert st["replication"]["refused"] == ""
        assert "enough live boxes for cluster.replicas again" in rebalancer.log()
        assert boxes[1].get("/counter/refused")[0] == 200
    finally:
        for b in boxes:
            b.close()


def test_allow_fewer_copies_assigns_with_the_boxes_there_are(etcd):
    """One box, cluster.replicas 2 and cluster.allow_fewer_copies: every slot is its own,
    with itself as the only voter, and status counts them all under-replicated."""
    box = Box("solo", etcd.urls, extra={"name": "one", "allow_fewer_copies": True,
                                         "settle_ms": 0})
    try:
        start([box])
        wait_until(lambda: settled([box], ["solo"]), timeout=30, interval=0.3,
                   what="the box to own every slot")
        slots = etcd_slots(etcd, "one")
        assert all(v["voters"] == ["solo"] for v in slots.values())
        st = box.cluster_status()
        assert st["replication"]["under_replicated"] == 4096
        assert st["replication"]["allow_fewer_copies"] is True
        assert box.get("/counter/x?inc=1")[0] == 200
    finally:
        box.close()


def test_dead_owner_slots_go_to_a_live_voter_and_keep_their_voters(etcd):
    """Four boxes, cluster.replicas 1: each slot has two voters. Kill one box: each of
    its slots goes to its other voter (never to a box that holds no copy), its voter
    list unchanged but for the order (the new owner first), counted as failovers."""
    boxes = [Box("v%d" % i, etcd.urls, extra={"name": "v", "replicas": 1}) for i in range(4)]
    try:
        start_settled(boxes)
        before = etcd_slots(etcd, "v")
        assert all(len(v["voters"]) == 2 and v["voters"][0] == v["owner"]
                   for v in before.values())
        victim = boxes[3]
        victim.kill()
        left = boxes[:3]
        wait_until(lambda: settled(left, [b.name for b in left]), timeout=40, interval=0.3,
                   what="the dead box's slots reassigned")
        after = etcd_slots(etcd, "v")
        moved = [n for n, v in before.items() if v["owner"] == "v3"]
        assert moved
        for n in moved:
            assert after[n]["owner"] == before[n]["voters"][1], (n, before[n], after[n])
            assert sorted(after[n]["voters"]) == sorted(before[n]["voters"]), (n, after[n])
            assert after[n]["voters"][0] == after[n]["owner"]
        sts = [b.cluster_status() for b in left]
        # counted by the rebalancer of the moment (another one, if the victim was it)
        assert sum(s["replication"]["failovers"] for s in sts) >= len(moved), sts
        assert all(s["replication"]["copies_lost"] == 0 for s in sts)
        # every moved slot now has one live copy of two
        assert all(s["replication"]["under_replicated"] >= len(moved) for s in sts)
    finally:
        for b in boxes:
            b.close()


CALL_CONFIG = {
    "durable_objects": {"bindings": [{"name": "CALL", "class_name": "TestCall"}]},
    "migrations": [{"tag": "calls-v1", "new_classes": ["TestCall"]}],
    "routes": [{"prefix": "/call/", "binding": "CALL", "id": "name"}],
}


class CallBox(Box):
    """A cluster box serving the TestCall class (objects that call each other)."""

    def __init__(self, name, etcd_urls, cluster):
        super().__init__(name, etcd_urls, extra={"name": cluster})
        self.cfg.update(CALL_CONFIG)
        with open(self.cfg_path, "w") as f:
            json.dump(self.cfg, f)
        self.binary = DUROD_TEST


def test_paused_owner_answers_nothing_after_its_lease(etcd):
    """An answer that waits on the owner box when it is paused (SIGSTOP) past its lease
    must not leave when it wakes (tests/model/README.md point 14): object A on the victim
    calls B (also there), which holds the call; the call's timeout falls due during the
    pause, so A's answer is made right after SIGCONT. It goes out as a 503 saying the lease
    ran out, never as A's 200, though its event began while the box owned the slot."""
    boxes = [CallBox("p%d" % i, etcd.urls, "p") for i in range(3)]
    try:
        start_settled(boxes)
        victim = boxes[1]
        mine = [n for n in ("held-%d" % i for i in range(60))
                if owner_of(boxes, "/call/%s/id" % n)[0] is victim]
        assert len(mine) >= 2, mine
        a, b = mine[:2]
        got = {}

        def ask():
            c = http.client.HTTPConnection("127.0.0.1", victim.port, timeout=60)
            try:
                c.request("POST", "/call/%s/call?to=%s&op=hold&timeout=4000" % (a, b), body=b"x")
                r = c.getresponse()
                got["status"], got["body"] = r.status, r.read().decode(errors="replace")
                got["outcome"], got["retry"] = r.getheader("Duro-Outcome"), r.getheader("Retry-After")
            except OSError as e:
                got["error"] = repr(e)
            finally:
                c.close()

        th = threading.Thread(target=ask)
        th.start()
        time.sleep(0.5)  # admitted, the call held by B
        assert th.is_alive(), got
        victim.proc.send_signal(signal.SIGSTOP)
        others = [boxes[0], boxes[2]]
        try:
            wait_until(lambda: all(o.cluster_status()["unowned"] == 0 and
                                   "p1" not in slots_by_box(o.cluster_status()) for o in others),
                       timeout=8 * TTL_MS / 1000, interval=0.2, what="p1's slots taken by the others")
        finally:
            victim.proc.send_signal(signal.SIGCONT)
        th.join(timeout=30)
        assert not th.is_alive()
        assert got.get("status") == 503, got
        assert "lease ran out before the answer could leave" in got["body"], got
        assert got["outcome"] == "unknown" and got["retry"] is None, got
        wait_until(lambda: victim.cluster_status()["state"] == "serving", timeout=20,
                   interval=0.2, what="p1 to rejoin")
    finally:
        for bx in boxes:
            bx.close()


def repl_figures(box):
    """{name: value} of the duro_cluster_repl_* counters on box's metrics listener."""
    box.get("/counter/metrics-wake")  # a turn of a core: it publishes when due
    c = http.client.HTTPConnection("127.0.0.1", box.metrics, timeout=10)
    try:
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
    finally:
        c.close()
    out = {}
    for line in text.splitlines():
        if line.startswith("duro_cluster_repl_"):
            name, value = line.split("{", 1)[0], line.rsplit(" ", 1)[1]
            out[name[len("duro_cluster_"):-len("_total")]] = int(value)
    return out


def post(box, path):
    c = http.client.HTTPConnection("127.0.0.1", box.port, timeout=20)
    try:
        c.request("POST", path, body=b"x")
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        c.close()


def test_owners_ship_each_batch_to_both_followers(etcd):
    """cluster.replication, three boxes, cluster.replicas 2: every box follows every
    slot. Counters incremented through all boxes: each owner keeps a replica log of its
    slots and sends each durable batch's records to the two followers, which take them
    into theirs and acknowledge them — every record acknowledged twice, nothing failed.
    A follower SIGKILLed and restarted is brought up again from the owner's log (its
    first append after the restart is a mismatch; the owner resends from its log end)."""
    # a long follower timeout: a follower slowed down by a loaded machine is still waited
    # for (a dead one refuses the connection at once)
    extra = {"name": "r", "replicas": 2, "replication": True, "follower_timeout_ms": 5000}
    boxes = [Box("r%d" % i, etcd.urls, extra=extra, metrics=True) for i in range(3)]
    try:
        start_settled(boxes)
        writes = 0
        for i in range(30):
            for b in boxes:
                status, body = post(b, "/counter/repl-%d" % i)
                assert status == 200, (status, body)
                writes += 1

        def shipped():
            f = [repl_figures(b) for b in boxes]
            acked = sum(x["repl_records_acked"] for x in f)
            received = sum(x["repl_records_received"] for x in f)
            return acked >= 2 * writes and received == acked and f
        f = wait_until(shipped, timeout=20, interval=0.3, what="every record on both followers")
        assert all(x["repl_failures"] == 0 and x["repl_stale"] == 0 and x["repl_dropped"] == 0
                   for x in f), f

        # a follower down: appends to it fail; back up, it is caught up from the log
        victim = boxes[2]
        path = [p for p in ("/counter/repl-catchup-%d" % i for i in range(40))
                if owner_of(boxes, p)[0] is not victim][0]
        owner = owner_of(boxes, path)[0]
        victim.kill()
        for _ in range(5):
            assert post(owner, path)[0] == 200
        wait_until(lambda: repl_figures(owner)["repl_failures"] > 0, timeout=20, interval=0.3,
                   what="the owner to count the dead follower")
        victim.start()
        after = [0]

        def caught_up():
            # each write after the restart is one more record the victim must hold; the
            # first that reaches it (once the owner has its new peer address) brings the
            # five it missed too
            assert post(owner, path)[0] == 200
            after[0] += 1
            return repl_figures(victim)["repl_records_received"] >= 5 + after[0]
        wait_until(caught_up, timeout=30, interval=0.5, what="the restarted follower caught up")
    finally:
        for b in boxes:
            b.close()


def test_acknowledged_increments_survive_sigkill_of_their_owner(etcd):
    """cluster.replication, three boxes, K = 2: counters incremented through every box;
    an answer leaves once a majority of its slot's copies hold the write. The owner of
    some of them is SIGKILLed: its slots fail over to a follower, which applies its replica
    log before it serves, so every acknowledged increment is there (a counter never
    reads below the last value a client was answered) and the counters go on from it."""
    extra = {"name": "f", "replicas": 2, "replication": True, "follower_timeout_ms": 5000}
    boxes = [Box("f%d" % i, etcd.urls, extra=extra, metrics=True) for i in range(3)]
    try:
        start_settled(boxes)
        victim = boxes[1]
        names = ["acked-%d" % i for i in range(24)]
        owned = [n for n in names if owner_of(boxes, "/counter/" + n)[0] is victim]
        assert len(owned) >= 3, owned
        acked = {}
        for rnd in range(4):
            for i, n in enumerate(names):
                status, body = post(boxes[(i + rnd) % 3], "/counter/" + n)
                assert status == 200, (status, body)
                acked[n] = max(acked.get(n, 0), int(body))
        victim.kill()
        left = [boxes[0], boxes[2]]
        wait_until(lambda: settled(left, ["f0", "f2"]), timeout=40, interval=0.3,
                   what="the dead box's slots taken over")
        for n in names:
            def read():
                status, _, body = left[0].get("/counter/" + n)
                return status == 200 and (int(body),)
            got, = wait_until(read, timeout=20, interval=0.3, what="counter %s readable" % n)
            assert got >= acked[n], (n, got, acked[n])
        # they go on from there
        for n in owned:
            status, body = post(left[1], "/counter/" + n)
            assert status == 200 and int(body) == acked[n] + 1, (n, status, body, acked[n])
        applied = sum(repl_figures(b)["repl_applied"] for b in left)
        assert applied >= len(owned), applied
    finally:
        for b in boxes:
            b.close()


def test_gate_waits_for_a_majority_and_skips_a_silent_follower(etcd):
    """cluster.replication, K = 2, cluster.follower_timeout_ms 500. One follower paused
    (SIGSTOP, shorter than the lease): the owner's answers still leave, once the other
    follower holds the write, and the silent one is counted and skipped. Both followers
    paused: no majority holds the write, so the answer is a 503 of unknown outcome, never a
    200. Both back: answers are 200 again and the counter holds every increment made."""
    extra = {"name": "g", "replicas": 2, "replication": True, "follower_timeout_ms": 500}
    boxes = [Box("g%d" % i, etcd.urls, extra=extra, metrics=True) for i in range(3)]
    stopped = []
    try:
        start_settled(boxes)
        path = "/counter/gate-majority"
        owner = owner_of(boxes, path)[0]
        others = [b for b in boxes if b is not owner]
        assert post(owner, path) == (200, "1")
        others[0].proc.send_signal(signal.SIGSTOP)
        stopped.append(others[0])
        t0 = time.time()
        assert post(owner, path) == (200, "2")
        assert post(owner, path) == (200, "3")
        # the first waited for the silent one's timeout; the next, right after, skips it
        assert time.time() - t0 < 3
        others[1].proc.send_signal(signal.SIGSTOP)
        stopped.append(others[1])
        status, body = post(owner, path)
        assert status == 503, (status, body)
        for b in stopped:
            b.proc.send_signal(signal.SIGCONT)
        stopped = []
        f = repl_figures(owner)
        assert f["repl_skipped"] >= 1 and f["repl_unreplicated"] >= 1, f
        # the 503's increment is durable here (its outcome was unknown, not refused)
        got = wait_until(lambda: (lambda r: r[0] == 200 and r)(post(owner, path)),
                         timeout=20, interval=0.5, what="answers again")
        assert int(got[1]) >= 5, got
    finally:
        for b in stopped:
            b.proc.send_signal(signal.SIGCONT)
        for b in boxes:
            b.close()
