"""durod's flags and config: errors name the bad key and exit 2; --help documents flags."""
import json
import subprocess

import pytest
import requests

from conftest import DUROD


def check(tmp_path, cfg):
    p = tmp_path / "c.json"
    p.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    return subprocess.run([DUROD, "--check-config", str(p)], capture_output=True, text=True)


def test_help_lists_every_flag():
    out = subprocess.run([DUROD, "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for flag in ["--config", "--check-config", "--listen", "--data-dir", "--cores", "--log-level",
                 "--backend", "--dpdk-vdev", "--dpdk-eal", "--dpdk-ipv4", "--dpdk-gateway"]:
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


BAD = [
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
    r = subprocess.run([DUROD, "--config", str(p), "--data-dir", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "listners" in r.stderr


def test_bad_flags_exit_2():
    for args in (["--cores", "0"], ["--cores", "x"], ["--listen", "nowhere"], ["--log-level", "loud"], ["stray"],
                 ["--backend", "xdp"], ["--dpdk-ipv4", "10.1.2"], ["--dpdk-mac", "01:00:00:00:00:01"],
                 ["--dpdk-mtu", "10"], ["--backend", "dpdk"]):
        r = subprocess.run([DUROD] + args, capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, args
        assert r.stderr


def test_flags_override_config(durod_factory):
    d = durod_factory(config={"listeners": ["127.0.0.1:1"], "cores": 1}, cores=2)
    assert requests.post(d.url + "/counter/x").text == "1"  # --listen won over the config


def test_busy_port_fails_cleanly(durod, tmp_path):
    import socket
    # A second durod on the same port would share it through SO_REUSEPORT: refused.
    r = subprocess.run([DUROD, "--listen", "127.0.0.1:%d" % durod.port, "--data-dir", str(tmp_path / "x")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "listen on 127.0.0.1:%d" % durod.port in r.stderr
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    r = subprocess.run([DUROD, "--listen", "127.0.0.1:%d" % port, "--data-dir", str(tmp_path / "y")],
                       capture_output=True, text=True, timeout=10)
    s.close()
    assert r.returncode == 1
    assert "listen on 127.0.0.1:%d" % port in r.stderr


def test_data_dir_in_use_refused(durod, tmp_path):
    import conftest
    r = subprocess.run([DUROD, "--listen", "127.0.0.1:%d" % conftest.free_port(), "--data-dir", durod.data_dir],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert "is in use by another durod (pid %d)" % durod.proc.pid in r.stderr
