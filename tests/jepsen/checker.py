"""Checks over one recorded run of the harness: the client history (list append) and the
boxes' activation traces. The list checks are the model's (tests/model/check.py), run over
the real history through a small adapter, so the simulation and the real cluster are held to
the same rules; the activation check is this file's own.

A history entry (a dict): client, kind ("append" or "read"), obj (int), token (str or None),
box (the box asked), invoke and complete (ms on CLOCK_MONOTONIC from the run's start),
status ("ok", "fail": certainly not done, "unknown": maybe done, or None: never answered),
result (the list answered, for ok), served (the box that answered, from Duro-Forwarded-To).

An activation interval (a dict): id (hex), box, incarnation, epoch, start, end (ms), from
the boxes' `cluster trace:` log lines (DURO_TRACE_ACTIVATIONS) and the harness's marks of
when it killed or stopped each process."""
import importlib.util
import os
import re


def _load_model_check():
    # By path and under its own name: the model's test puts its folder on sys.path and
    # imports it as plain "check".
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "model", "check.py")
    spec = importlib.util.spec_from_file_location("duro_model_check", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


model_check = _load_model_check()

# What each violation kind means, for the summary.
KINDS = {
    "lost-ack": "an acknowledged token missing from a later read (acknowledged write lost)",
    "stale": "a read went back in time (shorter than one completed before it began)",
    "diverged": "two answers for one object are not prefixes of one list",
    "phantom": "a token that was never invoked, or whose request was refused",
    "duplicate": "a token twice in one list",
    "own-token": "an acknowledged append whose answer lacks its own token",
    "two-active": "one object active on two boxes at overlapping times under the same epoch",
}


class _Params:
    objects = 0
    slots = 1
    liveness_bound = float("inf")


class _World:
    """What tests/model/check.check reads of a simulated run."""

    def __init__(self, history):
        self.p = _Params()
        self.history = [dict(op, box=op.get("served") or op["box"]) for op in history]
        self.releases = []  # the gate's record: activations are checked below instead
        self.heal_time = None  # liveness is a figure here, not a check


def expand(ops, branches):
    """The ops of one object with every result a list: a result kept as (b, n) by the
    harness, to save memory, is branches[b][:n]."""
    return [dict(op, result=branches[op["result"][0]][:op["result"][1]])
            if isinstance(op["result"], tuple) else op for op in ops]


def check_history(history, canon=None):
    """The model's list-append checks over a real history, one object at a time (the
    model's checker stops after 50 violations of a run). canon: object -> the branches
    that (branch, length) results are prefixes of. Returns [(kind, text)]."""
    by = {}
    for op in history:
        by.setdefault(op["obj"], []).append(op)
    out = []
    for o in sorted(by):
        out += model_check.check(_World(expand(by[o], (canon or {}).get(o, []))))
    return out


TRACE = re.compile(r"cluster trace: (activate|unload) id ([0-9a-f]+) slot (\d+) epoch (-?\d+) "
                   r"owner (\S+) incarnation (-?\d+) core (\d+) mono_us (\d+)")
MARK = re.compile(r"harness: (start|killed|stopped) pid (\d+) mono_us (\d+)")


def read_activations(box, text, t0_us, end_ms):
    """Activation intervals of one box from its log (every process it ran, in order). A
    process's intervals still open when it was killed or stopped end then; those of the
    last process end at end_ms."""
    out = []
    open_ = {}

    def close_all(t):
        for (core, oid), iv in open_.items():
            iv["end"] = t
            out.append(iv)
        open_.clear()
    for line in text.splitlines():
        m = MARK.search(line)
        if m:
            if m.group(1) in ("killed", "stopped"):
                close_all((int(m.group(3)) - t0_us) / 1000)
            else:
                close_all((int(m.group(3)) - t0_us) / 1000)  # an earlier process died unseen
            continue
        m = TRACE.search(line)
        if not m:
            continue
        what, oid, slot, epoch, owner, inc, core, us = m.groups()
        t = (int(us) - t0_us) / 1000
        key = (int(core), oid)
        if what == "activate":
            if key in open_:  # never unloaded: a second activation closes the first
                open_[key]["end"] = t
                out.append(open_.pop(key))
            open_[key] = {"id": oid, "box": box, "incarnation": int(inc), "epoch": int(epoch),
                          "slot": int(slot), "owner": owner, "start": t, "end": None}
        elif key in open_:
            iv = open_.pop(key)
            iv["end"] = t
            out.append(iv)
    close_all(end_ms)
    return out


def check_activations(intervals, names=None):
    """One object is never active on two boxes (or two incarnations of one) at overlapping
    times under the same epoch. Returns [(kind, text)]."""
    names = names or {}
    out = []
    by = {}
    for iv in intervals:
        if iv["epoch"] > 0:
            by.setdefault((iv["id"], iv["epoch"]), []).append(iv)
    for (oid, epoch), lst in sorted(by.items()):
        lst.sort(key=lambda iv: iv["start"])
        for i, a in enumerate(lst):
            for b in lst[i + 1:]:
                if b["start"] >= a["end"]:
                    break
                if (a["box"], a["incarnation"]) == (b["box"], b["incarnation"]):
                    continue
                out.append(("two-active", "object %s (slot %d) epoch %d: active on %s (incarnation %d) "
                            "[%.1f, %.1f] and on %s (incarnation %d) [%.1f, %.1f] ms" % (
                                names.get(oid, oid[:16]), a["slot"], epoch, a["box"], a["incarnation"],
                                a["start"], a["end"], b["box"], b["incarnation"], b["start"], b["end"])))
    return out


def subject(text):
    """The object a violation's text names ("object 12" or "object <name>"), or ''."""
    m = re.search(r"object (\S+?)[:, ]", text)
    return m.group(1) if m else ""


def suspects(text, faults):
    """The faults (kind, start, end, what) overlapping the span of the times a violation's
    text names (ms: "[invoke, complete]", "read at T", "at T")."""
    ts = [float(x) for x in re.findall(r"\[(-?\d+\.\d+), ", text)]
    ts += [float(x) for x in re.findall(r"(?:read )?at (-?\d+\.\d+)", text)]
    if not ts:
        return []
    lo, hi = min(ts), max(ts)
    return [f for f in faults if f[1] <= hi and f[2] >= lo]


def check(history, intervals, names=None, canon=None):
    return check_history(history, canon) + check_activations(intervals, names)
