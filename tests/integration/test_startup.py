"""Start-up: a connection the kernel took is answered. durod restarted many times on a data
directory left by SIGTERM and by SIGKILL (commit logs to replay, alarms to load), the port
polled like a user does, then requests at once on fresh connections: none reset, closed
unanswered, refused or timed out."""
import pytest
import requests

import conftest
import restarts


def test_quick_restarts_answer_every_accepted_connection(tmp_path):
    port = conftest.free_port()
    host = conftest.dpdk_address() if conftest.BACKEND == "dpdk" else "127.0.0.1"
    totals, failures = restarts.run(conftest.DUROD, str(tmp_path), port, restarts=10,
                                    per_start=120, window_s=0.5, host=host,
                                    backend=conftest.BACKEND)
    assert not failures, "%s; first failures (restart, ms after the port opened, outcome, " \
        "path, log): %s" % (totals, failures[:10])
    assert totals.get(restarts.OK) == 10 * 120


@pytest.mark.uring_only("the accept path of the uring backend")
def test_quick_restarts_with_accept4(tmp_path):
    """The same over the accept path of kernels before 6.10 (accept4, then the socket moved
    into the direct descriptor table)."""
    port = conftest.free_port()
    totals, failures = restarts.run(conftest.DUROD, str(tmp_path), port, restarts=4,
                                    per_start=80, window_s=0.3,
                                    config={"uring": {"accept_dontwait": False}})
    assert not failures, "%s; first failures: %s" % (totals, failures[:10])


def test_sigterm_stops_a_start_up_that_waits_forever(durod_factory, tmp_path):
    """A restart over dpdk was seen never to finish starting (core 0 never opened its commit
    log) and to ignore SIGTERM: signals were read only by core 0's loop, once every core had
    started. Now a thread takes them until the cores serve, and a start-up that is slow says
    every few seconds which step each part is at. A core's start stalled by fault injection
    stands for the wait."""
    import signal
    import time
    d = durod_factory(wait=False, env={"DURO_FAULT_START_STALL_CORE": "1"})
    # (Over dpdk the port's start alone can take 5 s: wait for the line that names the stall.)
    conftest.wait_until(lambda: "core 1: stalled by DURO_FAULT_START_STALL_CORE" in d.logtext(),
                        40, what="the start-up watch's log line naming core 1's stall")
    assert "start-up: still under way" in d.logtext()
    t0 = time.time()
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=10) == 0
    assert time.time() - t0 < 3
    log = d.logtext()
    assert "during start-up" in log and "exiting without serving" in log
    assert "core 0: started, waiting for the other cores" in log
    conftest.check_output(log)
    # The next start on the same data directory serves (nothing was left held).
    d2 = conftest.start_on(tmp_path, "again", d.data_dir)
    assert requests.get(d2.url + "/counter/after", timeout=10).status_code == 200
    assert d2.stop() == 0


def test_second_sigterm_ends_a_teardown_that_waits(durod_factory, tmp_path):
    """After the cores stop nobody read the signals: a teardown step that took long (over
    dpdk, freeing the mbuf pool was seen to take over 15 s on a busy CPU) said nothing and
    a second SIGTERM did nothing. The watch says the step every few seconds and a second
    signal ends it; what was committed is there at the next start (as after a crash)."""
    import signal
    import time
    d = durod_factory(env={"DURO_FAULT_STOP_STALL": "1"})
    assert requests.post(d.url + "/counter/kept").status_code == 200
    before = requests.get(d.url + "/counter/kept").text
    d.proc.send_signal(signal.SIGTERM)
    conftest.wait_until(lambda: "shutdown: still under way" in d.logtext(), 20,
                        what="the shutdown watch's log line")
    assert "at closing storage (final flush)" in d.logtext()
    t0 = time.time()
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=10) == 0
    assert time.time() - t0 < 3
    log = d.logtext()
    assert "during shutdown" in log and "exiting now" in log
    conftest.check_output(log)
    d2 = conftest.start_on(tmp_path, "again", d.data_dir)
    assert requests.get(d2.url + "/counter/kept", timeout=10).text == before
    assert d2.stop() == 0
