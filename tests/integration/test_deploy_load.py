"""Deploys under load: 1,000 WebSocket clients in rooms of a module class (half of the rooms
hibernated when the deploy comes) and 64 HTTP clients incrementing counters of the same
class, while the class is deployed (deferred, with a max delay), deployed again with
--immediate, and rolled back. Nothing may fail: no request answered other than 200, no
socket closed, every message delivered to every member of its room, every object on the
new version within the max delay, and every count in storage exactly what its client was
acknowledged. (The same run at full scale, with latency figures: bench/deploy.py.)"""
import asyncio
import json
import time

import websockets

from conftest import wait_until
import modbuild
from modbuild import duroctl
from test_deploy import BINDING, MIGRATION

ROOMS = 100          # rooms of 10 members: 1,000 sockets
MEMBERS = 10
HTTP_CLIENTS = 64
MAX_DELAY = 5        # seconds: the deferred deploy's --max-delay
PHASES = ["v1", "v2", "v3", "v2"]  # start, deploy, deploy --immediate, rollback


def compress(seq):
    out = []
    for x in seq:
        if not out or out[-1] != x:
            out.append(x)
    return out


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return status, body


class Load:
    def __init__(self, d):
        self.d = d
        self.stop = False
        self.failures = []          # anything that must not happen
        self.acked = [0] * HTTP_CLIENTS
        self.http_markers = [[] for _ in range(HTTP_CLIENTS)]
        self.sent = [[] for _ in range(ROOMS)]       # messages each room's sender sent
        self.got = [[[] for _ in range(MEMBERS)] for _ in range(ROOMS)]
        self.sockets = [[] for _ in range(ROOMS)]
        self.closed = []

    async def http_client(self, i):
        reader, writer = await asyncio.open_connection(self.d.host, self.d.port)
        req = b"POST /v/h%d HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n" % i
        while not self.stop:
            writer.write(req)
            status, body = await read_response(reader)
            if status != 200:
                self.failures.append(("http", i, status, body))
                continue
            marker, count = body.split()[:2]
            self.acked[i] += 1
            if int(count) != self.acked[i]:
                self.failures.append(("count", i, int(count), self.acked[i]))
            self.http_markers[i].append(marker.decode())
        writer.close()

    async def member(self, r, m):
        ws = await websockets.connect("ws://%s:%d/v/room%d" % (self.d.host, self.d.port, r),
                                      max_queue=None)
        self.sockets[r].append(ws)
        return ws

    async def receive(self, r, m, ws):
        try:
            async for msg in ws:
                self.got[r][m].append(msg)
        finally:
            if not self.stop:
                self.closed.append((r, m, ws.close_code))

    async def say(self, r, text):
        self.sent[r].append(text)
        await self.sockets[r][0].send(text)

    def last_marker(self, r):
        """The marker on the last message every member of room r has received, or None
        while some member is still behind."""
        n = len(self.sent[r])
        if not n or any(len(g) < n for g in self.got[r]):
            return None
        return self.got[r][0][n - 1].split(":", 1)[0]


async def run(tmp_path, d, v2, v3):
    L = Load(d)
    rooms = range(ROOMS)
    active = [r for r in rooms if r % 2 == 0]
    silent = [r for r in rooms if r % 2 == 1]  # hibernated when each deploy comes
    sem = asyncio.Semaphore(64)

    async def join(r, m):
        async with sem:
            ws = await L.member(r, m)
        return ws
    members = {}
    for r in rooms:
        for m in range(MEMBERS):
            members[r, m] = await join(r, m)
    receivers = [asyncio.ensure_future(L.receive(r, m, members[r, m]))
                 for r in rooms for m in range(MEMBERS)]
    for r in rooms:
        await L.say(r, "hello-%d" % r)
    await until(lambda: all(L.last_marker(r) == "v1" for r in rooms), 30, "rooms on v1")

    clients = [asyncio.ensure_future(L.http_client(i)) for i in range(HTTP_CLIENTS)]
    seq = [0]

    async def chatter():
        while not L.stop:
            seq[0] += 1
            for r in active:
                await L.say(r, "m%d" % seq[0])
            await asyncio.sleep(0.05)
    talk = asyncio.ensure_future(chatter())
    await until(lambda: all(L.http_markers[i] for i in range(HTTP_CLIENTS)), 30, "HTTP load")

    async def phase(marker, *args):
        # The silent rooms hibernate first: their objects leave memory, sockets stay.
        await asyncio.to_thread(lambda: [d.wait_evicted("VERS", "room%d" % r, 30)
                                         for r in silent])
        t0 = time.monotonic()
        await asyncio.to_thread(duroctl, d, *args)
        n_http = [len(m) for m in L.http_markers]
        await until(lambda: all(len(L.http_markers[i]) > n_http[i] and
                                L.http_markers[i][-1] == marker for i in range(HTTP_CLIENTS)),
                    30, "every HTTP object on %s" % marker)
        await until(lambda: all(L.last_marker(r) == marker for r in active), 30,
                    "active rooms on %s" % marker)
        for r in silent:
            await L.say(r, "wake-%s" % marker)
        await until(lambda: all(L.last_marker(r) == marker for r in silent), 30,
                    "hibernated rooms woken on %s" % marker)
        return time.monotonic() - t0

    took = [await phase("v2", "deploy", "Versioned", v2, "--max-delay", str(MAX_DELAY)),
            await phase("v3", "deploy", "Versioned", v3, "--immediate"),
            await phase("v2", "rollback", "Versioned", "--immediate")]
    L.stop = True
    await asyncio.gather(talk, *clients)
    # Every message reached every member, in order (rooms are one object each).
    for r in rooms:
        await until(lambda: all(len(g) == len(L.sent[r]) for g in L.got[r]), 30,
                    "room %d's last messages" % r)
    assert not L.closed, L.closed[:10]
    for ws in members.values():
        await ws.close()
    await asyncio.gather(*receivers)
    return L, took


async def until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %d s waiting for %s" % (timeout, what))
        await asyncio.sleep(0.02)


def test_deploys_under_load_fail_nothing_and_close_no_socket(tmp_path, durod_factory):
    v1 = modbuild.versioned(tmp_path, "v1")
    v2 = modbuild.versioned(tmp_path, "v2")
    v3 = modbuild.versioned(tmp_path, "v3")
    cfg = modbuild.module_config([v1], [BINDING], [MIGRATION],
                                 websockets={"hibernate_idle_ms": 300})
    d = durod_factory(config=cfg, cores=2)
    L, took = asyncio.run(run(tmp_path, d, v2, v3))
    print("requests %d, room messages %d, phases took %s s" % (
        sum(L.acked), sum(len(s) for s in L.sent), ", ".join("%.2f" % t for t in took)))
    assert not L.failures, L.failures[:10]
    # Each client saw its object on each version in turn, never back to an older one.
    for i in range(HTTP_CLIENTS):
        assert compress(L.http_markers[i]) == PHASES, (i, compress(L.http_markers[i]))
    for r in range(ROOMS):
        for m in range(MEMBERS):
            got = L.got[r][m]
            assert [g.split(":", 1)[1] for g in got] == L.sent[r], (r, m)
            assert compress(g.split(":", 1)[0] for g in got) == PHASES, (r, m)
    # Within the max delay (quiescent objects switch at once; the others at the latest
    # when it is reached).
    assert took[0] < MAX_DELAY + 5, took
    # Storage is intact: each count is what its client was acknowledged.
    import requests
    for i in range(HTTP_CLIENTS):
        r = requests.get("%s/v/h%d" % (d.url, i), timeout=10)
        assert r.status_code == 200 and r.text.split()[:2] == ["v2", str(L.acked[i])], r.text
    st = json.loads(duroctl(d, "--json", "stats").stdout)
    assert st["total"]["deploys"]["deferred_503"] == 0
