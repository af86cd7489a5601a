"""SQL storage over HTTP, against a real durod: the SqlCounter and Sql classes, SQLite's
errors and duro's refusals with their messages, the limits, a runaway statement cut off at
the event's time budget, and SQL data across eviction, restarts and hard deletes."""
import base64
import json
import os
import signal

import pytest
import requests

import conftest

# Tests asking for `durod` share one per module (conftest.py): each uses objects of its own
# names.
SHARED_DUROD = True


def sql(d, name, text, params=None, status=200):
    body = {"sql": text}
    if params is not None:
        body["params"] = params
    r = requests.post(d.url + "/sql/" + name, data=json.dumps(body), timeout=30)
    assert r.status_code == status, (text, r.status_code, r.text)
    return r.json() if r.headers.get("Content-Type") == "application/json" else r.text


def test_sqlcounter_counts_and_survives_restarts(durod_factory, tmp_path):
    d = durod_factory()
    for i in range(1, 6):
        assert requests.post(d.url + "/sqlcounter/a").text == str(i)
    assert requests.get(d.url + "/sqlcounter/a").text == "5"
    assert requests.get(d.url + "/sqlcounter/fresh").text == "0"
    d.evict("SQLCOUNTER", "a")
    assert requests.post(d.url + "/sqlcounter/a").text == "6"
    assert requests.delete(d.url + "/sqlcounter/a").status_code == 405
    assert d.stop() == 0
    d2 = conftest.start_on(tmp_path, "b", d.data_dir)
    assert requests.post(d2.url + "/sqlcounter/a").text == "7"
    d2.proc.send_signal(signal.SIGKILL)
    d2.proc.wait()
    d3 = conftest.start_on(tmp_path, "c", d.data_dir)
    assert requests.get(d3.url + "/sqlcounter/a").text == "7"


def test_sql_rows_params_and_counts(durod):
    r = sql(durod, "db", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, r REAL, b BLOB)")
    assert r["rows"] == [] and r["database_size"] > 0
    blob = bytes(range(256)) * 3
    r = sql(durod, "db", "INSERT INTO t (v, r, b) VALUES (?, ?, ?), (?, ?, ?)",
            ["h\u00e9 \"q\"\n", 1.5, {"blob": base64.b64encode(blob).decode()}, None, 2, {"blob": ""}])
    assert r["rows_written"] == 2
    r = sql(durod, "db", "SELECT id, v, r, b, typeof(r) AS t FROM t WHERE id >= ? ORDER BY id", [1])
    assert r["columns"] == ["id", "v", "r", "b", "t"]
    assert r["rows"][0][:3] == [1, "h\u00e9 \"q\"\n", 1.5]
    assert base64.b64decode(r["rows"][0][3]["blob"]) == blob
    assert r["rows"][1] == [2, None, 2.0, {"blob": ""}, "real"]
    assert r["rows_read"] >= 2
    # several statements: the parameters go to the last, its rows are answered
    r = sql(durod, "db", "UPDATE t SET v = 'x'; SELECT count(*) AS n FROM t WHERE v = ?", ["x"])
    assert r["rows"] == [[2]] and r["rows_written"] == 2
    r = sql(durod, "db", "-- only a comment")
    assert r["rows"] == []


def test_sql_errors_change_nothing(durod):
    sql(durod, "e", "CREATE TABLE t (id INTEGER PRIMARY KEY, u TEXT UNIQUE)")
    sql(durod, "e", "INSERT INTO t (u) VALUES ('a')")
    r = sql(durod, "e", "SELEC 1", status=400)
    assert r["error"] == 'near "SELEC": syntax error'
    r = sql(durod, "e", "INSERT INTO t (u) VALUES ('a')", status=400)
    assert r["error"] == "UNIQUE constraint failed: t.u"
    r = sql(durod, "e", "SELECT * FROM nope", status=400)
    assert r["error"] == "no such table: nope"
    # all or nothing: the first insert of a failing call is undone
    r = sql(durod, "e", "INSERT INTO t (u) VALUES ('b'); INSERT INTO t (u) VALUES ('a')", status=400)
    assert "UNIQUE" in r["error"]
    assert sql(durod, "e", "SELECT u FROM t ORDER BY u")["rows"] == [["a"]]
    r = sql(durod, "e", "SELECT ?", [1, 2], status=400)
    assert r["error"] == "2 parameters given; the statement takes 1"
    r = sql(durod, "e", "SELECT ?; SELECT 1", [1], status=400)
    assert "parameters bind to the last statement" in r["error"]
    for body, want in [(b"", "must be an object"), (b"[1]", "must be an object"),
                       (b'{"sql": 1}', '"sql" must be a string'), (b'{"params": []}', '"sql" is missing'),
                       (b'{"sql": "SELECT 1", "x": 2}', 'unknown key "x"'),
                       (b'{"sql": "SELECT ?", "params": [[1]]}', "may not be an array"),
                       (b'{"sql": "SELECT 1"', "expected ',' or '}'"),
                       (b'{"sql": "\\ud800"}', "lone surrogate")]:
        r = requests.post(durod.url + "/sql/e", data=body)
        assert r.status_code == 400 and want in r.json()["error"], (body, r.text)
    assert requests.get(durod.url + "/sql/e").status_code == 405


@pytest.mark.parametrize("text, want", [
    ("BEGIN", "BEGIN, COMMIT, ROLLBACK and SAVEPOINT are not allowed"),
    ("COMMIT", "BEGIN, COMMIT, ROLLBACK and SAVEPOINT are not allowed"),
    ("SAVEPOINT s", "BEGIN, COMMIT, ROLLBACK and SAVEPOINT are not allowed"),
    ("ROLLBACK", "BEGIN, COMMIT, ROLLBACK and SAVEPOINT are not allowed"),
    ("ATTACH DATABASE 'x' AS y", "ATTACH and DETACH are not allowed"),
    ("PRAGMA journal_mode = DELETE", "PRAGMA journal_mode is not allowed"),
    ("PRAGMA writable_schema = 1", "PRAGMA writable_schema is not allowed"),
    ("CREATE TABLE _cf_KV (k TEXT)", "the name _cf_KV is reserved"),
    ("CREATE TABLE _duro_x (k TEXT)", "the name _duro_x is reserved"),
    ("CREATE TEMP TABLE tt (k TEXT)", "temporary tables"),
    ("CREATE VIRTUAL TABLE v USING dbstat", "virtual table module dbstat is not allowed"),
    ("ALTER TABLE t RENAME TO _cf_t", "the name _cf_t is reserved"),
    ("SELECT load_extension('x')", "not authorized to use function: load_extension"),
])
def test_forbidden_statements(durod, text, want):
    sql(durod, "f", "CREATE TABLE IF NOT EXISTS t (k TEXT)")
    r = sql(durod, "f", text, status=400 if "load_extension" in text else 403)
    assert want in r["error"], r
    assert sql(durod, "f", "SELECT name FROM sqlite_schema ORDER BY name")["rows"] == [["t"]]


def test_allowed_pragmas_and_virtual_tables(durod):
    sql(durod, "p", "CREATE TABLE t (a INTEGER, b TEXT)")
    assert [c[1] for c in sql(durod, "p", "PRAGMA table_info(t)")["rows"]] == ["a", "b"]
    assert sql(durod, "p", "PRAGMA foreign_keys")["rows"] == [[1]]
    assert sql(durod, "p", "PRAGMA quick_check")["rows"] == [["ok"]]
    sql(durod, "p", "CREATE VIRTUAL TABLE d USING fts5(body)")
    sql(durod, "p", "INSERT INTO d (body) VALUES ('hello durable world')")
    assert sql(durod, "p", "SELECT body FROM d WHERE d MATCH 'durable'")["rows"] == [["hello durable world"]]


def test_limits(durod_factory):
    d = durod_factory(extra_args=["--set", "sql.max_statement_bytes=1100", "--set", "sql.max_params=3",
                                  "--set", "sql.max_row_bytes=5000", "--set", "sql.max_columns=4",
                                  "--set", "sql.max_expr_depth=20"])
    r = sql(d, "l", "SELECT 1" + " " * 1200, status=413)
    assert "sql.max_statement_bytes is 1100" in r["error"]
    r = sql(d, "l", "SELECT ?, ?, ?, ?", [1, 2, 3, 4], status=413)
    assert "too many parameters: 4 (sql.max_params is 3)" in r["error"]
    r = sql(d, "l", "SELECT zeroblob(6000)", status=413)
    assert r["error"] == "string or blob too big"
    r = sql(d, "l", "CREATE TABLE w (a, b, c, d, e)", status=400)
    assert r["error"] == "too many columns on w"
    r = sql(d, "l", "SELECT " + "(" * 30 + "1" + ")" * 30 + " + 1" * 25, status=400)
    assert "Expression tree is too large (maximum depth 20)" in r["error"]
    assert sql(d, "l", "SELECT 1")["rows"] == [[1]]


def test_runaway_statement_is_interrupted(durod_factory):
    d = durod_factory(cores=1, extra_args=["--set", "sql.time_budget_ms=300"])
    sql(d, "r", "CREATE TABLE t (k INTEGER)")
    r = requests.post(d.url + "/sql/r", data=json.dumps({"sql":
        "INSERT INTO t VALUES (1); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        "SELECT count(*) FROM c"}), timeout=30)
    assert r.status_code == 500
    # the event failed as a whole; the object and its core go on
    assert sql(d, "r", "SELECT count(*) FROM t")["rows"] == [[0]]
    assert requests.post(d.url + "/sqlcounter/z").text == "1"


@pytest.mark.own_durod  # lists every object of its class
def test_sql_and_kv_are_one_storage(durod):
    assert requests.post(durod.url + "/sqlcounter/gone").text == "1"
    sql(durod, "gone", "CREATE TABLE t (k TEXT); INSERT INTO t VALUES ('x')")
    listed = durod.control({"cmd": "objects", "class": "Sql"})
    assert listed["ok"] and [o.get("name") for o in listed["objects"]] == ["gone"]
    info = durod.control({"cmd": "object", "binding": "SQL", "name": "gone"})
    assert info["ok"] and info["keys"] == 1
    r = durod.control({"cmd": "delete", "binding": "SQL", "name": "gone", "confirm": True})
    assert r.get("ok"), r
    assert sql(durod, "gone", "SELECT name FROM sqlite_schema")["rows"] == []
    assert durod.control({"cmd": "objects", "class": "Sql"})["objects"] == []
    r = durod.control({"cmd": "delete", "binding": "SQLCOUNTER", "name": "gone", "confirm": True})
    assert r.get("ok"), r
    assert requests.get(durod.url + "/sqlcounter/gone").text == "0"


def test_sql_pages_across_eviction(durod_factory):
    """A database larger than the page cache, read back after eviction."""
    d = durod_factory(cores=1, extra_args=["--set", "sql.cache_bytes_per_core=1048576"])
    sql(d, "big", "CREATE TABLE t (id INTEGER PRIMARY KEY, pad BLOB)")
    for i in range(8):
        sql(d, "big", "INSERT INTO t (pad) SELECT randomblob(3000) FROM (WITH RECURSIVE c(x) AS "
                      "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100) SELECT x FROM c)")
    want = sql(d, "big", "SELECT count(*), sum(length(pad)), hex(md5) FROM t, "
                         "(SELECT group_concat(hex(substr(pad, 1, 8)), '') AS md5 FROM t)")["rows"]
    size = sql(d, "big", "SELECT 1")["database_size"]
    assert size > 2 * 1048576
    d.evict("SQL", "big")
    assert sql(d, "big", "SELECT count(*), sum(length(pad)), hex(md5) FROM t, "
                         "(SELECT group_concat(hex(substr(pad, 1, 8)), '') AS md5 FROM t)")["rows"] == want


def pipelined_posts(d, path, n):
    """n POSTs sent back to back on one connection; their answers' bodies, in order."""
    import socket
    host, port = d.url.split("//")[1].split(":")
    s = socket.create_connection((host, int(port)), timeout=30)
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n" % path).encode() * n)
    answers = conftest.read_responses(s, n, timeout=30)
    assert all(status == 200 for status, _, _ in answers), answers
    bodies = [body.decode() for _, _, body in answers]
    s.close()
    return bodies


@pytest.mark.parametrize("ahead", ["true", "false"])
def test_connections_opened_ahead(durod_factory, ahead):
    """Requests whose object's connection is being opened on the core's opener thread wait
    for it and then run in their order: pipelined on one connection to new databases, to
    databases whose connection an eviction closed, and with a connection budget so small
    that connections close between events."""
    d = durod_factory(cores=1, extra_args=["--set", "sql.open_ahead=" + ahead])
    assert requests.post(d.url + "/sqlcounter/first").text == "1"  # the namespace uses SQL
    for name in ("p0", "p1", "p2"):
        assert pipelined_posts(d, "/sqlcounter/" + name, 20) == [str(i) for i in range(1, 21)]
    d.evict("SQLCOUNTER", "p1")
    assert pipelined_posts(d, "/sqlcounter/p1", 10) == [str(i) for i in range(21, 31)]
    assert requests.get(d.url + "/sqlcounter/p1").text == "30"
    # Statements that change the schema run once and are not kept; the others are.
    sql(d, "ddl", "CREATE TABLE t (v)")
    for i in range(3):
        sql(d, "ddl", "CREATE TABLE IF NOT EXISTS t (v)")
        sql(d, "ddl", "INSERT INTO t VALUES (?)", [i])
    assert sql(d, "ddl", "SELECT count(*) FROM t")["rows"] == [[3]]
    assert d.stop() == 0
    if ahead == "true":
        assert " ahead, " in d.logtext() and " (0 ahead, " not in d.logtext()
    tight = durod_factory(cores=1, extra_args=["--set", "sql.open_ahead=" + ahead,
                                               "--set", "sql.connection_bytes_per_core=1048576"])
    for round in range(1, 3):
        for i in range(60):
            assert requests.post(tight.url + "/sqlcounter/t%d" % i).text == str(round)
    assert pipelined_posts(tight, "/sqlcounter/t0", 5) == ["3", "4", "5", "6", "7"]


DUROCTL = os.path.join(os.path.dirname(conftest.DUROD), "duroctl")


def duroctl(d, *args):
    import subprocess
    return subprocess.run([DUROCTL, "--socket", os.path.join(d.data_dir, "control.sock")] + list(args),
                          capture_output=True, text=True, timeout=30)


def test_duroctl_sql_reads_and_writes_only_when_told(durod):
    sql(durod, "ops", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, b BLOB)")
    sql(durod, "ops", "INSERT INTO t (v, b) VALUES ('a|b', x'00ff'), (NULL, NULL)")
    r = duroctl(durod, "sql", "SQL", "ops", "SELECT id, v, b FROM t ORDER BY id")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "id|v|b\n1|a|b|X'00FF'\n2|NULL|NULL\n"
    assert "2 rows" in r.stderr
    # by ID too, with --json, parameters and a row limit
    oid = durod.control({"cmd": "object", "binding": "SQL", "name": "ops"})["id"]
    r = duroctl(durod, "--json", "sql", oid, "SELECT id FROM t WHERE id >= ? ORDER BY id",
                "--param", "1", "--limit", "1")
    j = json.loads(r.stdout)
    assert j["rows"] == [[1]] and j["truncated"] is True
    # read-only unless --write: refused, nothing changed
    r = duroctl(durod, "sql", "SQL", "ops", "DELETE FROM t")
    assert r.returncode != 0 and "read-only" in r.stderr
    assert sql(durod, "ops", "SELECT count(*) FROM t")["rows"] == [[2]]
    r = duroctl(durod, "sql", "SQL", "ops", "SELECT 1; DELETE FROM t")
    assert r.returncode != 0 and "read-only" in r.stderr
    assert sql(durod, "ops", "SELECT count(*) FROM t")["rows"] == [[2]]
    # bad SQL: SQLite's message; forbidden statements stay forbidden with --write
    r = duroctl(durod, "sql", "SQL", "ops", "SELEC 1")
    assert r.returncode != 0 and 'near "SELEC": syntax error' in r.stderr
    r = duroctl(durod, "sql", "--write", "SQL", "ops", "PRAGMA writable_schema = 1")
    assert r.returncode != 0 and "PRAGMA writable_schema is not allowed" in r.stderr
    # --write: durable when answered, seen by the class
    r = duroctl(durod, "sql", "--write", "SQL", "ops", "UPDATE t SET v = ? WHERE id = 2", "--param", "z")
    assert r.returncode == 0, r.stderr
    assert "1 written" in r.stderr
    assert sql(durod, "ops", "SELECT v FROM t WHERE id = 2")["rows"] == [["z"]]
    # an object that never used SQL has an empty database; a SqlCounter's table is readable
    assert requests.post(durod.url + "/sqlcounter/seen").text == "1"
    r = duroctl(durod, "sql", "SQLCOUNTER", "seen", "SELECT n FROM counter")
    assert r.stdout == "n\n1\n"
    r = duroctl(durod, "sql", "SQL", "nothing", "SELECT count(*) FROM sqlite_schema")
    assert r.stdout.splitlines()[-1] == "0"
    # an unknown binding is named
    r = duroctl(durod, "sql", "NOPE", "x", "SELECT 1")
    assert r.returncode != 0 and "NOPE" in r.stderr


def test_export_import_carry_sql(durod_factory, tmp_path):
    a = durod_factory()
    sql(a, "e1", "CREATE TABLE t (id INTEGER PRIMARY KEY, pad BLOB); CREATE INDEX ti ON t (pad)")
    sql(a, "e1", "INSERT INTO t (pad) SELECT randomblob(500) FROM (WITH RECURSIVE c(x) AS "
                 "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400) SELECT x FROM c)")
    sql(a, "e2", "CREATE TABLE u (v TEXT); INSERT INTO u VALUES ('two')")
    want = sql(a, "e1", "SELECT count(*), sum(length(pad)), max(hex(pad)) FROM t")["rows"]
    size = sql(a, "e1", "SELECT 1")["database_size"]
    path = str(tmp_path / "sql.dx")
    r = duroctl(a, "--json", "export", "--class", "Sql", path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["objects"] == 2
    b = durod_factory()
    r = duroctl(b, "--json", "import", path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["failed"] == 0
    assert sql(b, "e1", "SELECT count(*), sum(length(pad)), max(hex(pad)) FROM t")["rows"] == want
    assert sql(b, "e1", "PRAGMA quick_check")["rows"] == [["ok"]]
    assert sql(b, "e1", "SELECT 1")["database_size"] == size
    assert sql(b, "e2", "SELECT v FROM u")["rows"] == [["two"]]
    # and the imported database goes on working, across a restart
    sql(b, "e2", "INSERT INTO u VALUES ('three')")
    assert b.stop() == 0
    c = conftest.start_on(tmp_path, "c", b.data_dir)
    assert sql(c, "e2", "SELECT v FROM u ORDER BY v")["rows"] == [["three"], ["two"]]


def test_deleted_class_takes_its_sql_databases(tmp_path):
    bindings = [{"name": n, "class_name": c} for n, c in conftest.BUILTIN_BINDINGS]
    cfg = {"durable_objects": {"bindings": bindings}, "migrations": conftest.BUILTIN_MIGRATIONS}
    d = conftest.start_on(tmp_path, "a", str(tmp_path / "data"), config=cfg)
    sql(d, "doomed", "CREATE TABLE t (v); INSERT INTO t VALUES (1)")
    assert requests.post(d.url + "/sqlcounter/kept").text == "1"
    oid = d.control({"cmd": "object", "binding": "SQL", "name": "doomed"})["id"]
    assert d.stop() == 0
    # drop the Sql class, then bring it back under a new tag: an empty class again
    cfg2 = {"durable_objects": {"bindings": [b for b in bindings if b["class_name"] != "Sql"]},
            "migrations": conftest.BUILTIN_MIGRATIONS + [{"tag": "drop-sql", "deleted_classes": ["Sql"]}]}
    d2 = conftest.start_on(tmp_path, "b", d.data_dir, config=cfg2)
    assert "dropped 1 SQL databases of a deleted class" in d2.logtext()
    assert requests.post(d2.url + "/sqlcounter/kept").text == "2"
    assert d2.stop() == 0
    cfg3 = {"durable_objects": {"bindings": bindings},
            "migrations": cfg2["migrations"] + [{"tag": "again", "new_sqlite_classes": ["Sql"]}]}
    d3 = conftest.start_on(tmp_path, "c", d.data_dir, config=cfg3)
    # same name, new namespace secret: another ID, and nothing of the old pages under it
    assert d3.control({"cmd": "object", "binding": "SQL", "name": "doomed"})["id"] != oid
    assert sql(d3, "doomed", "SELECT count(*) FROM sqlite_schema")["rows"] == [[0]]
    assert requests.get(d3.url + "/sqlcounter/kept").text == "2"


def test_answers_and_temporary_files_are_bounded(durod_factory):
    """A query cannot take the core's memory: an answer past 16 MiB of JSON is 413, and a
    sort that spills past sql.max_event_write_bytes of temporary file fails, while the
    object and its core go on."""
    d = durod_factory(cores=1, extra_args=["--set", "sql.cache_bytes_per_core=1048576",
                                           "--set", "sql.max_event_write_bytes=1048576"])
    r = sql(d, "huge", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) "
                       "SELECT x, hex(randomblob(60)) FROM c", status=413)
    assert "16 MiB" in r["error"]
    r = requests.post(d.url + "/sql/huge", json={"sql":
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) "
        "SELECT x FROM c ORDER BY randomblob(500)"}, timeout=60)
    assert r.status_code == 507 and "temporary file" in r.json()["error"], r.text
    sql(d, "huge", "CREATE TABLE t (v); INSERT INTO t VALUES (1)")
    assert sql(d, "huge", "SELECT v FROM t")["rows"] == [[1]]


def test_duroctl_sql_cuts_rows_past_its_bytes(durod):
    sql(durod, "wide", "CREATE TABLE t (b BLOB)")
    for _ in range(4):
        sql(durod, "wide", "INSERT INTO t SELECT randomblob(1000000) FROM (WITH RECURSIVE c(x) AS "
                           "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5) SELECT x FROM c)")
    r = duroctl(durod, "--json", "sql", "SQL", "wide", "SELECT b FROM t", "--limit", "100")
    j = json.loads(r.stdout)
    assert j["truncated"] is True and 3 <= len(j["rows"]) < 10


def test_dashboard_sql_view_reads_only(durod_factory):
    """GET /api/sql on the metrics listener: the dashboard's read-only SQL view. Rows come
    back as JSON (bounded by limit), anything that would write is refused by the server,
    SQLite's message comes back with a 400, and the view is off (403) unless configured."""
    port = conftest.free_port()
    d = durod_factory(config={"control": {"metrics": "127.0.0.1:%d" % port, "dashboard_sql": True}})
    api = "http://127.0.0.1:%d/api/sql" % port
    sql(d, "dash", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, b BLOB)")
    sql(d, "dash", "INSERT INTO t (v, b) VALUES ('a & b', x'00ff'), (NULL, NULL), ('c', NULL)")
    r = requests.get(api, params={"binding": "SQL", "name": "dash", "sql": "SELECT id, v, b FROM t ORDER BY id"},
                     timeout=30)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["ok"] and j["columns"] == ["id", "v", "b"]
    assert j["rows"] == [[1, "a & b", {"blob": "AP8="}], [2, None, None], [3, "c", None]]
    assert j["truncated"] is False and j["rows_returned"] == 3
    # bounded by limit; by ID too
    oid = d.control({"cmd": "object", "binding": "SQL", "name": "dash"})["id"]
    r = requests.get(api, params={"id": oid, "sql": "SELECT id FROM t ORDER BY id", "limit": "2"}, timeout=30)
    assert r.status_code == 200 and r.json()["rows"] == [[1], [2]] and r.json()["truncated"] is True
    # read-only, enforced by the server whatever the request says
    for text in ("DELETE FROM t", "INSERT INTO t (v) VALUES ('x')", "DROP TABLE t",
                 "SELECT 1; DELETE FROM t"):
        r = requests.get(api, params={"binding": "SQL", "name": "dash", "sql": text, "write": "1"}, timeout=30)
        assert r.status_code == 400 and "read-only" in r.json()["error"], (text, r.text)
    assert sql(d, "dash", "SELECT count(*) FROM t")["rows"] == [[3]]
    # SQLite's own message, and duro's refusals
    r = requests.get(api, params={"binding": "SQL", "name": "dash", "sql": "SELECT * FROM nope"}, timeout=30)
    assert r.status_code == 400 and "no such table: nope" in r.json()["error"], r.text
    r = requests.get(api, params={"binding": "NOPE", "name": "dash", "sql": "SELECT 1"}, timeout=30)
    assert r.status_code == 400 and "no binding" in r.json()["error"], r.text
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/api/sql?binding=SQL&name=dash&sql=SELECT%zz")  # sent as is
    r = c.getresponse()
    assert r.status == 400 and "malformed" in json.loads(r.read())["error"]
    c.close()
    r = requests.get(api, params={"binding": "SQL", "name": "dash"}, timeout=30)
    assert r.status_code == 400 and "sql" in r.json()["error"], r.text
    st = requests.get("http://127.0.0.1:%d/api/stats" % port, timeout=30).json()["status"]
    assert st["dashboard_sql"] is True and "SQL" in st["bindings"]
    # off by default
    port2 = conftest.free_port()
    d2 = durod_factory(config={"control": {"metrics": "127.0.0.1:%d" % port2}})
    r = requests.get("http://127.0.0.1:%d/api/sql" % port2,
                     params={"binding": "SQL", "name": "dash", "sql": "SELECT 1"}, timeout=30)
    assert r.status_code == 403 and "dashboard_sql" in r.json()["error"], r.text
    assert d2.control({"cmd": "status"}).get("ok")
