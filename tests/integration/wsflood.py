#!/usr/bin/python3
"""Opens many WebSockets from one process (one 127.0.0.x source address), for tests and
benchmarks that need more sockets than one process may hold (RLIMIT_NOFILE is 20,000).

Usage: wsflood.py PORT PATH COUNT SOURCE_IP [EXPECT_TEXT] [--window N]
Prints `open N refused M` once COUNT handshakes are done (at most N, default 512, at a
time), then,
with EXPECT_TEXT, waits for that message on every socket and prints `got N`. It exits
when stdin closes, closing every socket."""
import base64
import os
import selectors
import socket
import sys
import time


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    window = 512
    if "--window" in sys.argv:
        window = int(sys.argv[sys.argv.index("--window") + 1])
        args.remove(str(window))
    port, path, count, src = int(args[0]), args[1], int(args[2]), args[3]
    expect = args[4].encode() if len(args) > 4 else None
    key = base64.b64encode(os.urandom(16))
    req = (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
           b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    # Handshakes in batches of `window`: the server never has more than that in flight.
    socks, leftovers = [], {}
    refused = 0
    for start in range(0, count, window):
        batch = []
        for _ in range(min(window, count - start)):
            s = socket.socket()
            s.bind((src, 0))
            s.connect((os.environ.get("WSFLOOD_HOST", "127.0.0.1"), port))
            s.sendall(req)
            batch.append(s)
        for s in batch:
            s.settimeout(60)
            buf = b""
            try:
                while b"\r\n\r\n" not in buf:
                    d = s.recv(4096)
                    if not d:
                        break
                    buf += d
            except OSError:
                pass
            head, _, rest = buf.partition(b"\r\n\r\n")
            if b" 101 " in head.split(b"\r\n")[0]:
                socks.append(s)
                leftovers[s] = rest
            else:
                refused += 1
                s.close()
    print("open %d refused %d" % (len(socks), refused), flush=True)
    if expect:
        want = b"\x81" + bytes([len(expect)]) + expect
        sel = selectors.DefaultSelector()
        got = 0
        for s in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, bytearray(leftovers[s]))
        waiting = len(socks)
        deadline = time.time() + 120
        done = set()
        for s in socks:
            if len(leftovers[s]) >= len(want):
                got += leftovers[s][:len(want)] == want
                done.add(s)
                sel.unregister(s)
        waiting -= len(done)
        while waiting and time.time() < deadline:
            for k, _ in sel.select(timeout=1):
                s, buf = k.fileobj, k.data
                try:
                    d = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    d = b""
                buf += d
                if not d or len(buf) >= len(want):
                    got += bytes(buf[:len(want)]) == want
                    sel.unregister(s)
                    waiting -= 1
        print("got %d" % got, flush=True)
    sys.stdin.read()
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
