"""Slow WebSocket readers get exactly their own bytes: every frame byte-exact and in order,
then close 1013 and nothing after it, while other clients' traffic runs beside them.

Regression tests for a reader that fell behind max_outbound_bytes while a send to it was in
flight: the 1013 cut-off freed payloads the send still pointed at, so the reader was sent
freed memory (other clients' request bodies among it) and a close code read from the wrong
bytes. Under ASan freed memory is filled with 0x5a (conftest.ASAN_FILL_FREED), so such a
read shows on the wire at once; in a release build it shows as other clients' data."""
import asyncio
import os
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest
import websockets

import wsconformance as wc
from conftest import ASAN_FILL_FREED

MARK = b"FOREIGN-BODY-"
MSG = 65536
CONFIG = {"websockets": {"max_outbound_bytes": 1 << 20, "close_timeout_ms": 30000}}


def payload(i, size=MSG):
    """Message i: its index in every 4-byte word, so a frame from the wrong place shows."""
    return struct.pack("!I", i) * (size // 4)


class Foreign:
    """Other clients writing marked bodies (PUT /kv/...) until stopped, on keep-alive
    connections; bounded in count and time."""

    def __init__(self, d, wrap=None, threads=2, limit=3000):
        self.d, self.limit, self.count = d, limit, 0
        self.wrap = wrap or (lambda s: s)
        self.stop = threading.Event()
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]
        for t in self.threads:
            t.start()

    def run(self, n):
        body = (MARK * (MSG // len(MARK) + 1))[:MSG]
        deadline = time.time() + 60
        while not self.stop.is_set() and self.count < self.limit and time.time() < deadline:
            try:
                with self.wrap(socket.create_connection((self.d.host, self.d.port), timeout=10)) as s:
                    for k in range(50):
                        s.sendall(b"PUT /kv/victim%d/k/k%d HTTP/1.1\r\nHost: x\r\n"
                                  b"Content-Length: %d\r\n\r\n" % (n, k, len(body)) + body)
                        wc_read_response(s)
                        self.count += 1
                        if self.stop.is_set():
                            break
            except OSError as e:
                self.errors.append(e)
                return

    def wait_for(self, n, timeout=30):
        """Until n more requests were answered: the memory freed meanwhile was reused."""
        target, deadline = self.count + n, time.time() + timeout
        while self.count < target and time.time() < deadline and self.threads[0].is_alive():
            time.sleep(0.01)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        assert not self.errors, self.errors


def wc_read_response(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            raise ConnectionError("closed")
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 2"), head
    n = sum(int(line.split(b":")[1]) for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length"))  # none on a 204
    while len(rest) < n:
        rest += s.recv(65536)


def read_to_end(sock, timeout=30):
    """What the peer sent until it closed, and how it ended."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            b = sock.recv(1 << 20)
        except (ConnectionResetError, socket.timeout) as e:
            return b"".join(chunks), repr(e)
        if not b:
            return b"".join(chunks), "EOF"
        chunks.append(b)


def parse_frames(stream):
    """Server frames in the stream; fails on a masked frame or trailing bytes."""
    i, frames = 0, []
    while i < len(stream):
        assert i + 2 <= len(stream), "truncated header at %d" % i
        b0, b1 = stream[i], stream[i + 1]
        assert not b1 & 0x80, "masked server frame at byte %d" % i
        n, j = b1 & 0x7F, i + 2
        if n == 126:
            n, j = struct.unpack("!H", stream[j:j + 2])[0], j + 2
        elif n == 127:
            n, j = struct.unpack("!Q", stream[j:j + 8])[0], j + 8
        assert j + n <= len(stream), "frame at byte %d (op %d, %d bytes) truncated" % (i, b0 & 15, n)
        frames.append((b0 & 0x0F, stream[j:j + n]))
        i = j + n
        if b0 & 0x0F == wc.OP_CLOSE:
            assert i == len(stream), "%d bytes after the close frame" % (len(stream) - i)
    return frames


def check_slow_stream(stream, expected, ended):
    """Frames are the expected messages in order, a prefix of them, then close 1013."""
    assert MARK not in stream, "another client's request body reached this reader"
    frames = parse_frames(stream)
    assert frames, "nothing received"
    op, data = frames[-1]
    assert op == wc.OP_CLOSE, "no close frame at the end (last op %d, %d frames, stream ended by %s)" % (
        op, len(frames), ended)
    assert struct.unpack("!H", data[:2])[0] == 1013, data
    # Every frame before the close is whole and in order. There may be none: when a burst
    # of messages arrives within one loop turn, the cut-off comes before the first send.
    data_frames = frames[:-1]
    assert len(data_frames) < len(expected), len(data_frames)
    for i, (op, data) in enumerate(data_frames):
        assert op == wc.OP_BINARY and data == expected[i], "frame %d differs" % i


def slow_echo_round(d, wrap=None, size=MSG, count=160):
    c = wc.Conn(d.host, d.port, "/echo/slow-%d" % os.getpid(), rcvbuf=4096)
    if wrap:
        c.s = wrap(c.s)
    assert c.handshake() == 101
    foreign = Foreign(d, wrap)
    expected = [payload(i, size) for i in range(count)]
    blob = b"".join(wc.frame(wc.OP_BINARY, p) for p in expected)
    sent = threading.Thread(target=c.s.sendall, args=(blob,))
    sent.start()
    sent.join(60)  # durod reads all of it, echoing until the reader is too far behind
    assert not sent.is_alive()
    foreign.wait_for(200)  # freed memory would now hold other clients' bodies
    foreign.finish()
    stream, ended = read_to_end(c.s)
    c.s.close()
    check_slow_stream(c.buf + stream, expected, ended)


def test_slow_echo_reader_gets_only_its_own_bytes(durod_factory):
    d = durod_factory(config=CONFIG, env=ASAN_FILL_FREED)
    for _ in range(3):
        slow_echo_round(d)


def test_slow_room_member_gets_only_its_own_bytes(durod_factory):
    d = durod_factory(config=CONFIG, env=ASAN_FILL_FREED)
    slow = wc.Conn(d.host, d.port, "/room/slowroom?name=slow", rcvbuf=4096)
    assert slow.handshake() == 101
    foreign = Foreign(d)
    expected = [payload(i) for i in range(120)]

    async def go():
        url = "ws://%s:%d/room/slowroom?name=fast" % (d.host, d.port)
        async with websockets.connect(url, max_size=None) as fast:
            for p in expected:
                await fast.send(p)
                assert await asyncio.wait_for(fast.recv(), 10) == p
    asyncio.run(asyncio.wait_for(go(), 90))
    foreign.wait_for(200)
    foreign.finish()
    stream, ended = read_to_end(slow.s)
    slow.s.close()
    check_slow_stream(slow.buf + stream, expected, ended)


class TlsSocket:
    """TLS over a plain socket through memory BIOs: a failed send (the server closed after
    its close frame while the client was still sending) ends sending only, and what the
    server sent before can still be read, which an ssl.SSLSocket refuses after an error."""

    def __init__(self, sock, ctx):
        self.sock, self.ended = sock, None
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out)
        self.send_failed = False
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
        self._flush()

    def _flush(self):
        data = self.out.read()
        if data and not self.send_failed:
            try:
                self.sock.sendall(data)
            except OSError:
                self.send_failed = True

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            self.inc.write_eof()
        else:
            self.inc.write(data)
        return data

    def sendall(self, data):
        view = memoryview(data)
        while len(view) and not self.send_failed:
            n = self.obj.write(view[:1 << 16])
            view = view[n:]
            self._flush()

    def recv(self, n):
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                try:
                    if not self._fill():
                        return b""
                except ConnectionResetError:
                    return b""
            except ssl.SSLZeroReturnError:
                return b""

    def settimeout(self, t):
        self.sock.settimeout(t)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("cert")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "key.pem", "-out",
                    "cert.pem", "-days", "2", "-subj", "/CN=localhost"], cwd=d, check=True,
                   capture_output=True)
    return d


def test_slow_echo_reader_over_tls(durod_factory, cert):
    d = durod_factory(config=CONFIG, env=ASAN_FILL_FREED,
                      extra_args=["--tls-cert", str(cert / "cert.pem"), "--tls-key", str(cert / "key.pem")])
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    wrap = lambda s: TlsSocket(s, ctx)
    slow_echo_round(d, wrap=wrap)
    # Small messages: the records buffer grows while a send of it is in flight.
    slow_echo_round(d, wrap=wrap, size=1024, count=12000)
