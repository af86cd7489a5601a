"""A seeded, deterministic simulation of duro's replicated slots (issue 19): boxes, etcd and
the network, with faults, driven by clients that append unique tokens to lists.

Everything runs on one event queue in simulated milliseconds; one seed gives one run, event
for event. The protocol is the one of research/cluster.md 3.4-3.5, written as the C code is
to be written (tests/model/README.md maps each part to its future C home). Flags in BUGS
break it in known ways, so the checkers (check.py) can be shown to catch them.
"""
import heapq
import random

# Protocol breakages the model must catch (see README.md, "Bug flags").
BUGS = {
    "gate_own_copy": "the gate opens on the owner's own durable copy alone (W = 1)",
    "accept_old_epoch": "followers accept records from epochs older than max_epoch[slot]",
    "serve_before_seal": "a new owner serves from its own log at once, with no SEAL",
    "no_lease_check": "no lease check: answers from memory past the lease deadline",
    "any_one_log": "recovery takes the new owner's own log, not the longest of a majority",
    "longest_by_lsn": "'longest' compares lsn only, not (last epoch, lsn)",
    "seal_not_durable": "max_epoch[slot] is kept in memory only: a restarted follower forgot every SEAL",
    "replace_without_catchup": "a replacement follower votes before it holds the acknowledged log",
    "no_takeover_wait": "a new owner answers before one TTL has passed since it took the slot",
    "move_keeps_answering": "in a planned move the old owner answers until it sees the new record",
    "commit_old_records": "no barrier record: a recovered log counts as acknowledged once on W copies",
}

# How each bug is searched for (run.py --bugs, test_model.py): the nemesis mix (None: every
# fault; a composite aims its faults at one replica group, Nemesis.composite) and the first
# seed that caught it with 10 cycles when this table was made. A change to the model moves
# these seeds: run `run.py --bugs` and copy its seeds here.
BUG_SEARCH = {
    "gate_own_copy": (None, 0),
    "accept_old_epoch": (None, 3),
    "serve_before_seal": (None, 0),
    "no_lease_check": (None, 4),
    "any_one_log": (None, 0),
    "longest_by_lsn": (["cut_owner"], 0),
    "seal_not_durable": (["stale_owner"], 0),
    "replace_without_catchup": (["cascade"], 22),
    "no_takeover_wait": (["stale_owner"], 0),
    "move_keeps_answering": (["move"], 7),
    "commit_old_records": (["stale_owner", "cut_owner", "cascade", "move"], 54),
}
BUG_FAULTS = {k: v[0] for k, v in BUG_SEARCH.items()}


class Params:
    """The run's shape. Times in ms of simulated real time."""

    def __init__(self, **kw):
        self.boxes = 5
        self.replicas = 2          # K: followers per slot
        self.slots = 4
        self.objects = 8
        self.clients = 6
        self.ttl = 2000            # etcd lease TTL
        self.margin = 200          # deadline = t_send + TTL - margin (cluster.c set_deadline)
        self.renew_every = 666     # TTL / 3
        self.etcd_tick = 500       # etcd checks lease expiry about every 500 ms
        self.rebalance_every = 250
        self.resync_every = 1000   # a box re-reads the whole table (a lost watch heals)
        self.retransmit = 60       # owner resends unacknowledged records / SEALs
        self.slow_follower_ms = 1500  # a voter this far behind the commit point is replaced
        self.op_timeout = 1500
        self.think = (5, 40)
        self.net_delay = (0.2, 3.0)
        self.net_tail = 0.02       # chance of a 20-200 ms delay (reordering)
        self.loss = 0.01
        self.dup = 0.01
        self.fsync = (0.2, 1.5)
        self.drift = 0.01          # box clocks run at 1 +- drift
        self.cycles = 10           # fault cycles
        self.cycle_gap = (500, 3000)
        self.heal_wait = 12000     # after the last heal: liveness window and final reads
        self.liveness_bound = 4 * self.ttl + 2000
        self.batch = 32            # records per replication message (a catch-up takes time)
        self.stuck_ms = 3000       # an owner with no commit progress this long hands over
        self.faults = None         # restrict the nemesis to these fault kinds
        self.bugs = set()
        for k, v in kw.items():
            if not hasattr(self, k):
                raise KeyError(k)
            setattr(self, k, v)

    @property
    def W(self):
        if "gate_own_copy" in self.bugs:
            return 1
        return (self.replicas + 1) // 2 + 1


class World:
    """The event queue, the network and the record of what happened."""

    def __init__(self, seed, params):
        self.p = params
        self.rng = random.Random(seed)
        self.now = 0.0
        self.q = []
        self.seq = 0
        self.blocked = set()       # (src, dst) pairs whose messages are dropped
        self.extra_loss = 0.0
        self.history = []          # client operations (check.py)
        self.releases = []         # (t, box, incarnation, slot, epoch, kind) responses let out
        self.events = []           # (t, text) faults and protocol milestones
        self.stats = {"events": 0, "msgs": 0, "failovers": 0, "replacements": 0}
        self.nodes = {}
        self.crashes = []          # (time, box, slots it owned): failover times (check.py)
        self.moves = []            # (time, box, slot): an owner stopped answering to hand over

    def at(self, t, fn, *args):
        self.seq += 1
        heapq.heappush(self.q, (t, self.seq, fn, args))

    def after(self, dt, fn, *args):
        self.at(self.now + dt, fn, *args)

    def log(self, text):
        self.events.append((round(self.now, 3), text))

    def send(self, src, dst, msg):
        """Datagram semantics: delay, loss, duplication, reordering, partitions."""
        self.stats["msgs"] += 1
        if (src, dst) in self.blocked:
            return
        r = self.rng
        if r.random() < self.p.loss + self.extra_loss:
            return
        # Client requests travel over TCP (HTTP): lost with their connection, never doubled;
        # a duplicate there would be a second request, which duro never sends.
        tcp = src[0] == "c" or dst[0] == "c"
        copies = 2 if not tcp and r.random() < self.p.dup else 1
        for _ in range(copies):
            d = r.uniform(*self.p.net_delay)
            if r.random() < self.p.net_tail:
                d += r.uniform(20, 200)
            self.after(d, self.deliver, dst, msg)

    def deliver(self, dst, msg):
        self.nodes[dst].receive(msg)

    def run_until(self, t_end):
        while self.q and self.q[0][0] <= t_end:
            t, _, fn, args = heapq.heappop(self.q)
            self.now = t
            self.stats["events"] += 1
            fn(*args)
        self.now = t_end


# ---------------------------------------------------------------------------------------
# etcd: one linearizable store (its Raft is not modelled), leases, CAS, watches, and the
# rebalancer, which in duro runs on the elected box and writes only through CAS.

class Etcd:
    name = "etcd"

    def __init__(self, w):
        self.w = w
        self.rev = 0
        self.kv = {}               # key -> [value, mod_rev, create_rev, lease]
        self.leases = {}           # id -> [ttl, expiry (real time)]
        self.next_lease = 100
        self.down_until = -1.0     # leader election in progress: requests are dropped
        self.watchers = set()
        w.nodes[self.name] = self
        w.after(w.p.etcd_tick, self.tick)
        w.after(w.p.rebalance_every, self.rebalance)

    def available(self):
        return self.w.now >= self.down_until

    def put(self, key, value, lease=0):
        if key.startswith("slots/"):
            assert len(set(value.group)) == len(value.group) == self.w.p.replicas + 1, value
        self.rev += 1
        old = self.kv.get(key)
        self.kv[key] = [value, self.rev, old[2] if old else self.rev, lease]
        self.notify(key)
        return self.rev

    def delete(self, key):
        if key in self.kv:
            self.rev += 1
            old = self.kv.pop(key)
            self.notify(key, (None, self.rev, old[2]))

    def notify(self, key, gone=None):
        e = self.kv.get(key)
        msg = ("watch", key, (e[0], e[1], e[2]) if e else gone)
        for b in sorted(self.watchers):
            self.w.send(self.name, b, msg)

    def tick(self):
        if self.available():
            for lid in sorted(self.leases):
                if self.leases[lid][1] <= self.w.now:
                    self.revoke(lid)
        self.w.after(self.w.p.etcd_tick, self.tick)

    def revoke(self, lid):
        self.leases.pop(lid, None)
        for k in sorted(k for k, e in self.kv.items() if e[3] == lid):
            self.delete(k)

    def leader_change(self, outage):
        """A new leader after an outage: every lease gets its full TTL again (etcd #9395)."""
        self.down_until = self.w.now + outage
        self.w.log("etcd leader change, down %d ms" % outage)
        self.w.at(self.down_until, self._extend)

    def revoke_all(self):
        """etcd #15247: a leader stuck in fdatasync revoked every lease at once, while the
        boxes' renewals had been answered: each box still believes in its deadline."""
        self.w.log("etcd revokes every lease")
        for lid in sorted(self.leases):
            self.revoke(lid)

    def _extend(self):
        for lid in self.leases:
            self.leases[lid][1] = max(self.leases[lid][1], self.w.now + self.leases[lid][0])

    def receive(self, msg):
        if not self.available():
            return
        kind, src = msg[0], msg[1]
        w = self.w
        if kind == "join":
            lid = self.next_lease
            self.next_lease += 1
            self.leases[lid] = [w.p.ttl, w.now + w.p.ttl]
            key = "members/" + src
            if key in self.kv:          # a previous incarnation's key goes first
                self.delete(key)
            rev = self.put(key, src, lid)
            self.watchers.add(src)
            w.send(self.name, src, ("joined", msg[2], lid, rev, w.p.ttl))
        elif kind == "keepalive":
            lid = msg[2]
            ttl = 0
            if lid in self.leases:
                self.leases[lid][1] = w.now + self.leases[lid][0]
                ttl = self.leases[lid][0]
            w.send(self.name, src, ("ka", lid, ttl, msg[3]))
        elif kind == "revoke":
            if msg[2] in self.leases:
                self.revoke(msg[2])
        elif kind == "range":
            self.watchers.add(src)
            snap = {k: (e[0], e[1], e[2]) for k, e in self.kv.items()}
            w.send(self.name, src, ("table", snap, self.rev))
        elif kind == "cas":
            _, _, key, expect, value, tag = msg
            e = self.kv.get(key)
            ok = e is not None and e[1] == expect
            rev = self.put(key, value) if ok else (e[1] if e else 0)
            w.send(self.name, src, ("cas_r", key, ok, rev, value, tag))

    # The rebalancer: a slot whose owner is not live moves to a live voter of its group at
    # a new epoch, RECOVERING; the voter set stays (only the owner replaces voters, after a
    # learner caught up). A slot nobody holds gets a group of the first live boxes.
    def live(self):
        return {e[0]: e[2] for k, e in self.kv.items() if k.startswith("members/")}

    def rebalance(self):
        w = self.w
        w.after(w.p.rebalance_every, self.rebalance)
        if not self.available():
            return
        live = self.live()
        for s in range(w.p.slots):
            key = "slots/%d" % s
            e = self.kv.get(key)
            if e is None:
                if len(live) < w.p.replicas + 1:
                    continue
                order = sorted(live, key=lambda b: hash_rank(s, b))
                group = tuple(order[: w.p.replicas + 1])
                self.put(key, SlotRec(group[0], live[group[0]], group, (), "RECOVERING"))
                continue
            rec = e[0]
            if live.get(rec.owner) == rec.inc:
                continue
            cands = [b for b in rec.group if b in live]
            if not cands:
                continue
            new = w.rng.choice(cands)
            self.put(key, SlotRec(new, live[new], rec.group, (), "RECOVERING"))
            w.stats["failovers"] += 1
            w.log("rebalancer: slot %d owner %s -> %s (epoch %d)" % (s, rec.owner, new, self.rev))


def hash_rank(s, b):
    x = (s + 1) * 2654435761 + (int(b[1:]) + 1) * 40503
    x ^= x >> 13
    return (x * 2246822519) % 4294967291


class SlotRec:
    """The value of slots/<n>: owner and its incarnation (the member key's create_revision),
    the voters (owner included), learners as (new box, voter it replaces), and state."""
    __slots__ = ("owner", "inc", "group", "learners", "state", "handoff")

    def __init__(self, owner, inc, group, learners, state, handoff=False):
        self.owner, self.inc, self.group, self.learners, self.state = owner, inc, group, learners, state
        # RECOVERING after a planned move: the old owner stopped answering before this CAS.
        self.handoff = handoff

    def __repr__(self):
        return "SlotRec(%s/%s %s %s %s)" % (self.owner, self.inc, self.group, self.learners, self.state)


# ---------------------------------------------------------------------------------------
# A box: durable per-slot logs and max_epoch, a lease on its own drifting clock, and per
# slot one of: nothing, follower (passive), RECOVERING owner, ACTIVE owner.

class SlotLog:
    """One slot's commit log on one box: vlog (written, maybe not synced) and dlog (synced).
    Entries are (epoch, obj, token); lsn = index + 1."""

    def __init__(self):
        self.vlog, self.dlog = [], []
        self.vmax, self.dmax = 0, 0
        self.diverged = False      # vlog was cut below len(dlog) since the last snapshot

    def last(self, log=None):
        log = self.vlog if log is None else log
        return (log[-1][0], len(log)) if log else (0, 0)

    def truncate(self, n):
        if n < len(self.vlog):
            del self.vlog[n:]
            if n < len(self.dlog):
                self.diverged = True


class Owner:
    """Volatile state of a slot this box owns (RECOVERING or ACTIVE)."""

    def __init__(self, epoch, rec):
        self.epoch = epoch         # current epoch as this box knows it
        self.since = epoch         # acks from epochs before this are from another tenure
        self.rec = rec
        self.state = "SEALING"     # SEALING -> ACTIVATING -> ACTIVE
        self.seal_acks = {}        # box -> log (tuple)
        self.match = {}            # follower -> durable matching lsn (this tenure)
        self.next = {}             # follower -> next lsn to send
        self.commit = 0
        self.own_ok_from = None    # own dlog counts once this sync id has completed
        self.pending = []          # [lsn, client, opid, result, kind]
        self.lag_since = {}        # voter -> time it first lagged the commit point
        self.replacing = False
        self.state_obj = {}        # obj -> list of tokens (memory)
        self.serve_after = -1e18   # this box's clock: no answer before (takeover wait)
        self.barrier = 0           # lsn of this tenure's first record: commit starts there
        self.progress = None       # (time, commit) when the commit point last moved
        self.handing_since = None  # planned move: when this owner stopped answering
        self.move_sent = False     # ... and once its CAS is out, it never answers again unless
        #                            the watch shows the slot still its own, move cancelled


class Box:
    def __init__(self, w, name, etcd):
        self.w, self.name, self.etcd = w, name, etcd
        self.rate = 1 + w.rng.uniform(-w.p.drift, w.p.drift)
        self.offset = w.rng.uniform(0, 1e6)
        self.logs = {s: SlotLog() for s in range(w.p.slots)}
        self.up, self.paused, self.disk_fail = True, False, False
        self.deferred = []
        self.gen = 0               # process generation: timers of a dead process are void
        w.nodes[name] = self
        self.start()

    # -- process lifecycle ------------------------------------------------------------
    def clock(self):
        return self.offset + self.w.now * self.rate

    def start(self):
        self.gen += 1
        self.lease, self.inc, self.deadline = None, None, -1.0
        self.joining = False
        self.table = {}            # key -> (value, mod_rev, create_rev)
        self.owners = {}           # slot -> Owner
        self.reclaim_sent = {}
        self.sync_busy, self.sync_id, self.sync_done, self.dirty = False, 0, 0, False
        self.wait_sync = []        # (sync id, fn, args): run once that sync completed
        self.join()
        self.timer(self.w.p.resync_every, self.resync)
        self.timer(self.w.p.retransmit, self.retransmit)
        self.timer(50, self.lease_check)

    def crash(self):
        self.w.log("crash " + self.name)
        owned = [s for s in range(self.w.p.slots)
                 if self.etcd.kv.get("slots/%d" % s) and self.etcd.kv["slots/%d" % s][0].owner == self.name]
        self.w.crashes.append((self.w.now, self.name, owned))
        self.up, self.paused = False, False
        self.deferred = []
        self.gen += 1
        for lg in self.logs.values():     # only what was synced survives
            lg.vlog = list(lg.dlog)
            lg.vmax = lg.dmax if "seal_not_durable" not in self.w.p.bugs else 0
            if "seal_not_durable" in self.w.p.bugs:
                lg.dmax = 0
            lg.diverged = False

    def restart(self):
        self.w.log("restart " + self.name)
        self.up = True
        self.start()

    def pause(self):
        self.w.log("pause " + self.name)
        self.paused = True

    def resume(self):
        self.w.log("resume " + self.name)
        self.paused = False
        d, self.deferred = self.deferred, []
        for fn, args in d:
            if self.up and not self.paused:
                fn(*args)

    def timer(self, dt, fn, *args):
        self.w.after(dt, self._fire, self.gen, fn, args)

    def _fire(self, gen, fn, args):
        if gen != self.gen or not self.up:
            return
        if self.paused:
            self.deferred.append((self._fire, (gen, fn, args)))
            return
        fn(*args)

    def receive(self, msg):
        if not self.up:
            return
        if self.paused:
            self.deferred.append((self.receive, (msg,)))
            return
        getattr(self, "on_" + msg[0])(*msg[1:])

    def send(self, dst, msg):
        self.w.send(self.name, dst, msg)

    # -- membership and lease (control/cluster.c) ---------------------------------------
    def join(self):
        if self.lease is not None or self.joining:
            return
        self.joining = True
        self.join_nonce = self.clock()
        self.send("etcd", ("join", self.name, self.join_nonce))
        self.timer(500, self._join_retry)

    def _join_retry(self):
        if self.lease is None:
            self.joining = False
            self.join()

    def on_joined(self, t_send, lid, inc, ttl):
        if self.lease is not None or not self.joining or t_send != self.join_nonce:
            self.send("etcd", ("revoke", self.name, lid))
            return
        self.joining = False
        self.lease, self.inc = lid, inc
        self.deadline = t_send + (ttl - self.w.p.margin)
        self.w.log("%s joined inc %d" % (self.name, inc))
        self.send("etcd", ("range", self.name))
        self.timer(self.w.p.renew_every, self.renew, lid)

    def renew(self, lid):
        if self.lease != lid:
            return
        self.send("etcd", ("keepalive", self.name, self.lease, self.clock()))
        self.timer(self.w.p.renew_every if self.clock() < self.deadline - 700 else 200, self.renew, lid)

    def on_ka(self, lid, ttl, t_send):
        if lid != self.lease:
            return
        if ttl == 0:
            self.fence("etcd says the lease is gone")
            return
        self.deadline = max(self.deadline, t_send + ttl - self.w.p.margin)

    def lease_check(self):
        if "no_lease_check" in self.w.p.bugs:
            return
        if self.lease is not None and self.clock() >= self.deadline:
            self.fence("lease deadline passed")
        self.timer(50, self.lease_check)

    def fence(self, why):
        """Stops serving every slot, forgets the lease; rejoins as a new incarnation."""
        self.w.log("%s fenced: %s" % (self.name, why))
        for s in list(self.owners):
            self.step_down(s, "fenced")
        if self.lease is not None:
            self.send("etcd", ("revoke", self.name, self.lease))
        self.lease, self.inc = None, None
        self.join()

    def serving(self):
        if "no_lease_check" in self.w.p.bugs:
            return True
        return self.lease is not None and self.clock() < self.deadline

    # -- the slot table (cluster_table.c's watch) ---------------------------------------
    def resync(self):
        if self.lease is not None:
            self.send("etcd", ("range", self.name))
        self.timer(self.w.p.resync_every, self.resync)

    def on_table(self, snap, rev):
        if self.inc is None or rev < self.inc:
            return                 # a range answered before this incarnation joined
        for key in sorted(set(self.table) | set(snap)):
            if key in snap:
                self.on_watch(key, snap[key])
            elif self.table[key][0] is not None:
                self.on_watch(key, (None, rev, self.table[key][2]))

    def on_watch(self, key, e):
        """e = (value, mod_revision, create_revision); value None: deleted at that revision."""
        old = self.table.get(key)
        if old is not None and old[1] >= e[1]:
            return
        self.table[key] = e
        if key == "members/" + self.name and e[0] is None and e[2] == self.inc:
            self.fence("its member key is gone")
            return
        if key.startswith("slots/"):
            self.slot_changed(int(key[6:]), e[0], e[1])

    def live(self, b):
        e = self.table.get("members/" + b)
        return e is not None and e[0] is not None

    def slot_changed(self, s, rec, epoch):
        o = self.owners.get(s)
        mine = rec.owner == self.name and rec.inc == self.inc and self.inc is not None
        if o is not None:
            if epoch <= o.epoch:
                return
            if not mine:
                self.step_down(s, "slot moved at epoch %d" % epoch)
                return
            if rec.state == "RECOVERING":
                # Asked to recover anew (by itself after a failed sync, or a race): the
                # tenure at the older epoch ends here.
                self.step_down(s, "recovery again at epoch %d" % epoch)
            else:
                o.epoch, o.rec, o.replacing = epoch, rec, False
                if o.move_sent and not (rec.learners and rec.learners[0][1] == self.name):
                    o.state, o.handing_since, o.move_sent = "ACTIVE", None, False
                elif o.move_sent:
                    o.move_sent = False   # a newer record still asks for the move: again
                if o.state == "ACTIVATING":
                    self.activated(s, o)
                self.replicate(s)
                return
        if mine:
            self.claim(s, rec, epoch)

    def claim(self, s, rec, epoch):
        """The table names this incarnation owner and it has no tenure: RECOVERING starts a
        recovery; ACTIVE (its tenure was lost, e.g. a failed sync) asks etcd for a recovery
        at a new epoch, since serving an ACTIVE record without one would skip the SEAL."""
        if s in self.owners or not self.serving():
            return
        if rec.state == "ACTIVE":
            if self.w.now - self.reclaim_sent.get(s, -1e9) > 300:
                self.reclaim_sent[s] = self.w.now
                rec2 = SlotRec(self.name, self.inc, rec.group, rec.learners, "RECOVERING")
                self.send("etcd", ("cas", self.name, "slots/%d" % s, epoch, rec2, ("reclaim", s)))
            return
        self.w.log("%s owns slot %d at epoch %d (%s)" % (self.name, s, epoch, rec.state))
        o = self.owners[s] = Owner(epoch, rec)
        # The old owner may still answer from memory until its own deadline, which etcd
        # cannot bound when it revokes leases early (#15247): wait one TTL from here, the
        # old owner's last renewal having been before the revocation that moved the slot.
        if "no_takeover_wait" not in self.w.p.bugs and not rec.handoff:
            o.serve_after = self.clock() + self.w.p.ttl
        if "serve_before_seal" in self.w.p.bugs:
            self.adopt(s, o, list(self.logs[s].vlog))
            return
        self.seal_round(s)

    # -- SEAL and recovery (new owner) ---------------------------------------------------
    def seal_round(self, s):
        o = self.owners.get(s)
        if o is None or o.state != "SEALING":
            return
        for b in o.rec.group:
            if b not in o.seal_acks:
                if b == self.name:
                    self.on_seal(s, o.epoch, self.name)
                else:
                    self.send(b, ("seal", s, o.epoch, self.name))
        self.timer(self.w.p.retransmit * 3, self.seal_round, s)

    def on_seal(self, s, e, src):
        lg = self.logs[s]
        if e < lg.vmax:
            self.send(src, ("seal_r", s, e, False, lg.vmax, self.name))
            return
        if e > lg.vmax:
            lg.vmax = e
            self.dirty = True
            o = self.owners.get(s)
            if o is not None and src != self.name:
                self.step_down(s, "sealed at epoch %d by %s" % (e, src))
        self.after_sync(self._seal_reply_durable, s, e, src)

    def _seal_reply_durable(self, s, e, src):
        lg = self.logs[s]
        if lg.vmax > e:
            return                 # a newer epoch came: that owner's SEAL wins
        self._seal_reply(s, e, src, tuple(lg.dlog))

    def _seal_reply(self, s, e, src, log):
        if src == self.name:
            self.on_seal_r(s, e, True, log, self.name)
        else:
            self.send(src, ("seal_r", s, e, True, log, self.name))

    def on_seal_r(self, s, e, ok, payload, src):
        o = self.owners.get(s)
        if o is None or o.state != "SEALING" or e != o.epoch:
            return
        if not ok:
            self.step_down(s, "seal refused: epoch %d" % payload)
            return
        o.seal_acks[src] = payload
        if len(o.seal_acks) < len(o.rec.group) // 2 + 1:
            return
        bugs = self.w.p.bugs
        if "any_one_log" in bugs:
            best = o.seal_acks[self.name] if self.name in o.seal_acks else payload
        elif "longest_by_lsn" in bugs:
            best = max(o.seal_acks.values(), key=len)
        else:
            best = max(o.seal_acks.values(), key=lambda lg: (lg[-1][0], len(lg)) if lg else (0, 0))
        self.adopt(s, o, list(best))

    def adopt(self, s, o, log):
        """Takes the chosen log as this box's own, then asks etcd for ACTIVE at a new epoch
        (so a second failover seals the same voters and no recovery is skipped)."""
        lg = self.logs[s]
        keep = 0
        while keep < min(len(log), len(lg.vlog)) and log[keep] == lg.vlog[keep]:
            keep += 1
        lg.truncate(keep)
        lg.vlog.extend(log[keep:])
        # The barrier: a record of this tenure's epoch after the recovered log. Records of
        # older epochs become acknowledged only with it (Raft's no-op of a new term): a
        # recovered record on W copies can still lose to a stale record of a higher epoch
        # on another box in the next recovery, which compares last epochs.
        if "commit_old_records" not in self.w.p.bugs:
            lg.vlog.append((o.epoch, None, None))
        o.barrier = len(lg.vlog)
        self.dirty = True
        o.own_ok_from = self.sync_id + 1
        self.kick_sync()
        o.state_obj = fold(lg.vlog)
        o.commit = 0
        o.state = "ACTIVATING"
        for b in o.rec.group + tuple(l for l, _ in o.rec.learners):
            if b != self.name:
                o.next[b] = len(log) + 1
                o.match[b] = 0
        rec = SlotRec(self.name, self.inc, o.rec.group, o.rec.learners, "ACTIVE")
        self.send("etcd", ("cas", self.name, "slots/%d" % s, o.epoch, rec, ("activate", s)))
        self.timer(300, self._activate_retry, s, o)

    def _activate_retry(self, s, o):
        if self.owners.get(s) is o and o.state == "ACTIVATING":
            rec = SlotRec(self.name, self.inc, o.rec.group, o.rec.learners, "ACTIVE")
            self.send("etcd", ("cas", self.name, "slots/%d" % s, o.epoch, rec, ("activate", s)))
            self.timer(300, self._activate_retry, s, o)

    def on_cas_r(self, key, ok, rev, value, tag):
        if ok:
            self.on_watch(key, (value, rev, 0))
            return
        # Refused: a newer record exists; the watch (or the next range) brings it.
        o = self.owners.get(int(key[6:]))
        if o is not None and tag[0] == "replace":
            o.replacing = False

    def activated(self, s, o):
        o.state = "ACTIVE"
        self.w.log("%s active in slot %d at epoch %d" % (self.name, s, o.epoch))
        self.replicate(s)

    # -- replication (owner side) -------------------------------------------------------
    def followers(self, o):
        return [b for b in o.rec.group if b != self.name] + [l for l, _ in o.rec.learners]

    def replicate(self, s, only=None, streaming=False):
        o = self.owners.get(s)
        if o is None or o.state == "SEALING":
            return
        lg = self.logs[s]
        for b in self.followers(o):
            if only is not None and b != only:
                continue
            nxt = o.next.setdefault(b, len(lg.vlog) + 1)
            o.match.setdefault(b, 0)
            if o.match[b] >= len(lg.vlog) and nxt > len(lg.vlog):
                continue
            if streaming and nxt + self.w.p.batch < len(lg.vlog):
                continue           # catching up: paced by the retransmit tick (a snapshot's pace)
            nxt = max(1, min(nxt, len(lg.vlog) + 1))
            prev = lg.vlog[nxt - 2] if nxt >= 2 else None
            entries = tuple(lg.vlog[nxt - 1:nxt - 1 + self.w.p.batch])
            self.send(b, ("ae", s, o.epoch, nxt - 1, prev[0] if prev else 0, entries, self.name))

    def retransmit(self):
        for s in list(self.owners):
            self.replicate(s)
            self.check_followers(s)
        for s in range(self.w.p.slots):
            e = self.table.get("slots/%d" % s)
            if e is not None and s not in self.owners and e[0].owner == self.name and e[0].inc == self.inc:
                self.claim(s, e[0], e[1])
        self.timer(self.w.p.retransmit, self.retransmit)

    def on_ae_r(self, s, e, ok, val, src):
        o = self.owners.get(s)
        if o is None:
            return
        if ok == "stale":
            if val > o.epoch:
                self.step_down(s, "follower %s is at epoch %d" % (src, val))
            return
        if e < o.since or e > o.epoch:
            return
        if ok == "ok":
            if val > o.match.get(src, 0):
                o.match[src] = val
            o.next[src] = max(o.next.get(src, 1), val + 1)
            if o.next[src] + self.w.p.batch > len(self.logs[s].vlog):
                self.replicate(s, only=src)
            self.advance(s)
        else:                      # mismatch: val is the follower's log length
            o.next[src] = max(1, min(o.next.get(src, 1) - 1, val + 1))
            self.replicate(s, only=src)

    def own_durable(self, s, o):
        if o.own_ok_from is None or self.sync_done < o.own_ok_from:
            return 0
        return len(self.logs[s].dlog)

    def advance(self, s):
        o = self.owners.get(s)
        if o is None or o.state == "SEALING":
            return
        voters = o.rec.group
        counts = []
        for b in voters:
            counts.append(self.own_durable(s, o) if b == self.name else o.match.get(b, 0))
        counts.sort(reverse=True)
        W = self.w.p.W
        if "gate_own_copy" in self.w.p.bugs:
            counts = [self.own_durable(s, o)]
        if len(counts) >= W:
            c = counts[W - 1]
            if c > o.commit and c >= o.barrier:
                o.commit = c
        self.release(s)

    def release(self, s):
        """The output gate: commit covers the response, epoch current as known, lease."""
        o = self.owners.get(s)
        if o is None or o.state != "ACTIVE":
            return
        if not self.serving():
            return
        if self.clock() < o.serve_after:
            if o.pending:
                self.timer((o.serve_after - self.clock()) / self.rate + 0.01, self.release, s)
            return
        keep = []
        for p in o.pending:
            if p[0] <= o.commit:
                self.w.releases.append((self.w.now, self.name, self.inc, s, o.epoch, p[4]))
                self.reply(p[1], p[2], "ok", p[3])
            else:
                keep.append(p)
        o.pending = keep

    def check_followers(self, s):
        """A voter that has not reached, within slow_follower_ms, the log end it was sent
        (or is not live) is replaced: a learner first, which becomes a voter by CAS once it
        holds everything acknowledged (commit), so every majority of the new voters still
        holds every acknowledged record."""
        o = self.owners.get(s)
        if o is not None and o.state == "HANDING":
            self.move_step(s, o)
            return
        if o is None or o.state != "ACTIVE" or o.replacing:
            return
        lg = self.logs[s]
        now = self.w.now
        if o.progress is None or o.commit > o.progress[1] or o.commit >= len(lg.vlog):
            o.progress = (now, o.commit)
        elif now - o.progress[0] > self.w.p.stuck_ms:
            # No quorum for this long (cut off from its followers, not from etcd): hand the
            # slot to another voter, which seals and recovers; this box stops answering now.
            others = [b for b in o.rec.group if b != self.name and self.live(b)]
            if others:
                new = others[self.w.rng.randrange(len(others))]
                inc = self.table["members/" + new][2]
                rec = SlotRec(new, inc, o.rec.group, (), "RECOVERING")
                self.w.log("%s hands slot %d to %s: no quorum for %d ms" % (self.name, s, new, now - o.progress[0]))
                self.send("etcd", ("cas", self.name, "slots/%d" % s, o.epoch, rec, ("handoff", s)))
                self.step_down(s, "handing over")
            return
        if o.rec.learners and o.rec.learners[0][1] == self.name:
            self.move_step(s, o)
            return
        if o.rec.learners:
            new, old = o.rec.learners[0]
            if o.match.get(new, 0) >= o.commit:
                group = tuple(new if b == old else b for b in o.rec.group)
                rec = SlotRec(self.name, self.inc, group, (), "ACTIVE")
                o.replacing = True
                self.w.log("%s promotes %s in slot %d (holds %d, commit %d)" % (
                    self.name, new, s, o.match.get(new, 0), o.commit))
                self.send("etcd", ("cas", self.name, "slots/%d" % s, o.epoch, rec, ("replace", s)))
                self.timer(300, self._unstick, s, o)
            return
        for b in o.rec.group:
            if b == self.name:
                continue
            lag = o.lag_since.get(b)
            if o.match.get(b, 0) >= len(lg.vlog) and self.live(b):
                o.lag_since.pop(b, None)
                continue
            if lag is None or (o.match.get(b, 0) >= lag[1] and self.live(b)):
                o.lag_since[b] = (now, len(lg.vlog))
                continue
            if now - lag[0] < self.w.p.slow_follower_ms:
                continue
            spare = [x for x in self.w.boxes_names if x not in o.rec.group and self.live(x)]
            if not spare:
                return
            new = spare[self.w.rng.randrange(len(spare))]
            o.replacing = True
            self.w.stats["replacements"] += 1
            self.w.log("%s replaces %s by %s in slot %d" % (self.name, b, new, s))
            if "replace_without_catchup" in self.w.p.bugs:
                rec = SlotRec(self.name, self.inc, tuple(new if x == b else x for x in o.rec.group), (), "ACTIVE")
            else:
                rec = SlotRec(self.name, self.inc, o.rec.group, ((new, b),), "ACTIVE")
            self.send("etcd", ("cas", self.name, "slots/%d" % s, o.epoch, rec, ("replace", s)))
            self.timer(300, self._unstick, s, o)
            o.lag_since.clear()
            return

    def move_step(self, s, o):
        """Planned move to the learner C (research 3.6): once C is near the log end this box
        stops answering (HANDING: new requests are refused before any handler), waits for C
        to hold the whole log, then CASes C owner at a new epoch with C in its place among
        the voters, marked as a hand-off so C skips the takeover wait, and steps down."""
        lg = self.logs[s]
        new = o.rec.learners[0][0]
        m = o.match.get(new, 0)
        if o.handing_since is None:
            if m + self.w.p.batch >= len(lg.vlog):
                o.handing_since = self.w.now
                self.w.moves.append((self.w.now, self.name, s))
                if "move_keeps_answering" not in self.w.p.bugs:
                    o.state = "HANDING"
            return
        if self.w.now - o.handing_since > 1000 and not o.move_sent:
            o.state = "ACTIVE"     # C does not catch up: answer again, the move is retried
            o.handing_since = None
            self.release(s)
            return
        # Once the CAS is out, only its outcome, through the watch or a range (slot_changed),
        # lets this box answer again; meanwhile the same CAS is sent again: if the first one
        # went through, this one fails and the table already shows the move.
        if (m >= len(lg.vlog) or o.move_sent) and not o.replacing:
            inc = self.table.get("members/" + new)
            if inc is None or inc[0] is None:
                return
            group = tuple(new if b == self.name else b for b in o.rec.group)
            rec = SlotRec(new, inc[2], group, (), "RECOVERING", handoff=True)
            o.replacing = o.move_sent = True
            self.w.log("%s hands slot %d to %s (planned move, log %d)" % (self.name, s, new, m))
            self.send("etcd", ("cas", self.name, "slots/%d" % s, o.epoch, rec, ("move", s)))
            self.timer(300, self._unstick, s, o)

    def _unstick(self, s, o):
        if self.owners.get(s) is o:
            o.replacing = False

    def step_down(self, s, why):
        o = self.owners.pop(s, None)
        if o is None:
            return
        self.w.log("%s steps down from slot %d: %s" % (self.name, s, why))
        for p in o.pending:
            self.reply(p[1], p[2], "unknown" if p[4] == "append" else "fail", None)

    # -- follower side -------------------------------------------------------------------
    def on_ae(self, s, e, prev_lsn, prev_epoch, entries, src):
        lg = self.logs[s]
        if e < lg.vmax and "accept_old_epoch" not in self.w.p.bugs:
            self.send(src, ("ae_r", s, e, "stale", lg.vmax, self.name))
            return
        if e > lg.vmax:
            lg.vmax = e
            self.dirty = True
        o = self.owners.get(s)
        if o is not None and src != self.name and e > o.epoch:
            self.step_down(s, "records from %s at epoch %d" % (src, e))
        if prev_lsn > len(lg.vlog) or (prev_lsn > 0 and lg.vlog[prev_lsn - 1][0] != prev_epoch):
            self.send(src, ("ae_r", s, e, "mismatch", min(len(lg.vlog), prev_lsn - 1), self.name))
            return
        i = 0
        while i < len(entries) and prev_lsn + i < len(lg.vlog):
            if lg.vlog[prev_lsn + i] != entries[i]:
                lg.truncate(prev_lsn + i)
                break
            i += 1
        lg.vlog.extend(entries[i:])
        self.dirty = True
        upto = prev_lsn + len(entries)
        self.after_sync(self._ae_ack, s, e, upto, src)

    def _ae_ack(self, s, e, upto, src):
        lg = self.logs[s]
        if len(lg.dlog) >= upto:
            self.send(src, ("ae_r", s, e, "ok", upto, self.name))

    # -- the commit log's sync (storage/commit_log.c) -----------------------------------
    def after_sync(self, fn, *args):
        self.wait_sync.append((self.sync_id + 1, fn, args))
        self.dirty = True
        self.kick_sync()

    def kick_sync(self):
        if self.sync_busy or not self.dirty:
            return
        self.sync_busy, self.dirty = True, False
        self.sync_id += 1
        snap = {}
        for s, lg in self.logs.items():
            if lg.diverged or len(lg.dlog) > len(lg.vlog):
                snap[s] = ("full", list(lg.vlog), lg.vmax)
            else:
                snap[s] = ("ext", lg.vlog[len(lg.dlog):], lg.vmax)
            lg.diverged = False
        self.timer(self.w.rng.uniform(*self.w.p.fsync), self.sync_complete, self.sync_id, snap)

    def sync_complete(self, sid, snap):
        self.sync_busy = False
        if self.disk_fail:
            # fsync failed: what it covered may or may not be on disk; never acknowledge it.
            # The box forgets everything since its last good sync and is caught up again.
            for s, lg in self.logs.items():
                lg.vlog = list(lg.dlog)
                lg.diverged = False
                o = self.owners.get(s)
                if o is not None:
                    self.step_down(s, "sync failed")
            self.wait_sync = [x for x in self.wait_sync if x[0] > sid]
            self.dirty = True
            self.timer(20, self.kick_sync)
            return
        for s, (kind, data, vmax) in snap.items():
            lg = self.logs[s]
            if kind == "full":
                lg.dlog = data
            else:
                lg.dlog.extend(data)
            lg.dmax = max(lg.dmax, vmax)
        self.sync_done = sid
        ready = [x for x in self.wait_sync if x[0] <= sid]
        self.wait_sync = [x for x in self.wait_sync if x[0] > sid]
        for _, fn, args in ready:
            fn(*args)
        for s in list(self.owners):
            self.advance(s)
        self.kick_sync()

    # -- clients --------------------------------------------------------------------------
    def on_req(self, client, opid, obj, kind, token):
        s = obj % self.w.p.slots
        o = self.owners.get(s)
        if o is None or o.state != "ACTIVE" or not self.serving():
            e = self.table.get("slots/%d" % s)
            hint = e[0].owner if e else None
            if o is not None and o.state == "HANDING":
                hint = o.rec.learners[0][0]   # (the C code buffers and forwards instead)
            self.reply(client, opid, "fail", hint)
            return
        lg = self.logs[s]
        if kind == "append":
            lg.vlog.append((o.epoch, obj, token))
            o.state_obj.setdefault(obj, []).append(token)
            self.dirty = True
            self.kick_sync()
            self.replicate(s, streaming=True)
        o.pending.append([len(lg.vlog), client, opid, tuple(o.state_obj.get(obj, ())), kind])
        self.release(s)

    def reply(self, client, opid, status, val):
        self.w.send(self.name, client, ("resp", opid, status, val))


def fold(log):
    st = {}
    for _, obj, token in log:
        if obj is not None:        # the barrier records of new owners
            st.setdefault(obj, []).append(token)
    return st


# ---------------------------------------------------------------------------------------
# Clients: one operation at a time each; append a unique token or read the list.

class Client:
    def __init__(self, w, name, etcd):
        self.w, self.name, self.etcd = w, name, etcd
        self.cache = {}
        self.cur = None
        self.n = 0
        w.nodes[name] = self
        w.after(w.rng.uniform(0, 50), self.next_op)

    def next_op(self):
        w = self.w
        if w.stop_clients:
            return
        self.n += 1
        obj = w.rng.randrange(w.p.objects)
        kind = "append" if w.rng.random() < 0.6 else "read"
        token = "%s-%d" % (self.name, self.n) if kind == "append" else None
        op = {"client": self.name, "obj": obj, "kind": kind, "token": token,
              "invoke": w.now, "complete": None, "status": None, "result": None, "box": None}
        w.history.append(op)
        s = obj % w.p.slots
        box = self.cache.get(s)
        if box is None or w.rng.random() < 0.05:
            e = self.etcd.kv.get("slots/%d" % s)
            box = e[0].owner if e else w.rng.choice(w.boxes_names)
        op["box"] = box
        self.cur = (self.n, op)
        w.send(self.name, box, ("req", self.name, self.n, obj, kind, token))
        w.after(w.p.op_timeout, self.timeout, self.n)

    def receive(self, msg):
        _, opid, status, val = msg
        if self.cur is None or self.cur[0] != opid:
            return
        op = self.cur[1]
        s = op["obj"] % self.w.p.slots
        if status == "ok":
            op["result"] = list(val)
            self.cache[s] = op["box"]
        elif status == "fail":
            self.cache[s] = val
        self.finish(op, status)

    def timeout(self, opid):
        if self.cur is not None and self.cur[0] == opid:
            self.cache.pop(self.cur[1]["obj"] % self.w.p.slots, None)
            self.finish(self.cur[1], "unknown" if self.cur[1]["kind"] == "append" else "fail")

    def finish(self, op, status):
        op["complete"], op["status"] = self.w.now, status
        self.cur = None
        self.w.after(self.w.rng.uniform(*self.w.p.think), self.next_op)


# ---------------------------------------------------------------------------------------
# The nemesis: fault cycles, then a heal of everything and a liveness window.

FAULTS = ["crash", "pause", "part_etcd", "part_boxes", "one_way", "isolate", "etcd_leader",
          "disk", "chaos", "crash2", "revoke",
          # composites aimed at one slot's replica group (see README.md, "Nemesis")
          "stale_owner", "cut_owner", "cascade", "move"]


class Nemesis:
    def __init__(self, w, boxes, etcd):
        self.w, self.boxes, self.etcd = w, boxes, etcd
        self.done = 0
        self.healers = []
        self.faults = list(w.p.faults) if w.p.faults else FAULTS
        w.after(1500 + w.rng.uniform(0, 500), self.cycle)

    def victim(self):
        w = self.w
        if w.rng.random() < 0.7:
            s = w.rng.randrange(w.p.slots)
            e = self.etcd.kv.get("slots/%d" % s)
            if e:
                return w.nodes[e[0].owner]
        return w.rng.choice(self.boxes)

    def cycle(self):
        """One cycle: one to three faults at once, each healed after its own duration."""
        w = self.w
        if self.done >= w.p.cycles:
            self.heal_all()
            w.heal_time = w.now
            return
        self.done += 1
        longest = 0
        for i in range(w.rng.choice((1, 1, 1, 2, 2, 3))):
            delay = 0 if i == 0 else w.rng.uniform(0, w.p.ttl)
            kind = w.rng.choice(self.faults)
            dur = w.rng.uniform(0.5, 2.5) * w.p.ttl
            longest = max(longest, delay + dur)
            w.after(delay, self.fault, kind, dur)
        w.after(longest * (0.5 if w.rng.random() < 0.3 else 1.0) + w.rng.uniform(*w.p.cycle_gap), self.cycle)

    def group(self):
        """A slot's owner and its followers, as etcd has them now."""
        s = self.w.rng.randrange(self.w.p.slots)
        e = self.etcd.kv.get("slots/%d" % s)
        if e is None:
            return None, []
        rec = e[0]
        return self.w.nodes[rec.owner], [self.w.nodes[b] for b in rec.group if b != rec.owner]

    def fault(self, kind, dur):
        w = self.w
        if kind in ("stale_owner", "cut_owner", "cascade", "move"):
            return self.composite(kind, dur)
        if ":" in kind:
            kind, name = kind.split(":")
            kind = kind[:-3]
            b = w.nodes[name]
        else:
            b = self.victim()
        others = [x.name for x in self.boxes if x is not b]
        heal = None
        w.log("fault %d: %s %s for %d ms" % (self.done, kind, b.name, dur))
        if kind in ("crash", "crash2"):
            victims = [b] if kind == "crash" else w.rng.sample(self.boxes, 2)
            for v in victims:
                if v.up:
                    v.crash()
            heal = lambda: [v.restart() for v in victims if not v.up]
        elif kind == "pause":
            dur = 2 * w.p.ttl
            if b.paused or not b.up:
                return 0
            b.pause()
            heal = b.resume
        elif kind in ("part_etcd", "part_boxes", "one_way", "isolate"):
            pairs = set()
            if kind in ("part_etcd", "isolate"):
                pairs |= {(b.name, "etcd"), ("etcd", b.name)}
            if kind in ("part_boxes", "isolate"):
                pairs |= {(b.name, o) for o in others} | {(o, b.name) for o in others}
            if kind == "one_way":
                if w.rng.random() < 0.5:
                    pairs |= {(b.name, o) for o in others + ["etcd"]}
                else:
                    pairs |= {(o, b.name) for o in others + ["etcd"]}
            pairs -= w.blocked
            w.blocked |= pairs
            heal = lambda: w.blocked.difference_update(pairs)
        elif kind == "etcd_leader":
            self.etcd.leader_change(w.rng.uniform(500, 2500))
        elif kind == "revoke":
            self.etcd.revoke_all()
        elif kind == "disk":
            # A follower's disk: a box that owns nothing if there is one.
            owners = {e[0].owner for k, e in self.etcd.kv.items() if k.startswith("slots/")}
            idle = [x for x in self.boxes if x.name not in owners]
            b = w.rng.choice(idle) if idle else b
            b.disk_fail = True
            heal = lambda: setattr(b, "disk_fail", False)
        elif kind == "chaos":
            w.extra_loss = 0.3
            heal = lambda: setattr(w, "extra_loss", 0.0)
        if heal is not None:
            self.healers.append(heal)
            w.after(dur, self.heal_one, heal)
        return dur

    def composite(self, kind, dur):
        """stale_owner: the owner loses etcd and etcd revokes every lease (#15247): it keeps
        its deadline while another box takes its slots. cut_owner: the owner loses its
        followers (not etcd), hands over after stuck_ms, then the new owner crashes.
        cascade: one follower's disk fails, the other follower crashes, then the owner."""
        w = self.w
        a, fol = self.group()
        if a is None or not fol:
            return 0
        w.log("fault %d: %s on %s's group" % (self.done, kind, a.name))
        if kind == "stale_owner":
            # The owner loses etcd and hears nothing from the boxes (so no SEAL reaches it),
            # while its own messages still go out, or not; etcd revokes every lease; a
            # follower may crash and come back meanwhile.
            pairs = {(a.name, "etcd"), ("etcd", a.name)}
            pairs |= {(f.name, a.name) for f in fol if w.rng.random() < 0.7}
            if w.rng.random() < 0.3:
                pairs |= {(a.name, f.name) for f in fol}
            pairs -= w.blocked
            w.blocked |= pairs
            h = lambda: w.blocked.difference_update(pairs)
            self.healers.append(h)
            w.after(dur, self.heal_one, h)
            w.after(w.rng.uniform(0, 300), self.etcd.revoke_all)
            for f in fol:
                if w.rng.random() < 0.5:
                    w.after(w.rng.uniform(200, 1500), self.crash_for, f, w.rng.uniform(20, 300))
            return dur
        if kind == "cut_owner":
            t1 = w.p.stuck_ms + w.p.ttl + w.rng.uniform(100, 800)
            dur = t1 + w.rng.uniform(200, 2000)
            self.fault("part_boxes_of:" + a.name, dur)
            w.after(t1, self.crash_new_owner, a.name, w.rng.uniform(500, 3000))
            return dur + 3000
        if kind == "move":
            # An operator's (or the rebalancer's) planned move of the slot to a box outside
            # its group: a learner that will take the owner's place (research 3.6).
            live = self.etcd.live()
            for k, e in sorted(self.etcd.kv.items()):
                spare = [x for x in sorted(live) if k.startswith("slots/") and x not in e[0].group]
                if k.startswith("slots/") and e[0].owner == a.name and spare and not e[0].learners \
                        and e[0].state == "ACTIVE":
                    rec = e[0]
                    c = w.rng.choice(spare)
                    self.etcd.put(k, SlotRec(rec.owner, rec.inc, rec.group, ((c, rec.owner),), "ACTIVE"))
                    w.log("move %s from %s to %s requested" % (k, a.name, c))
                    if w.rng.random() < 0.5:
                        # ... and the owner stops hearing from etcd (its CAS still goes out)
                        # around the time of its hand-over CAS
                        w.after(w.rng.uniform(0, 1500), self.deaf, a.name, w.rng.uniform(0.5, 2) * w.p.ttl)
                    break
            return 500 + 2 * w.p.ttl
        if kind == "cascade":
            # The owner replaces the failing follower, then the other one dies and is
            # replaced too, then the owner dies: who holds what was acknowledged?
            slow, fast = fol[0], fol[-1]
            slow.disk_fail = True
            t1 = w.p.slow_follower_ms + w.rng.uniform(100, 600)
            t2 = t1 + w.p.slow_follower_ms + w.rng.uniform(200, 1500)
            h = lambda: setattr(slow, "disk_fail", False)
            self.healers.append(h)
            w.after(t2 + dur, self.heal_one, h)
            w.after(t1, self.crash_for, fast, t2 - t1 + dur)
            w.after(t2, self.crash_for, a, dur)
            return t2 + dur

    def deaf(self, name, dur):
        pairs = {("etcd", name)} - self.w.blocked
        self.w.blocked |= pairs
        h = lambda: self.w.blocked.difference_update(pairs)
        self.healers.append(h)
        self.w.after(dur, self.heal_one, h)

    def crash_for(self, b, dur):
        if b.up:
            b.crash()
            h = lambda: None if b.up else b.restart()
            self.healers.append(h)
            self.w.after(dur, self.heal_one, h)

    def crash_new_owner(self, old, dur):
        for k, e in sorted(self.etcd.kv.items()):
            if k.startswith("slots/") and e[0].owner != old and old in e[0].group:
                self.crash_for(self.w.nodes[e[0].owner], dur)
                return

    def heal_one(self, heal):
        if heal in self.healers:
            self.healers.remove(heal)
            heal()
            self.w.log("healed")

    def heal_all(self):
        for h in list(self.healers):
            self.heal_one(h)
        w = self.w
        w.blocked.clear()
        w.extra_loss = 0.0
        for b in self.boxes:
            b.disk_fail = False
            if b.paused:
                b.resume()
            if not b.up:
                b.restart()
        w.log("healed all")


def run(seed, params=None, **kw):
    """One run; returns the world (history, releases, events, stats)."""
    p = params or Params(**kw)
    w = World(seed, p)
    w.stop_clients = False
    w.heal_time = None
    etcd = Etcd(w)
    w.boxes_names = ["b%d" % i for i in range(p.boxes)]
    boxes = [Box(w, n, etcd) for n in w.boxes_names]
    for i in range(p.clients):
        Client(w, "c%d" % i, etcd)
    Nemesis(w, boxes, etcd)
    # The nemesis decides when its cycles end; run until then, then the heal window.
    step = 1000
    while w.heal_time is None:
        w.run_until(w.now + step)
        if w.now > 1e8:
            raise RuntimeError("nemesis never finished")
    w.run_until(w.heal_time + p.heal_wait)
    w.stop_clients = True
    w.run_until(w.now + p.op_timeout + 500)
    # Final reads of every object, on the owner etcd names, after everything settled.
    w.end_time = w.now
    return w
