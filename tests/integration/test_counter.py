"""Counter through real clients: exact counts under concurrency across both cores."""
import concurrent.futures
import http.client
import subprocess

import requests

from conftest import read_responses

# Tests asking for `durod` share one per module (conftest.py): each uses objects of its own
# names.
SHARED_DUROD = True


def test_curl_post_and_get(durod):
    out = subprocess.run(["curl", "-sS", "-X", "POST", durod.url + "/counter/c1"],
                         capture_output=True, text=True, check=True)
    assert out.stdout == "1"
    out = subprocess.run(["curl", "-sS", "-X", "POST", durod.url + "/counter/c1"],
                         capture_output=True, text=True, check=True)
    assert out.stdout == "2"
    out = subprocess.run(["curl", "-sS", "-i", durod.url + "/counter/c1"],
                         capture_output=True, check=True)
    assert out.stdout.startswith(b"HTTP/1.1 200 OK\r\n")
    assert out.stdout.endswith(b"\r\n\r\n2")


def test_get_of_unknown_counter_is_zero(durod):
    r = requests.get(durod.url + "/counter/never-touched")
    assert r.status_code == 200 and r.text == "0"


def test_concurrent_increments_exact(durod):
    names = ["n%d" % i for i in range(8)]
    per_conn = 150
    conns = 24

    def worker(k):
        c = http.client.HTTPConnection(durod.host, durod.port, timeout=10)
        seen = []
        for i in range(per_conn):
            name = names[(k + i) % len(names)]
            c.request("POST", "/counter/" + name)
            r = c.getresponse()
            assert r.status == 200
            seen.append((name, int(r.read())))
        c.close()
        return seen

    with concurrent.futures.ThreadPoolExecutor(conns) as ex:
        results = list(ex.map(worker, range(conns)))
    total = sum(len(r) for r in results)
    assert total == conns * per_conn
    finals = {n: int(requests.get(durod.url + "/counter/" + n).text) for n in names}
    assert sum(finals.values()) == conns * per_conn
    # Every returned value is unique per name, and together they are 1..final: one
    # instance per name, no increment lost or answered twice.
    for n in names:
        values = sorted(v for r in results for name, v in r if name == n)
        assert values == list(range(1, finals[n] + 1)), (n, finals[n], len(values))


def test_one_name_one_instance_from_many_connections(durod):
    # 32 connections land on both cores (SO_REUSEPORT hashing); all increment one name.
    socks = [durod.connect() for _ in range(32)]
    for rnd in range(20):
        for s in socks:
            s.sendall(b"POST /counter/shared HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        for s in socks:
            (status, _, _), = read_responses(s, 1)
            assert status == 200
    values = set()
    for s in socks:
        s.sendall(b"GET /counter/shared HTTP/1.1\r\nHost: t\r\n\r\n")
        (_, _, body), = read_responses(s, 1)
        values.add(int(body))
        s.close()
    assert values == {32 * 20}


def test_method_not_allowed(durod):
    r = requests.delete(durod.url + "/counter/x")
    assert r.status_code == 405
    assert "POST" in r.headers["Allow"]
