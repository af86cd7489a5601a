"""`meson install`: durod, duroctl, the systemd unit and the commented default config land
where the unit expects them; the unit passes `systemd-analyze verify`; and the unit's
sandbox fits what durod does (checked by running durod under strace against the unit's
system call filter, address families and MemoryDenyWriteExecute, since systemd itself
cannot run here)."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess

import pytest

from conftest import DUROD, free_port, read_responses, wait_port

BUILD = os.path.dirname(os.path.dirname(os.path.abspath(DUROD)))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    dest = tmp_path_factory.mktemp("install") / "dest"
    r = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", str(dest)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    units = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs if f == "durod.service"]
    assert len(units) == 1, units
    text = open(units[0]).read()
    exec_start = re.search(r"^ExecStart=(\S+) --config (\S+)$", text, re.M)
    assert exec_start, text
    return {"dest": str(dest), "unit": units[0], "text": text,
            "durod": exec_start.group(1), "config": exec_start.group(2)}


def in_dest(inst, path):
    return inst["dest"] + path


def unit_values(text, key):
    return [m.group(1) for m in re.finditer(r"^%s=(.*)$" % key, text, re.M)]


def test_install_puts_everything_where_the_unit_looks(installed):
    durod = in_dest(installed, installed["durod"])
    duroctl = os.path.join(os.path.dirname(durod), "duroctl")
    assert os.access(durod, os.X_OK) and os.access(duroctl, os.X_OK)
    assert "/lib/systemd/system/" in installed["unit"]
    cfg = in_dest(installed, installed["config"])
    r = subprocess.run([durod, "--check-config", cfg], capture_output=True, text=True)
    assert r.returncode == 0 and "valid" in r.stdout, r.stdout + r.stderr
    # The config explains itself: comments ("//" keys) at the top and beside keys.
    data = json.load(open(cfg))
    assert "//" in data and any(k.startswith("// ") for k in data)
    assert data["data_dir"] == "/var/lib/duro"  # the unit's StateDirectory
    assert unit_values(installed["text"], "StateDirectory") == ["duro"]
    assert data["control"]["socket"].startswith("/run/duro/")  # its RuntimeDirectory
    assert unit_values(installed["text"], "RuntimeDirectory") == ["duro"]
    docs = unit_values(installed["text"], "Documentation")[0]
    assert os.path.exists(in_dest(installed, docs.split("file://", 1)[1]))


def test_unit_passes_systemd_analyze_verify(installed, tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed (Debian's systemd package)")
    # The unit names its binaries by their installed paths: point them into the destdir.
    prefix = installed["durod"].rsplit("/bin/", 1)[0]
    unit = tmp_path / "durod.service"
    unit.write_text(installed["text"].replace(prefix + "/", installed["dest"] + prefix + "/"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stdout + r.stderr
    assert unit_values(installed["text"], "Type") == ["notify"]
    assert unit_values(installed["text"], "Restart") == ["on-failure"]
    assert unit_values(installed["text"], "LimitNOFILE")


def syscall_set(group):
    """The system calls a SystemCallFilter group allows, groups expanded."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", group], capture_output=True,
                         text=True, check=True).stdout
    names = set()
    for line in out.splitlines()[1:]:
        line = line.strip()
        if line.startswith("@"):
            names |= syscall_set(line)
        elif line and not line.startswith("#"):
            names.add(line)
    return names


STRACE_CALL = re.compile(r"^(\w+)\(.*\) += (\S+)")


def traced_calls(prefix):
    """{name: [(line, result)]} from `strace -ff -o prefix` output (a file per thread, so
    no call is split across lines)."""
    calls = {}
    d, base = os.path.split(prefix)
    for f in os.listdir(d):
        if not f.startswith(base + "."):
            continue
        for line in open(os.path.join(d, f)):
            m = STRACE_CALL.match(line)
            if m:
                calls.setdefault(m.group(1), []).append((line, m.group(2)))
            elif re.match(r"^(exit|exit_group)\(", line):
                calls.setdefault(line.split("(")[0], []).append((line, "?"))
    return calls


def test_unit_sandbox_fits_what_durod_does(installed, tmp_path):
    """Runs durod (the build under test) under strace through start, requests, alarms,
    commits and a SIGTERM drain, then checks each of the unit's restrictions: a system call
    or address family outside them must be one that failed anyway (the filter only changes
    its error), and nothing maps memory writable and executable."""
    if not shutil.which("strace") or not shutil.which("systemd-analyze"):
        pytest.skip("needs strace and systemd-analyze")
    text = installed["text"]
    cfg = json.load(open(in_dest(installed, installed["config"])))
    cfg["data_dir"] = str(tmp_path / "data")
    cfg["control"]["socket"] = str(tmp_path / "control.sock")
    cfg["storage"]["log_rotate_bytes"] = 4 << 20
    cfg_path = tmp_path / "duro.json"
    cfg_path.write_text(json.dumps(cfg))
    port = free_port()
    trace = tmp_path / "strace.out"
    log = open(tmp_path / "durod.log", "w")
    p = subprocess.Popen(["strace", "-ff", "-qq", "-o", str(trace), DUROD, "--config", str(cfg_path),
                          "--listen", "127.0.0.1:%d" % port, "--cores", "2"],
                         stdout=log, stderr=subprocess.STDOUT,
                         # LeakSanitizer cannot run under ptrace; leaks are other tests' job.
                         env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    try:
        wait_port(port, p, timeout=60)
        for req in (b"POST /counter/s HTTP/1.1\r\nHost: t\r\n\r\n",
                    b"PUT /kv/s/k/a HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nv",
                    b"POST /ticker/s?in=10 HTTP/1.1\r\nHost: t\r\n\r\n"):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(req)
            assert read_responses(s, 1, timeout=30)[0][0] in (200, 204)
            s.close()
    finally:
        # strace's child is durod: signal it, not strace.
        kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
        for k in kids:
            os.kill(int(k), signal.SIGTERM)
        assert p.wait(timeout=60) == 0
        log.close()
    calls = traced_calls(str(trace))
    assert "io_uring_enter" in calls

    # An assignment is an allow list, or with a leading ~ a deny list taken off it.
    allowed, denied = set(), set()
    for value in unit_values(text, "SystemCallFilter"):
        into = denied if value.startswith("~") else allowed
        for name in value.lstrip("~").split():
            into |= syscall_set(name) if name.startswith("@") else {name}
    allowed -= denied
    worked = sorted(n for n, c in calls.items()
                    if n not in allowed and any(not r.startswith("-") for _, r in c))
    assert not worked, "system calls outside SystemCallFilter that durod made and that " \
        "worked (the filter would break them): %s" % worked

    families = set(" ".join(unit_values(text, "RestrictAddressFamilies")).split())
    for args, res in calls.get("socket", []):
        fam = re.search(r"socket\((AF_\w+)", args).group(1)
        assert fam in families or res.startswith("-"), "socket family %s outside " \
            "RestrictAddressFamilies: %s" % (fam, args)

    assert unit_values(text, "MemoryDenyWriteExecute") == ["yes"]
    for name in ("mmap", "mprotect", "pkey_mprotect"):
        for args, res in calls.get(name, []):
            prot = re.search(r"PROT_[A-Z_|]+", args)
            prot = prot.group(0) if prot else ""
            assert not ("PROT_WRITE" in prot and "PROT_EXEC" in prot), args
            assert not (name != "mmap" and "PROT_EXEC" in prot), args


CLASS_OUT_OF_TREE = r"""
#include <duro.h>
static int on_request(struct duro_object *o, const struct duro_request *req,
                      struct duro_response *res)
{
    (void)o; (void)req;
    return duro_res_text(res, 200, "mine");
}
static const struct duro_class mine = { "Mine", 0, 0, on_request, 0, 0, 0, 0, 0 };
DURO_CLASS(mine)
"""


def test_installed_sdk_builds_a_module_the_installed_durod_loads(installed, tmp_path):
    """duro.h, duro.pc and the class template are installed; `cc -shared -fPIC
    $(pkg-config --cflags duro)` builds a module from the staged SDK alone."""
    dest = installed["dest"]
    pcs = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs if f == "duro.pc"]
    assert len(pcs) == 1, pcs
    # A staged install: pkg-config puts the destdir in front of the paths it gives.
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]),
               PKG_CONFIG_SYSROOT_DIR=dest, PKG_CONFIG_LIBDIR="")
    cflags = subprocess.run(["pkg-config", "--cflags", "duro"], env=env, capture_output=True,
                            text=True, check=True).stdout.split()
    assert "-DDURO_MODULE" in cflags, cflags
    inc = [f[2:] for f in cflags if f.startswith("-I")]
    assert inc and inc[0].startswith(dest) and os.path.exists(os.path.join(inc[0], "duro.h"))
    tpl = subprocess.run(["pkg-config", "--variable=templatedir", "duro"], env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    tpl = tpl if tpl.startswith(dest) else dest + tpl
    assert sorted(os.listdir(tpl)) == ["README.md", "meson.build", "myclass.c"]
    src = tmp_path / "mine.c"
    src.write_text(CLASS_OUT_OF_TREE)
    so = str(tmp_path / "mine.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-Wall", "-Werror", "-o", so] + cflags + [str(src)],
                   check=True)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({
        "modules": [so],
        "durable_objects": {"bindings": [{"name": "MINE", "class_name": "Mine"}]},
        "migrations": [{"tag": "v1", "new_classes": ["Mine"]}],
        "routes": [{"prefix": "/mine/", "binding": "MINE", "id": "name"}]}))
    durod = in_dest(installed, installed["durod"])
    r = subprocess.run([durod, "--check-config", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 0 and "valid" in r.stdout, r.stdout + r.stderr
