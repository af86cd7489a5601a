"""The router, case by case, through a real durod: routes tried in config order (not the
longest prefix), "name", "string" and "path" routes, percent-decoding of names and its
limits, subpaths, and every refusal with its status. The matching lives inside
obj_handle_http today; these cases are the table a unit test of a pure route function
should start from once the object runtime has one."""
import requests

from conftest import read_responses

ROUTES = [
    {"prefix": "/p/", "binding": "ECHO", "id": "name"},
    {"prefix": "/p/q/", "binding": "COUNTER", "id": "name"},  # never reached: /p/ is first
    {"prefix": "/a/b/", "binding": "COUNTER", "id": "name"},
    {"prefix": "/a/", "binding": "ECHO", "id": "name"},
    {"prefix": "/byid/", "binding": "ECHO", "id": "string"},
    {"prefix": "/obj/", "id": "path"},
]
BINDINGS = [{"name": "ECHO", "class_name": "Echo"}, {"name": "COUNTER", "class_name": "Counter"}]


def routed(durod_factory):
    return durod_factory(config={"durable_objects": {"bindings": BINDINGS}, "routes": ROUTES})


def status(d, path):
    """The status for exactly this target (requests would re-encode a stray "%")."""
    with d.connect(timeout=10) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        return read_responses(s, 1)[0][0]


def echo(d, path, **kw):
    r = requests.get(d.url + path, timeout=10, **kw)
    assert r.status_code == 200 and r.headers["X-Class"] == "Echo", (path, r.status_code, r.text)
    return r


def test_routes_are_tried_in_order(durod_factory):
    d = routed(durod_factory)
    r = echo(d, "/p/q/x")  # /p/ comes first, so /p/q/ never matches: name "q", subpath "/x"
    assert r.headers["X-Subpath"] == "/x"
    assert r.headers["X-Object-Id"] == d.object_info("ECHO", "q")["id"]
    assert requests.post(d.url + "/a/b/x", timeout=10).text == "1"  # /a/b/ before /a/
    assert requests.post(d.url + "/a/b/x", timeout=10).text == "2"
    r = echo(d, "/a/bx")  # not under /a/b/
    assert r.headers["X-Object-Id"] == d.object_info("ECHO", "bx")["id"]
    r = echo(d, "/a/b")  # shorter than /a/b/: the /a/ route, name "b", no subpath
    assert r.headers["X-Object-Id"] == d.object_info("ECHO", "b")["id"]
    assert r.headers["X-Subpath"] == ""
    assert echo(d, "/a/q?x=1").headers["X-Query"] == "x=1"  # the query is no part of it
    for path in ("/zzz", "/a", "/", "/A/x", "/byid"):
        assert status(d, path) == 404, path


def test_names_are_decoded_and_bounded(durod_factory):
    d = routed(durod_factory)
    r = echo(d, "/a/x%2Fy/z")  # an encoded slash belongs to the name
    assert r.headers["X-Object-Id"] == d.object_info("ECHO", "x/y")["id"]
    assert r.headers["X-Subpath"] == "/z"
    assert echo(d, "/a/%41%62").headers["X-Object-Id"] == d.object_info("ECHO", "Ab")["id"]
    # the limit (256 bytes) is on the decoded name, not on the path
    r = echo(d, "/a/" + "%41" * 256)
    assert r.headers["X-Object-Id"] == d.object_info("ECHO", "A" * 256)["id"]
    for path in ("/a/" + "%41" * 257, "/a/" + "n" * 257, "/a/%zz", "/a/%4", "/a/abc%", "/a/%",
                 "/a/%4/x", "/a/", "/a//x"):
        assert status(d, path) == 400, path[:40]


def test_string_and_path_routes(durod_factory):
    d = routed(durod_factory)
    oid = d.object_info("ECHO", "alice")["id"]
    assert echo(d, "/a/alice").headers["X-Events"] == "1"
    r = echo(d, "/byid/" + oid + "/sub")  # the same instance, by its ID
    assert r.headers["X-Object-Id"] == oid and r.headers["X-Events"] == "2"
    assert r.headers["X-Subpath"] == "/sub"
    assert echo(d, "/byid/" + oid.upper()).headers["X-Object-Id"] == oid
    assert echo(d, "/obj/ECHO/" + oid).headers["X-Events"] == "4"
    counter_id = d.object_info("COUNTER", "alice")["id"]
    assert requests.get(d.url + "/byid/" + counter_id, timeout=10).status_code == 404  # not ECHO's
    r = echo(d, "/obj/ECHO/new/sub")
    assert len(r.headers["Duro-Id"]) == 64 and r.headers["X-Subpath"] == "/sub"
    assert r.headers["X-Object-Id"] == r.headers["Duro-Id"]
    for path, want in (("/obj/ECHO", 400), ("/obj/ECHO/", 400), ("/obj/NOPE/new", 404),
                       ("/obj/echo/new", 404), ("/obj/", 404), ("/obj/ECHO/xyz", 400),
                       ("/obj/COUNTER/" + oid, 404), ("/byid/" + oid[:-1], 400), ("/byid/", 400)):
        assert status(d, path) == want, path
