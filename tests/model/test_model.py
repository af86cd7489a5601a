"""The replication model (sim.py) under its checkers (check.py): the protocol of issue 19
passes seeded fault runs, and each known way of breaking it is caught."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check  # noqa: E402
import sim  # noqa: E402


def run_checked(seed, **kw):
    w = sim.run(seed, sim.Params(**kw))
    return w, check.check(w)


def test_the_protocol_passes_seeded_fault_runs():
    for seed in range(8):
        w, v = run_checked(seed, cycles=10)
        assert not v, "seed %d: %s" % (seed, v[:5])
        assert w.stats["failovers"] > 0


def test_the_protocol_passes_composite_faults():
    for seed in range(6):
        w, v = run_checked(seed, cycles=8, faults=["stale_owner", "cut_owner", "cascade", "move"])
        assert not v, "seed %d: %s" % (seed, v[:5])


def test_one_run_of_100_fault_cycles():
    w, v = run_checked(1000, cycles=100)
    assert not v, v[:5]
    oks = sum(1 for op in w.history if op["status"] == "ok")
    assert oks > 10000 and w.stats["failovers"] >= 50


def test_runs_are_deterministic():
    a, _ = run_checked(3, cycles=3)
    b, _ = run_checked(3, cycles=3)
    assert a.events == b.events and len(a.history) == len(b.history)


@pytest.mark.parametrize("bug", sorted(sim.BUG_SEARCH))
def test_each_breakage_is_caught(bug):
    faults, first = sim.BUG_SEARCH[bug]
    for seed in range(first, first + 8):
        w, v = run_checked(seed, cycles=10, bugs={bug}, faults=faults)
        if v:
            return
    pytest.fail("%s not caught in seeds %d..%d: if the model changed, run "
                "`tests/model/run.py --bugs --seeds 0:100` and update sim.BUG_SEARCH" % (bug, first, first + 7))
