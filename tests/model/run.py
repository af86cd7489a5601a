#!/usr/bin/python3
"""Runs the replication model (sim.py) over seeds and checks each run (check.py).

  run.py --seeds 0:1000 [--cycles 10]      many short runs of the correct protocol
  run.py --seed 7 --cycles 150             one long run
  run.py --catch --bug NAME --seeds 0:50   a broken protocol: stops at the first seed caught
  run.py --seeds 0:20 --faults crash [--bug NAME]   only some faults (sim.FAULTS)
  run.py --bugs                            every bug flag in turn (each must be caught)
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check  # noqa: E402
import sim  # noqa: E402


def seeds(text):
    a, _, b = text.partition(":")
    return range(int(a), int(b)) if b else [int(a)]


def one(seed, cycles, bugs, verbose=False, faults=None):
    p = sim.Params(cycles=cycles, bugs=set(bugs), faults=faults)
    t0 = time.time()
    w = sim.run(seed, p)
    v = check.check(w)
    f = check.figures(w)
    f["wall_s"] = round(time.time() - t0, 2)
    if verbose:
        for t, e in w.events:
            print("%10.1f %s" % (t, e))
    return v, f


def catch(bug, seed_range, cycles, faults=None):
    """The first seed whose run the checkers reject, with its violations, or None."""
    for s in seed_range:
        v, f = one(s, cycles, [bug], faults=faults)
        if v:
            return s, v, f
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--bug", action="append", default=[])
    ap.add_argument("--bugs", action="store_true", help="search every bug flag in turn")
    ap.add_argument("--catch", action="store_true", help="search --bug over --seeds with its fault mix")
    ap.add_argument("--faults", default=None, help="comma-separated fault kinds (sim.FAULTS)")
    ap.add_argument("--events", action="store_true", help="print the run's fault and protocol log")
    a = ap.parse_args()
    if a.bugs:
        bad = 0
        for bug in sim.BUGS:
            t0 = time.time()
            faults = sim.BUG_FAULTS.get(bug)
            r = catch(bug, seeds(a.seeds or "0:40"), a.cycles, faults)
            if r is None:
                bad += 1
                print("%-24s NOT CAUGHT in seeds %s (%.1f s)" % (bug, a.seeds or "0:40", time.time() - t0))
            else:
                kinds = sorted({k for k, _ in r[1]})
                print("%-24s caught at seed %d (%.1f s, faults %s): %s; %s" % (
                    bug, r[0], time.time() - t0, ",".join(faults or ["all"]), ", ".join(kinds),
                    r[1][0][1][:160]))
        return 1 if bad else 0
    if a.catch:
        r = catch(a.bug[0], seeds(a.seeds), a.cycles, sim.BUG_FAULTS.get(a.bug[0]))
        if r is None:
            print("not caught")
            return 1
        print("caught at seed %d: %s" % (r[0], r[2]))
        for k, t in r[1][:10]:
            print("  %s: %s" % (k, t))
        return 0
    rng = seeds(a.seeds) if a.seeds else [a.seed if a.seed is not None else 0]
    failed = 0
    totals = {}
    worst_heal = 0
    fo_all, mv_all = [], []
    t0 = time.time()
    for s in rng:
        v, f = one(s, a.cycles, a.bug, verbose=a.events,
                   faults=a.faults.split(",") if a.faults else None)
        for k in ("events", "failovers", "replacements"):
            totals[k] = totals.get(k, 0) + f[k]
        for k, n in f["ops"].items():
            totals[k] = totals.get(k, 0) + n
        worst_heal = max(worst_heal, f["after_heal_ms"] or 0)
        fo_all.extend(f.pop("failover_ms"))
        mv_all.extend(f.pop("move_ms"))
        if v or len(rng) == 1:
            print("seed %d: %s" % (s, f))
        if v:
            failed += 1
            for k, t in v[:10]:
                print("  %s: %s" % (k, t))
    print("runs %d, failed %d, cycles %d each, %.1f s; totals %s; worst first answer after heal %.0f ms"
          % (len(rng), failed, a.cycles, time.time() - t0, totals, worst_heal))
    if fo_all:
        fo_all.sort()
        print("failover (owner SIGKILL to first answer elsewhere, TTL %d ms): n %d, median %.0f ms, "
              "p90 %.0f ms, max %.0f ms" % (sim.Params().ttl, len(fo_all), fo_all[len(fo_all) // 2],
                                           fo_all[int(len(fo_all) * 0.9)], fo_all[-1]))
    if mv_all:
        mv_all.sort()
        print("planned move (old owner's last answer to the first answer elsewhere): n %d, median %.0f ms, "
              "p90 %.0f ms, max %.0f ms" % (len(mv_all), mv_all[len(mv_all) // 2],
                                           mv_all[int(len(mv_all) * 0.9)], mv_all[-1]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
