"""Builds class modules for the tests the way a class author does: C files outside durod,
compiled with `cc -shared -fPIC $(pkg-config --cflags duro)` against this build tree's SDK
(<build>/sdk/duro-uninstalled.pc). Sources are in tests/modules."""
import os
import shutil
import subprocess

from conftest import DUROD

BUILD = os.path.dirname(os.path.dirname(os.path.abspath(DUROD)))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCES = os.path.join(ROOT, "tests", "modules")
DUROCTL = os.path.join(BUILD, "control", "duroctl")
SDK_ENV = dict(os.environ, PKG_CONFIG_PATH=os.path.join(BUILD, "sdk"))


def sdk_cflags():
    out = subprocess.run(["pkg-config", "--cflags", "duro"], env=SDK_ENV, check=True,
                         capture_output=True, text=True).stdout.split()
    assert "-DDURO_MODULE" in out, out
    return out


def build(out_dir, name, sources=("versioned.c",), defines=(), module=True, cc="cc",
          extra=()):
    """Compiles tests/modules/<sources> into out_dir/<name>.so (mode 0755) and returns its
    path. defines: ("MARKER=\"v2\"", …); module=False leaves DURO_MODULE undefined."""
    flags = sdk_cflags() if module else [f for f in sdk_cflags() if f != "-DDURO_MODULE"]
    out = os.path.join(str(out_dir), name + ".so")
    srcs = [s if os.path.isabs(s) else os.path.join(SOURCES, s) for s in sources]
    cmd = [cc, "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", out] + flags + \
        ["-D" + d for d in defines] + list(extra) + srcs
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, " ".join(cmd) + "\n" + r.stderr
    os.chmod(out, 0o755)
    return out


def versioned(out_dir, marker, name=None, traps=False, class_name=None):
    """The Versioned class with its answers marked `marker`."""
    defines = ['MARKER="%s"' % marker]
    if traps:
        defines.append("WITH_TRAPS")
    if class_name:
        defines.append('CLASS_NAME="%s"' % class_name)
    return build(out_dir, name or "versioned-" + marker, defines=defines)


def builtin_module(name):
    """A built-in class's module build (classes/<name>.c with DURO_MODULE)."""
    return os.path.join(BUILD, "classes", name + ".so")


def copy(src, dst_dir, name):
    dst = os.path.join(str(dst_dir), name)
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o755)
    return dst


def duroctl(d, *args, check=True, timeout=60, user=None, socket=None):
    """duroctl against durod d; returns the CompletedProcess (text). user: (uid, gid) to
    run it as."""
    cmd = [DUROCTL, "--socket", socket or os.path.join(d.data_dir, "control.sock")] + list(args)
    if user:
        cmd = ["setpriv", "--reuid=%d" % user[0], "--regid=%d" % user[1], "--clear-groups"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, "%s: %s%s" % (" ".join(args), r.stdout, r.stderr)
    return r


def module_config(modules, bindings, migrations, routes=None, **extra):
    """A config with the built-in bindings and migrations plus module classes:
    bindings [(BINDING, Class, "/prefix/")], migrations [{"tag", "new_classes"}]."""
    from conftest import BUILTIN_BINDINGS, BUILTIN_MIGRATIONS
    cfg = dict(extra)
    cfg["modules"] = list(modules)
    cfg["durable_objects"] = {"bindings": [
        {"name": n, "class_name": c} for n, c in BUILTIN_BINDINGS] + [
        {"name": n, "class_name": c} for n, c, _ in bindings]}
    cfg["migrations"] = BUILTIN_MIGRATIONS + list(migrations)
    cfg["routes"] = [{"prefix": p, "binding": n, "id": "name"} for n, _, p in bindings] + \
        (routes or []) + [{"prefix": "/counter/", "binding": "COUNTER", "id": "name"},
                          {"prefix": "/obj/", "id": "path"}]
    return cfg
