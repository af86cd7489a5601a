"""Checkers over one run of sim.py: the client history (Jepsen-style list append) and the
boxes' record of the responses they let out through the output gate."""
import bisect


def check(w):
    """Returns a list of violations, each (kind, text); empty when the run is correct."""
    p = w.p
    out = []
    ops = [op for op in w.history if op["status"] is not None]
    appended = {op["token"]: op for op in ops if op["kind"] == "append"}
    appended.update({op["token"]: op for op in w.history if op["kind"] == "append"})
    oks = [op for op in ops if op["status"] == "ok"]

    by_obj = {}
    for op in oks:
        by_obj.setdefault(op["obj"], []).append(op)
    for obj, lst in sorted(by_obj.items()):
        # One list per object: every answer is a prefix of every longer one.
        srt = sorted(lst, key=lambda op: len(op["result"]))
        linear = True
        for a, b in zip(srt, srt[1:]):
            if b["result"][: len(a["result"])] != a["result"]:
                out.append(("diverged", "object %d: %s and %s are not prefixes: ...%s vs ...%s" % (
                    obj, desc(a), desc(b), a["result"][-4:], b["result"][-4:])))
                linear = False
                break
        # No token that was never invoked (or not before it was seen), or whose request was
        # refused; no token twice; an acknowledged append sees its own token. With one
        # linear list the longest answer holds every token, and the token at position i was
        # first seen by the earliest answer at least i + 1 long.
        for op in (srt[-1:] if linear else srt):
            res = op["result"]
            if len(set(res)) != len(res):
                out.append(("duplicate", "%s saw a token twice" % desc(op)))
            first_seen = [op["complete"]] * len(res)
            if linear:
                m = float("inf")
                j = len(srt) - 1
                for i in range(len(res) - 1, -1, -1):
                    while j >= 0 and len(srt[j]["result"]) > i:
                        m = min(m, srt[j]["complete"])
                        j -= 1
                    first_seen[i] = m
            for i, t in enumerate(res):
                a = appended.get(t)
                if a is None or a["invoke"] > first_seen[i]:
                    out.append(("phantom", "%s saw %s, never invoked before" % (desc(op), t)))
                elif a["status"] == "fail":
                    out.append(("phantom", "%s saw %s, whose request was refused" % (desc(op), t)))
        pos = {t: i for i, t in enumerate(srt[-1]["result"])} if linear else None
        for op in lst:
            if op["kind"] != "append":
                continue
            if linear:
                seen = pos.get(op["token"], 1 << 60) < len(op["result"])
            else:
                seen = op["token"] in op["result"]
            if not seen:
                out.append(("own-token", "%s does not see its own token" % desc(op)))
        # Realtime: whatever completed before an operation began is a prefix of its answer.
        # Sweep by time with the longest answer completed so far.
        evs = sorted([(op["complete"], 1, i) for i, op in enumerate(lst)] +
                     [(op["invoke"], 0, i) for i, op in enumerate(lst)])
        longest = None
        for t, kind, i in evs:
            op = lst[i]
            if kind == 1:
                if longest is None or len(op["result"]) > len(longest["result"]):
                    longest = op
                continue
            if longest is None:
                continue
            a, b = longest["result"], op["result"]
            if b[: len(a)] != a:
                bs = set(b)
                lost = [x for x in a if x not in bs and x in appended and appended[x]["status"] == "ok"
                        and appended[x]["complete"] < op["invoke"]]
                if lost:
                    out.append(("lost-ack", "object %d: %s lacks acknowledged %s (read at %.1f by %s)" % (
                        obj, desc(op), lost[:3], longest["complete"], longest["box"])))
                else:
                    out.append(("stale", "object %d: %s went back from %s (by %s at %.1f)" % (
                        obj, desc(op), a[-3:], longest["box"], longest["complete"])))
                if len(out) > 50:
                    return out

    # One owner per (slot, epoch); the epochs a slot is served at only grow in real time.
    owner_at = {}
    last = {}
    for t, box, inc, s, e, kind in w.releases:
        who = owner_at.setdefault((s, e), (box, inc))
        if who != (box, inc):
            out.append(("two-owners", "slot %d epoch %d: %s and %s both answered" % (s, e, who, (box, inc))))
        if s in last and e < last[s][0]:
            out.append(("epoch-back", "slot %d: %s answered at epoch %d at %.1f after %s at epoch %d" % (
                s, box, e, t, last[s][1], last[s][0])))
        if s not in last or e >= last[s][0]:
            last[s] = (e, box)

    # Liveness: after the last heal every object answers within the bound.
    if w.heal_time is not None:
        for obj in range(p.objects):
            first = [op["complete"] for op in oks if op["obj"] == obj and op["invoke"] >= w.heal_time]
            if not first:
                out.append(("liveness", "object %d: nothing answered after the heal at %.0f" % (obj, w.heal_time)))
            elif min(first) - w.heal_time > p.liveness_bound:
                out.append(("liveness", "object %d: first answer %.0f ms after the heal" % (
                    obj, min(first) - w.heal_time)))
    return out


def desc(op):
    return "%s %s%s obj %d via %s [%.1f, %.1f]" % (
        op["client"], op["kind"], " " + op["token"] if op["token"] else "", op["obj"], op["box"],
        op["invoke"], op["complete"] or -1)


def figures(w):
    """Per-run figures: operations by status, failovers, the longest gap between answers."""
    st = {}
    for op in w.history:
        st[op["status"]] = st.get(op["status"], 0) + 1
    gaps = []
    for obj in range(w.p.objects):
        ts = sorted(op["complete"] for op in w.history if op["obj"] == obj and op["status"] == "ok")
        gaps.append(max([b - a for a, b in zip(ts, ts[1:])] or [0]))
    heal = None
    if w.heal_time is not None:
        firsts = []
        for obj in range(w.p.objects):
            f = [op["complete"] for op in w.history if op["obj"] == obj and op["status"] == "ok"
                 and op["invoke"] >= w.heal_time]
            firsts.append(min(f) - w.heal_time if f else float("inf"))
        heal = max(firsts)
    # Failover: from the SIGKILL of an owner to the first answer, by another box, for an
    # object of a slot it owned (invoked after the kill).
    fo = []
    per_slot = {}
    for op in w.history:
        if op["status"] == "ok":
            per_slot.setdefault(op["obj"] % w.p.slots, []).append(op)
    for lst in per_slot.values():
        lst.sort(key=lambda op: op["invoke"])
    starts = {s: [op["invoke"] for op in lst] for s, lst in per_slot.items()}
    for t, box, slots in w.crashes:
        for s in slots:
            lst = per_slot.get(s, [])
            i = bisect.bisect_left(starts.get(s, []), t)
            f = [op["complete"] - t for op in lst[i:i + 3000] if op["box"] != box]
            if f:
                fo.append(min(f))
    # Planned moves: from the old owner's last answer to the first answer elsewhere.
    mv = []
    for t, box, s in w.moves:
        lst = per_slot.get(s, [])
        i = bisect.bisect_left(starts.get(s, []), t - 5000)
        before = [op["complete"] for op in lst[i:i + 3000] if op["box"] == box and op["complete"] <= t + 50]
        after = [op["complete"] for op in lst[i:i + 3000] if op["box"] != box and op["complete"] > t]
        if before and after:
            mv.append(min(after) - max(before))
    return {"ops": st, "max_gap_ms": max(gaps), "after_heal_ms": heal, "failover_ms": sorted(fo),
            "move_ms": sorted(mv),
            "sim_s": w.now / 1000, **w.stats}
