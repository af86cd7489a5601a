"""WebSockets and event streams against a real durod: the conformance suite, then real
independent clients (python3-websockets, node with node-ws), hibernation, backpressure,
event streams, shutdown."""
import asyncio
import json
import os
import socket
import struct
import subprocess
import time

import requests
import websockets

import conftest
import wsconformance as wc
from conftest import DPDK_CLIENT

# Tests asking for `durod` share one per module (conftest.py): each uses objects of its own
# names.
SHARED_DUROD = True

NODE_ENV = dict(os.environ, NODE_PATH="/usr/share/nodejs")


def ws_url(d, path):
    return "ws://%s:%d%s" % (d.host, d.port, path)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def sockets_of(d, room):
    return requests.get(d.url + "/room/%s/sockets" % room, timeout=5).json()


def test_conformance_suite(durod):
    passed, total, results = wc.run_all(durod.host, durod.port)
    failed = [r for r in results if not r[2]]
    assert passed == total, "%d of %d cases passed; failed: %s" % (passed, total, failed[:10])
    assert total >= 300


def test_conformance_limit_is_configurable(durod_factory):
    d = durod_factory(config={"websockets": {"max_message_bytes": 4096}})
    passed, total, results = wc.run_all(d.host, d.port, max_msg=4096, only="9.")
    assert passed == total, [r for r in results if not r[2]]


def test_echo_with_python_websockets(durod):
    async def go():
        async with websockets.connect(ws_url(durod, "/echo/py")) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\xffbinary")
            assert await ws.recv() == b"\x00\xffbinary"
            # fragmented: websockets sends an async iterable as fragments
            await ws.send(iter(["frag", "men", "ted"]))
            assert await ws.recv() == "fragmented"
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, 5)
            big = "x" * (512 * 1024)
            await ws.send(big)
            assert await ws.recv() == big
            await ws.close(code=4001, reason="done here")
            assert ws.close_code == 4001
    run(go())


def test_violations_seen_by_python_websockets(durod_factory):
    d = durod_factory(config={"websockets": {"max_message_bytes": 1000}})

    async def go():
        async with websockets.connect(ws_url(d, "/echo/v"), max_size=None) as ws:
            await ws.send("y" * 1001)
            try:
                await ws.recv()
                assert False, "not closed"
            except websockets.ConnectionClosed as e:
                assert e.rcvd.code == 1009
        async with websockets.connect(ws_url(d, "/echo/v")) as ws:
            # websockets checks what it sends; its frame writer does not.
            await ws.write_frame(True, 0x1, b"\xc0\xaf")
            try:
                await ws.recv()
                assert False, "not closed"
            except websockets.ConnectionClosed as e:
                assert e.rcvd.code == 1007
        async with websockets.connect(ws_url(d, "/echo/v")) as ws:
            await ws.write_frame(True, 0x0, b"continuation of nothing")
            try:
                await ws.recv()
                assert False, "not closed"
            except websockets.ConnectionClosed as e:
                assert e.rcvd.code == 1002
    run(go())


NODE_CLIENT = r"""
const WebSocket = require('ws');
const url = process.argv[1];
const results = {};
function step(name, fn) { return new Promise((resolve) => fn(resolve)).then((v) => { results[name] = v; }); }
(async () => {
  await step('echo', (done) => {
    const ws = new WebSocket(url + '/echo/node');
    ws.on('open', () => ws.send('from node'));
    ws.on('message', (m, isBinary) => { ws.close(1000); done({ text: m.toString(), isBinary }); });
  });
  await step('binary', (done) => {
    const ws = new WebSocket(url + '/echo/node');
    ws.on('open', () => ws.send(Buffer.from([1, 2, 3, 255])));
    ws.on('message', (m, isBinary) => { ws.close(1000); done({ bytes: [...m], isBinary }); });
  });
  await step('utf8', (done) => {
    const ws = new WebSocket(url + '/echo/node');
    ws.on('open', () => ws.send(Buffer.from([0xc0, 0xaf]), { binary: false }));
    ws.on('close', (code) => done(code));
    ws.on('error', () => {});
  });
  await step('room', (done) => {
    const a = new WebSocket(url + '/room/noderoom');
    const b = new WebSocket(url + '/room/noderoom');
    let open = 0, got = [];
    const onOpen = () => { if (++open === 2) a.send('hello room'); };
    a.on('open', onOpen); b.on('open', onOpen);
    const onMsg = (who) => (m) => { got.push(who + ':' + m); if (got.length === 2) { a.close(); b.close(); done(got.sort()); } };
    a.on('message', onMsg('a')); b.on('message', onMsg('b'));
  });
  await step('ping', (done) => {
    const ws = new WebSocket(url + '/echo/node');
    ws.on('open', () => ws.ping('node ping'));
    ws.on('pong', (d) => { ws.close(); done(d.toString()); });
  });
  console.log(JSON.stringify(results));
})();
"""


def test_node_ws_client(durod):
    out = subprocess.run(["node", "-e", NODE_CLIENT, "ws://%s:%d" % (durod.host, durod.port)],
                         env=NODE_ENV, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["echo"] == {"text": "from node", "isBinary": False}
    assert r["binary"] == {"bytes": [1, 2, 3, 255], "isBinary": True}
    assert r["utf8"] == 1007
    assert r["room"] == ["a:hello room", "b:hello room"]
    assert r["ping"] == "node ping"


def test_room_broadcast_includes_sender(durod):
    async def go():
        members = [await websockets.connect(ws_url(durod, "/room/lobby")) for _ in range(20)]
        await members[3].send("one for all")
        for m in members:
            assert await asyncio.wait_for(m.recv(), 5) == "one for all"
        await members[0].send(b"\x01\x02")
        for m in members:
            assert await asyncio.wait_for(m.recv(), 5) == b"\x01\x02"
        for m in members:
            await m.close()
    run(go())


def test_tags_attachments_and_listing(durod):
    async def go():
        a = await websockets.connect(ws_url(durod, "/room/tagged?tags=red,blue&name=alice"))
        b = await websockets.connect(ws_url(durod, "/room/tagged?tags=blue&name=bob"))
        c = await websockets.connect(ws_url(durod, "/room/tagged"))
        s = sockets_of(durod, "tagged")
        assert s["count"] == 3
        by_name = {x["attachment"]: x for x in s["sockets"]}
        assert by_name["alice"]["tags"] == ["red", "blue"]
        assert by_name["bob"]["tags"] == ["blue"]
        assert by_name[None]["tags"] == []
        r = requests.post(durod.url + "/room/tagged/broadcast?tag=blue", data="blues only")
        assert r.text.strip() == "2"
        assert await asyncio.wait_for(a.recv(), 5) == "blues only"
        assert await asyncio.wait_for(b.recv(), 5) == "blues only"
        try:
            await asyncio.wait_for(c.recv(), 0.5)
            assert False, "untagged socket got a tagged broadcast"
        except asyncio.TimeoutError:
            pass
        # the object closes the red sockets with its own code
        r = requests.post(durod.url + "/room/tagged/close?tag=red&code=4000")
        assert r.text.strip() == "1"
        try:
            await asyncio.wait_for(a.recv(), 5)
            assert False, "the red socket was not closed"
        except websockets.ConnectionClosed as e:
            assert e.rcvd is not None and e.rcvd.code == 4000, e
        assert sockets_of(durod, "tagged")["count"] == 2
        await b.close()
        await c.close()
        for _ in range(50):
            if sockets_of(durod, "tagged")["count"] == 0:
                break
            await asyncio.sleep(0.05)
        assert sockets_of(durod, "tagged")["count"] == 0
    run(go())


def test_too_many_tags_is_refused(durod):
    tags = ",".join("t%d" % i for i in range(11))
    async def go():
        try:
            await websockets.connect(ws_url(durod, "/room/x?tags=" + tags))
            assert False
        except websockets.InvalidStatusCode as e:
            assert e.status_code == 500
    run(go())


def test_hibernation_keeps_sockets_tags_and_attachments(durod_factory):
    d = durod_factory(config={"websockets": {"hibernate_idle_ms": 200}})

    async def go():
        a = await websockets.connect(ws_url(d, "/room/sleepy?tags=x&name=alice"))
        b = await websockets.connect(ws_url(d, "/room/sleepy?name=bob"))
        r = requests.post(d.url + "/room/sleepy/auto?req=ping&res=pong")
        assert r.status_code == 200
        first = sockets_of(d, "sleepy")["loaded_at_ms"]
        d.wait_evicted("ROOM", "sleepy")  # idle: hibernated at a scan (every second)
        t_before = int(time.time() * 1000)
        await a.send("ping")
        assert await asyncio.wait_for(a.recv(), 5) == "pong"  # answered while hibernated
        await asyncio.sleep(0.3)
        t_after = int(time.time() * 1000)
        s = sockets_of(d, "sleepy")  # this wakes it
        assert s["loaded_at_ms"] > first, "the object was not evicted"
        assert s["loaded_at_ms"] >= t_after - 5, "the auto-response woke the object"
        by_name = {x["attachment"]: x for x in s["sockets"]}
        assert by_name["alice"]["tags"] == ["x"]
        assert by_name["alice"]["auto_response_ms"] >= t_before - 5
        assert by_name["bob"]["auto_response_ms"] == 0
        d.wait_evicted("ROOM", "sleepy")
        # a message wakes it and reaches everybody
        await b.send("wake up")
        assert await asyncio.wait_for(a.recv(), 5) == "wake up"
        assert await asyncio.wait_for(b.recv(), 5) == "wake up"
        s2 = sockets_of(d, "sleepy")
        assert s2["loaded_at_ms"] > s["loaded_at_ms"]
        assert {x["attachment"] for x in s2["sockets"]} == {"alice", "bob"}
        await a.close()
        await b.close()
    run(go())


def test_close_handler_counts_the_socket_gone(durod_factory):
    """on_ws_close sees the object's sockets without the one that closed, live or woken
    from hibernation, and the hibernated gauge stays right (TestRoom stores duro_ws_count
    as its close handler saw it). A close once counted the closing socket still, and when
    it woke a hibernated object the gauge went below zero (2**64 - 1)."""
    d = durod_factory(config={"websockets": {"hibernate_idle_ms": 200}}, test_classes=True)

    def close_count():
        r = requests.get(d.url + "/room/cc/closecount")
        return r.text if r.status_code == 200 else None

    def hibernated():
        return d.control({"cmd": "stats"})["total"]["objects_hibernated"]

    async def go():
        a = await websockets.connect(ws_url(d, "/room/cc?name=a"))
        b = await websockets.connect(ws_url(d, "/room/cc?name=b"))
        c = await websockets.connect(ws_url(d, "/room/cc?name=c"))
        await a.close()
        assert conftest.wait_until(close_count, what="the close handler") == "2"
        # Hibernated with two sockets; a close wakes it.
        d.wait_evicted("ROOM", "cc")
        conftest.wait_until(lambda: hibernated() == 1, what="the object to count as hibernated")
        await b.close()
        conftest.wait_until(lambda: close_count() == "1", what="the second close")
        conftest.wait_until(lambda: hibernated() == 0, what="the woken object to count as awake")
        # Hibernated with its last socket, which closes.
        d.wait_evicted("ROOM", "cc")
        conftest.wait_until(lambda: hibernated() == 1, what="the object to hibernate again")
        await c.close()
        conftest.wait_until(lambda: close_count() == "0", what="the last close")
        conftest.wait_until(lambda: hibernated() == 0, what="the gauge back at 0")
    run(go())


def test_stalled_reader_closed_with_1013_others_unharmed(durod_factory):
    d = durod_factory(config={"websockets": {"max_outbound_bytes": 65536}})
    # A raw client that completes the handshake and then never reads.
    stalled = wc.Conn(d.host, d.port, "/room/busy?name=stalled", rcvbuf=4096)
    assert stalled.handshake() == 101

    async def go():
        fast = await websockets.connect(ws_url(d, "/room/busy?name=fast"), max_size=None)
        body = "z" * 16384
        for i in range(400):
            requests.post(d.url + "/room/busy/broadcast", data=body)
            assert await asyncio.wait_for(fast.recv(), 5) == body
        names = {x["attachment"] for x in sockets_of(d, "busy")["sockets"]}
        assert names == {"fast"}, names
        await fast.close()
    run(go())
    # What the stalled reader finds once it reads: every message whole, then close 1013.
    code = None
    stalled.s.settimeout(10)
    while True:
        op, data = stalled.read_message()
        if op == wc.OP_CLOSE:
            code = struct.unpack("!H", data[:2])[0]
            break
        assert op == wc.OP_TEXT and data == b"z" * 16384
    stalled.close()
    assert code == 1013


def test_socket_cap_per_object(durod_factory):
    d = durod_factory(config={"websockets": {"max_per_object": 3}})

    async def go():
        socks = [await websockets.connect(ws_url(d, "/room/small")) for _ in range(3)]
        try:
            await websockets.connect(ws_url(d, "/room/small"))
            assert False, "fourth socket accepted"
        except websockets.InvalidStatusCode as e:
            assert e.status_code == 503
        other = await websockets.connect(ws_url(d, "/room/other"))
        await other.close()
        for s in socks:
            await s.close()
    run(go())


def test_event_stream(durod):
    s = durod.connect(timeout=10)
    s.sendall(b"GET /room/news/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(4096)
    head, got = got.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"Content-Type: text/event-stream" in head
    assert b"content-length" not in head.lower()

    async def go():
        ws = await websockets.connect(ws_url(durod, "/room/news"))
        await ws.send("line one\nline two")
        assert await ws.recv() == "line one\nline two"
        await ws.send(b"\x00binary skips streams")
        await ws.recv()
        await ws.send("second")
        await ws.recv()
        # encoded past the small payloads' pool: its size exactly (ASan saw one byte over)
        await ws.send("y" * 300 + "\n" + "z" * 300)
        await ws.recv()
        await ws.close()
    run(go())
    long = b"data: " + b"y" * 300 + b"\ndata: " + b"z" * 300 + b"\n\n"
    while got.count(b"\n\n") < 3:
        got += s.recv(4096)
    assert got == b"data: line one\ndata: line two\n\ndata: second\n\n" + long
    s.close()
    # Without the Accept header the stream is refused.
    assert requests.get(durod.url + "/room/news/events").status_code == 406


def test_event_stream_gone_client_and_plain_http_after_refused_upgrade(durod):
    s = durod.connect()
    s.sendall(b"GET /room/gone/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    assert b" 200 " in s.recv(4096)
    s.close()
    for _ in range(50):
        if sockets_of(durod, "gone")["count"] == 0:
            break
        time.sleep(0.05)
    assert sockets_of(durod, "gone")["count"] == 0
    # An upgrade the object refuses leaves the connection to HTTP, in order.
    s = durod.connect()
    s.sendall(b"GET /counter/up HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
              b"GET /counter/up HTTP/1.1\r\nHost: x\r\n\r\n")
    from conftest import read_responses
    (s1, _, _), (s2, _, b2) = read_responses(s, 2)
    assert s1 != 101 and s2 == 200
    s.close()


def test_shutdown_closes_sockets_with_1001(durod_factory):
    d = durod_factory()

    async def go():
        ws = await websockets.connect(ws_url(d, "/room/closing"))
        d.proc.send_signal(15)
        try:
            await asyncio.wait_for(ws.recv(), 10)
            assert False
        except websockets.ConnectionClosed as e:
            assert e.rcvd.code == 1001
    run(go())
    assert d.proc.wait(timeout=15) == 0


FLOOD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wsflood.py")


def test_32768_sockets_on_one_object(durod_factory):
    # Two cores, each under the per-process descriptor limit of 20,000 (direct descriptors
    # live in each core's ring); clients spread over four processes and source addresses.
    d = durod_factory(config={"limits": {"max_connections_per_core": 20000}})
    per, nproc = 8192, 4
    # Over the dpdk backend the clients live in the test namespace with one address.
    src = ["127.0.0.%d" % (20 + i) if d.host == "127.0.0.1" else DPDK_CLIENT for i in range(nproc)]
    env = dict(os.environ, WSFLOOD_HOST=d.host)
    procs = [subprocess.Popen(["/usr/bin/python3", FLOOD, str(d.port), "/room/big", str(per),
                               src[i], "hello-all"], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for i in range(nproc)]
    try:
        for p in procs:
            assert p.stdout.readline().split() == ["open", str(per), "refused", "0"]
        assert sockets_of(d, "big")["count"] == per * nproc
        r = requests.post(d.url + "/room/big/broadcast", data="hello-all", timeout=30)
        assert r.text.strip() == str(per * nproc)
        for p in procs:
            assert p.stdout.readline().split() == ["got", str(per)]
    finally:
        for p in procs:
            p.stdin.close()
        for p in procs:
            p.wait(timeout=60)
    for _ in range(100):
        if sockets_of(d, "big")["count"] == 0:
            break
        time.sleep(0.1)
    assert sockets_of(d, "big")["count"] == 0


def test_socket_messages_wait_for_durability(durod_factory, monkeypatch):
    """The output gate for WebSocket messages: an answer sent after a write leaves only once
    the write is durable, and is never sent when the write's commit fails."""
    monkeypatch.setenv("DURO_FAULT_SYNC_EVERY", "4")
    d = durod_factory()
    monkeypatch.delenv("DURO_FAULT_SYNC_EVERY")
    n = 40

    async def go():
        ws = await websockets.connect(ws_url(d, "/kv/gate/ws"))
        got = set()
        for i in range(n):
            await ws.send("put k%d v%d\nget k%d" % (i, i, i))
            try:
                while True:
                    m = await asyncio.wait_for(ws.recv(), 0.3)
                    assert m.startswith("ok\nv"), m
                    got.add(int(m[4:].strip()))
            except asyncio.TimeoutError:
                pass
        await ws.close()
        return got

    answered = run(go())
    assert 0 < len(answered) < n, answered
    for i in range(n):
        r = requests.get(d.url + "/kv/gate/k/k%d" % i)
        # answered exactly when durable: a failed commit takes its answer with it
        assert (r.status_code == 200) == (i in answered), (i, r.status_code)
        if i in answered:
            assert r.text == "v%d" % i


def test_event_timeout(durod_factory):
    durod = durod_factory(test_classes=True)  # TestKV: the "timeout" and "spin" lines
    async def go():
        ws = await websockets.connect(ws_url(durod, "/kv/slow/ws"))
        await ws.send("timeout 50")
        assert await ws.recv() == "ok\n"
        await ws.send("put fast 1")
        assert await ws.recv() == "ok\n"
        # runs past its 50 ms: its writes are rolled back (its answer was already sent)
        await ws.send("put slow 1\nspin 200")
        await ws.recv()
        await ws.send("timeout 0\nput after 1")
        assert await ws.recv() == "ok\n"
        await ws.close()
    run(go())
    assert requests.get(durod.url + "/kv/slow/k/fast").status_code == 200
    assert requests.get(durod.url + "/kv/slow/k/slow").status_code == 404
    assert requests.get(durod.url + "/kv/slow/k/after").status_code == 200
    assert "ran past its 50 ms timeout" in durod.logtext()
