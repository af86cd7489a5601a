"""HTTP/1.1 behaviour against a real durod: pipelining, bodies, 100-continue, keep-alive,
and every bad-input case with its status and the connection closed."""
import socket
import time

import pytest
import requests

from conftest import read_responses, recv_all

# Tests asking for `durod` share one per module (conftest.py): each uses objects of its own
# names.
SHARED_DUROD = True


def status_of(raw):
    return int(raw.split(b" ", 2)[1])


def send_raw(durod, data, timeout=5.0):
    s = durod.connect(timeout)
    s.sendall(data)
    out = recv_all(s, timeout)
    s.close()
    return out


def test_pipelined_responses_in_request_order(durod):
    s = durod.connect()
    # Alternate two objects that live on different cores (and a 404) in one write.
    reqs = []
    for i in range(40):
        name = "pa" if i % 2 == 0 else "pb%d" % (i % 7)
        reqs.append(b"POST /counter/%s HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n" % name.encode())
    reqs.append(b"GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n")
    reqs.append(b"GET /counter/pa HTTP/1.1\r\nHost: t\r\n\r\n")
    s.sendall(b"".join(reqs))
    out = read_responses(s, len(reqs))
    pa = [int(b) for (st, h, b), i in zip(out, range(40)) if i % 2 == 0]
    assert pa == list(range(1, 21))  # the same object, strictly in order
    assert out[40][0] == 404
    assert out[41][2] == b"20"
    s.close()


def test_pipeline_deeper_than_limit(durod):
    s = durod.connect()
    n = 300  # far more than max_pipeline (32): reading pauses and resumes
    s.sendall(b"POST /counter/deep HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n" * n)
    out = read_responses(s, n)
    assert [int(b) for _, _, b in out] == list(range(1, n + 1))
    s.close()


def test_keep_alive_and_connection_close(durod):
    s = durod.connect()
    s.sendall(b"GET /counter/k HTTP/1.1\r\nHost: t\r\n\r\n")
    (st, h, _), = read_responses(s, 1)
    assert st == 200 and "connection" not in h
    s.sendall(b"GET /counter/k HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    rest = recv_all(s)
    assert rest.startswith(b"HTTP/1.1 200") and b"Connection: close" in rest
    s.close()


def test_http10_closes(durod):
    out = send_raw(durod, b"GET /counter/h10 HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"0")


def test_half_close_answers_then_closes(durod):
    s = durod.connect()
    s.sendall(b"POST /counter/hc HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n" * 3)
    s.shutdown(socket.SHUT_WR)
    out = recv_all(s)
    assert out.count(b"HTTP/1.1 200") == 3
    s.close()


def test_head_has_no_body(durod):
    s = durod.connect()
    s.sendall(b"HEAD /counter/hd HTTP/1.1\r\nHost: t\r\n\r\nGET /counter/hd HTTP/1.1\r\nHost: t\r\n\r\n")
    # Both responses, however the bytes arrive: the GET's ends with its body, "0".
    s.settimeout(5)
    data = b""
    while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"\r\n\r\n0"):
        b = s.recv(65536)
        assert b, "closed after %r" % data
        data += b
    first, second = data.split(b"HTTP/1.1 200", 2)[1:]
    assert b"Content-Length: 1" in first and first.endswith(b"\r\n\r\n")
    assert second.endswith(b"\r\n\r\n0")
    s.close()


def test_content_length_body_reaches_object(durod):
    r = requests.post(durod.url + "/echo/b1/x?q=1", data=b"hello body")
    assert r.status_code == 200
    assert r.content == b"hello body"
    assert r.headers["X-Subpath"] == "/x" and r.headers["X-Query"] == "q=1"


def test_large_body_split_over_many_packets(durod):
    body = bytes(range(256)) * 3000  # 768000 bytes, under the 1 MiB default
    r = requests.post(durod.url + "/echo/big", data=body)
    assert r.status_code == 200 and r.content == body


def test_chunked_body(durod):
    def gen():
        for i in range(50):
            yield b"chunk%02d-" % i
    r = requests.post(durod.url + "/echo/ch", data=gen())
    assert r.status_code == 200
    assert r.content == b"".join(b"chunk%02d-" % i for i in range(50))


def test_chunked_byte_by_byte(durod):
    s = durod.connect()
    msg = (b"POST /echo/slow HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\nT: v\r\n\r\n")
    for i in range(len(msg)):
        s.send(msg[i:i + 1])
    (st, _, body), = read_responses(s, 1)
    assert st == 200 and body == b"abcdefg"
    s.close()


def test_expect_100_continue(durod):
    s = durod.connect()
    s.sendall(b"POST /echo/e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    (st, _, _), = read_responses(s, 1)
    assert st == 100
    s.sendall(b"12345")
    (st, _, body), = read_responses(s, 1)
    assert st == 200 and body == b"12345"
    s.close()


def test_expect_100_with_curl(durod, tmp_path):
    import subprocess
    f = tmp_path / "payload"
    f.write_bytes(b"x" * 200000)
    out = subprocess.run(["curl", "-sS", "-H", "Expect: 100-continue", "--data-binary", "@%s" % f,
                          durod.url + "/echo/curl100", "-o", "/dev/null", "-w", "%{http_code} %{size_download}"],
                         capture_output=True, text=True, check=True)
    assert out.stdout == "200 200000"


BAD = [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: t\rX: y\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\n\r\n", 417),
    (b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 17000 + b"\r\n\r\n", 431),
    (b"POST /echo/x HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n", 413),
    (b"POST /echo/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"POST /echo/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n", 413),
    (b"GET /obj/COUNTER/xyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 400),
    (b"GET /counter/%zz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 400),
    # RFC 9112 section 3.2: an invalid Host value is a 400.
    (b"GET /counter/hb HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    (b"GET /counter/hb HTTP/1.1\r\nHost: a/b@c\r\n\r\n", 400),
    (b"GET /counter/hb HTTP/1.0\r\nHost: [::1\r\n\r\n", 400),
    (b"GET counter/hb HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"GET http://u@t/counter/hb HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n", 501),
    # RFC 9112 section 7.1.1: only ";" extensions may follow a chunk size.
    (b"POST /echo/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5 garbage\r\nhello\r\n0\r\n\r\n", 400),
    (b"POST /echo/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nno colon\r\n\r\n", 400),
]


def test_bad_input_status_and_close(durod):
    # One durod for every case (a start costs seconds over dpdk); each case on its own
    # connection, and the server must be fine after each.
    for raw, status in BAD:
        case = raw[:40].decode("latin-1")
        out = send_raw(durod, raw)
        assert status_of(out) == status, (case, out[:200])
        assert b"Connection: close" in out, case
        assert requests.get(durod.url + "/counter/ok").status_code == 200, case


def test_smuggling_does_not_leak_second_request(durod):
    # A request hidden in a body with conflicting framing must never be executed.
    raw = (b"POST /counter/sm HTTP/1.1\r\nHost: t\r\nContent-Length: 60\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"0\r\n\r\nPOST /counter/smuggled HTTP/1.1\r\nHost: t\r\n\r\n")
    out = send_raw(durod, raw)
    assert status_of(out) == 400 and out.count(b"HTTP/1.1") == 1
    assert requests.get(durod.url + "/counter/smuggled").text == "0"


def test_chunk_size_garbage_does_not_smuggle(durod):
    # "5 garbage" read as "5" by one parser and refused by another is a smuggling shape:
    # refused, the connection closed, and nothing after it executed.
    raw = (b"POST /echo/cg HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5 garbage\r\nhello\r\n0\r\n\r\nPOST /counter/smuggled-cg HTTP/1.1\r\nHost: t\r\n"
           b"Content-Length: 0\r\n\r\n")
    out = send_raw(durod, raw)
    assert status_of(out) == 400 and out.count(b"HTTP/1.1") == 1 and b"Connection: close" in out
    assert requests.get(durod.url + "/counter/smuggled-cg").text == "0"
    # Extensions as the grammar has them still work.
    s = durod.connect()
    s.sendall(b"POST /echo/ce HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5 ; a = b ;c=\"x y\"\r\nhello\r\n0\r\nT: v\r\n\r\n")
    (st, _, body), = read_responses(s, 1)
    assert st == 200 and body == b"hello"
    s.close()


def test_absolute_form_target_routes_by_path(durod):
    # RFC 9112 section 3.2.2: a server MUST accept absolute-form; the path routes and the
    # target's authority replaces Host.
    s = durod.connect()
    s.sendall(b"POST http://other.example:8080/counter/abs HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
              b"GET HTTP://other.example/echo/abs/sub?q=1 HTTP/1.1\r\nHost: t\r\n\r\n"
              b"GET /echo/abs HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"
              b"GET http://other.example?x=1 HTTP/1.1\r\nHost: t\r\n\r\n")
    out = read_responses(s, 4)
    assert out[0][0] == 200 and out[0][2] == b"1"
    st, h, _ = out[1]
    assert st == 200 and h["x-subpath"] == "/sub" and h["x-query"] == "q=1"
    assert h["x-host"] == "other.example"
    assert out[2][0] == 200 and out[2][1]["x-host"] == "[::1]:8080"
    assert out[3][0] == 404  # path "/": no route, but not a bad request
    s.close()
    assert requests.get(durod.url + "/counter/abs").text == "1"


def test_header_timeout(durod_factory):
    d = durod_factory(config={"limits": {"header_timeout_ms": 400}})
    s = d.connect()
    s.sendall(b"GET /counter/x HTTP/1.1\r\nHost: t\r\n")  # never finished
    t0 = time.time()
    out = recv_all(s, timeout=5)
    assert status_of(out) == 408
    assert 0.3 < time.time() - t0 < 2.5
    s.close()


def test_silent_connection_gets_header_timeout(durod_factory):
    d = durod_factory(config={"limits": {"header_timeout_ms": 400, "idle_timeout_ms": 60000}})
    s = d.connect()
    t0 = time.time()
    out = recv_all(s, timeout=5)  # never sends a byte
    assert status_of(out) == 408
    assert time.time() - t0 < 2.5
    s.close()


def test_idle_keepalive_timeout(durod_factory):
    d = durod_factory(config={"limits": {"idle_timeout_ms": 300}})
    s = d.connect()
    s.sendall(b"GET /counter/x HTTP/1.1\r\nHost: t\r\n\r\n")
    read_responses(s, 1)
    t0 = time.time()
    s.settimeout(5)
    assert s.recv(100) == b""  # closed by the server
    assert time.time() - t0 < 2.5
    s.close()


def test_slow_client_does_not_block_others(durod_factory):
    d = durod_factory(config={"limits": {"header_timeout_ms": 3000}})
    slow = [d.connect() for _ in range(50)]
    for s in slow:
        s.sendall(b"GET /counter/x HTTP/1.1\r\nHo")
    t0 = time.time()
    for i in range(50):
        assert requests.post(d.url + "/counter/fast").status_code == 200
    assert time.time() - t0 < 5
    for s in slow:
        s.close()


# Its own durod: once, with the module's shared durod, one of these connections was still
# open 5 s after SIGTERM at the module's end, and its body buffer leaked when shutdown
# closed it (reported in the integrator's notes; not seen with a durod per test).
@pytest.mark.own_durod
def test_client_reset_mid_request(durod):
    import struct
    for _ in range(20):
        s = durod.connect()
        s.sendall(b"POST /echo/r HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # RST
    assert requests.get(durod.url + "/counter/after-reset").status_code == 200


def test_clients_that_close_at_once_do_not_hurt_the_next(durod_factory):
    # A client that closes as soon as it has its answer (before durod's FIN, as requests
    # does) made durod close the connection's io_uring slot while its shutdown still waited
    # in a kernel worker; the next connection accepted into that slot was shut down by it
    # and its answer lost (EPIPE): 9 of 2,000 here. Now the slot is closed only when no
    # request names it any more.
    import threading
    d = durod_factory(cores=1)
    bad = []

    def worker(n):
        for _ in range(n):
            data = b""
            try:
                with d.connect(timeout=5) as s:
                    s.sendall(b"GET /counter/c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    while b"\r\n\r\n" not in data:
                        b = s.recv(4096)
                        if not b:
                            break
                        data += b
            except OSError as e:
                data = repr(e).encode()
            if not data.startswith(b"HTTP/1.1 200 "):
                bad.append(data[:80])
    threads = [threading.Thread(target=worker, args=(500,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not bad, "%d of 2000 unanswered: %r" % (len(bad), bad[:3])
