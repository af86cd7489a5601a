"""Migrations as wrangler's: tags applied once and in order; renames keep data and IDs,
deletes drop data; bad sequences are refused at start with exit status 2, changing nothing."""
import json

import requests

import conftest


def cfg(migrations, bindings):
    return {
        "durable_objects": {"bindings": [{"name": n, "class_name": c} for n, c in bindings]},
        "routes": [{"prefix": "/s/", "binding": bindings[0][0], "id": "name"}] if bindings else [],
        "migrations": migrations,
    }


V1 = {"tag": "v1", "new_classes": ["KV"]}
V2 = {"tag": "v2", "renamed_classes": [{"from": "KV", "to": "KVStore"}]}
V3 = {"tag": "v3", "deleted_classes": ["KVStore"]}
V4 = {"tag": "v4", "new_classes": ["KVStore"]}


def start(tmp_path, name, data_dir, config):
    return conftest.start_on(tmp_path, name, data_dir, config=config)


def refused(tmp_path, data_dir, config):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(config))
    r = conftest.run_durod(["--config", str(p), "--data-dir", data_dir, "--listen",
                            "127.0.0.1:%d" % conftest.free_port()], timeout=20)
    assert r.returncode == 2, r.stderr
    return r.stderr


def test_rename_keeps_data_delete_drops_it(tmp_path):
    data = str(tmp_path / "data")
    d = start(tmp_path, "a", data, cfg([V1], [("S", "KV")]))
    assert requests.put(d.url + "/s/alice/k/x", data=b"kept").status_code == 204
    assert d.stop() == 0

    d = start(tmp_path, "b", data, cfg([V1, V2], [("S", "KVStore")]))
    assert requests.get(d.url + "/s/alice/k/x").text == "kept"  # same name, same ID, same data
    assert d.stop() == 0

    # Deleted: the class may not stay bound ...
    err = refused(tmp_path, data, cfg([V1, V2, V3], [("S", "KVStore")]))
    assert 'class "KVStore" was deleted by migration tag "v3" and is still bound' in err
    # ... and without the binding the data is gone; a new class of that name starts empty.
    d = start(tmp_path, "c", data, cfg([V1, V2, V3], [("C", "Counter")]) | {"migrations": [V1, V2, V3, {"tag": "c1", "new_classes": ["Counter"]}]})
    assert d.stop() == 0
    d = start(tmp_path, "d", data, cfg([V1, V2, V3, {"tag": "c1", "new_classes": ["Counter"]}, V4], [("S", "KVStore")]))
    assert requests.get(d.url + "/s/alice/k/x").status_code == 404
    assert d.stop() == 0


def test_bad_sequences_refused_and_change_nothing(tmp_path):
    data = str(tmp_path / "data")
    d = start(tmp_path, "a", data, cfg([V1], [("S", "KV")]))
    requests.put(d.url + "/s/bob/k/y", data=b"v")
    assert d.stop() == 0
    # A tag skipped (v1 missing), reordered, or an applied tag dropped.
    assert 'tag "v2", but this data_dir applied "v1"' in refused(tmp_path, data, cfg([V2], [("S", "KVStore")]))
    assert "tags cannot be skipped" in refused(tmp_path, data, cfg([V2, V1], [("S", "KV")]))
    assert 'applied tag "v1"' in refused(tmp_path, data, cfg([], [("S", "KV")]))
    # A binding to a class with no migration.
    err = refused(tmp_path, data, cfg([V1], [("S", "KV"), ("E", "Echo")]))
    assert 'class "Echo" has no migration' in err
    # A rename onto an existing class, a delete of an unknown one: the whole list is refused.
    err = refused(tmp_path, data, cfg([V1, {"tag": "x", "new_classes": ["Echo"]},
                                       {"tag": "y", "renamed_classes": [{"from": "KV", "to": "Echo"}]}], [("S", "KV")]))
    assert 'migrations[2] (tag "y"): renamed_classes: class "Echo" exists already' in err
    err = refused(tmp_path, data, cfg([V1, {"tag": "z", "deleted_classes": ["Nope"]}], [("S", "KV")]))
    assert 'deleted_classes: no class "Nope"' in err
    # Nothing above was applied: the data is as it was, and v1 alone still starts.
    d = start(tmp_path, "b", data, cfg([V1], [("S", "KV")]))
    assert requests.get(d.url + "/s/bob/k/y").text == "v"
    assert d.stop() == 0


def test_config_shape_errors(tmp_path):
    p = tmp_path / "c.json"
    for bad, msg in [
        ({"migrations": [{"tag": "a"}, {"tag": "a"}]}, 'migrations[1].tag: tag "a" appears twice'),
        ({"migrations": [{"new_classes": ["KV"]}]}, "migrations[0].tag: missing"),
        ({"migrations": [{"tag": "a", "renamed_classes": [{"from": "KV"}]}]}, "migrations[0].renamed_classes[0].to: missing"),
        ({"migrations": [{"tag": "a", "new_class": ["KV"]}]}, "migrations[0].new_class: unknown key"),
    ]:
        p.write_text(json.dumps(bad))
        r = conftest.run_durod(["--check-config", str(p)])
        assert r.returncode == 2 and msg in r.stderr, (msg, r.stderr)
