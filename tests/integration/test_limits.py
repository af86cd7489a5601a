"""Limits and fallbacks: the connection cap refuses and counts without hurting the process,
and the per-connection receive path (no provided buffer ring) serves the same HTTP."""
import socket
import time

import requests

import test_counter
import test_http
from conftest import read_responses


def test_connection_cap_refuses_and_recovers(durod_factory):
    d = durod_factory(config={"limits": {"max_connections_per_core": 16}})
    held, refused = [], 0
    for _ in range(80):
        try:
            s = d.connect(timeout=2)
            s.sendall(b"GET /counter/cap HTTP/1.1\r\nHost: t\r\n\r\n")
            read_responses(s, 1, timeout=2)
            held.append(s)
        except (OSError, EOFError):
            refused += 1
    assert refused > 0 and len(held) <= 32
    for s in held:  # the admitted connections still work
        s.sendall(b"POST /counter/cap HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        assert read_responses(s, 1)[0][0] == 200
        s.close()
    time.sleep(0.3)
    assert requests.post(d.url + "/counter/cap").status_code == 200
    assert "refusing connections: connection table full" in d.logtext()


def test_without_buffer_ring(durod_factory):
    d = durod_factory(config={"uring": {"buffer_ring": False}})
    test_http.test_pipeline_deeper_than_limit(d)
    test_http.test_large_body_split_over_many_packets(d)
    test_http.test_chunked_byte_by_byte(d)
    test_http.test_half_close_answers_then_closes(d)
    test_counter.test_concurrent_increments_exact(d)
    for raw, status in test_http.BAD[:4]:
        s = d.connect()
        s.sendall(raw)
        assert test_http.status_of(s.recv(4096)) == status
        s.close()
