"""Upstream WebSocket servers for the outbound-WebSocket tests and bench/feed.py: a real one
(Debian's python3-websockets, in a thread of its own) that records what it gets and can
push messages, and a hostile one (raw sockets) that breaks the protocol on purpose."""
import asyncio
import base64
import hashlib
import socket
import ssl
import struct
import threading

import websockets


class Upstream:
    """A WebSocket server on host (127.0.0.1 by default; the tests over dpdk pass the client
    namespace's address, which durod's stack dials): counts accepted connections, records every message
    received (in order), answers "say X" with X, and pushes messages to every connection
    (push). stop() closes it and its connections; start() again on the same port."""

    def __init__(self, port=0, ssl_context=None, host="127.0.0.1"):
        self.host = host
        self.port = port
        self.ssl = ssl_context
        self.accepts = 0
        self.received = []
        self.paths = []  # the request path of each connection, in order
        self.conns = set()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = None
        self.start()

    def _run(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _handler(self, ws, path=None):
        self.accepts += 1
        self.paths.append(ws.path)
        self.conns.add(ws)
        try:
            async for m in ws:
                self.received.append(m)
                if isinstance(m, str) and m.startswith("say "):
                    await ws.send(m[4:])
        except websockets.ConnectionClosed:
            pass
        finally:
            self.conns.discard(ws)

    def start(self):
        async def go():
            return await websockets.serve(self._handler, self.host, self.port, ssl=self.ssl,
                                          max_size=2 ** 24, ping_interval=None)
        self.server = self._run(go())
        self.port = self.server.sockets[0].getsockname()[1]

    def stop(self):
        async def go():
            self.server.close()
            await self.server.wait_closed()
        self._run(go())

    def push(self, msg):
        """Sends msg to every open connection; returns how many."""
        async def go():
            conns = list(self.conns)
            for c in conns:
                try:
                    await c.send(msg)
                except websockets.ConnectionClosed:
                    pass
            return len(conns)
        return self._run(go())

    def push_many(self, msgs):
        async def go():
            for m in msgs:
                for c in list(self.conns):
                    await c.send(m)
        self._run(go(), timeout=120)

    def close(self):
        try:
            self.stop()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_of(key):
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


class Hostile:
    """Answers one opening handshake per connection as `mode` says, then misbehaves:
    "bad_accept" (a wrong Sec-WebSocket-Accept), "masked" (a masked frame), "oversized"
    (a frame announcing 64 MiB), "status404", "garbage" (not HTTP). Records each
    connection's bytes received after the handshake in .after (what durod sent back).
    It listens on host, as Upstream does."""

    def __init__(self, mode, host="127.0.0.1"):
        self.mode = mode
        self.accepts = 0
        self.after = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepts += 1
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        c.settimeout(10)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                b = c.recv(4096)
                if not b:
                    return
                data += b
            key = b""
            for line in data.split(b"\r\n"):
                if line.lower().startswith(b"sec-websocket-key:"):
                    key = line.split(b":", 1)[1].strip()
            acc = accept_of(key)
            if self.mode == "bad_accept":
                acc = accept_of(b"x" + key)
            if self.mode == "status404":
                c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            elif self.mode == "garbage":
                c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
            else:
                c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % acc).encode())
            if self.mode == "masked":
                mask = b"\x01\x02\x03\x04"
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"hi"))
                c.sendall(b"\x81\x82" + mask + payload)
            elif self.mode == "oversized":
                c.sendall(b"\x82\x7f" + struct.pack(">Q", 64 << 20) + b"\0" * 1024)
            got = b""
            while True:
                b = c.recv(4096)
                if not b:
                    break
                got += b
            self.after.append(got)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.sock.close()


def close_code_from(raw):
    """The close code of the first frame in raw (client frames are masked), or None."""
    if len(raw) < 2 or raw[0] & 0x0F != 0x8:
        return None
    n = raw[1] & 0x7F
    off = 2
    mask = b"\0\0\0\0"
    if raw[1] & 0x80:
        mask = raw[off:off + 4]
        off += 4
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(raw[off:off + n]))
    return struct.unpack(">H", body[:2])[0] if len(body) >= 2 else None


def server_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx
