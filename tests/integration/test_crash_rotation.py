"""Issue 14's crash scenario, short and seeded: 64 KiB commit logs (rotated every few
hundred milliseconds), 1 MiB memtables, 16 clients on 50 counters and KV pairs and large
values, SIGKILL at random under load and sometimes again while durod starts up (after
its replay, or as soon as it answers). Each start checks that nothing acknowledged was
lost, nothing was invented and batches stayed whole. Before the fix (retired logs deleted
out of order), 4 runs of this test out of 4 lost acknowledged writes, 8-43 s in.
bench/crash.py is the long version."""
import os
import sys

import pytest

import conftest

sys.path.insert(0, os.path.join(conftest.ROOT, "bench"))
import crash  # noqa: E402


def run(tmp_path, seed, cycles, extra=None):
    h = crash.Harness(conftest.DUROD, str(tmp_path), seed, cycles, clients=16, counters=50,
                      recovery_kill_rate=0.3, kill_min=0.2, kill_max=0.7, max_seconds=70,
                      config_extra=extra)
    try:
        stats = h.run()
    except crash.Failure as e:
        raise AssertionError("seed %d: %s" % (seed, e))
    finally:
        h.cleanup()
    assert stats["cycles"] >= 10 and stats["writes_acknowledged"] > 1000, stats
    return stats


@pytest.mark.uring_only("storage, not the network")
def test_sigkill_with_fast_rotation_and_kills_during_start_up(tmp_path):
    run(tmp_path, seed=1414, cycles=40)
