#!/usr/bin/python3
"""The Jepsen-style harness of issue 19: three etcd members and three durods on this
machine, clients appending unique tokens to a few dozen AppendList objects through every
box, seeded faults, and the checks of checker.py over the recorded history.

    tests/jepsen/jepsen.py --seed 1 --cycles 10                  # the full fault set
    tests/jepsen/jepsen.py --seed 1 --cycles 6 --faults part1     # what part 1 survives
    tests/jepsen/jepsen.py --seed 1 --cycles 100 --replicas 2     # with replication

Exit status: 0 when no check found a violation, 1 when one did, 2 when the harness itself
failed (a process that would not start, a cluster that never settled). Every process it
started and its nftables table are gone when it exits, also on failure or Ctrl-C; --keep DIR
keeps the logs, the history and the activation intervals."""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402
from cluster import (TTL_MS, Box, Etcd, Firewall, durod_supports, mono_us,  # noqa: E402
                     scratch_dir)

TTL = TTL_MS / 1000
# Every fault the harness knows. `part1` is the set cluster mode without replication must
# survive today (one copy per object: a box that loses its slots loses their data).
ALL_FAULTS = ["kill", "pause", "pause_short", "part_etcd", "part_boxes", "one_way",
              "etcd_leader", "disk"]
PART1_FAULTS = ["pause_short", "part_boxes", "one_way", "etcd_leader"]
NFT_FAULTS = {"part_etcd", "part_boxes", "one_way"}
MAX_APPENDS_PER_OBJECT = 800  # then the key moves to a fresh object: lists stay < 64 KiB
OP_TIMEOUT = 3.0              # an answer later than this is an unknown outcome
SETTLE_TIMEOUT = 45.0         # the cluster must settle within this after a heal


class Run:
    def __init__(self, args):
        self.a = args
        self.rng = random.Random(args.seed)
        self.root = scratch_dir("duro-jepsen-")
        self.t0_us = mono_us()
        self.etcd = Etcd(self.root)
        self.fw = Firewall()
        self.boxes = []
        self.history = []
        self.hlock = threading.Lock()
        self.stop = threading.Event()
        self.threads = []
        self.keys = []             # per key slot: the object (int) it appends to now
        self.appends = {}          # object -> appends invoked
        self.names = {}            # object -> name
        self.canon = {}            # object -> its branches: lists every answer is a prefix of
        self.next_obj = 0
        self.faults = []           # (kind, start_ms, end_ms, detail)
        self.notes = []
        self.heal_ms = []
        # every loop of the run ends by this time, whatever happens
        self.deadline = time.monotonic() + 120 + args.cycles * 90 + args.tail

    def now(self):
        return (mono_us() - self.t0_us) / 1000

    # ---- processes ----

    def start(self):
        for i in range(self.etcd.n):
            self.etcd.start(i)
        wait(self.etcd.healthy, 30, "etcd to elect a leader")
        extra = {}
        for key, value in (("replicas", self.a.replicas),
                           ("allow_fewer_copies", True if self.a.allow_fewer_copies else None),
                           ("replication", True if self.a.replication else None)):
            if value is None:
                continue
            if durod_supports(key, value):
                extra[key] = value
            else:
                self.notes.append("this durod has no cluster.%s (no replication yet): not passed" % key)
        self.boxes = [Box(self.root, i, self.etcd.urls, extra) for i in range(3)]
        for b in self.boxes:  # together: all three are members before the first round
            b.start()
        for b in self.boxes:
            b.wait_listening()
        wait(self.settled, SETTLE_TIMEOUT, "all slots owned by the three boxes")

    def settled(self):
        for b in self.boxes:
            st = b.status()
            if not st or st.get("state") != "serving" or st.get("unowned") != 0:
                return False
            live = {x["name"] for x in st.get("boxes", []) if x.get("live")}
            if live != {x.name for x in self.boxes}:
                return False
        return True

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=OP_TIMEOUT + 2)
        self.fw.heal()
        for b in self.boxes:
            b.resume()
            b.kill()
        self.etcd.close()

    # ---- clients ----

    def new_object(self):
        o = self.next_obj
        self.next_obj += 1
        self.names[o] = "s%d-o%d" % (self.a.seed, o)
        self.appends[o] = 0
        return o

    def pick(self, rng, append):
        with self.hlock:
            k = rng.randrange(len(self.keys))
            o = self.keys[k]
            if append:
                self.appends[o] += 1
                if self.appends[o] >= MAX_APPENDS_PER_OBJECT:
                    self.keys[k] = self.new_object()
            return o

    def client(self, n):
        rng = random.Random(self.a.seed * 1000 + n)
        conns = {}
        seq = 0
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            append = rng.random() < 0.7
            o = self.pick(rng, append)
            b = self.boxes[rng.randrange(len(self.boxes))]
            token = None
            if append:
                seq += 1
                token = "c%d-%d" % (n, seq)
            self.op(conns, "c%d" % n, b, o, token)
            time.sleep(self.a.think)
        for c in conns.values():
            c.close()

    def op(self, conns, client, b, o, token):
        """One request, recorded: invoke, then ok / fail / unknown."""
        rec = {"client": client, "kind": "append" if token else "read", "obj": o,
               "token": token, "box": b.name, "invoke": self.now(), "complete": None,
               "status": None, "result": None, "served": None}
        with self.hlock:
            self.history.append(rec)
        path = "/append/" + self.names[o]
        c = conns.get(b.name)
        sent = False
        try:
            if c is None:
                c = conns[b.name] = http.client.HTTPConnection(b.ip, b.port, timeout=OP_TIMEOUT)
                c.connect()
            sent = True
            if token:
                c.request("POST", path, body=token.encode())
            else:
                c.request("GET", path)
            r = c.getresponse()
            body = r.read().decode(errors="replace")
            served = r.getheader("Duro-Forwarded-To") or b.name
            if r.getheader("Connection", "").lower() == "close":
                conns.pop(b.name).close()
        except ConnectionRefusedError:
            status, result, served = ("fail" if not sent else "unknown"), None, None
            conns.pop(b.name, None)
        except (OSError, http.client.HTTPException):
            # sent (or maybe sent, on a kept-alive connection) without a whole answer
            status, result, served = "unknown", None, None
            old = conns.pop(b.name, None)
            if old:
                old.close()
        else:
            if r.status == 200:
                status, result = "ok", self.compact(o, body.split("\n")[:-1])
            elif r.getheader("Duro-Outcome", "") == "unknown":
                # the request ran, but its answer came due after the box's lease ran out
                status, result = "unknown", None
            elif r.status == 503 or 400 <= r.status < 500:
                status, result = "fail", None  # refused before any handler, or bad input
            else:
                status, result = "unknown", None  # 500, 502, 504, 507: maybe done
        if not token and status == "unknown":
            status = "fail"  # a read changes nothing: its outcome does not matter
        rec.update(complete=self.now(), status=status, result=result, served=served)
        return rec

    def compact(self, o, result):
        """An answered list is kept as (branch, length): a prefix of one of the object's
        branches, which grow as longer answers agree with them (a long run answers hundreds
        of thousands of lists of hundreds of tokens). An answer that agrees with no branch
        (the object lost data, or went back) starts a branch of its own: a correct run has
        one branch per object. checker.expand makes them lists again."""
        with self.hlock:
            branches = self.canon.setdefault(o, [])
            for b in range(len(branches) - 1, -1, -1):
                canon = branches[b]
                m = min(len(result), len(canon))
                if result[:m] == canon[:m]:
                    if len(result) > len(canon):
                        canon.extend(result[len(canon):])
                    return (b, len(result))
            branches.append(list(result))
            return (len(branches) - 1, len(result))

    def start_clients(self):
        self.stop.clear()
        self.threads = [threading.Thread(target=self.client, args=(n,), daemon=True)
                        for n in range(self.a.clients)]
        for t in self.threads:
            t.start()

    def stop_clients(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=OP_TIMEOUT + 5)
        self.threads = []

    # ---- faults ----

    def fault(self, kind):
        """Injects one fault and holds it; returns a short description. Heals come after."""
        rng = self.rng
        b = rng.choice(self.boxes)
        others = [x for x in self.boxes if x is not b]
        if kind == "kill":
            # held until the others have taken its slots (a failover, not a quick restart
            # that finds its own data again), then a little longer
            b.kill()
            t = time.monotonic()
            moved = wait(lambda: self.gone(b, others), 6 * TTL, None)
            time.sleep(rng.uniform(0, 1))
            b.start()
            return "SIGKILL %s under load, %s %.1f s, restarted" % (
                b.name, "its slots taken in" if moved else "its slots not taken after",
                time.monotonic() - t)
        if kind in ("pause", "pause_short"):
            hold = 2 * TTL if kind == "pause" else rng.uniform(0.15, 0.35) * TTL
            b.pause()
            time.sleep(hold)
            b.resume()
            return "SIGSTOP %s for %.2f s" % (b.name, hold)
        if kind == "part_etcd":
            hold = rng.uniform(1.5, 3) * TTL
            self.fw.drop(b.uid, self.etcd.ip)
            time.sleep(hold)
            return "%s cut off etcd for %.1f s" % (b.name, hold)
        if kind in ("part_boxes", "one_way"):
            o = rng.choice(others)
            hold = rng.uniform(1, 3)
            self.fw.drop(b.uid, [o.ip])
            if kind == "part_boxes":
                self.fw.drop(o.uid, [b.ip])
            time.sleep(hold)
            return "%s %s %s for %.1f s" % (b.name, "<->" if kind == "part_boxes" else "->", o.name, hold)
        if kind == "etcd_leader":
            i = self.etcd.leader()
            if i is None:
                return "no etcd leader to kill"
            self.etcd.kill(i)
            time.sleep(rng.uniform(1, 3))
            return "SIGKILL etcd leader e%d" % i
        if kind == "disk":
            # a box (a follower of most slots once replication lands) whose syncs fail:
            # restarted with every third commit sync failing, then restarted clean
            hold = rng.uniform(2, 4)
            b.stop()
            b.start(env={"DURO_FAULT_SYNC_EVERY": "3"})
            time.sleep(hold)
            b.stop()
            b.start()
            return "%s's syncs failing (every 3rd) for %.1f s" % (b.name, hold)
        raise ValueError(kind)

    def gone(self, b, others):
        """Every box in others sees b gone and owns every slot between them."""
        for o in others:
            st = o.status()
            if not st or st.get("unowned") != 0 or any(
                    x["name"] == b.name and x.get("live") for x in st.get("boxes", [])):
                return False
        return True

    def heal(self):
        t = time.monotonic()
        self.fw.heal()
        for b in self.boxes:
            b.resume()
        for i in range(self.etcd.n):
            if self.etcd.procs[i] is None:
                self.etcd.start(i)
        for b in self.boxes:
            if not b.alive():
                b.start()
        ok = wait(self.etcd.healthy, 30, None) and wait(self.settled, SETTLE_TIMEOUT, None)
        self.heal_ms.append((time.monotonic() - t) * 1000)
        if not ok:
            self.notes.append("cluster not settled %.0f s after a heal at %.0f ms" % (
                SETTLE_TIMEOUT, self.now()))
        return ok

    def nemesis(self):
        # Rounds of every fault kind once, each round in a seeded order: a short run still
        # covers every kind, a long one stays random.
        order = []
        for cycle in range(self.a.cycles):
            if time.monotonic() > self.deadline:
                raise RuntimeError("the run passed its time bound after %d cycles" % cycle)
            if not order:
                order = list(self.a.faults)
                self.rng.shuffle(order)
            time.sleep(self.rng.uniform(0.5, 1.5))  # load before the fault
            kind = order.pop()
            start = self.now()
            what = self.fault(kind)
            self.heal()
            self.faults.append((kind, start, self.now(), what))
            if self.a.verbose:
                print("cycle %d: %s [%.0f, %.0f] ms" % (cycle, what, start, self.now()), flush=True)

    def final_reads(self):
        """After the last heal: every object read through every box (refusals asked again
        a few times, each attempt recorded)."""
        conns = {}
        for o in sorted(self.names):
            for b in self.boxes:
                for _ in range(5):
                    if self.op(conns, "final", b, o, None)["status"] == "ok":
                        break
                    time.sleep(0.2)
        for c in conns.values():
            c.close()

    def activations(self):
        end = self.now()
        out = []
        for b in self.boxes:
            with open(b.log_path, errors="replace") as f:
                out += checker.read_activations(b.name, f.read(), self.t0_us, end)
        return out

    def object_ids(self):
        """Object IDs (as the traces name them) to names, asked of one box."""
        ids = {}
        b = self.boxes[0]
        for o, name in sorted(self.names.items()):
            try:
                r = b.ctl("--json", "object", "APPEND", name)
                ids[json.loads(r.stdout)["id"]] = name
            except (ValueError, KeyError, OSError):
                pass
        return ids


def wait(pred, timeout, what):
    """Polls pred every 0.2 s for up to timeout seconds; raises when `what` is given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    if what:
        raise RuntimeError("gave up after %.0f s waiting for %s" % (timeout, what))
    return False


def summarize(run, violations, out):
    h = run.history
    st = {}
    for op in h:
        k = (op["kind"], op["status"])
        st[k] = st.get(k, 0) + 1
    by_fault = {}
    for kind, s, e, _ in run.faults:
        by_fault[kind] = by_fault.get(kind, 0) + 1
    by_kind = {}
    for k, _ in violations:
        by_kind[k] = by_kind.get(k, 0) + 1
    p = lambda *x: print(*x, file=out)  # noqa: E731
    p("jepsen: seed %d, %d cycles, faults %s" % (run.a.seed, len(run.faults), ",".join(run.a.faults)))
    p("faults injected: %s" % ", ".join("%s %d" % kv for kv in sorted(by_fault.items())))
    p("operations: %d (%s)" % (len(h), ", ".join("%s %s %d" % (k[0], k[1], v)
                                                for k, v in sorted(st.items(), key=str))))
    p("objects: %d; activations traced: %d" % (len(run.names), run.nact))
    if run.heal_ms:
        p("heal to settled: median %.0f ms, max %.0f ms" % (
            sorted(run.heal_ms)[len(run.heal_ms) // 2], max(run.heal_ms)))
    for n in run.notes:
        p("note: %s" % n)
    p("violations: %d%s" % (len(violations), (" (%s)" % ", ".join(
        "%s %d" % kv for kv in sorted(by_kind.items()))) if violations else ""))
    # Evidence: per kind, the first violation of each object (up to 10 objects), with the
    # faults that overlap the times it names (from the operation it lists back to the
    # answer it compares with): where to look in the logs.
    blamed = {}
    for k in sorted(by_kind):
        firsts = {}
        for kk, text in violations:
            if kk == k:
                firsts.setdefault(checker.subject(text), text)
        p("== %s: %s; %d objects" % (k, checker.KINDS.get(k, k), len(firsts)))
        for subj, text in list(firsts.items()):
            sus = checker.suspects(text, run.faults)
            if k != "diverged":  # its span runs from the object's first answer: too wide
                for kind in {f[0] for f in sus}:
                    blamed.setdefault(kind, set()).add(subj)
            if len(firsts) <= 10 or list(firsts).index(subj) < 10:
                p("  " + text)
                for f in sus[-3:]:
                    p("      during or after: [%.0f, %.0f] ms %s" % (f[1], f[2], f[3]))
    if blamed:
        p("objects with a violation, by the kinds of fault that overlap its first one: %s" % ", ".join(
            "%s %d" % (kind, len(v)) for kind, v in sorted(blamed.items())))


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--replicas", type=int, default=None,
                    help="cluster.replicas for every box, when this durod knows the key")
    ap.add_argument("--allow-fewer-copies", action="store_true",
                    help="cluster.allow_fewer_copies true, when this durod knows the key "
                         "(with 3 boxes and K = 2 a dead box leaves fewer than K+1 live)")
    ap.add_argument("--replication", action="store_true",
                    help="cluster.replication true (owners ship records, the gate waits for "
                         "a majority), when this durod knows the key")
    ap.add_argument("--faults", default="all",
                    help="comma-separated from %s, or 'all', or 'part1' (%s)" % (
                        ",".join(ALL_FAULTS), ",".join(PART1_FAULTS)))
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--objects", type=int, default=24, help="objects appended to at once")
    ap.add_argument("--think", type=float, default=0.003, help="seconds between a client's ops")
    ap.add_argument("--tail", type=float, default=3.0, help="seconds of load after the last heal")
    ap.add_argument("--keep", help="copy logs, history, activations and every violation here")
    ap.add_argument("--recheck", metavar="DIR",
                    help="no cluster: check the history.json a run kept in DIR again")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    if a.faults == "all":
        a.faults = list(ALL_FAULTS)
    elif a.faults == "part1":
        a.faults = list(PART1_FAULTS)
    else:
        a.faults = a.faults.split(",")
    bad = [f for f in a.faults if f not in ALL_FAULTS]
    if bad:
        ap.error("unknown fault %s (known: %s)" % (",".join(bad), ",".join(ALL_FAULTS)))
    if not 1 <= a.cycles <= 10000 or not 1 <= a.clients <= 64 or not 1 <= a.objects <= 1000:
        ap.error("--cycles 1..10000, --clients 1..64, --objects 1..1000")
    return a


def recheck(a, out):
    """The checks and summary again over a kept run (checker changes, other evidence)."""
    with open(os.path.join(a.recheck, "history.json")) as f:
        kept = json.load(f)
    r = argparse.Namespace(a=a, names=kept["names"], heal_ms=[], notes=[],
                           nact=len(kept["activations"]),
                           faults=[tuple(f) for f in kept["faults"]])
    a.faults = sorted({f[0] for f in r.faults})
    a.seed = kept.get("seed", a.seed)
    r.history = [dict(op, result=tuple(op["result"]))
                 if op["result"] and isinstance(op["result"][0], int) else op
                 for op in kept["history"]]
    canon = {int(o): b for o, b in kept["canon"].items()}
    v = checker.check(r.history, kept["activations"], None, canon)
    summarize(r, v, out)
    return (1 if v else 0), r, v


def run(argv, out=None):
    """Runs the harness; returns (exit status, Run, violations)."""
    out = out or sys.stdout  # at call time: pytest's capture replaces it
    a = parse_args(argv)
    if a.recheck:
        return recheck(a, out)
    if not Firewall.available():
        dropped = [f for f in a.faults if f in NFT_FAULTS]
        a.faults = [f for f in a.faults if f not in NFT_FAULTS] or ["pause_short"]
        if dropped:
            print("jepsen: not root or no nft: without %s" % ",".join(dropped), file=out)
    r = Run(a)
    violations = []
    if Firewall.available():
        r.fw.sweep_stale()

    def on_signal(sig, frame):
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGTERM, on_signal) if threading.current_thread() is threading.main_thread() else None
    try:
        r.start()
        r.keys = [r.new_object() for _ in range(a.objects)]
        r.start_clients()
        r.nemesis()
        time.sleep(a.tail)
        r.stop_clients()
        r.final_reads()
        acts = r.activations()
        r.nact = len(acts)
        violations = checker.check(r.history, acts, r.object_ids(), r.canon)
        summarize(r, violations, out)
        if a.keep:
            os.makedirs(a.keep, exist_ok=True)
            with open(os.path.join(a.keep, "history.json"), "w") as f:
                json.dump({"seed": a.seed, "history": r.history, "canon": r.canon, "names": r.names,
                           "faults": r.faults, "activations": acts}, f)
            with open(os.path.join(a.keep, "violations.txt"), "w") as f:
                for k, text in violations:  # every one, where the summary shows the first
                    f.write("%s: %s\n" % (k, text))
        return (1 if violations else 0), r, violations
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        # status 2, never 1: a harness that failed found no violation
        print("jepsen: harness failure: %s" % e, file=out)
        return 2, r, violations
    finally:
        r.close()
        if a.keep:
            os.makedirs(a.keep, exist_ok=True)
            for n in os.listdir(r.root):
                if n.endswith(".log"):
                    shutil.copy(os.path.join(r.root, n), a.keep)
            if os.path.isdir(r.etcd.dir):
                for n in os.listdir(r.etcd.dir):
                    if n.endswith(".log"):
                        shutil.copy(os.path.join(r.etcd.dir, n), a.keep)
        shutil.rmtree(r.root, ignore_errors=True)
        if old is not None:
            signal.signal(signal.SIGTERM, old)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:])[0])
