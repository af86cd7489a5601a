"""Feed fan-out (bench/README.md): upstream messages per second delivered to the members of
one Feed, against the inbound ChatRoom broadcast to as many members, in the same run, the
server on one core. durobench joins /feed/NAME with its members; member 0's messages go
upstream (the binding's var publish) to a Node `ws` echo server, come back as upstream
messages and are broadcast to every member: the path of an upstream feed, plus one hop.
The ChatRoom run is durobench on /room/NAME (member 0's messages broadcast at once).

Usage: bench/feed.py [--runs N] [--members N] [--window W] [--seconds S]

The default window, 128 broadcasts in flight, keeps both servers busy: with a small one the
loop is bound by latency, and the Feed path has one more hop (through the upstream and a
second event), so it measures that hop rather than the fan-out."""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import free_port, wait_port  # noqa: E402
from ws import NODE_ENV, durobench, start_durod, stop  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()
    up = free_port()
    # The upstream is left unpinned: on the client core alone durobench's 1,000 readers
    # starve it, on the server core it takes durod's; it has little to do either way.
    node = subprocess.Popen(["node", os.path.join(HERE, "node_ws_echo.js"), str(up)],
                            env=NODE_ENV, stdout=subprocess.DEVNULL)
    wait_port(up)
    cfg = {
        "durable_objects": {"bindings": [
            {"name": "ROOM", "class_name": "ChatRoom"},
            {"name": "FEED", "class_name": "Feed",
             "vars": {"upstream": "ws://127.0.0.1:%d/" % up, "publish": "1"}}]},
        "migrations": [{"tag": "bench-v1", "new_classes": ["ChatRoom", "Feed"]}],
        "outbound": {"allow": ["ws://127.0.0.1:%d" % up]},
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        duro, port = start_durod(tmp, config=cfg)
        try:
            for i in range(args.runs):
                f = durobench(port, "/feed/f%d" % i, args.members, args.window, args.seconds)
                r = durobench(port, "/room/r%d" % i, args.members, args.window, args.seconds)
                ratio = f["deliveries_per_s"] / max(r["deliveries_per_s"], 1)
                rows.append((f, r, ratio))
                print("run %d: Feed %.0f deliveries/s (%.0f upstream messages/s, p50 %.0f us, "
                      "p99 %.0f us); ChatRoom %.0f deliveries/s (p50 %.0f us, p99 %.0f us); "
                      "ratio %.2f" % (i + 1, f["deliveries_per_s"],
                                      f["deliveries_per_s"] / args.members, f["p50_us"],
                                      f["p99_us"], r["deliveries_per_s"], r["p50_us"],
                                      r["p99_us"], ratio), flush=True)
        finally:
            stop(duro)
            stop(node)
    med = statistics.median
    fd = med([x[0]["deliveries_per_s"] for x in rows])
    print("Feed fan-out to %d members, window %d, one server core: median %.0f deliveries/s "
          "(%.0f upstream messages/s); ChatRoom broadcast median %.0f deliveries/s; median "
          "same-run ratio %.2f" % (args.members, args.window, fd, fd / args.members,
                                   med([x[1]["deliveries_per_s"] for x in rows]),
                                   med([x[2] for x in rows])))


if __name__ == "__main__":
    main()
