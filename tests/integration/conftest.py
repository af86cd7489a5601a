"""Fixtures that start a real durod on loopback with its own data directory and port."""
import json
import os
import random
import signal
import socket
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DUROD = os.environ.get("DUROD", os.path.join(ROOT, "build", "control", "durod"))
# durod with the test classes of tests/classes linked in as well (built beside the durod
# under test, never installed): only tests that need a test hook run it, through
# test_classes=True, which also binds the test classes (see config_with_test_classes).
DUROD_TEST = os.environ.get("DUROD_TEST", os.path.join(
    os.path.dirname(os.path.dirname(DUROD)), "tests", "durod-test"))
# "dpdk": durod runs the dpdk backend on scripts/netns-dpdk.sh's veth (in the namespace
# duro-host, where the script left the original network), and the tests, run inside the
# client namespace, reach it at its own address on 10.77.0.0/24.
BACKEND = os.environ.get("DURO_TEST_BACKEND", "uring")
DPDK_HOST_NS = os.environ.get("DURO_NETNS_HOST", "duro-host")
DPDK_IFACE = os.environ.get("DURO_NETNS_HOST_IF", "duro-dpdk0")
DPDK_SUBNET = os.environ.get("DURO_NETNS_SUBNET", "10.77.0")  # scripts/netns-dpdk.sh's /24
DPDK_CLIENT = DPDK_SUBNET + ".2"
# The addresses dpdk_address() hands out (a certificate for tests over dpdk names them all).
DPDK_ADDRESSES = ["%s.%d" % (DPDK_SUBNET, 10 + i) for i in range(200)]
_dpdk_next = [0]


def dpdk_address():
    """A fresh address per durod: two on the same veth then never answer for each other."""
    _dpdk_next[0] += 1
    return DPDK_ADDRESSES[(os.getpid() + _dpdk_next[0]) % len(DPDK_ADDRESSES)]


# Tests that run over the uring backend only, each with its reason: those marked
# @pytest.mark.uring_only("reason"), and those DURO_TEST_URING_ONLY names, one per line,
# "FILE::TEST REASON" (FILE the test file's name, TEST the function's name, so every case of
# a parametrized test), which scripts/test.sh sets for its run over dpdk. Over another
# backend they are deselected, not skipped: they are not tests that could not run, they ran
# in the uring run. When DURO_TEST_LEFT_OUT names a file, each one left out is written there
# with its reason, for scripts/test.sh to list. An entry naming a test that no longer exists
# in a collected file is an error, not a no-op.
def pytest_configure(config):
    config.addinivalue_line("markers", "uring_only(reason): runs over the uring backend only")
    config.addinivalue_line("markers", "own_durod: a fresh durod even in a SHARED_DUROD module")


def _uring_only_from_env():
    named = {}
    for line in os.environ.get("DURO_TEST_URING_ONLY", "").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            if "::" not in name or not reason.strip():
                raise pytest.UsageError("DURO_TEST_URING_ONLY: %r: want FILE::TEST REASON" % line)
            named[name] = reason.strip()
    return named


def pytest_collection_modifyitems(config, items):
    named = _uring_only_from_env()
    used, files, kept, left = set(), set(), [], []
    for item in items:
        base = os.path.basename(item.location[0])
        files.add(base)
        key = "%s::%s" % (base, getattr(item, "originalname", None) or item.name)
        marker = item.get_closest_marker("uring_only")
        reason = named.get(key) or (marker and (marker.args[0] if marker.args else "uring only"))
        if key in named:
            used.add(key)
        if reason and BACKEND != "uring":
            left.append((item, "%s::%s %s" % (base, item.name, reason)))
        else:
            kept.append(item)
    stale = [k for k in named if k not in used and k.split("::")[0] in files]
    if stale:
        raise pytest.UsageError("DURO_TEST_URING_ONLY names tests that do not exist: %s"
                                % ", ".join(stale))
    if left:
        config.hook.pytest_deselected(items=[item for item, _ in left])
        items[:] = kept
    path = os.environ.get("DURO_TEST_LEFT_OUT")
    if path:
        with open(path, "w") as f:
            f.writelines(line + "\n" for _, line in left)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# 30 s: on a loaded 2-core box an ASan durod has been seen to take over 10 s to listen;
# waiting longer costs nothing when it starts in time.
def wait_port(port, proc, timeout=30.0, host="127.0.0.1"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("durod exited early with %s" % proc.returncode)
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("durod did not listen on %d" % port)


# UBSan only prints by default and the process goes on: make every report fatal, with a
# stack, in each durod the tests start (subprocesses inherit this; a run's own
# UBSAN_OPTIONS come after ours, so they win where they overlap).
os.environ["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1" + (
    ":" + os.environ["UBSAN_OPTIONS"] if os.environ.get("UBSAN_OPTIONS") else "")

# What a sanitizer or DURO_ASSERT writes when it finds something: none may appear in the
# output of any durod a test starts.
SANITIZER_MARKS = ("assertion failed", "AddressSanitizer", "LeakSanitizer", "runtime error",
                   "ThreadSanitizer")


def sanitizer_reports(text):
    """The sanitizer marks found in a durod's output (empty when clean)."""
    return [m for m in SANITIZER_MARKS if m in text]


def check_output(text, what="durod"):
    found = sanitizer_reports(text)
    assert not found, "%s reported %s; output:\n%s" % (what, ", ".join(found), text)


def run_durod(args, **kw):
    """subprocess.run of durod with `args` (a refusal, --check-config, --help…), its output
    captured as text and checked for sanitizer reports."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 30)
    kw.setdefault("env", durod_env())
    r = subprocess.run([DUROD] + list(args), **kw)
    check_output((r.stdout or "") + (r.stderr or ""), "durod %s" % " ".join(map(str, args)))
    return r


def wait_until(pred, timeout=10.0, interval=0.02, what=None):
    """Polls pred() until it returns something true, and returns that; fails after timeout
    seconds naming `what` (or pred). Use instead of sleeping for a condition."""
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s"
                                 % (timeout, what or getattr(pred, "__name__", "a condition")))
        time.sleep(interval)


def test_seed(what="seed"):
    """A seed for a randomized test: DURO_TEST_SEED when set (to replay a failure), else a
    fresh one. Printed, so a failing run's captured output names it."""
    env = os.environ.get("DURO_TEST_SEED")
    seed = int(env) if env else random.SystemRandom().randrange(1 << 32)
    print("%s: %d (replay with DURO_TEST_SEED=%d)" % (what, seed, seed))
    return seed


def durod_env(extra=None):
    """The environment for a durod: the test run's, with `extra` on top; ASAN_OPTIONS and
    UBSAN_OPTIONS in `extra` are added to the run's rather than replacing them."""
    env = dict(os.environ)
    for k, v in (extra or {}).items():
        if k in ("ASAN_OPTIONS", "UBSAN_OPTIONS") and env.get(k):
            env[k] = env[k] + ":" + v
        else:
            env[k] = v
    return env


# Under ASan, freed memory is filled with this byte (up to 4 MiB of each block), so bytes a
# send reads after their memory was freed show up on the wire as a run of 0x5a instead of
# going unnoticed: tests of memory lifetimes pass this as env.
ASAN_FILL_FREED = {"ASAN_OPTIONS": "max_free_fill_size=4194304:free_fill_byte=90"}


# The built-in bindings and migrations, as durod has them without a config
# (control/config.c; test_test_classes.py checks that these match). Listing bindings or
# migrations in a config replaces the built-in ones, so a config that binds test classes
# restates these.
BUILTIN_BINDINGS = [("COUNTER", "Counter"), ("ECHO", "Echo"), ("KV", "KV"),
                    ("LIMITER", "RateLimiter"), ("MEMCOUNTER", "MemCounter"),
                    ("TICKER", "Ticker"), ("LOCK", "Lock"), ("ROOM", "ChatRoom"),
                    ("SQLCOUNTER", "SqlCounter"), ("SQL", "Sql"), ("FEED", "Feed"),
                    ("APPEND", "AppendList")]
BUILTIN_MIGRATIONS = [
    {"tag": "builtin-v1", "new_classes": ["Counter", "Echo", "KV", "RateLimiter", "MemCounter",
                                          "Ticker", "Lock"]},
    {"tag": "builtin-v2", "new_classes": ["ChatRoom"]},
    {"tag": "builtin-v3", "new_classes": ["SqlCounter", "Sql"]},
    {"tag": "builtin-v4", "new_classes": ["Feed"]},
    {"tag": "builtin-v5", "new_classes": ["AppendList"]},
]
# Test classes (tests/classes): each is the built-in class it names plus test hooks.
TEST_CLASSES = {"KV": "TestKV", "Echo": "TestEcho", "Ticker": "TestTicker",
                "ChatRoom": "TestRoom", "Sql": "TestSql"}


def config_with_test_classes(config=None):
    """`config` with the built-in bindings restated and the built-in classes that have a test
    class rebound to it under the same binding (so /kv/, /echo/ and /ticker/ reach the test
    classes), after the built-in migrations and one adding the test classes."""
    config = dict(config or {})
    assert "durable_objects" not in config and "migrations" not in config
    config["durable_objects"] = {"bindings": [
        {"name": name, "class_name": TEST_CLASSES.get(cls, cls)} for name, cls in BUILTIN_BINDINGS]}
    config["migrations"] = BUILTIN_MIGRATIONS + [
        {"tag": "tests-v1", "new_classes": sorted(TEST_CLASSES.values())}]
    return config


# Every durod started during the current test, whatever started it: the autouse fixture
# `durods_checked` stops them and checks their logs at the end of each test.
_started = []



def control_raw(sock_path, line, timeout=10.0):
    """Bytes `line` sent on a durod's control socket at sock_path; the reply's bytes, up
    to its newline (or whatever came before the socket closed)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(line)
        data = b""
        while not data.endswith(b"\n"):
            b = s.recv(65536)
            if not b:
                break
            data += b
    finally:
        s.close()
    return data


def control_request(sock_path, req, timeout=10.0):
    """One request on a durod's control socket (a dict, as duroctl sends it); the reply."""
    return json.loads(control_raw(sock_path, json.dumps(req).encode() + b"\n", timeout))

class Durod:
    def __init__(self, tmp_path, config=None, cores=2, extra_args=(), backend=None,
                 dpdk_args=None, host=None, wait=True, env=None, data_dir=None,
                 test_classes=False, listen=True):
        """listen=False: no --listen, so durod serves the config's listeners (over dpdk,
        on self.host); self.port is then unused and `wait` is the caller's to do."""
        self.port = free_port()
        self.data_dir = str(data_dir or tmp_path / "data")
        self.log_path = str(tmp_path / "durod.log")
        self.backend = backend or BACKEND
        self.host = "127.0.0.1"
        prefix = []
        dpdk = []
        if self.backend == "dpdk":
            self.host = host or dpdk_address()
            prefix = ["ip", "netns", "exec", DPDK_HOST_NS]
            dpdk = dpdk_args if dpdk_args is not None else [
                "--dpdk-vdev", "net_af_packet0,iface=%s,qpairs=%d" % (DPDK_IFACE, cores)]
            dpdk = ["--backend", "dpdk", "--dpdk-ipv4", self.host + "/24"] + dpdk
        # test_classes="raw": the test-classes binary with `config` as given (a test that
        # binds test classes of its own, such as TestCall).
        if test_classes and test_classes != "raw":
            config = config_with_test_classes(config)
        args = prefix + [DUROD_TEST if test_classes else DUROD]
        if listen:
            args += ["--listen", "%s:%d" % (self.host, self.port)]
        args += ["--data-dir", self.data_dir, "--cores", str(cores)] + dpdk
        # Small commit logs: each is zero-filled when made (64 MiB by default), and tests
        # start durod often. It also makes rotation happen in the tests.
        config = dict(config or {})
        config["storage"] = {"log_rotate_bytes": 4 << 20, **config.get("storage", {})}
        cfg_path = tmp_path / "duro.json"
        cfg_path.write_text(json.dumps(config))
        args += ["--config", str(cfg_path)]
        args += list(extra_args)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=durod_env(env))
        _started.append(self)
        if wait and listen:
            wait_port(self.port, self.proc, host=self.host)

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def connect(self, timeout=5.0):
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def stop(self, timeout=15.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        self.log.close()
        return rc

    def logtext(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def control(self, req, timeout=10.0):
        """One request on the control socket (a dict, as duroctl sends it); the reply."""
        return control_request(os.path.join(self.data_dir, "control.sock"), req, timeout)

    def object_info(self, binding, name):
        """What `duroctl object BINDING NAME` shows: in_memory, core, deferred, sockets…"""
        r = self.control({"cmd": "object", "binding": binding, "name": name})
        assert r.get("ok"), r
        return r

    def evict(self, binding, name, timeout=10.0):
        """Unloads the object now (retrying while its writes are not yet applied) and checks
        that it is out of memory."""
        wait_until(lambda: self.control({"cmd": "evict", "binding": binding, "name": name}).get("ok"),
                   timeout, what="evicting %s %s" % (binding, name))
        assert not self.object_info(binding, name)["in_memory"]

    def wait_evicted(self, binding, name, timeout=10.0):
        """Waits until idle eviction has unloaded the object (not in memory)."""
        wait_until(lambda: not self.object_info(binding, name)["in_memory"], timeout,
                   what="%s %s to be evicted" % (binding, name))


def start_on(tmp_path, name, data_dir, config=None, **kw):
    """Starts another durod on an existing data directory (a restart), logging under
    tmp_path/name. It is checked like every other at the end of the test."""
    sub = tmp_path / name
    sub.mkdir()
    return Durod(sub, config=config, data_dir=data_dir, **kw)


def check_durod(d, expect_clean_exit):
    """Stops d if it still runs (it must exit 0 on SIGTERM when `expect_clean_exit`), then
    checks its log for sanitizer reports and failed assertions."""
    if d.proc.poll() is None:
        rc = d.stop()
        if expect_clean_exit:
            assert rc == 0, "durod exited %s on SIGTERM; log:\n%s" % (rc, d.logtext())
    elif not d.log.closed:
        d.log.close()
    check_output(d.logtext(), "durod (log %s)" % d.log_path)


# Durods shared by the tests of a module (start_shared): each must still run after every
# test with its log so far clean, so a report fails the test during which it appeared; at
# the module's end (stop_shared) it must exit 0 on SIGTERM with a clean log, like any.
_shared = []


def start_shared(tmp_path_factory, name="shared-durod", **kw):
    """A durod (Durod's arguments) for several tests of a module: for a module-scoped
    fixture, which ends it with stop_shared."""
    d = Durod(tmp_path_factory.mktemp(name), **kw)
    _started.remove(d)  # not the durod of the test that happened to start it
    d.checked_upto, d.exit_reported = 0, False
    _shared.append(d)
    return d


def stop_shared(d):
    _shared.remove(d)
    check_durod(d, expect_clean_exit=True)


@pytest.fixture(autouse=True)
def durods_checked():
    """Every durod a test started — by the factory, start_on or Durod directly, restarts
    included — is stopped and its log checked when the test ends; every shared durod must
    still run, its log so far clean."""
    del _started[:]
    yield
    started = list(_started)
    del _started[:]
    errors = []
    for d in started:
        try:
            check_durod(d, expect_clean_exit=True)
        except AssertionError as e:
            errors.append(str(e))
    for d in _shared:
        text = d.logtext()
        found = sanitizer_reports(text[d.checked_upto:])
        d.checked_upto = len(text)
        if found:
            errors.append("the shared durod (log %s) reported %s during this test; log:\n%s"
                          % (d.log_path, ", ".join(found), text))
        if d.proc.poll() is not None and not d.exit_reported:
            d.exit_reported = True
            errors.append("the shared durod (log %s) exited %s during this test; log:\n%s"
                          % (d.log_path, d.proc.returncode, text))
    assert not errors, "\n\n".join(errors)


@pytest.fixture
def durod_factory(tmp_path):
    started = []

    def make(**kw):
        sub = tmp_path / ("d%d" % len(started))
        sub.mkdir()
        d = Durod(sub, **kw)
        started.append(d)
        return d

    return make


# A module that sets SHARED_DUROD = True gives its tests that ask for `durod` one durod (the
# default config) for the whole module, unless a test is marked own_durod: a start costs
# about a second under ASan and two over dpdk, and most tests of such a module only make
# requests to objects of their own names. Modules share durods of other configs the same
# way with start_shared/stop_shared in a module-scoped fixture.
@pytest.fixture(scope="module")
def shared_durod(tmp_path_factory):
    d = start_shared(tmp_path_factory)
    yield d
    if d in _shared:
        stop_shared(d)


def _uses_shared_durod(item):
    return ("durod" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("own_durod")
            and getattr(item.module, "SHARED_DUROD", False))


@pytest.fixture
def durod(request, durod_factory):
    if not _uses_shared_durod(request.node):
        yield durod_factory()
        return
    d = request.getfixturevalue("shared_durod")
    yield d
    # Stopped (and checked) after the module's last test that uses it: an idle durod over
    # dpdk polls a third of a CPU, which the module's later tests on a 2-CPU box need.
    items = request.session.items
    later = items[items.index(request.node) + 1:]
    if d in _shared and not any(i.module is request.module and _uses_shared_durod(i) for i in later):
        stop_shared(d)


def recv_all(sock, timeout=5.0):
    """Reads until the server closes the connection."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            b = sock.recv(65536)
        except ConnectionResetError:
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


def read_responses(sock, count, timeout=5.0):
    """Reads `count` complete HTTP responses; returns (status, headers, body) tuples."""
    sock.settimeout(timeout)
    buf = b""
    out = []
    while len(out) < count:
        while b"\r\n\r\n" not in buf:
            b = sock.recv(65536)
            if not b:
                raise EOFError("closed after %d responses" % len(out))
            buf += b
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        if status == 100:
            n = 0
        while len(rest) < n:
            b = sock.recv(65536)
            if not b:
                raise EOFError("closed inside a body")
            rest += b
        out.append((status, headers, rest[:n]))
        buf = rest[n:]
    return out
