"""Fixtures that start a real durod on loopback with its own data directory and port."""
import json
import os
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
_dpdk_next = [0]


def dpdk_address():
    """A fresh address per durod: two on the same veth then never answer for each other."""
    _dpdk_next[0] += 1
    return "%s.%d" % (DPDK_SUBNET, 10 + (os.getpid() + _dpdk_next[0]) % 200)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10.0, host="127.0.0.1"):
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
                    ("TICKER", "Ticker"), ("LOCK", "Lock"), ("ROOM", "ChatRoom")]
BUILTIN_MIGRATIONS = [
    {"tag": "builtin-v1", "new_classes": ["Counter", "Echo", "KV", "RateLimiter", "MemCounter",
                                          "Ticker", "Lock"]},
    {"tag": "builtin-v2", "new_classes": ["ChatRoom"]},
]
# Test classes (tests/classes): each is the built-in class it names plus test hooks.
TEST_CLASSES = {"KV": "TestKV", "Echo": "TestEcho", "Ticker": "TestTicker"}


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


class Durod:
    def __init__(self, tmp_path, config=None, cores=2, extra_args=(), backend=None,
                 dpdk_args=None, host=None, wait=True, env=None, test_classes=False):
        self.port = free_port()
        self.data_dir = str(tmp_path / "data")
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
        if test_classes:
            config = config_with_test_classes(config)
        args = prefix + [DUROD_TEST if test_classes else DUROD, "--listen", "%s:%d" % (self.host, self.port), "--data-dir",
                         self.data_dir, "--cores", str(cores)] + dpdk
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
        if wait:
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
        with open(self.log_path) as f:
            return f.read()


def start_on(tmp_path, name, data_dir, config=None, test_classes=False):
    """Starts another durod on an existing data directory (a restart), logging under
    tmp_path/name."""
    sub = tmp_path / name
    sub.mkdir()
    return Durod(sub, config=config, extra_args=["--data-dir", str(data_dir)],
                 test_classes=test_classes)


@pytest.fixture
def durod_factory(tmp_path):
    started = []

    def make(**kw):
        sub = tmp_path / ("d%d" % len(started))
        sub.mkdir()
        d = Durod(sub, **kw)
        started.append(d)
        return d

    yield make
    for d in started:
        if d.proc.poll() is None:
            rc = d.stop()
            assert rc == 0, "durod exited %s on SIGTERM; log:\n%s" % (rc, d.logtext())
        assert "assertion failed" not in d.logtext()
        assert "AddressSanitizer" not in d.logtext(), d.logtext()
        assert "runtime error" not in d.logtext(), d.logtext()


@pytest.fixture
def durod(durod_factory):
    return durod_factory()


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
