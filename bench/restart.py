"""The start-up check of tests/integration/test_startup.py, longer: durod restarted many
times on one data directory (stopped by SIGTERM and SIGKILL in turn), the port polled like
a user does, then requests at once on fresh connections; prints every one that was not
answered (reset, closed unanswered, refused after the port opened, timed out).

    python3 bench/restart.py [--restarts 60] [--per-start 250] [--window 0.5] [--durod PATH]
"""
import argparse
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import restarts  # noqa: E402
from run import free_port  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--restarts", type=int, default=60)
    ap.add_argument("--per-start", type=int, default=250)
    ap.add_argument("--window", type=float, default=0.5, help="seconds the requests spread over")
    ap.add_argument("--durod", default=os.path.join(ROOT, "build", "control", "durod"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="duro-restart-")
    try:
        def report(k, totals, failures):
            print("start %d: %s, %d failures so far" % (k, totals, len(failures)), flush=True)
        totals, failures = restarts.run(a.durod, work, free_port(), a.restarts, a.per_start,
                                        a.window, report=report)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for f in failures:
        print("restart %d, %s ms after the port opened: %s on %s" % f[:4])
    print("total: %s" % totals)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
