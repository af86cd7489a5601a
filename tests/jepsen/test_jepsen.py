"""The fault harness (jepsen.py) and its checks: synthetic histories each check must catch,
a seeded short run of the faults cluster mode survives today, and an owner's SIGKILL, which
loses acknowledged writes until replication (issue 19) lands, caught by the checker.

The suite's run uses only the faults part 1 must survive (cluster mode with one copy of
each object): jepsen.PART1_FAULTS. When replication lands (cluster.replicas), switch the
suite to the full set: SUITE_FAULTS = "all" and SUITE_REPLICAS = 2 below, and set
REPLICATION_SHIPS: test_owner_kill_is_caught_losing_acknowledged_writes then expects no
violation."""
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402
import cluster  # noqa: E402
import jepsen  # noqa: E402

# Part 1 (no replication) survives only jepsen.PART1_FAULTS. WHEN REPLICATION LANDS
# (cluster.replicas), switch on the full fault set: SUITE_FAULTS = "all", SUITE_REPLICAS = 2.
SUITE_FAULTS = "part1"
SUITE_REPLICAS = None
SUITE_SEED = 19
SUITE_CYCLES = 5
# durod accepts cluster.replicas and assigns voters, but an owner does not yet send its
# records to them: a failed-over slot starts empty. True once records are shipped.
REPLICATION_SHIPS = False



def needs_cluster():
    # In CI setup.sh installs etcd: a missing one must fail there, not skip.
    if not shutil.which("etcd") and os.environ.get("CI") != "true":
        pytest.skip("etcd-server is not installed (scripts/setup.sh installs it with DURO_TEST_DEPS=1)")
    if not os.path.exists(cluster.DUROD):
        pytest.skip("durod is not built (%s)" % cluster.DUROD)


def op(client, kind, obj, token, invoke, complete, status, result=None, box="b0"):
    return {"client": client, "kind": kind, "obj": obj, "token": token, "box": box,
            "invoke": invoke, "complete": complete, "status": status, "result": result,
            "served": box}


def kinds(v):
    return sorted({k for k, _ in v})


def test_a_correct_history_passes():
    h = [op("c0", "append", 0, "a", 0, 1, "ok", ["a"]),
         op("c1", "append", 0, "b", 0.5, 2, "ok", ["a", "b"]),
         op("c2", "append", 0, "c", 2.5, 9, "unknown"),       # maybe done: may appear
         op("c0", "append", 0, "d", 3, 4, "fail"),             # refused: must not
         op("c1", "read", 0, None, 5, 6, "ok", ["a", "b", "c"]),
         op("c0", "read", 1, None, 5, 6, "ok", [])]
    assert checker.check_history(h) == []


def test_a_lost_acknowledged_write_is_caught():
    """What an owner's SIGKILL does today: the new owner starts the list from empty."""
    h = [op("c0", "append", 0, "a", 0, 1, "ok", ["a"]),
         op("c1", "append", 0, "b", 2, 3, "ok", ["a", "b"]),
         op("c0", "append", 0, "c", 10, 11, "ok", ["c"], box="b1")]
    v = checker.check_history(h)
    assert "lost-ack" in kinds(v), v
    assert any("lacks acknowledged ['a', 'b']" in t for _, t in v), v


def test_phantom_stale_and_duplicate_tokens_are_caught():
    h = [op("c0", "append", 0, "a", 0, 1, "ok", ["a"]),
         op("c1", "append", 0, "b", 2, 3, "fail"),
         op("c2", "read", 0, None, 4, 5, "ok", ["a", "b"])]
    assert "phantom" in kinds(checker.check_history(h))
    h = [op("c0", "append", 0, "a", 0, 1, "ok", ["a"]),
         op("c0", "append", 0, "b", 2, 3, "unknown"),
         op("c1", "read", 0, None, 4, 5, "ok", ["a", "b"]),
         op("c2", "read", 0, None, 6, 7, "ok", ["a"])]       # went back: b was seen
    assert "stale" in kinds(checker.check_history(h))
    h = [op("c0", "append", 0, "a", 0, 1, "ok", ["a", "a"])]
    assert "duplicate" in kinds(checker.check_history(h))


def trace(what, oid, epoch, box, inc, us):
    return ("2026-12-02T00:00:00.000Z info: cluster trace: %s id %s slot 7 epoch %d owner %s "
            "incarnation %d core 0 mono_us %d" % (what, oid, epoch, box, inc, us))


def test_two_boxes_active_under_one_epoch_are_caught():
    oid = "ab" * 32
    b0 = "\n".join([trace("activate", oid, 5, "b0", 3, 1_000_000),
                    "harness: killed pid 1 mono_us 3000000"])
    # b1 at epoch 5 while b0 still held it (before the kill): two instances
    b1 = trace("activate", oid, 5, "b1", 4, 2_000_000)
    acts = checker.read_activations("b0", b0, 0, 10_000) + checker.read_activations("b1", b1, 0, 10_000)
    v = checker.check_activations(acts, {oid: "s1-o3"})
    assert kinds(v) == ["two-active"], v
    assert "s1-o3" in v[0][1] and "b0" in v[0][1] and "b1" in v[0][1]
    # after the kill, or under a newer epoch, or once unloaded: one instance at a time
    for b1 in (trace("activate", oid, 5, "b1", 4, 3_500_000),
               trace("activate", oid, 6, "b1", 4, 2_000_000)):
        acts = checker.read_activations("b0", b0, 0, 10_000) + checker.read_activations("b1", b1, 0, 10_000)
        assert checker.check_activations(acts) == []
    b0 = "\n".join([trace("activate", oid, 5, "b0", 3, 1_000_000),
                    trace("unload", oid, 5, "b0", 3, 1_500_000)])
    acts = checker.read_activations("b0", b0, 0, 10_000) + \
        checker.read_activations("b1", trace("activate", oid, 5, "b1", 4, 2_000_000), 0, 10_000)
    assert checker.check_activations(acts) == []


def summary_of(capsys):
    text = capsys.readouterr().out
    print(text)
    return text


def test_seeded_short_run_of_the_faults_part1_survives(capsys):
    needs_cluster()
    argv = ["--seed", str(SUITE_SEED), "--cycles", str(SUITE_CYCLES), "--faults", SUITE_FAULTS,
            "--tail", "2"]
    if SUITE_REPLICAS is not None:
        argv += ["--replicas", str(SUITE_REPLICAS)]
    rc, run, v = jepsen.run(argv)
    text = summary_of(capsys)
    assert rc == 0, text
    assert len(run.faults) == SUITE_CYCLES
    oks = sum(1 for o in run.history if o["status"] == "ok" and o["kind"] == "append")
    assert oks > 500, text
    assert run.nact > 0  # the activation traces were read


def test_owner_kill_is_caught_losing_acknowledged_writes(capsys):
    """Part 1 keeps one copy per object: a SIGKILL held until the others take the dead
    box's slots loses what it had acknowledged, and the checker must say so. With
    replication (REPLICATION_SHIPS) the same run must be clean."""
    needs_cluster()
    replicated = REPLICATION_SHIPS
    argv = ["--seed", "5", "--cycles", "1", "--faults", "kill", "--tail", "2"]
    if replicated:
        argv += ["--replicas", "2"]
    rc, run, v = jepsen.run(argv)
    text = summary_of(capsys)
    if replicated:
        assert rc == 0, text
    else:
        assert rc == 1 and "lost-ack" in kinds(v), text


def test_lists_kept_as_lengths_expand_to_what_was_answered():
    """The harness keeps an answer as a length of one of the object's branches (one for
    a correct run, another each time an answer agrees with none), so the checks see every
    answer as it came."""
    r = jepsen.Run.__new__(jepsen.Run)
    r.hlock, r.canon = jepsen.threading.Lock(), {}
    answers = [["a"], ["a", "b"], [], ["a", "x"], ["a", "b", "c"], ["a"]]
    kept = [r.compact(0, list(a)) for a in answers]
    assert kept == [(0, 1), (0, 2), (0, 0), (1, 2), (0, 3), (1, 1)]
    ops = [op("c0", "read", 0, None, i, i + 0.5, "ok", k) for i, k in enumerate(kept)]
    assert [o["result"] for o in checker.expand(ops, r.canon[0])] == answers
    assert "diverged" in kinds(checker.check_history(ops, r.canon))


def test_a_violation_names_its_object_and_the_faults_around_it():
    h = [op("c0", "append", 7, "a", 100, 101, "ok", ["a"]),
         op("c0", "append", 7, "b", 900, 901, "ok", ["b"])]
    v = checker.check_history(h)
    lost = [t for k, t in v if k == "lost-ack"][0]
    assert checker.subject(lost) == "7"
    faults = [("kill", 200, 300, "SIGKILL b1"), ("pause", 950, 990, "later"),
              ("one_way", 0, 50, "before")]
    assert [f[0] for f in checker.suspects(lost, faults)] == ["kill"]


def test_a_kept_run_is_checked_again_the_same(tmp_path, capsys):
    """--recheck DIR: the checks over the history.json that --keep wrote, no cluster."""
    import json
    h = [op("c0", "append", 0, "a", 0, 1, "ok", (0, 1)),
         op("c0", "append", 0, "b", 2, 3, "ok", (1, 1))]  # the new owner started empty
    with open(tmp_path / "history.json", "w") as f:
        json.dump({"seed": 4, "history": h, "canon": {0: [["a"], ["b"]]}, "names": {0: "s4-o0"},
                   "faults": [["kill", 1.5, 1.8, "SIGKILL b0"]], "activations": []}, f)
    rc, run, v = jepsen.run(["--recheck", str(tmp_path)])
    text = capsys.readouterr().out
    assert rc == 1 and "lost-ack" in kinds(v) and "seed 4" in text, text
    assert "kill 1" in text  # the object's loss overlaps the kill
