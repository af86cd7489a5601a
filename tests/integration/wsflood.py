#!/usr/bin/python3
"""Opens many WebSockets from one process (one 127.0.0.x source address), for tests and
benchmarks that need more sockets than one process may hold (RLIMIT_NOFILE is 20,000).

Usage: wsflood.py PORT PATH COUNT SOURCE_IP [EXPECT_TEXT]
Prints `open N` once COUNT handshakes are done (or failed: `open N refused M`), then,
with EXPECT_TEXT, waits for that message on every socket and prints `got N`. It exits
when stdin closes, closing every socket."""
import base64
import os
import selectors
import socket
import sys
import time


def main():
    port, path, count, src = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    expect = sys.argv[5].encode() if len(sys.argv) > 5 else None
    key = base64.b64encode(os.urandom(16))
    req = (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
           b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(req)
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_READ, bytearray())
    opened = refused = 0
    pending = count
    deadline = time.time() + 120
    want = b"\x81" + bytes([len(expect)]) + expect if expect else None
    state = {}  # socket -> 'hs' | 'msg' | 'done'
    for s in socks:
        state[s] = "hs"
    got = 0
    reported = False
    while time.time() < deadline:
        if not reported and pending == 0:
            print("open %d refused %d" % (opened, refused), flush=True)
            reported = True
            if not expect:
                break
        if reported and (not expect or got == opened):
            break
        for k, _ in sel.select(timeout=1):
            s, buf = k.fileobj, k.data
            try:
                d = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                d = b""
            if not d:
                if state[s] == "hs":
                    refused += 1
                    pending -= 1
                state[s] = "done"
                sel.unregister(s)
                continue
            buf += d
            if state[s] == "hs" and b"\r\n\r\n" in buf:
                head, _, rest = bytes(buf).partition(b"\r\n\r\n")
                pending -= 1
                if b" 101 " in head.split(b"\r\n")[0]:
                    opened += 1
                    state[s] = "msg"
                else:
                    refused += 1
                    state[s] = "done"
                buf[:] = rest
            if state[s] == "msg" and want and len(buf) >= len(want):
                if bytes(buf[:len(want)]) == want:
                    got += 1
                state[s] = "done"
    if not reported:
        print("open %d refused %d" % (opened, refused + pending), flush=True)
    if expect:
        print("got %d" % got, flush=True)
    sys.stdin.read()
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
