"""Objects: routing by name and by ID, namespaces, activation, eviction, handler failures."""
import time

import requests

# Tests asking for `durod` share one per module (conftest.py): each uses objects of its own
# names.
SHARED_DUROD = True


def test_new_id_then_address_by_string(durod):
    r = requests.post(durod.url + "/obj/COUNTER/new")
    assert r.status_code == 200 and r.text == "1"
    oid = r.headers["Duro-Id"]
    assert len(oid) == 64 and all(c in "0123456789abcdef" for c in oid)
    assert requests.post(durod.url + "/obj/COUNTER/" + oid).text == "2"
    assert requests.get(durod.url + "/obj/COUNTER/" + oid.upper()).text == "2"


def test_named_object_reachable_by_its_id(durod):
    r = requests.get(durod.url + "/echo/alice")
    oid = r.headers["X-Object-Id"]
    r2 = requests.get(durod.url + "/obj/ECHO/" + oid + "/sub")
    assert r2.headers["X-Object-Id"] == oid
    assert r2.headers["X-Subpath"] == "/sub"
    assert r2.headers["X-Events"] == "2"  # the same instance


def test_id_from_another_namespace_is_404(durod):
    oid = requests.get(durod.url + "/echo/bob").headers["X-Object-Id"]
    r = requests.get(durod.url + "/obj/COUNTER/" + oid)
    assert r.status_code == 404
    # A forged ID (body changed) is refused the same way.
    forged = ("0" if oid[0] != "0" else "1") + oid[1:]
    assert requests.get(durod.url + "/obj/ECHO/" + forged).status_code == 404


def test_malformed_ids_are_400(durod):
    for bad in ["abc", "g" * 64, "a" * 63, "a" * 65]:
        r = requests.get(durod.url + "/obj/ECHO/" + bad)
        assert r.status_code == 400, bad


def test_unknown_binding_and_route_404(durod):
    assert requests.get(durod.url + "/obj/NOPE/" + "a" * 64).status_code == 404
    assert requests.get(durod.url + "/elsewhere").status_code == 404


def test_names_are_percent_decoded(durod):
    a = requests.get(durod.url + "/echo/a%20b").headers["X-Object-Id"]
    b = requests.get(durod.url + "/echo/a b".replace(" ", "%20")).headers["X-Object-Id"]
    c = requests.get(durod.url + "/echo/a_b").headers["X-Object-Id"]
    assert a == b and a != c


def test_name_length_limit(durod):
    assert requests.get(durod.url + "/echo/" + "n" * 256).status_code == 200
    assert requests.get(durod.url + "/echo/" + "n" * 257).status_code == 400


def test_ids_survive_restart(durod_factory, tmp_path):
    d = durod_factory()
    oid = requests.get(d.url + "/echo/persist").headers["X-Object-Id"]
    assert d.stop() == 0
    # Same data dir: the namespace secret is reused, so the ID is the same and valid.
    import conftest
    d2 = conftest.start_on(tmp_path, "again", d.data_dir)
    try:
        assert requests.get(d2.url + "/echo/persist").headers["X-Object-Id"] == oid
        assert requests.get(d2.url + "/obj/ECHO/" + oid).status_code == 200
    finally:
        assert d2.stop() == 0


def test_idle_objects_are_evicted(durod_factory):
    d = durod_factory(config={"objects": {"evict_idle_ms": 300}})
    assert requests.get(d.url + "/echo/ev").headers["X-Events"] == "1"
    assert requests.get(d.url + "/echo/ev").headers["X-Events"] == "2"
    time.sleep(1.8)  # idle time plus one eviction scan
    assert requests.get(d.url + "/echo/ev").headers["X-Events"] == "1"


def test_failing_handler_is_500_and_object_keeps_working(durod_factory):
    durod = durod_factory(test_classes=True)  # TestEcho: POST /fail fails the handler
    r = requests.post(durod.url + "/echo/f/fail")
    assert r.status_code == 500
    r = requests.get(durod.url + "/echo/f")
    assert r.status_code == 200 and r.headers["X-Events"] == "2"
