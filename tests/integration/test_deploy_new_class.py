"""Live deploys of a class no binding names yet: `duroctl deploy CLASS FILE --tag TAG
--binding NAME [--route /PREFIX/]` makes the class's storage at runtime under a migration
tag, binds it on every core and serves it at once; the tag, binding and version are in
meta, so a restart serves it whether or not the config restates it; a crash at any point
leaves a data directory that starts; every refusal is one line and changes nothing."""
import json
import os
import signal
import subprocess
import time

import requests

from conftest import BUILTIN_MIGRATIONS, start_on, wait_until
import modbuild
from modbuild import duroctl

FRESH = ["--tag", "fresh-v1", "--binding", "FRESH", "--route", "/fresh/"]


def get(d, path, method="GET"):
    return requests.request(method, d.url + path, timeout=10)


def answer(d, name, method="GET"):
    r = get(d, "/fresh/" + name, method)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.text.split()


def fresh(tmp_path, marker):
    return modbuild.versioned(tmp_path, marker, name="fresh-" + marker, class_name="Fresh")


def restated(path, later=()):
    """A config that restates what the live deploy added: module, binding, tag, route."""
    return modbuild.module_config(
        [path], [("FRESH", "Fresh", "/fresh/")],
        [{"tag": "fresh-v1", "new_classes": ["Fresh"]}] + list(later))


def test_a_new_class_is_served_at_once_and_after_restarts(tmp_path, durod_factory):
    f1 = fresh(tmp_path, "f1")
    d = durod_factory(cores=2)  # the built-in config: Fresh is bound nowhere
    assert get(d, "/fresh/a").status_code == 404
    r = duroctl(d, "deploy", "Fresh", f1, *FRESH)
    assert "new class" in r.stdout and "FRESH" in r.stdout, r.stdout
    for i in range(1, 4):
        assert answer(d, "a", "POST")[:2] == ["f1", str(i)]
    # Both cores serve it (names spread over both), and the generic route knows the binding.
    for i in range(40):
        assert answer(d, "n%d" % i, "POST")[:2] == ["f1", "1"]
    r = get(d, "/obj/FRESH/new", "POST")
    assert r.status_code == 200 and r.text.startswith("f1 1"), r.text
    vs = json.loads(duroctl(d, "--json", "versions", "Fresh").stdout)
    assert len(vs["versions"]) == 1 and vs["versions"][0]["source"] == "deploy"
    assert 'migration tag "fresh-v1" (live deploy)' in d.logtext()
    data = d.data_dir
    d.stop()

    # The config does not restate it: served from what meta holds.
    d = start_on(tmp_path, "r1", data, cores=2)
    assert answer(d, "a")[:2] == ["f1", "3"]
    assert "binding FRESH of class Fresh (added live" in d.logtext()
    # A second version, deployed the usual way, is what runs after the next restart.
    duroctl(d, "deploy", "Fresh", fresh(tmp_path, "f2"), "--immediate")
    assert answer(d, "a")[:2] == ["f2", "3"]
    d.stop()

    # A config listing its migrations may leave the live tag out and add tags after it.
    cfg = {"migrations": BUILTIN_MIGRATIONS + [{"tag": "later-v1", "new_classes": ["Later"]}]}
    d = start_on(tmp_path, "r2", data, config=cfg, cores=1)
    assert answer(d, "a")[:2] == ["f2", "3"]
    d.stop()

    # Or restate it at its place; the config's binding is then the one, the deployed
    # version still what runs.
    later = [{"tag": "later-v1", "new_classes": ["Later"]}]
    d = start_on(tmp_path, "r3", data, config=restated(f1, later), cores=2)
    assert answer(d, "a", "POST")[:2] == ["f2", "4"]
    assert "binding FRESH of class Fresh (added live" not in d.logtext()
    d.stop()

    # Restated at another place: refused at start, naming the tag.
    bad = restated(f1)
    bad["migrations"] = BUILTIN_MIGRATIONS + later + [{"tag": "fresh-v1", "new_classes": ["Fresh"]}]
    d = start_on(tmp_path, "r4", data, config=bad, cores=1, wait=False)
    assert d.proc.wait(timeout=30) == 2
    assert 'tag "fresh-v1" was applied already by a live deploy' in d.logtext()


def test_refusals_name_the_reason_and_change_nothing(tmp_path, durod_factory):
    f1 = fresh(tmp_path, "f1")
    d = durod_factory(cores=1)
    cases = [
        ([], "to add it live, give its migration tag and binding"),
        (["--tag", "builtin-v1", "--binding", "FRESH"], 'migration tag "builtin-v1" was applied already'),
        (["--tag", "fresh-v1", "--binding", "COUNTER"], "binding COUNTER is taken (by class Counter)"),
        (["--tag", "fresh-v1", "--binding", "FRESH", "--route", "/counter/"],
         "route \"/counter/\": taken: the route /counter/ comes first"),
        (["--tag", "fresh-v1", "--binding", "FRESH", "--route", "/obj/x/"],
         "the route /obj/ comes first"),
        (["--tag", "fresh-v1", "--binding", "FRESH", "--route", "fresh"], "starts and ends with '/'"),
        (["--tag", "fresh-v1", "--binding", "9X"], "a binding name of letters"),
        (["--tag", "fresh-v1", "--binding", "FRESH", "--percent", "50"], "every object runs it"),
    ]
    for args, why in cases:
        r = duroctl(d, "deploy", "Fresh", f1, *args, check=False)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and why in lines[0], (args, r.stderr)
    # A class already bound: its tag, binding and route options are refused.
    r = duroctl(d, "deploy", "Counter", modbuild.builtin_module("counter"), *FRESH, check=False)
    assert r.returncode == 1 and "class Counter is bound already" in r.stderr, r.stderr
    # --check validates and makes nothing.
    r = duroctl(d, "deploy", "Fresh", f1, *FRESH, "--check")
    assert "is valid (not deployed)" in r.stdout
    assert get(d, "/fresh/a").status_code == 404
    # After all that the deploy goes through, and then the same tag, class or binding is
    # refused for another class.
    duroctl(d, "deploy", "Fresh", f1, *FRESH)
    assert answer(d, "a", "POST")[:2] == ["f1", "1"]
    other = modbuild.versioned(tmp_path, "o1", name="other", class_name="Other")
    r = duroctl(d, "deploy", "Other", other, "--tag", "fresh-v1", "--binding", "OTHER", check=False)
    assert r.returncode == 1 and 'migration tag "fresh-v1" was applied already' in r.stderr, r.stderr
    r = duroctl(d, "deploy", "Other", other, "--tag", "other-v1", "--binding", "FRESH", check=False)
    assert r.returncode == 1 and "binding FRESH is taken (by class Fresh)" in r.stderr, r.stderr
    assert answer(d, "a")[:2] == ["f1", "1"]
    assert get(d, "/obj/OTHER/new", "POST").status_code == 404
    # A class the data directory has storage for, from a migration, but that is not bound.
    cfg = {"migrations": BUILTIN_MIGRATIONS + [{"tag": "kept-v1", "new_classes": ["Kept"]}]}
    d.stop()
    d = start_on(tmp_path, "r1", d.data_dir, config=cfg, cores=1)
    kept = modbuild.versioned(tmp_path, "k1", name="kept", class_name="Kept")
    r = duroctl(d, "deploy", "Kept", kept, "--tag", "kept-v2", "--binding", "KEPT", check=False)
    assert r.returncode == 1 and 'class "Kept" exists already in this data_dir' in r.stderr, r.stderr
    assert answer(d, "a")[:2] == ["f1", "1"]


def test_sigkill_around_the_deploy_leaves_a_data_dir_that_starts(tmp_path, durod_factory):
    f1 = fresh(tmp_path, "f1")
    d = durod_factory(cores=2)
    data = d.data_dir
    delays = [0.0, 0.005, 0.02, 0.05, 0.1, 0.2, 0.4]
    deployed = False
    for i, delay in enumerate(delays):
        if not deployed:
            p = subprocess.Popen([modbuild.DUROCTL, "--socket", os.path.join(data, "control.sock"),
                                  "deploy", "Fresh", f1] + FRESH,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(delay)
        else:
            # Deployed: writes to its new family are in the commit logs only when killed.
            for k in range(20):
                answer(d, "w%d" % k, "POST")
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        if not deployed:
            p.communicate(timeout=30)
        d = start_on(tmp_path, "k%d" % i, data, cores=2)
        r = get(d, "/fresh/a", "POST")
        if r.status_code == 404:
            assert not deployed
            continue  # killed before the tag was recorded: nothing of it is bound
        assert r.status_code == 200, (r.status_code, r.text)
        deployed = True
    if not deployed:
        duroctl(d, "deploy", "Fresh", f1, *FRESH)
        for k in range(20):
            answer(d, "w%d" % k, "POST")
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        d = start_on(tmp_path, "last", data, cores=2)
    for k in range(20):
        assert int(answer(d, "w%d" % k)[1]) >= 1
    # The tag is recorded exactly once, whatever happened: a redeploy of it is refused.
    r = duroctl(d, "deploy", "Other", modbuild.versioned(tmp_path, "o", name="o", class_name="Other"),
                "--tag", "fresh-v1", "--binding", "OTHER", check=False)
    assert r.returncode == 1 and "was applied already" in r.stderr


def test_a_module_of_two_classes_deploys_the_one_named(tmp_path, durod_factory):
    twin = modbuild.build(tmp_path, "twin", sources=("twin.c",), defines=['MARKER="t1"'])
    d = durod_factory(cores=1)
    r = duroctl(d, "deploy", "TwinA", twin, "--tag", "twin-a", "--binding", "TWINA",
                "--route", "/twina/")
    assert "not deployed: TwinB" in r.stdout, r.stdout
    assert "only TwinA is deployed; not deployed: TwinB" in d.logtext()
    assert get(d, "/twina/x", "POST").text.startswith("t1 1")
    assert get(d, "/obj/TWINB/new", "POST").status_code == 404  # not bound by it
    # The other one is deployed by its own name, from the same file.
    duroctl(d, "deploy", "TwinB", twin, "--tag", "twin-b", "--binding", "TWINB", "--route", "/twinb/")
    assert get(d, "/twinb/y").text.strip() == "TwinB t1"
    assert get(d, "/twina/x").text.startswith("t1 1")
    r = json.loads(duroctl(d, "--json", "deploy", "TwinA", twin, "--check").stdout)
    assert r["not_deployed"] == ["TwinB"]
