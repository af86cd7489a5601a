"""The processes of the fault harness: three etcd members and three durods on loopback, and
the nftables table that cuts them apart.

Addresses: box i listens on 127.0.0.(11+i), etcd member i on 127.0.0.(21+i) (ports are
free ones). Every box runs as its own uid (BOX_UID + i) so that nftables can tell its packets apart (`meta skuid`):
on loopback an outgoing connection's source address is 127.0.0.1 whatever the box, but the
socket's owner is the process that made it. A rule "uid of box A, to address B: drop" cuts
A's connections to B (A's requests to B's listener, A's answers never go to B's address),
and leaves B's connections to A alone: that is the one-way partition; both rules make the
two-way one. etcd runs as root, so its own peer traffic is never cut."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DUROD = os.environ.get("DUROD", os.path.join(ROOT, "build", "control", "durod"))
DUROCTL = os.path.join(os.path.dirname(DUROD), "duroctl")
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
# Box uids: a range per harness process, so that two runs at once never cut each other.
BOX_UID = 47000 + 4 * (os.getpid() % 4096)
TTL_MS = 2000  # etcd's minimum lease TTL: the shortest fence
CLUSTER = "jepsen"


def mono_us():
    return int(time.monotonic() * 1e6)


def scratch_dir(prefix):
    """On tmpfs when there is one: etcd and the boxes sync a lot, and killed processes
    leave their data there for the restart."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    os.chmod(d, 0o755)  # the boxes run as their own uids
    return d


def box_binary(root):
    """durod where the boxes' uids can run it: a copy in the run's directory (0755), as a
    checkout under a private home (/root is 0700) is not theirs to enter. durod links only
    system libraries."""
    path = os.path.join(root, "durod")
    if not os.path.exists(path):
        shutil.copy2(DUROD, path)
        os.chmod(path, 0o755)
    return path


def free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host, port, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s:%d: the process exited with %s" % (host, port, proc.returncode))
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on %s:%d after %.0f s" % (host, port, timeout))


def stop_proc(proc, sig=signal.SIGKILL, timeout=20):
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        proc.send_signal(sig)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass


class Etcd:
    """n etcd members; data on tmpfs, kept across a kill so that a member restarts."""

    def __init__(self, root, n=3):
        self.n = n
        self.dir = os.path.join(root, "etcd")
        os.makedirs(self.dir)
        self.ip = ["127.0.0.%d" % (21 + i) for i in range(n)]
        self.client = [free_port(self.ip[i]) for i in range(n)]
        self.peer = [free_port(self.ip[i]) for i in range(n)]
        self.procs = [None] * n
        self.started = [False] * n
        self.initial = ",".join("e%d=http://%s:%d" % (i, self.ip[i], self.peer[i]) for i in range(n))

    @property
    def urls(self):
        return ["http://%s:%d" % (self.ip[i], self.client[i]) for i in range(self.n)]

    def start(self, i):
        log = open(os.path.join(self.dir, "e%d.log" % i), "ab")
        peer = "http://%s:%d" % (self.ip[i], self.peer[i])
        self.procs[i] = subprocess.Popen(
            [ETCD, "--name", "e%d" % i, "--data-dir", os.path.join(self.dir, "e%d" % i),
             "--listen-client-urls", self.urls[i], "--advertise-client-urls", self.urls[i],
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", self.initial, "--initial-cluster-token", "duro-jepsen",
             "--initial-cluster-state", "existing" if self.started[i] else "new",
             "--heartbeat-interval", "100", "--election-timeout", "1000"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.started[i] = True

    def status(self, i):
        """(member_id, leader_id) from member i, or None."""
        try:
            c = http.client.HTTPConnection(self.ip[i], self.client[i], timeout=1)
            c.request("POST", "/v3/maintenance/status", body="{}")
            r = json.loads(c.getresponse().read())
            c.close()
            return r["header"]["member_id"], r["leader"]
        except (OSError, ValueError, KeyError, http.client.HTTPException):
            return None

    def leader(self):
        """The index of the leader, or None when no live member names one it also is."""
        ids = {}
        lead = None
        for i in range(self.n):
            if self.procs[i] is None:
                continue
            s = self.status(i)
            if s:
                ids[s[0]] = i
                lead = s[1]
        return ids.get(lead)

    def healthy(self):
        return all(p is not None and p.poll() is None for p in self.procs) and self.leader() is not None

    def kill(self, i):
        stop_proc(self.procs[i])
        self.procs[i] = None

    def close(self):
        for i in range(self.n):
            self.kill(i)


class Box:
    """A cluster durod as its own uid, with its listener, data dir (on tmpfs) and log.
    The log also gets the harness's own lines (its starts and kills), so that activation
    traces can be cut into process lifetimes."""

    def __init__(self, root, i, etcd_urls, extra=None):
        self.i = i
        self.name = "b%d" % i
        self.ip = "127.0.0.%d" % (11 + i)
        self.port = free_port(self.ip)
        self.uid = BOX_UID + i if os.geteuid() == 0 else None
        self.durod = DUROD if self.uid is None else box_binary(root)
        self.dir = os.path.join(root, self.name)
        os.makedirs(self.dir)
        cluster = {"name": CLUSTER, "etcd": etcd_urls, "box": self.name, "lease_ttl_ms": TTL_MS,
                   "etcd_timeout_ms": 500, "rebalance_interval_ms": 300, "settle_ms": 2000}
        cluster.update(extra or {})  # replication's keys, when the durod has them
        self.cfg = {"listeners": ["%s:%d" % (self.ip, self.port)], "data_dir": self.dir,
                    "cores": 1, "cluster": cluster}
        self.cfg_path = os.path.join(root, self.name + ".json")
        with open(self.cfg_path, "w") as f:
            json.dump(self.cfg, f)
        self.log_path = os.path.join(root, self.name + ".log")
        if self.uid is not None:
            os.chown(self.dir, self.uid, self.uid)
        self.proc = None
        self.stopped = False
        self.env = {}

    def mark(self, text):
        with open(self.log_path, "a") as f:
            f.write("harness: %s mono_us %d\n" % (text, mono_us()))

    def start(self, env=None):
        self.env = dict(env or {})
        e = dict(os.environ, DURO_TRACE_ACTIVATIONS="1", **self.env)
        if self.uid is not None:  # DPDK's EAL (the cores' rings) keeps a runtime dir there
            e["XDG_RUNTIME_DIR"] = self.dir
        log = open(self.log_path, "ab")
        kw = {"user": self.uid, "group": self.uid, "extra_groups": []} if self.uid is not None else {}
        self.proc = subprocess.Popen([self.durod, "--config", self.cfg_path], stdout=log,
                                     stderr=subprocess.STDOUT, env=e, **kw)
        log.close()
        self.stopped = False
        self.mark("start pid %d" % self.proc.pid)

    def wait_listening(self, timeout=30):
        wait_port(self.ip, self.port, self.proc, timeout)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=20)
            self.mark("killed pid %d" % self.proc.pid)
        self.proc = None

    def stop(self):
        """SIGTERM: a clean stop (for a restart with another environment)."""
        if self.alive():
            pid = self.proc.pid
            stop_proc(self.proc, signal.SIGTERM)
            self.mark("stopped pid %d" % pid)
        self.proc = None

    def pause(self):
        if self.alive():
            self.proc.send_signal(signal.SIGSTOP)
            self.stopped = True

    def resume(self):
        if self.alive() and self.stopped:
            self.proc.send_signal(signal.SIGCONT)
        self.stopped = False

    def ctl(self, *args, timeout=10):
        return subprocess.run([DUROCTL, "--socket", os.path.join(self.dir, "control.sock")] +
                              list(args), capture_output=True, text=True, timeout=timeout)

    def status(self):
        """duroctl cluster status as a dict, or None."""
        try:
            r = self.ctl("--json", "cluster", "status", timeout=5)
            return json.loads(r.stdout) if r.returncode == 0 else None
        except (subprocess.TimeoutExpired, ValueError):
            return None


def durod_supports(key_path, value):
    """Whether this durod accepts a cluster config key (e.g. replicas, which replication
    brings): --print-config with it exits 0."""
    d = tempfile.mkdtemp(prefix="duro-jepsen-probe-")
    try:
        cfg = {"data_dir": d, "cluster": {"name": "probe", "etcd": ["http://127.0.0.1:1"],
                                          key_path: value}}
        p = os.path.join(d, "c.json")
        with open(p, "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([DUROD, "--config", p, "--print-config"], capture_output=True,
                           text=True, timeout=20)
        return r.returncode == 0
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Firewall:
    """One nftables table of this harness (named after its pid), dropping packets by the
    sending box's uid and the destination address. Deleted on heal and on exit."""

    def __init__(self):
        self.table = "durojepsen%d" % os.getpid()
        self.on = False
        self.rules = []

    @staticmethod
    def available():
        return os.geteuid() == 0 and shutil.which("nft") is not None

    def nft(self, *args, check=True):
        return subprocess.run(["nft"] + list(args), check=check, capture_output=True, timeout=10)

    def drop(self, uid, daddrs):
        if not self.on:
            self.nft("add", "table", "inet", self.table)
            self.nft("add", "chain", "inet", self.table, "out",
                     "{ type filter hook output priority 0 ; }")
            self.on = True
        addrs = "{ %s }" % ", ".join(daddrs)
        self.nft("add", "rule", "inet", self.table, "out", "meta", "skuid", str(uid), "ip",
                 "daddr", addrs, "drop")
        self.rules.append((uid, tuple(daddrs)))

    def sweep_stale(self):
        """Deletes the tables of harness processes that are gone (killed before their own
        cleanup ran): a stale table would go on cutting boxes of a later run."""
        r = self.nft("list", "tables", check=False)
        for line in r.stdout.decode().splitlines():
            name = line.split()[-1] if line.startswith("table inet durojepsen") else ""
            pid = name[len("durojepsen"):]
            if pid.isdigit() and not os.path.exists("/proc/" + pid):
                self.nft("delete", "table", "inet", name, check=False)

    def heal(self):
        if self.on:
            self.nft("delete", "table", "inet", self.table, check=False)
        self.on = False
        self.rules = []
