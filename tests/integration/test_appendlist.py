"""AppendList, the fault harness's workload (tests/jepsen): exact lists under concurrent
appends, durable across eviction, SIGKILL and a restart, bounded with a clear refusal."""
import concurrent.futures
import http.client
import os
import signal

import requests

import conftest


def lines(text):
    return text.split("\n")[:-1]


def test_append_answers_the_whole_list_and_get_reads_it(durod_factory):
    d = durod_factory()
    u = d.url + "/append/a1"
    r = requests.get(u)
    assert r.status_code == 200 and r.text == "" and r.headers["X-List-Length"] == "0"
    assert requests.post(u, data=b"t1").text == "t1\n"
    r = requests.post(u, data=b"t2")
    assert r.text == "t1\nt2\n" and r.headers["X-List-Length"] == "2"
    assert r.headers["Content-Type"] == "text/plain"
    assert requests.get(u).text == "t1\nt2\n"
    assert requests.head(u).headers["Content-Length"] == str(len("t1\nt2\n"))
    # a token is 1 to 64 visible bytes: anything else is refused and changes nothing
    for bad in (b"", b"a b", b"a\nb", b"x" * 65, b"\xff"):
        r = requests.post(u, data=bad)
        assert r.status_code == 400, (bad, r.status_code)
    assert requests.post(u, data=b"x" * 64).status_code == 200
    assert requests.delete(u).status_code == 405
    assert requests.get(u + "/sub").status_code == 404
    assert lines(requests.get(u).text) == ["t1", "t2", "x" * 64]


def test_concurrent_appends_are_exact_and_each_answer_is_a_prefix(durod_factory):
    d = durod_factory()
    per, workers = 60, 8

    def worker(w):
        c = http.client.HTTPConnection(d.host, d.port, timeout=10)
        seen = []
        for i in range(per):
            tok = "w%d-%d" % (w, i)
            c.request("POST", "/append/hot", body=tok.encode())
            r = c.getresponse()
            body = r.read().decode()
            assert r.status == 200
            lst = lines(body)
            assert lst[-1] == tok or tok in lst
            seen.append(lst)
        c.close()
        return seen
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        answers = [a for s in ex.map(worker, range(workers)) for a in s]
    final = lines(requests.get(d.url + "/append/hot").text)
    assert len(final) == per * workers and len(set(final)) == len(final)
    for a in answers:  # one list: every answer is a prefix of the final one
        assert final[:len(a)] == a


def test_full_list_refuses_appends_and_survives_sigkill_and_restart(durod_factory, tmp_path):
    d = durod_factory(config={"objects": {"evict_idle_ms": 200}})
    u = d.url + "/append/full"
    tok = "y" * 63  # 64 bytes a line: 1,024 fill the 64 KiB
    c = http.client.HTTPConnection(d.host, d.port, timeout=10)
    for i in range(1024):
        c.request("POST", "/append/full", body=("%04d" % i + tok[4:]).encode())
        r = c.getresponse()
        r.read()
        assert r.status == 200, i
    c.close()
    r = requests.post(u, data=b"z")
    assert r.status_code == 413 and "nothing appended" in r.text
    full = requests.get(u).text
    assert len(full) == 65536
    d.wait_evicted("APPEND", "full")  # the next read comes from RocksDB
    assert requests.get(u).text == full
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait(timeout=20)
    d2 = conftest.start_on(tmp_path, "again", d.data_dir)
    try:
        assert requests.get(d2.url + "/append/full").text == full
        assert requests.post(d2.url + "/append/other", data=b"o1").text == "o1\n"
    finally:
        assert d2.stop() == 0
