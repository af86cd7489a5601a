"""Start-up: a connection the kernel took is answered. durod restarted many times on a data
directory left by SIGTERM and by SIGKILL (commit logs to replay, alarms to load), the port
polled like a user does, then requests at once on fresh connections: none reset, closed
unanswered, refused or timed out."""
import pytest

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
