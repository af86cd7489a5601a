#!/usr/bin/python3
"""A WebSocket conformance suite for duro's Echo, modelled on the Autobahn|Testsuite
categories (1 framing, 2 ping/pong, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8,
7 close handling, 9 limits, 10 misc). Autobahn itself needs Python 2, which Debian 12 no
longer has, so this is duro's own raw-socket client: every byte on the wire is ours.

Usage: wsconformance.py HOST PORT [PATH] [--max-message BYTES] [-v]
Prints one line per failed case and `N of M cases passed`; exit status 1 on a failure."""

import base64
import os
import socket
import struct
import sys
import time

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def mask_bytes(payload, key):
    if not payload:
        return b""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def frame(op, payload=b"", fin=True, rsv=0, masked=True, length=None):
    """Encodes a client frame; `length` overrides the length field (for lies)."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    mbit = 0x80 if masked else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + mask_bytes(payload, key)


class Conn:
    def __init__(self, host, port, path, extra_headers=b"", timeout=10, rcvbuf=None):
        if rcvbuf:
            # Before connecting, so the window it advertises is small from the start.
            self.s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.s.settimeout(timeout)
            self.s.connect((host, port))
        else:
            self.s = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        key = base64.b64encode(os.urandom(16))
        self.req = (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + host.encode() +
                    b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " +
                    key + b"\r\nSec-WebSocket-Version: 13\r\n" + extra_headers + b"\r\n")

    def handshake(self, after=b""):
        self.s.sendall(self.req + after)
        head = self.read_until(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1])
        self.headers = head
        return self.status

    def read_until(self, sep):
        while sep not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise ConnectionError("closed before " + repr(sep))
            self.buf += d
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            d = self.s.recv(max(65536, n - len(self.buf)))
            if not d:
                raise ConnectionError("closed mid-frame")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self):
        b0, b1 = self.read_exact(2)
        if b1 & 0x80:
            raise AssertionError("server frame is masked")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.read_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.read_exact(8))[0]
        return b0 & 0x0F, bool(b0 & 0x80), self.read_exact(n)

    def read_message(self):
        """The next data message (reassembled) or control frame, as (opcode, payload)."""
        op, fin, data = self.read_frame()
        if op >= 8:
            return op, data
        parts = [data]
        while not fin:
            op2, fin, more = self.read_frame()
            if op2 >= 8:
                raise AssertionError("control frame inside a server message")
            parts.append(more)
        return op, b"".join(parts)

    def send(self, data):
        self.s.sendall(data)

    def send_slowly(self, data, chunk=1):
        for i in range(0, len(data), chunk):
            self.s.sendall(data[i:i + chunk])

    def expect_closed_tcp(self):
        """After the close handshake the server ends the TCP connection."""
        self.s.settimeout(5)
        while True:
            d = self.s.recv(65536)
            if not d:
                return
            self.buf += d

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class Case:
    def __init__(self, cid, desc, fn):
        self.cid, self.desc, self.fn = cid, desc, fn


def expect_echo_then_close(c, messages):
    """Reads `messages` (list of (op, payload)) in order, then does a clean close."""
    for want in messages:
        got = c.read_message()
        if got != want:
            raise AssertionError("want %r, got %r" % (short(want), short(got)))
    c.send(frame(OP_CLOSE, struct.pack("!H", 1000)))
    op, data = c.read_message()
    if op != OP_CLOSE or data[:2] != struct.pack("!H", 1000):
        raise AssertionError("close not echoed: %r" % (short((op, data)),))
    c.expect_closed_tcp()


def expect_fail(c, codes, before=()):
    """The server may answer `before` (in order; a server that fails the connection at once
    may drop them, which Autobahn calls non-strict and passes), then closes with one of
    `codes`."""
    before = list(before)
    while True:
        try:
            op, data = c.read_message()
        except ConnectionError:
            raise AssertionError("TCP closed without a close frame")
        if op == OP_CLOSE:
            break
        if before and (op, data) == before[0]:
            before.pop(0)
            continue
        if op not in (OP_PONG,):
            raise AssertionError("unexpected %r before the close" % (short((op, data)),))
    code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
    if code not in codes:
        raise AssertionError("close code %d, want %s" % (code, codes))
    c.expect_closed_tcp()


def short(m):
    op, data = m
    return (op, data if len(data) <= 40 else data[:40] + b"...(%d bytes)" % len(data))


def build_cases(max_msg):
    cases = []

    def add(cid, desc):
        def deco(fn):
            cases.append(Case(cid, desc, fn))
            return fn
        return deco

    # 1 framing: text and binary of the sizes that change the length encoding.
    sizes = [0, 125, 126, 127, 128, 65535, 65536, 65537]
    for k, n in enumerate(sizes):
        for cat, op in (("1.1", OP_TEXT), ("1.2", OP_BINARY)):
            payload = (b"*" * n) if op == OP_TEXT else bytes(range(256)) * (n // 256) + bytes(n % 256)

            def run(c, op=op, payload=payload):
                c.send(frame(op, payload))
                expect_echo_then_close(c, [(op, payload)])
            add("%s.%d" % (cat, k + 1), "%s message of %d bytes" % ("text" if op == 1 else "binary", n))(run)
    # the same, written a few bytes at a time
    for k, (n, chunk) in enumerate([(0, 1), (125, 1), (126, 3), (65535, 997), (65536, 4099)]):
        for cat, op in (("1.3", OP_TEXT), ("1.4", OP_BINARY)):
            payload = b"x" * n

            def run(c, op=op, payload=payload, chunk=chunk):
                c.send_slowly(frame(op, payload), chunk)
                expect_echo_then_close(c, [(op, payload)])
            add("%s.%d" % (cat, k + 1), "%d bytes in writes of %d" % (n, chunk))(run)

    # 2 ping/pong
    for k, n in enumerate([0, 1, 64, 125]):
        def run(c, n=n):
            p = os.urandom(n)
            c.send(frame(OP_PING, p))
            expect_echo_then_close(c, [(OP_PONG, p)])
        add("2.%d" % (k + 1), "ping with %d bytes gets its pong" % n)(run)

    @add("2.5", "ping with 126 bytes: 1002")
    def _(c):
        c.send(frame(OP_PING, b"x" * 126))
        expect_fail(c, [1002])

    @add("2.6", "ping sent a byte at a time")
    def _(c):
        c.send_slowly(frame(OP_PING, b"Hello, world!"))
        expect_echo_then_close(c, [(OP_PONG, b"Hello, world!")])

    @add("2.7", "unsolicited pong is ignored")
    def _(c):
        c.send(frame(OP_PONG, b"unsolicited"))
        c.send(frame(OP_TEXT, b"after"))
        expect_echo_then_close(c, [(OP_TEXT, b"after")])

    @add("2.8", "unsolicited pong with payload, then ping")
    def _(c):
        c.send(frame(OP_PONG, b"x" * 125) + frame(OP_PING, b"ping"))
        expect_echo_then_close(c, [(OP_PONG, b"ping")])

    @add("2.9", "ten pings in one write: ten pongs in order")
    def _(c):
        c.send(b"".join(frame(OP_PING, b"p%d" % i) for i in range(10)))
        expect_echo_then_close(c, [(OP_PONG, b"p%d" % i) for i in range(10)])

    @add("2.10", "ten pings a byte at a time")
    def _(c):
        c.send_slowly(b"".join(frame(OP_PING, b"p%d" % i) for i in range(10)))
        expect_echo_then_close(c, [(OP_PONG, b"p%d" % i) for i in range(10)])

    @add("2.11", "binary ping payload")
    def _(c):
        p = bytes([0, 255, 254, 253, 252, 251])
        c.send(frame(OP_PING, p))
        expect_echo_then_close(c, [(OP_PONG, p)])

    # 3 reserved bits: nothing was negotiated, so any is a protocol error.
    k = 0
    for rsv in range(1, 8):
        for name, op, payload in (("text", OP_TEXT, b"Hello"), ("binary", OP_BINARY, b"\x00\xff"),
                                  ("ping", OP_PING, b"p"), ("close", OP_CLOSE, b"\x03\xe8")):
            k += 1

            def run(c, rsv=rsv, op=op, payload=payload):
                c.send(frame(OP_TEXT, b"before") + frame(op, payload, rsv=rsv))
                expect_fail(c, [1002], before=[(OP_TEXT, b"before")])
            add("3.%d" % k, "RSV=%d on %s: 1002" % (rsv, name))(run)

    # 4 opcodes: reserved ones are protocol errors.
    k = 0
    for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
        for payload in (b"", b"reserved"):
            k += 1

            def run(c, op=op, payload=payload):
                c.send(frame(OP_TEXT, b"before") + frame(op, payload))
                expect_fail(c, [1002], before=[(OP_TEXT, b"before")])
            add("4.%d" % k, "reserved opcode %d, %d bytes: 1002" % (op, len(payload)))(run)

    # 5 fragmentation
    @add("5.1", "fragmented ping: 1002")
    def _(c):
        c.send(frame(OP_PING, b"frag", fin=False) + frame(OP_CONT, b"ment"))
        expect_fail(c, [1002])

    @add("5.2", "fragmented pong: 1002")
    def _(c):
        c.send(frame(OP_PONG, b"frag", fin=False) + frame(OP_CONT, b"ment"))
        expect_fail(c, [1002])

    @add("5.3", "fragmented close: 1002")
    def _(c):
        c.send(frame(OP_CLOSE, b"\x03\xe8", fin=False) + frame(OP_CONT, b""))
        expect_fail(c, [1002])

    for k, parts in enumerate([[b"frag", b"ment"], [b"a", b"b", b"c"], [b""] * 5 + [b"x"],
                               [b"x" * 1000] * 64, [b"y"] * 300, [b"", b""]]):
        for cat, op in (("5.4", OP_TEXT), ("5.5", OP_BINARY)):
            def run(c, op=op, parts=parts):
                fr = [frame(op if i == 0 else OP_CONT, p, fin=(i == len(parts) - 1))
                      for i, p in enumerate(parts)]
                c.send(b"".join(fr))
                expect_echo_then_close(c, [(op, b"".join(parts))])
            add("%s.%d" % (cat, k + 1), "%d fragments" % len(parts))(run)

    @add("5.6", "ping between fragments: pong first, then the message")
    def _(c):
        c.send(frame(OP_TEXT, b"frag", fin=False) + frame(OP_PING, b"in between") +
               frame(OP_CONT, b"ment"))
        expect_echo_then_close(c, [(OP_PONG, b"in between"), (OP_TEXT, b"fragment")])

    @add("5.7", "ping between fragments, a byte at a time")
    def _(c):
        c.send_slowly(frame(OP_TEXT, b"frag", fin=False) + frame(OP_PING, b"mid") +
                      frame(OP_CONT, b"ment"))
        expect_echo_then_close(c, [(OP_PONG, b"mid"), (OP_TEXT, b"fragment")])

    @add("5.8", "pong between fragments is ignored")
    def _(c):
        c.send(frame(OP_TEXT, b"frag", fin=False) + frame(OP_PONG, b"x") + frame(OP_CONT, b"ment"))
        expect_echo_then_close(c, [(OP_TEXT, b"fragment")])

    @add("5.9", "continuation with nothing to continue: 1002")
    def _(c):
        c.send(frame(OP_CONT, b"orphan"))
        expect_fail(c, [1002])

    @add("5.10", "final continuation with nothing to continue: 1002")
    def _(c):
        c.send(frame(OP_CONT, b"orphan", fin=True))
        expect_fail(c, [1002])

    @add("5.11", "non-final continuation with nothing to continue: 1002")
    def _(c):
        c.send(frame(OP_CONT, b"orphan", fin=False) + frame(OP_CONT, b"x"))
        expect_fail(c, [1002])

    @add("5.12", "text frame inside a fragmented text message: 1002")
    def _(c):
        c.send(frame(OP_TEXT, b"frag", fin=False) + frame(OP_TEXT, b"new"))
        expect_fail(c, [1002])

    @add("5.13", "binary frame inside a fragmented text message: 1002")
    def _(c):
        c.send(frame(OP_TEXT, b"frag", fin=False) + frame(OP_BINARY, b"new"))
        expect_fail(c, [1002])

    @add("5.14", "text frame inside a fragmented binary message: 1002")
    def _(c):
        c.send(frame(OP_BINARY, b"frag", fin=False) + frame(OP_TEXT, b"new", fin=False))
        expect_fail(c, [1002])

    @add("5.15", "two messages back to back after fragments")
    def _(c):
        c.send(frame(OP_TEXT, b"a", fin=False) + frame(OP_CONT, b"b") + frame(OP_TEXT, b"c") +
               frame(OP_BINARY, b"d", fin=False) + frame(OP_CONT, b"e"))
        expect_echo_then_close(c, [(OP_TEXT, b"ab"), (OP_TEXT, b"c"), (OP_BINARY, b"de")])

    @add("5.16", "fragments written slowly with pings")
    def _(c):
        data = b"".join([frame(OP_TEXT, b"one ", fin=False), frame(OP_PING, b"1"),
                         frame(OP_CONT, b"two ", fin=False), frame(OP_PING, b"2"),
                         frame(OP_CONT, b"three")])
        c.send_slowly(data, 3)
        expect_echo_then_close(c, [(OP_PONG, b"1"), (OP_PONG, b"2"), (OP_TEXT, b"one two three")])

    @add("5.17", "close between fragments: the message is dropped, close echoed")
    def _(c):
        c.send(frame(OP_TEXT, b"frag", fin=False) + frame(OP_CLOSE, struct.pack("!H", 1000)))
        op, data = c.read_message()
        if (op, data[:2]) != (OP_CLOSE, struct.pack("!H", 1000)):
            raise AssertionError("want close 1000, got %r" % (short((op, data)),))
        c.expect_closed_tcp()

    # 6 UTF-8
    valid = [
        "", "Hello-µ@ßöäüàá-UTF-8!!", "κόσμε", "\u0080", "\u07ff", "\u0800", "\uffff",
        "\U00010000", "\U0010ffff", "\ud7ff", "\ue000", "\ufffd", "\ufeff", "\x7f",
        "日本語のテキスト", "🎉🎊", "a" * 1000 + "€", "€" * 1000,
    ]
    k = 0
    for s in valid:
        b = s.encode("utf-8", "surrogatepass")
        k += 1

        def run(c, b=b):
            c.send(frame(OP_TEXT, b))
            expect_echo_then_close(c, [(OP_TEXT, b)])
        add("6.1.%d" % k, "valid UTF-8 %r" % short((1, b))[1])(run)
        # split at every byte boundary into two fragments
        if 0 < len(b) <= 24:
            for cut in range(1, len(b)):
                k += 1

                def run(c, b=b, cut=cut):
                    c.send(frame(OP_TEXT, b[:cut], fin=False) + frame(OP_CONT, b[cut:]))
                    expect_echo_then_close(c, [(OP_TEXT, b)])
                add("6.1.%d" % k, "valid UTF-8 split at %d" % cut)(run)
    invalid = [
        b"\x80", b"\xbf", b"\x80\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf",
        b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\x80\xed\xb0\x80", b"\xf0\x80\x80\x80",
        b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80",
        b"\xfc\x84\x80\x80\x80\x80", b"\xfe", b"\xff", b"\xfe\xfe\xff\xff", b"\xc2", b"\xe0\xa0",
        b"\xf0\x90\x80", b"\xc2\x41", b"\xe1\x80\x41", b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
        b"Hello\xc0\xafWorld", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf",
        b"\xef\xbf\xbe\x80", b"a" * 100 + b"\xff",
    ]
    k = 0
    for b in invalid:
        k += 1

        def run(c, b=b):
            c.send(frame(OP_TEXT, b))
            expect_fail(c, [1007])
        add("6.2.%d" % k, "invalid UTF-8 %r: 1007" % b[:12])(run)
        k += 1

        def run(c, b=b):
            # the same, each byte its own fragment: fails no later than the message's end
            parts = [b[i:i + 1] for i in range(len(b))] or [b""]
            c.send(b"".join(frame(OP_TEXT if i == 0 else OP_CONT, p, fin=(i == len(parts) - 1))
                            for i, p in enumerate(parts)))
            expect_fail(c, [1007])
        add("6.2.%d" % k, "invalid UTF-8 %r in 1-byte fragments: 1007" % b[:12])(run)

    @add("6.3.1", "invalid UTF-8 in a fragment after valid ones: 1007 (fail fast)")
    def _(c):
        c.send(frame(OP_TEXT, b"valid ", fin=False) + frame(OP_CONT, b"\xff", fin=False))
        expect_fail(c, [1007])

    @add("6.3.2", "binary messages are not checked for UTF-8")
    def _(c):
        c.send(frame(OP_BINARY, b"\xff\xfe\xc0\x80"))
        expect_echo_then_close(c, [(OP_BINARY, b"\xff\xfe\xc0\x80")])

    # 7 close handling
    @add("7.1.1", "close without a code: an empty close back")
    def _(c):
        c.send(frame(OP_CLOSE, b""))
        op, data = c.read_message()
        if op != OP_CLOSE or data not in (b"",):
            raise AssertionError("want an empty close, got %r" % (short((op, data)),))
        c.expect_closed_tcp()

    @add("7.1.2", "nothing is answered after a close")
    def _(c):
        c.send(frame(OP_CLOSE, struct.pack("!H", 1000)) + frame(OP_TEXT, b"late") +
               frame(OP_PING, b"late"))
        op, data = c.read_message()
        if op != OP_CLOSE:
            raise AssertionError("want close, got %r" % (short((op, data)),))
        c.expect_closed_tcp()
        if c.buf:
            raise AssertionError("bytes after the close frame: %r" % c.buf[:20])

    @add("7.1.3", "message then close in one write: the echo, if any, before the close")
    def _(c):
        c.send(frame(OP_TEXT, b"last words") + frame(OP_CLOSE, struct.pack("!H", 1000)))
        got = c.read_message()
        if got == (OP_TEXT, b"last words"):
            got = c.read_message()
        if got[0] != OP_CLOSE or got[1][:2] != struct.pack("!H", 1000):
            raise AssertionError("want close 1000, got %r" % (short(got),))
        c.expect_closed_tcp()

    @add("7.1.4", "close with a one-byte payload: 1002")
    def _(c):
        c.send(frame(OP_CLOSE, b"\x03"))
        expect_fail(c, [1002])

    @add("7.1.5", "close with a 125-byte payload is echoed")
    def _(c):
        c.send(frame(OP_CLOSE, struct.pack("!H", 1000) + b"r" * 123))
        op, data = c.read_message()
        if op != OP_CLOSE or data[:2] != struct.pack("!H", 1000):
            raise AssertionError("want close 1000, got %r" % (short((op, data)),))
        c.expect_closed_tcp()

    @add("7.1.6", "close with a 126-byte payload: 1002")
    def _(c):
        c.send(frame(OP_CLOSE, struct.pack("!H", 1000) + b"r" * 124))
        expect_fail(c, [1002])

    for k, code in enumerate([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
                              1014, 3000, 3999, 4000, 4999]):
        def run(c, code=code):
            c.send(frame(OP_CLOSE, struct.pack("!H", code) + b"bye"))
            op, data = c.read_message()
            if op != OP_CLOSE or data[:2] != struct.pack("!H", code):
                raise AssertionError("want close %d echoed, got %r" % (code, short((op, data))))
            c.expect_closed_tcp()
        add("7.7.%d" % (k + 1), "close code %d is echoed" % code)(run)
    for k, code in enumerate([0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000,
                              65535]):
        def run(c, code=code):
            c.send(frame(OP_CLOSE, struct.pack("!H", code)))
            expect_fail(c, [1002])
        add("7.9.%d" % (k + 1), "close code %d is invalid: 1002" % code)(run)

    @add("7.5.1", "close reason that is not UTF-8: 1007")
    def _(c):
        c.send(frame(OP_CLOSE, struct.pack("!H", 1000) + b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"))
        expect_fail(c, [1007])

    @add("7.5.2", "close reason that is UTF-8 is accepted")
    def _(c):
        c.send(frame(OP_CLOSE, struct.pack("!H", 1000) + "κόσμε".encode()))
        op, data = c.read_message()
        if op != OP_CLOSE or data[:2] != struct.pack("!H", 1000):
            raise AssertionError("want close 1000")
        c.expect_closed_tcp()

    @add("7.3.1", "close sent a byte at a time")
    def _(c):
        c.send_slowly(frame(OP_CLOSE, struct.pack("!H", 1000) + b"slow"))
        op, data = c.read_message()
        if op != OP_CLOSE or data[:2] != struct.pack("!H", 1000):
            raise AssertionError("want close 1000")
        c.expect_closed_tcp()

    @add("7.3.2", "TCP dropped without a close: the server carries on")
    def _(c):
        c.send(frame(OP_TEXT, b"half", fin=False))
        c.s.shutdown(socket.SHUT_WR)
        c.expect_closed_tcp()

    # 9 limits
    lim_sizes = [4096, 65536, 262144, max_msg]
    for k, n in enumerate(lim_sizes):
        for cat, op in (("9.1", OP_TEXT), ("9.2", OP_BINARY)):
            def run(c, op=op, n=n):
                p = b"L" * n
                c.send(frame(op, p))
                if n > max_msg:  # over the configured limit: 1009 is the pass
                    expect_fail(c, [1009])
                else:
                    expect_echo_then_close(c, [(op, p)])
            add("%s.%d" % (cat, k + 1), "message of %d bytes" % n)(run)
    for k, n in enumerate([max_msg + 1, max_msg * 2, max_msg * 16]):
        for cat, op in (("9.3", OP_TEXT), ("9.4", OP_BINARY)):
            def run(c, op=op, n=n):
                # only the header: the server must refuse on the length alone
                c.send(frame(op, b"", length=n))
                expect_fail(c, [1009])
            add("%s.%d" % (cat, k + 1), "message of %d bytes (over the limit): 1009" % n)(run)
    for k, (total, chunk) in enumerate([(max_msg, 65536), (max_msg, 4096), (262144, 1024)]):
        def run(c, total=total, chunk=chunk):
            chunk = min(chunk, total)
            parts = [b"F" * chunk] * (total // chunk)
            c.send(b"".join(frame(OP_BINARY if i == 0 else OP_CONT, p, fin=(i == len(parts) - 1))
                            for i, p in enumerate(parts)))
            if total > max_msg:
                expect_fail(c, [1009])
            else:
                expect_echo_then_close(c, [(OP_BINARY, b"F" * total)])
        add("9.5.%d" % (k + 1), "%d bytes in fragments of %d" % (total, chunk))(run)

    @add("9.6.1", "fragments adding up past the limit: 1009")
    def _(c):
        half = max_msg // 2 + 1
        c.send(frame(OP_BINARY, b"a" * half, fin=False) + frame(OP_CONT, b"b" * half))
        expect_fail(c, [1009])

    @add("9.6.2", "many small messages in one write")
    def _(c):
        msgs = [b"m%d" % i for i in range(1000)]
        c.send(b"".join(frame(OP_TEXT, m) for m in msgs))
        expect_echo_then_close(c, [(OP_TEXT, m) for m in msgs])

    # 10 misc
    @add("10.1.1", "65536-byte text message in 1300-byte writes")
    def _(c):
        p = b"*" * 65536
        c.send_slowly(frame(OP_TEXT, p), 1300)
        expect_echo_then_close(c, [(OP_TEXT, p)])

    @add("10.2.1", "unmasked frame: 1002")
    def _(c):
        c.send(frame(OP_TEXT, b"naked", masked=False))
        expect_fail(c, [1002])

    @add("10.2.2", "64-bit length with the top bit set: 1002")
    def _(c):
        c.send(struct.pack("!BBQ", 0x82, 0xFF, 1 << 63) + b"\0\0\0\0")
        expect_fail(c, [1002, 1009])

    return cases


def handshake_cases(host, port, path):
    """Cases about the opening handshake: (id, description, fn(host, port, path))."""
    out = []

    def raw(req):
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(req)
        data = b""
        while b"\r\n\r\n" not in data:
            d = s.recv(65536)
            if not d:
                break
            data += d
        s.close()
        return data

    def base(extra=b"", drop=None, version=b"13", key=None):
        key = key or base64.b64encode(os.urandom(16))
        hs = {b"Upgrade": b"websocket", b"Connection": b"Upgrade", b"Sec-WebSocket-Key": key,
              b"Sec-WebSocket-Version": version}
        if drop:
            del hs[drop]
        return (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" +
                b"".join(k + b": " + v + b"\r\n" for k, v in hs.items()) + extra + b"\r\n")

    def want(status, req, header=None):
        def run():
            resp = raw(req)
            got = int(resp.split(b" ")[1]) if resp else 0
            if got != status:
                raise AssertionError("status %d, want %d" % (got, status))
            if header and header.lower() not in resp.lower():
                raise AssertionError("missing %r" % header)
        return run

    out.append(("10.3.1", "version 8: 426 naming version 13",
                want(426, base(version=b"8"), b"Sec-WebSocket-Version: 13")))
    out.append(("10.3.2", "no key: 400", want(400, base(drop=b"Sec-WebSocket-Key"))))
    out.append(("10.3.3", "key not 16 bytes of base64: 400", want(400, base(key=b"c2hvcnQ="))))
    out.append(("10.3.4", "no Connection: upgrade: 400", want(400, base(drop=b"Connection"))))

    def deflate():
        resp = raw(base(extra=b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"))
        if b" 101 " not in resp or b"sec-websocket-extensions" in resp.lower():
            raise AssertionError("permessage-deflate not declined cleanly: %r" % resp[:200])
    out.append(("10.3.5", "permessage-deflate offered: 101 without extensions", deflate))

    def pipelined():
        c = Conn(host, port, path)
        try:
            if c.handshake(after=frame(OP_TEXT, b"right behind the request")) != 101:
                raise AssertionError("no 101")
            expect_echo_then_close(c, [(OP_TEXT, b"right behind the request")])
        finally:
            c.close()
    out.append(("10.3.6", "a frame in the same write as the upgrade request", pipelined))

    def accept_value():
        c = Conn(host, port, path)
        try:
            c.handshake()
            key = c.req.split(b"Sec-WebSocket-Key: ")[1].split(b"\r\n")[0]
            import hashlib
            want_acc = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            if b"Sec-WebSocket-Accept: " + want_acc not in c.headers:
                raise AssertionError("wrong Sec-WebSocket-Accept")
        finally:
            c.close()
    out.append(("10.3.7", "Sec-WebSocket-Accept is the SHA-1 of key and GUID", accept_value))
    return out


def run_all(host, port, path="/echo/conformance", max_msg=1 << 20, verbose=False, only=None):
    cases = build_cases(max_msg)
    results = []
    for case in cases:
        if only and not case.cid.startswith(only):
            continue
        c = None
        t0 = time.monotonic()
        try:
            c = Conn(host, port, path)
            if c.handshake() != 101:
                raise AssertionError("handshake status %d" % c.status)
            case.fn(c)
            ok, why = True, ""
        except Exception as e:  # a failed case, whatever broke
            ok, why = False, "%s: %s" % (type(e).__name__, e)
        finally:
            if c:
                c.close()
        results.append((case.cid, case.desc, ok, why, time.monotonic() - t0))
    for cid, desc, fn in handshake_cases(host, port, path):
        if only and not cid.startswith(only):
            continue
        t0 = time.monotonic()
        try:
            fn()
            ok, why = True, ""
        except Exception as e:
            ok, why = False, "%s: %s" % (type(e).__name__, e)
        results.append((cid, desc, ok, why, time.monotonic() - t0))
    passed = sum(1 for r in results if r[2])
    for cid, desc, ok, why, dt in results:
        if not ok or verbose:
            print("%-8s %-4s %s%s" % (cid, "ok" if ok else "FAIL", desc, "" if ok else " -- " + why))
    print("%d of %d cases passed" % (passed, len(results)))
    return passed, len(results), results


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    verbose = "-v" in sys.argv
    max_msg = 1 << 20
    if "--max-message" in sys.argv:
        max_msg = int(sys.argv[sys.argv.index("--max-message") + 1])
        args.remove(str(max_msg))
    host, port = args[0], int(args[1])
    path = args[2] if len(args) > 2 else "/echo/conformance"
    passed, total, _ = run_all(host, port, path, max_msg, verbose)
    sys.exit(0 if passed == total else 1)


if __name__ == "__main__":
    main()
