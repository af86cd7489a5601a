#!/usr/bin/python3
"""Crash harness: SIGKILL durod again and again under write load, sometimes again while it
starts up (replaying its commit logs), and check that no acknowledged write was lost and
none was invented. bench/README.md ("Crash cycles") has the figures and the command.

Each cycle starts durod on the same data directory, checks every counter and KV key the
clients ever wrote against what was acknowledged and what was only sent, then lets
--clients threads write until a SIGKILL at a random 0.2-2 s. Before a cycle's start is
let through, a kill during start-up may come (--recovery-kill-rate): at a random delay
within the start-up time seen so far, just after the log says the commit logs were
replayed (replayed records in RocksDB's memtables, the logs not yet removed), or as soon
as the port answers (fresh logs made, nothing served).

Load, per client thread (one request in flight each):
  POST /counter/jc-N               50 counters shared by every client ("acknowledged" is
                                   the value answered; the count after a restart must be
                                   at least the highest one and at most the count seen at
                                   the last check plus the increments sent since)
  POST /kv/kvN/batch               "put pa<c> V\\nput pb<c> V": both keys or neither
                                   (all-or-nothing), V at least the last acknowledged
  PUT  /kv/kvN/k/big<c>            a 1-300 KiB value whose bytes follow from its version
Versions are per client and key, so a value read back must be one that was sent, not older
than the last acknowledged, byte for byte.

Defaults are the configuration of issue 14 (64 KiB commit logs, 1 MiB memtables, two
cores). Every loop is bounded in count and time; the seed is printed first, and the same
seed makes the same choices (the timing, and so the interleaving, stays the machine's).

  /usr/bin/python3 bench/crash.py --cycles 300 [--seed N] [--durod build/control/durod]
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DUROD = os.path.join(ROOT, "build", "control", "durod")
REPLAYED = "storage: replayed"
SERVING = ": serving on "
SAN_MARKS = ("AddressSanitizer", "runtime error", "assertion failed", "LeakSanitizer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def big_value(client, ver):
    """The bytes of big<client> at version ver: 1-300 KiB, a header and a keyed pattern."""
    h = hashlib.sha256(b"%d:%d" % (client, ver)).digest()
    size = 1024 + int.from_bytes(h[:4], "little") % (300 * 1024)
    head = b"ver %d\n" % ver
    body = (h * (size // len(h) + 1))[:size]
    return head + body


def pair_value(client, ver):
    return "%d-%s" % (ver, hashlib.sha256(b"p%d:%d" % (client, ver)).hexdigest()[:24])


class Failure(Exception):
    pass


class Model:
    """What the clients were told and what they sent, per counter and per KV key."""

    def __init__(self, ncounters, nclients):
        self.lock = threading.Lock()
        self.counters = ["jc-%d" % i for i in range(ncounters)]
        self.acked = {n: 0 for n in self.counters}    # highest value answered
        self.seen = {n: 0 for n in self.counters}     # value read at the last check
        self.sent = {n: 0 for n in self.counters}     # increments sent since that check
        # KV keys: (client, kind) -> versions; kind "pair" or "big"
        self.kv_acked = {}
        self.kv_sent = {}
        self.nclients = nclients
        self.writes_acked = 0
        self.other_status = 0

    def kv_next(self, key):
        with self.lock:
            v = self.kv_sent.get(key, 0) + 1
            self.kv_sent[key] = v
            return v

    def kv_ack(self, key, ver):
        with self.lock:
            self.kv_acked[key] = max(self.kv_acked.get(key, 0), ver)
            self.writes_acked += 1


def kv_object(client):
    return "kv%d" % (client % 4)


class Client(threading.Thread):
    def __init__(self, port, model, index, rnd, stop, deadline):
        super().__init__(daemon=True)
        self.port, self.model, self.index, self.rnd = port, model, index, rnd
        self.stop, self.deadline = stop, deadline

    def run(self):
        m = self.model
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        except OSError:
            return
        ops = 0
        while not self.stop.is_set() and time.monotonic() < self.deadline and ops < 100000:
            ops += 1
            pick = self.rnd.random()
            try:
                if pick < 0.7:
                    name = self.rnd.choice(m.counters)
                    with m.lock:
                        m.sent[name] += 1
                    conn.request("POST", "/counter/" + name)
                    r = conn.getresponse()
                    body = r.read()
                    if r.status == 200:
                        with m.lock:
                            m.acked[name] = max(m.acked[name], int(body))
                            m.writes_acked += 1
                    else:
                        with m.lock:
                            m.other_status += 1
                elif pick < 0.95:
                    key = (self.index, "pair")
                    ver = m.kv_next(key)
                    v = pair_value(self.index, ver)
                    body = "put pa%d %s\nput pb%d %s\n" % (self.index, v, self.index, v)
                    conn.request("POST", "/kv/%s/batch" % kv_object(self.index), body=body)
                    r = conn.getresponse()
                    r.read()
                    if r.status == 200:
                        m.kv_ack(key, ver)
                    else:
                        with m.lock:
                            m.other_status += 1
                else:
                    key = (self.index, "big")
                    ver = m.kv_next(key)
                    conn.request("PUT", "/kv/%s/k/big%d" % (kv_object(self.index), self.index),
                                 body=big_value(self.index, ver))
                    r = conn.getresponse()
                    r.read()
                    if r.status == 204:
                        m.kv_ack(key, ver)
                    else:
                        with m.lock:
                            m.other_status += 1
            except (OSError, http.client.HTTPException, ValueError):
                return  # killed: what was in flight stays "sent"
        conn.close()


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read()


class Harness:
    def __init__(self, durod, work_dir, seed, cycles, clients=16, counters=50, cores=2,
                 rotate=65536, write_buffer=1 << 20, recovery_kill_rate=0.2,
                 kill_min=0.2, kill_max=2.0, max_seconds=3600.0, config_extra=None, keep_logs=False,
                 out=sys.stdout):
        self.keep_logs = keep_logs
        self.durod, self.work_dir, self.seed, self.cycles = durod, work_dir, seed, cycles
        self.clients, self.cores = clients, cores
        self.recovery_kill_rate, self.kill_min, self.kill_max = recovery_kill_rate, kill_min, kill_max
        self.max_seconds = max_seconds
        self.rnd = random.Random(seed)
        self.model = Model(counters, clients)
        self.data_dir = os.path.join(work_dir, "data")
        self.out = out
        config = {"storage": {"log_rotate_bytes": rotate, "write_buffer_bytes": write_buffer}}
        for k, v in (config_extra or {}).items():
            config[k] = {**config.get(k, {}), **v} if isinstance(v, dict) else v
        self.config_path = os.path.join(work_dir, "duro.json")
        with open(self.config_path, "w") as f:
            json.dump(config, f)
        self.starts = 0
        self.proc = None
        self.stats = {"cycles": 0, "recovery_kills": 0, "recovery_kills_after_replay": 0,
                      "recovery_kills_at_port": 0, "recovery_kills_random": 0,
                      "checks": 0, "counter_checks": 0, "kv_checks": 0, "replayed_records": 0}
        self.startup_times = []

    def say(self, text):
        print(text, file=self.out, flush=True)

    def log_path(self, n):
        return os.path.join(self.work_dir, "durod-%d.log" % (n % 4))

    def spawn(self):
        self.port = free_port()
        self.starts += 1
        if self.keep_logs:
            # What this start will replay, for a post-mortem (the last three starts).
            src = os.path.join(self.data_dir, "commit-log")
            dst = os.path.join(self.work_dir, "logs-before-start-%d" % self.starts)
            shutil.rmtree(os.path.join(self.work_dir, "logs-before-start-%d" % (self.starts - 3)),
                          ignore_errors=True)
            if os.path.isdir(src):
                shutil.copytree(src, dst)
        self.cur_log = self.log_path(self.starts)
        self.logf = open(self.cur_log, "w")
        args = [self.durod, "--listen", "127.0.0.1:%d" % self.port, "--data-dir", self.data_dir,
                "--cores", str(self.cores), "--config", self.config_path]
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT)
        self.spawned = time.monotonic()

    def logtext(self):
        self.logf.flush()
        with open(self.cur_log, errors="replace") as f:
            return f.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise Failure("durod did not die within 30 s of SIGKILL")
        self.logf.close()
        self.check_log(killed=True)

    def check_log(self, killed):
        text = open(self.cur_log, errors="replace").read()
        for mark in SAN_MARKS:
            if mark in text:
                raise Failure("durod log has %r:\n%s" % (mark, text[-4000:]))
        if killed and self.proc.returncode != -signal.SIGKILL:
            raise Failure("durod exited with %s before the kill:\n%s" % (self.proc.returncode, text[-4000:]))

    def port_answers(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def wait_ready(self, timeout=60.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                self.logf.close()
                raise Failure("durod exited with %s while starting:\n%s" %
                              (self.proc.returncode, open(self.cur_log, errors="replace").read()[-4000:]))
            if self.port_answers():
                self.startup_times.append(time.monotonic() - self.spawned)
                return
            time.sleep(0.01)
        raise Failure("durod did not answer on %d within %.0f s" % (self.port, timeout))

    def kill_during_startup(self):
        """Spawns durod and kills it before it serves: when the log says the commit logs
        were replayed, as soon as the port answers, or at a random delay within the
        start-up time seen so far."""
        how = self.rnd.choice(["after_replay", "at_port", "random"])
        est = sorted(self.startup_times)[len(self.startup_times) // 2] if self.startup_times else 0.3
        delay = self.rnd.uniform(0.0, est)
        self.spawn()
        end = time.monotonic() + 30.0
        while time.monotonic() < end and self.proc.poll() is None:
            if how == "after_replay":
                text = self.logtext()
                if REPLAYED in text or SERVING in text:
                    break
            elif how == "at_port":
                if self.port_answers():
                    break
            elif time.monotonic() - self.spawned >= delay:
                break
            time.sleep(0.001 if how == "after_replay" else 0.005)
        text = self.logtext()
        phase = "serving" if SERVING in text else "after replay" if REPLAYED in text else "before replay"
        self.kill()
        self.stats["recovery_kills"] += 1
        self.stats["recovery_kills_" + how] += 1
        key = "killed_" + phase.replace(" ", "_")
        self.stats[key] = self.stats.get(key, 0) + 1
        return how, phase

    def verify(self):
        """Every counter and key against the model: nothing acknowledged lost, nothing
        that was never sent, pairs whole."""
        m = self.model
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        problems = []
        for n in m.counters:
            st, body = get(conn, "/counter/" + n)
            if st != 200:
                problems.append("GET /counter/%s: %d" % (n, st))
                continue
            v = int(body)
            lo, hi = max(m.acked[n], m.seen[n]), m.seen[n] + m.sent[n]
            if v < lo:
                problems.append("LOST: counter %s reads %d, acknowledged %d (read %d at the last check)" %
                                (n, v, m.acked[n], m.seen[n]))
            if v > hi:
                problems.append("INVENTED: counter %s reads %d, at most %d were sent" % (n, v, hi))
            m.seen[n], m.sent[n] = v, 0
            self.stats["counter_checks"] += 1
        for c in range(m.nclients):
            obj = kv_object(c)
            # the pair: both keys at one version, at least the acknowledged one
            key = (c, "pair")
            acked, sent = m.kv_acked.get(key, 0), m.kv_sent.get(key, 0)
            vals = []
            for k in ("pa%d" % c, "pb%d" % c):
                st, body = get(conn, "/kv/%s/k/%s" % (obj, k))
                vals.append(body.decode() if st == 200 else None)
                if st not in (200, 404):
                    problems.append("GET %s/%s: %d" % (obj, k, st))
            if vals[0] != vals[1]:
                problems.append("TORN BATCH: client %d pair reads %r / %r" % (c, vals[0], vals[1]))
            ver = int(vals[0].split("-")[0]) if vals[0] else 0
            if ver < acked:
                problems.append("LOST: pair of client %d at version %d, acknowledged %d" % (c, ver, acked))
            if ver > sent or (ver and vals[0] != pair_value(c, ver)):
                problems.append("INVENTED: pair of client %d reads %r (sent up to %d)" % (c, vals[0], sent))
            # the big value
            key = (c, "big")
            acked, sent = m.kv_acked.get(key, 0), m.kv_sent.get(key, 0)
            st, body = get(conn, "/kv/%s/k/big%d" % (obj, c))
            ver = 0
            if st == 200:
                try:
                    ver = int(body.split(b"\n", 1)[0].split()[1])
                except (IndexError, ValueError):
                    ver = -1
                if ver < 1 or ver > sent or body != big_value(c, ver):
                    problems.append("INVENTED: big%d reads %d bytes, version %d (sent up to %d)" %
                                    (c, len(body), ver, sent))
            elif st != 404:
                problems.append("GET %s/big%d: %d" % (obj, c, st))
            if ver < acked:
                problems.append("LOST: big%d at version %d, acknowledged %d" % (c, ver, acked))
            self.stats["kv_checks"] += 3
        conn.close()
        self.stats["checks"] += 1
        return problems

    def load_and_kill(self, cycle):
        stop = threading.Event()
        after = self.rnd.uniform(self.kill_min, self.kill_max)
        deadline = time.monotonic() + after + 30.0
        threads = [Client(self.port, self.model, i, random.Random(self.seed * 1000003 + cycle * 1009 + i),
                          stop, deadline) for i in range(self.clients)]
        for t in threads:
            t.start()
        time.sleep(after)
        self.kill()
        stop.set()
        for t in threads:
            t.join(timeout=30)
            if t.is_alive():
                raise Failure("a client thread did not end within 30 s of the kill")

    def run(self):
        self.say("crash: seed %d, %d cycles, %d clients, durod %s, config %s" %
                 (self.seed, self.cycles, self.clients, self.durod, open(self.config_path).read()))
        os.makedirs(self.data_dir, exist_ok=True)
        t0 = time.monotonic()
        for cycle in range(self.cycles):
            if time.monotonic() - t0 > self.max_seconds:
                self.say("crash: time limit (%.0f s) reached after %d cycles" % (self.max_seconds, cycle))
                break
            kills = []
            # Up to two kills while starting up, then a start that is let through.
            for _ in range(2):
                if self.rnd.random() >= self.recovery_kill_rate:
                    break
                kills.append(self.kill_during_startup())
            self.spawn()
            self.wait_ready()
            replayed = self.logtext()
            for line in replayed.splitlines():
                if REPLAYED in line:
                    try:
                        self.stats["replayed_records"] += int(line.split(REPLAYED)[1].split()[0])
                    except (IndexError, ValueError):
                        pass
            problems = self.verify()
            if problems:
                self.say("crash: cycle %d (seed %d): %d problems after start %d%s" %
                         (cycle, self.seed, len(problems), self.starts,
                          " after start-up kills %s" % kills if kills else ""))
                for p in problems[:40]:
                    self.say("  " + p)
                self.kill()
                raise Failure("cycle %d: %s" % (cycle, problems[0]))
            self.load_and_kill(cycle)
            self.stats["cycles"] += 1
            if (cycle + 1) % 10 == 0 or cycle + 1 == self.cycles:
                self.say("crash: %d cycles, %d start-up kills, %d writes acknowledged, %d values checked, 0 lost (%.0f s)" %
                         (cycle + 1, self.stats["recovery_kills"], self.model.writes_acked,
                          self.stats["counter_checks"] + self.stats["kv_checks"], time.monotonic() - t0))
        # A last start and check, then a clean stop that must leave no logs behind.
        self.spawn()
        self.wait_ready()
        problems = self.verify()
        if problems:
            for p in problems[:40]:
                self.say("  " + p)
            self.kill()
            raise Failure("final check: %s" % problems[0])
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failure("durod did not stop within 60 s of SIGTERM")
        self.logf.close()
        self.check_log(killed=False)
        if rc != 0:
            raise Failure("durod exited %d on SIGTERM" % rc)
        left = os.listdir(os.path.join(self.data_dir, "commit-log"))
        if left:
            raise Failure("commit logs left after a clean stop: %s" % left)
        self.stats["writes_acknowledged"] = self.model.writes_acked
        self.stats["other_status"] = self.model.other_status
        self.stats["seconds"] = round(time.monotonic() - t0, 1)
        self.say("crash: done, seed %d: %s" % (self.seed, json.dumps(self.stats)))
        return self.stats

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--durod", default=DEFAULT_DUROD)
    ap.add_argument("--cycles", type=int, default=300)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--counters", type=int, default=50)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--rotate", type=int, default=65536, help="storage.log_rotate_bytes")
    ap.add_argument("--write-buffer", type=int, default=1 << 20, help="storage.write_buffer_bytes")
    ap.add_argument("--buffered", action="store_true", help="storage.log_direct_io false")
    ap.add_argument("--recovery-kill-rate", type=float, default=0.2)
    ap.add_argument("--kill-min", type=float, default=0.2)
    ap.add_argument("--kill-max", type=float, default=2.0)
    ap.add_argument("--max-seconds", type=float, default=3 * 3600)
    ap.add_argument("--keep-logs", action="store_true",
                    help="copy the commit logs before each start (the last three kept) for a post-mortem")
    ap.add_argument("--work-dir", default=None, help="kept after the run (default: a temporary one, removed if all passed)")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 31)
    work = a.work_dir or tempfile.mkdtemp(prefix="duro-crash-", dir=os.path.join(ROOT, "build"))
    os.makedirs(work, exist_ok=True)
    extra = {"storage": {"log_direct_io": False}} if a.buffered else None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that durod is killed too
    h = Harness(a.durod, work, seed, a.cycles, clients=a.clients, counters=a.counters, cores=a.cores,
                rotate=a.rotate, write_buffer=a.write_buffer, recovery_kill_rate=a.recovery_kill_rate,
                kill_min=a.kill_min, kill_max=a.kill_max, max_seconds=a.max_seconds, config_extra=extra,
                keep_logs=a.keep_logs)
    try:
        h.run()
    except Failure as e:
        print("crash: FAILED (seed %d, data kept in %s): %s" % (seed, work, e), flush=True)
        h.cleanup()
        return 1
    except BaseException:
        h.cleanup()
        raise
    if not a.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
