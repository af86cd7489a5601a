"""durod's flags and config: errors name the bad key and exit 2; --help documents flags;
the effective config round-trips; a flag is exactly its key in the file."""
import grp
import json
import os
import re
import subprocess

import pytest
import requests

import conftest
from conftest import DUROD, run_durod

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DUROCTL = os.path.join(os.path.dirname(DUROD), "duroctl")


def check(tmp_path, cfg):
    p = tmp_path / "c.json"
    p.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    return run_durod(["--check-config", str(p)])


def test_help_lists_every_flag():
    out = run_durod(["--help"])
    assert out.returncode == 0
    for flag in ["--config", "--check-config", "--listen", "--data-dir", "--cores", "--log-level",
                 "--backend", "--dpdk-vdev", "--dpdk-eal", "--dpdk-ipv4", "--dpdk-gateway",
                 "--dpdk-mac", "--dpdk-mtu", "--dpdk-port", "--tls-cert", "--tls-key",
                 "--print-config", "--help-config", "--set"]:
        assert flag in out.stdout


def test_valid_config(tmp_path):
    r = check(tmp_path, {"cores": 1, "durable_objects": {"bindings": [{"name": "C", "class_name": "Counter"}]},
                         "routes": [{"prefix": "/c/", "binding": "C"}]})
    assert r.returncode == 0, r.stderr
    # The dpdk section's ring sizes (checked without the backend in use).
    r = check(tmp_path, {"dpdk": {"rx_desc": 2048, "tx_desc": 2048, "tx_backlog": 4096,
                                  "steer_ring": 16384, "af_packet_framecnt": 16384,
                                  "af_packet_blocksz": 1 << 20, "zero_copy_min_bytes": 0,
                                  "tx_coalesce_us": 0}})
    assert r.returncode == 0, r.stderr


def test_comments_are_keys_starting_with_two_slashes(tmp_path, durod_factory):
    """JSON has no comments: "//" keys are, in any object (a string or lines of strings)."""
    cfg = {"//": ["a config that explains itself", "line two"],
           "// cores": "one reactor",
           "cores": 1,
           "listeners": [{"address": "127.0.0.1:1", "// why": "replaced by --listen"}],
           "durable_objects": {"//": "bindings",
                               "bindings": [{"name": "C", "class_name": "Counter", "//": "c"}]},
           "routes": [{"prefix": "/c/", "binding": "C", "//note": "by name"}],
           "limits": {"// max_body_bytes": "1 MiB", "max_body_bytes": 1048576},
           "storage": {"//": "small logs for the test", "log_rotate_bytes": 4 << 20},
           "migrations": [{"tag": "v1", "new_classes": ["Counter"], "//": "the first"}],
           "control": {"//": []}}
    r = check(tmp_path, cfg)
    assert r.returncode == 0, r.stderr
    d = durod_factory(config=cfg, cores=1)  # and it runs
    assert requests.post(d.url + "/c/x").text == "1"


BAD = [
    ({"// cores": 2}, "config: // cores: a comment (a key starting with //) takes a string or an array of strings, got an integer"),
    ({"limits": {"//": ["ok", 3]}}, "config: limits.//: a comment"),
    ({"durable_objects": {"bindings": [{"name": "A", "class_name": "Counter"},
                                       {"name": "B", "class_name": "Conter"}]}},
     'config: durable_objects.bindings[1].class_name: unknown class "Conter"'),
    ({"listners": []}, "config: listners: unknown key"),
    ({"cores": "two"}, "config: cores: want an integer, got a string"),
    ({"cores": 0}, "config: cores: 0 is out of range"),
    ({"listeners": ["localhost"]}, "config: listeners[0]: bad address"),
    ({"limits": {"max_body_bytes": -1}}, "config: limits.max_body_bytes"),
    ({"limits": {"max_bodybytes": 1}}, "config: limits.max_bodybytes: unknown key"),
    ({"limits": {"send_timeout_ms": 10}}, "config: limits.send_timeout_ms: 10 is out of range"),
    ({"limits": {"body_timeout_ms": "20s"}}, "config: limits.body_timeout_ms: want an integer"),
    ({"limits": {"body_min_rate": -1}}, "config: limits.body_min_rate"),
    ({"limits": {"max_output_bytes": 100}}, "config: limits.max_output_bytes: 100 is out of range"),
    ({"routes": [{"prefix": "/x/", "binding": "NOPE"}]}, 'config: routes[0].binding: no binding named "NOPE"'),
    ({"routes": [{"prefix": "x", "binding": "COUNTER"}]}, "config: routes[0].prefix"),
    ({"backend": "carrier-pigeon"}, "config: backend"),
    ({"durable_objects": {"bindings": [{"name": "A", "class_name": "Counter"}, {"name": "A", "class_name": "Echo"}]}},
     'config: durable_objects.bindings[1].name: binding "A" defined twice'),
    ({"backend": "dpdk"}, "config: dpdk.ipv4: the dpdk backend needs its own address"),
    ({"backend": "dpdk", "dpdk": {"ipv4": "10.77.0.1/24"}},
     "config: listeners[0]: 127.0.0.1:8787: the dpdk backend serves its dpdk.ipv4 address"),
    ({"dpdk": {"mac": "zz"}}, 'config: dpdk.mac: "zz": want a unicast'),
    ({"dpdk": {"mac": "01:00:5e:00:00:01"}}, "config: dpdk.mac"),
    ({"dpdk": {"ipv4": "10.77.0.1/33"}}, "config: dpdk.ipv4"),
    ({"dpdk": {"gateway": "10.77.0.254/24"}}, "config: dpdk.gateway"),
    ({"dpdk": {"mtu": 100}}, "config: dpdk.mtu: 100 is out of range"),
    ({"dpdk": {"vdevs": "net_af_packet0"}}, "config: dpdk.vdevs: want an array"),
    ({"dpdk": {"steer_ring": 3000}}, "config: dpdk.steer_ring: 3000: want a power of two"),
    ({"dpdk": {"af_packet_blocksz": 5000}}, "config: dpdk.af_packet_blocksz: 5000: want a multiple of 4096"),
    ({"dpdk": {"af_packet_blocksz": 8192, "af_packet_framecnt": 1001}},
     "config: dpdk.af_packet_framecnt: 1001: want a multiple of the 4 frames"),
    ({"dpdk": {"rx_desc": 1}}, "config: dpdk.rx_desc: 1 is out of range"),
    ({"dpdk": {"tx_backlog": 1 << 21}}, "config: dpdk.tx_backlog"),
    ({"dpdk": {"tx_coalesce_us": -1}}, "config: dpdk.tx_coalesce_us"),
    ({"dpdk": {"fault_rx": {"drop_pct": 101}}}, "config: dpdk.fault_rx.drop_pct: 101 is out of range"),
    ({"dpdk": {"fault_tx": {"jitter": 1}}}, "config: dpdk.fault_tx.jitter: unknown key"),
    ({"dpdk": {"vdevz": []}}, "config: dpdk.vdevz: unknown key"),
    ({"storage": {"log_direct_io": "yes"}}, "config: storage.log_direct_io: want a boolean, got a string"),
    ({"uring": {"accept_dontwait": 1}}, "config: uring.accept_dontwait: want a boolean, got an integer"),
    ({"listners": []}, 'config: listners: unknown key (did you mean "listeners"?)'),
    ({"limits.max_body_bytes": 1}, "config: limits.max_body_bytes: unknown key"),
    ({"dpdk": {"mtu": 9001}}, "config: dpdk.mtu: 9001 is out of range [576, 9000]"),
    ({"log_level": "loud"}, 'config: log_level: "loud": want error, warn, info or debug'),
    ({"listeners": [{"address": "127.0.0.1:1", "tls": True}]},
     "config: listeners[0].tls: no certificate"),
    ('{"cores": 1,', "config: "),
    ('{"cores": 1, "cores": 2}', "duplicate"),
]


@pytest.mark.parametrize("cfg,msg", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_config_names_the_key(tmp_path, cfg, msg):
    r = check(tmp_path, cfg)
    assert r.returncode == 2
    assert msg in r.stderr, r.stderr


def test_bad_config_refused_at_start(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"listners": []}))
    r = run_durod(["--config", str(p), "--data-dir", str(tmp_path / "d")], timeout=10)
    assert r.returncode == 2 and "listners" in r.stderr


FLAG_ERRORS = [
    (["--dpdk-mtu", "10"], "durod: --dpdk-mtu: config: dpdk.mtu: 10 is out of range [576, 9000]"),
    (["--set", "dpdk.mtu=10"], "durod: --set: config: dpdk.mtu: 10 is out of range [576, 9000]"),
    (["--cores", "0"], "durod: --cores: config: cores: 0 is out of range [1, 64]"),
    (["--cores", "x"], 'durod: --cores: config: cores: want an integer, got "x"'),
    (["--dpdk-port", "1024"], "durod: --dpdk-port: config: dpdk.port: 1024 is out of range [0, 1023]"),
    (["--log-level", "loud"], 'durod: --log-level: config: log_level: "loud": want error, warn, info or debug'),
    (["--listen", "nowhere"], 'durod: --listen: config: listeners[0]: bad address "nowhere"'),
    (["--set", "limits.max_bodybytes=1"],
     'durod: --set: config: limits.max_bodybytes: unknown key (did you mean "max_body_bytes"?)'),
    (["--set", "limits"], 'durod: --set: "limits": want KEY=VALUE'),
    (["--set", "uring.buffer_ring=no"], 'config: uring.buffer_ring: want true or false, got "no"'),
]


@pytest.mark.parametrize("args,msg", FLAG_ERRORS, ids=[" ".join(a) for a, _ in FLAG_ERRORS])
def test_flag_errors_name_flag_key_and_range(args, msg):
    r = subprocess.run([DUROD] + args + ["--print-config"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and msg in r.stderr, r.stderr


def print_config(*args):
    r = subprocess.run([DUROD] + list(args) + ["--print-config"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def round_trips(tmp_path, text):
    """to_json -> parse -> to_json gives the same text."""
    p = tmp_path / "effective.json"
    p.write_text(text)
    assert print_config("--config", str(p)).rstrip("\n") == text.rstrip("\n")


# Every key, each away from its default (tests/unit/test_config.c checks the same in C).
EVERY_KEY = {
    "$schema": "x", "name": "app", "cores": 1, "backend": "dpdk", "data_dir": "./dd",
    "listeners": ["0.0.0.0:80", "10.77.0.1:81"],
    "durable_objects": {"bindings": [{"name": "C", "class_name": "Counter", "vars": {"a": "x", "n": 3, "b": True}},
                                     {"name": "R", "class_name": "ChatRoom"}]},
    "routes": [{"prefix": "/c/", "binding": "C", "id": "name"}, {"prefix": "/s/", "binding": "R", "id": "string"},
               {"prefix": "/o/", "id": "path"}],
    "limits": {"max_head_bytes": 8192, "max_body_bytes": 1000, "header_timeout_ms": 1000, "body_timeout_ms": 2000,
               "body_min_rate": 7, "send_timeout_ms": 3000, "idle_timeout_ms": 5000, "max_pipeline": 4,
               "max_output_bytes": 8192, "max_connections_per_core": 100},
    "objects": {"evict_idle_ms": 100},
    "storage": {"max_key_bytes": 100, "max_value_bytes": 1000, "max_object_bytes": 100000, "cache_bytes_per_core": 0,
                "block_cache_bytes": 2 << 20, "write_buffer_bytes": 2 << 20, "blob_min_bytes": 0,
                "log_rotate_bytes": 1 << 20, "min_free_bytes": 0, "log_direct_io": False},
    "migrations": [{"tag": "v1", "new_classes": ["Counter"], "new_sqlite_classes": ["Echo"]},
                   {"tag": "v2", "renamed_classes": [{"from": "Echo", "to": "ChatRoom"}], "deleted_classes": ["KV"],
                    "transferred_classes": [{"from": "A", "to": "B"}]}],
    "alarms": {"retry_initial_ms": 10, "max_retries": 0, "min_interval_ms": 0},
    "websockets": {"max_message_bytes": 125, "max_outbound_bytes": 4096, "close_timeout_ms": 10,
                   "max_per_object": 1, "hibernate_idle_ms": 10},
    "control": {"socket": "/tmp/duro-c.sock", "group": grp.getgrgid(os.getgid()).gr_name,
                "metrics": "127.0.0.1:9464"},
    "tls": {"handshake_timeout_ms": 100, "ticket_lifetime_s": 0, "certificates": [{"cert": "b.pem", "key": "b.key"}]},
    "uring": {"buffer_ring": False},
    "shutdown_timeout_ms": 0, "idle_spin_us": 0, "log_level": "debug",
    "dpdk": {"eal_args": ["--no-huge", "-m", "512"], "vdevs": ["net_af_packet0,iface=x"], "port": 3,
             "mac": "02:00:00:00:00:01", "ipv4": "10.77.0.1/24", "gateway": "10.77.0.254", "mtu": 9000,
             "mbufs": 4096, "idle_sleep_us": 0, "rx_desc": 512, "tx_desc": 1024, "tx_backlog": 2048,
             "steer_ring": 1024, "af_packet_blocksz": 1 << 20, "af_packet_framecnt": 1024,
             "zero_copy_min_bytes": 0, "tx_coalesce_us": 0,
             "fault_rx": {"seed": 4294967295, "drop_pct": 1, "duplicate_pct": 2, "reorder_pct": 3, "delay_pct": 4,
                          "delay_ms": 5},
             "fault_tx": {"seed": 1, "drop_pct": 100, "duplicate_pct": 6, "reorder_pct": 7, "delay_pct": 8,
                          "delay_ms": 10000}},
}


def test_effective_config_round_trips(tmp_path):
    round_trips(tmp_path, print_config())
    p = tmp_path / "every.json"
    p.write_text(json.dumps(EVERY_KEY))
    every = print_config("--config", str(p))
    round_trips(tmp_path, every)
    shown = json.loads(every)
    assert shown["dpdk"]["fault_tx"]["delay_ms"] == 10000 and shown["storage"]["log_direct_io"] is False
    assert "$schema" not in shown and "name" not in shown


def test_a_flag_is_its_key(tmp_path):
    flagged = print_config("--backend", "dpdk", "--dpdk-ipv4", "10.0.0.1/8", "--dpdk-mtu", "9000",
                           "--dpdk-eal", "--no-huge -m 512", "--dpdk-vdev", "a", "--dpdk-vdev", "b",
                           "--listen", "0.0.0.0:80", "--listen", "10.0.0.1:81", "--cores", "1",
                           "--set", "limits.max_pipeline=4", "--set", 'routes=[{"prefix": "/k/", "binding": "KV"}]')
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"backend": "dpdk", "listeners": ["0.0.0.0:80", "10.0.0.1:81"], "cores": 1,
                             "dpdk": {"ipv4": "10.0.0.1/8", "mtu": 9000, "eal_args": ["--no-huge", "-m", "512"],
                                      "vdevs": ["a", "b"]},
                             "limits": {"max_pipeline": 4}, "routes": [{"prefix": "/k/", "binding": "KV"}]}))
    assert flagged == print_config("--config", str(p))
    # flags win over the file, whatever their place on the command line
    assert json.loads(print_config("--dpdk-mtu", "1280", "--config", str(p)))["dpdk"]["mtu"] == 1280


def test_running_config_is_what_print_config_says(durod_factory, tmp_path):
    d = durod_factory(config={"limits": {"max_pipeline": 5}, "websockets": {"max_per_object": 7}}, cores=1)
    out = subprocess.run([DUROCTL, "--socket", os.path.join(d.data_dir, "control.sock"), "--json", "config"],
                         capture_output=True, text=True, timeout=30)
    shown = json.loads(out.stdout)["config"]
    assert shown["limits"]["max_pipeline"] == 5 and shown["data_dir"] == d.data_dir
    # what a running durod shows is a config that gives itself back
    round_trips(tmp_path, json.dumps(shown, indent=2))


def test_help_config_lists_every_key_and_readme_documents_it():
    out = subprocess.run([DUROD, "--help-config"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    keys = re.findall(r"^  (\S+)  \(", out.stdout, re.M)
    assert "dpdk.fault_rx.delay_ms" in keys and "limits.max_body_bytes" in keys and len(keys) > 60
    readme = open(os.path.join(ROOT, "README.md")).read()
    section = readme[readme.index("## Configuration"):readme.index("## Writing a class")]
    missing = [k for k in keys if k.split(".")[-1] not in section]
    assert not missing, "keys without a word in README.md's Configuration: %s" % missing


def test_listing_migrations_needs_the_builtin_tags_restated(tmp_path):
    """README's example: an existing data directory, then a config with its own migrations."""
    data = str(tmp_path / "data")
    d = conftest.start_on(tmp_path, "a", data)
    assert requests.post(d.url + "/counter/kept").text == "1"
    assert d.stop() == 0
    bindings = {"bindings": [{"name": "COUNTER", "class_name": "Counter"}]}
    drop = {"tag": "drop-ticker", "deleted_classes": ["Ticker"]}
    p = tmp_path / "own.json"
    p.write_text(json.dumps({"durable_objects": bindings, "migrations": [drop]}))
    r = subprocess.run([DUROD, "--config", str(p), "--data-dir", data, "--listen",
                        "127.0.0.1:%d" % conftest.free_port(), "--cores", "1"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2
    assert 'this data_dir applied "builtin-v1", "builtin-v2", "builtin-v3", "builtin-v4", "builtin-v5": list them first, in that order' in r.stderr
    builtin = json.loads(print_config())["migrations"]
    assert [m["tag"] for m in builtin] == ["builtin-v1", "builtin-v2", "builtin-v3", "builtin-v4",
                                                  "builtin-v5"]
    d = conftest.start_on(tmp_path, "b", data, config={"durable_objects": bindings, "migrations": builtin + [drop]})
    assert requests.post(d.url + "/counter/kept").text == "2"
    assert requests.get(d.url + "/ticker/x").status_code == 404
    assert d.stop() == 0


def test_bad_flags_exit_2():
    for args in (["--cores", "0"], ["--cores", "x"], ["--listen", "nowhere"], ["--log-level", "loud"], ["stray"],
                 ["--backend", "xdp"], ["--dpdk-ipv4", "10.1.2"], ["--dpdk-mac", "01:00:00:00:00:01"],
                 ["--dpdk-mtu", "10"], ["--backend", "dpdk"]):
        r = run_durod(args, timeout=10)
        assert r.returncode == 2, args
        assert r.stderr


def test_flags_override_config(durod_factory):
    d = durod_factory(config={"listeners": ["127.0.0.1:1"], "cores": 1}, cores=2)
    assert requests.post(d.url + "/counter/x").text == "1"  # --listen won over the config


def test_busy_port_fails_cleanly(durod_factory, tmp_path):
    import socket
    # A second durod on the same port would share it through SO_REUSEPORT: refused. Kernel
    # listeners, so uring whatever backend the run tests (over dpdk the first durod's port
    # is its own stack's, in another namespace, and nothing would be busy here).
    durod = durod_factory(backend="uring")
    r = run_durod(["--listen", "127.0.0.1:%d" % durod.port, "--data-dir", str(tmp_path / "x")],
                  timeout=10)
    assert r.returncode == 1
    assert "listen on 127.0.0.1:%d" % durod.port in r.stderr
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    r = run_durod(["--listen", "127.0.0.1:%d" % port, "--data-dir", str(tmp_path / "y")], timeout=10)
    s.close()
    assert r.returncode == 1
    assert "listen on 127.0.0.1:%d" % port in r.stderr


def test_data_dir_in_use_refused(durod, tmp_path):
    import conftest
    r = run_durod(["--listen", "127.0.0.1:%d" % conftest.free_port(), "--data-dir", durod.data_dir],
                  timeout=10)
    assert r.returncode == 1
    assert "is in use by another durod (pid %d)" % durod.proc.pid in r.stderr
