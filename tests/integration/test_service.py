"""durod as a service: systemd's readiness protocol (READY=1 once every core serves,
STOPPING=1 at the drain) over $NOTIFY_SOCKET, and an operator's log with nothing but log
lines in it (no raw DPDK output)."""
import re
import signal
import socket
import subprocess
import time

from conftest import DUROD, free_port, read_responses


def notify_socket(tmp_path, abstract=False):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = "duro-test-notify-%d-%d" % (free_port(), time.time_ns() % 1000000)
        s.bind("\0" + name)
        return s, "@" + name
    path = str(tmp_path / "notify.sock")
    s.bind(path)
    return s, path


def wait_message(sock, key, timeout=30.0, seen=None):
    """Reads datagrams until one has the line `key`; returns that message's lines."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        sock.settimeout(max(0.01, deadline - time.time()))
        try:
            msg = sock.recv(4096).decode().split("\n")
        except socket.timeout:
            break
        if seen is not None:
            seen.append(msg)
        if key in msg:
            return msg
    raise AssertionError("no %s within %s s (got %s)" % (key, timeout, seen))


def get(d):
    s = d.connect()
    s.sendall(b"POST /counter/ready HTTP/1.1\r\nHost: t\r\n\r\n")
    (st, _, body), = read_responses(s, 1)
    s.close()
    return st, body


def test_ready_once_serving_and_stopping_at_drain(durod_factory, tmp_path):
    sock, addr = notify_socket(tmp_path)
    d = durod_factory(wait=False, env={"NOTIFY_SOCKET": addr})
    seen = []
    ready = wait_message(sock, "READY=1", seen=seen)
    # The port answers the moment READY=1 is sent: no polling, no retry.
    assert get(d) == (200, b"1")
    assert any(line.startswith("STATUS=serving on 127.0.0.1:%d" % d.port) for line in ready)
    assert all("READY=1" not in m for m in seen[:-1])  # once
    d.proc.send_signal(signal.SIGTERM)
    stopping = wait_message(sock, "STOPPING=1")
    assert any(line.startswith("STATUS=draining") for line in stopping)
    assert d.proc.wait(timeout=15) == 0


def test_ready_over_an_abstract_socket(durod_factory, tmp_path):
    sock, addr = notify_socket(tmp_path, abstract=True)
    d = durod_factory(wait=False, env={"NOTIFY_SOCKET": addr})
    wait_message(sock, "READY=1")
    assert get(d) == (200, b"1")


def test_no_ready_when_the_start_fails(tmp_path):
    sock, addr = notify_socket(tmp_path)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    r = subprocess.run([DUROD, "--listen", "127.0.0.1:%d" % port, "--data-dir", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=30,
                       env={"NOTIFY_SOCKET": addr, "PATH": "/usr/bin:/bin"})
    busy.close()
    assert r.returncode == 1
    sock.setblocking(False)
    msgs = []
    while True:
        try:
            msgs.append(sock.recv(4096).decode())
        except BlockingIOError:
            break
    assert not any("READY=1" in m for m in msgs), msgs


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|info|debug): ")


def test_log_has_only_log_lines(durod):
    """DPDK writes its own lines to stdout (TELEMETRY: No legacy callbacks, legacy socket not
    created) unless routed through duro's log; none may reach the operator raw."""
    assert get(durod)[0] == 200
    assert durod.stop() == 0
    text = durod.logtext()
    assert "TELEMETRY" not in text and "legacy" not in text, text
    for line in text.splitlines():
        assert LOG_LINE.match(line), "not a log line: %r" % line
