"""Classes as loadable modules: the SDK (duro.h, duro.pc, the meson template) builds a class
out of tree; durod loads it from the config's "modules", lends it only the duro_* API, and
refuses every bad file at start with one line naming it and the reason."""
import json
import os
import re
import shutil
import subprocess

import pytest
import requests

from conftest import DUROD, DUROD_TEST, run_durod
import modbuild
from modbuild import BUILD, ROOT, SDK_ENV

HEADER = os.path.join(ROOT, "include", "duro.h")


def api_functions():
    """The functions duro.h declares for classes (typedefs and the module's own entry
    excepted)."""
    text = re.sub(r"/\*.*?\*/", "", open(HEADER).read(), flags=re.S)
    names = set(re.findall(r"\b(duro_[a-z0-9_]+)\s*\(", text))
    typedefs = set(re.findall(r"typedef[^;]*?\b(duro_[a-z0-9_]+)\s*\(", text))
    return names - typedefs - {"duro_module_init"}


USES_EVERY_TYPE = r"""
#include "duro.h"
static int on_request(struct duro_object *obj, const struct duro_request *req,
                      struct duro_response *res)
{
    struct duro_str v;
    struct duro_list_options opt;
    (void)req;
    if (duro_get(obj, "k", 1, &v) < 0)
        return 1;
    memset_like(&opt);
    return duro_res_text(res, 200, "ok");
}
static const struct duro_class hdr_class = { "Hdr", 0, 0, on_request, 0, 0, 0, 0, 0, 0 };
DURO_CLASS(hdr_class)
"""


@pytest.mark.parametrize("lang,std", [("c", "c89"), ("c", "c99"), ("c", "c11"),
                                      ("c++", "c++98"), ("c++", "c++17")])
def test_header_compiles_clean_as_c89_c99_and_cxx(tmp_path, lang, std):
    src = tmp_path / ("hdr." + ("c" if lang == "c" else "cc"))
    src.write_text(USES_EVERY_TYPE.replace(
        "memset_like(&opt);", "opt.limit = 0; (void)opt;").replace("#include \"duro.h\"",
        "#include \"duro.h\"\n#if DURO_API_VERSION < 1000\n#error old\n#endif"))
    compiler = "gcc" if lang == "c" else "g++"
    for module in ([], ["-DDURO_MODULE"]):
        cmd = [compiler, "-std=" + std, "-pedantic", "-Wall", "-Wextra", "-Werror", "-fPIC",
               "-I" + os.path.dirname(HEADER), "-c", str(src), "-o", str(tmp_path / "hdr.o")] + module
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, " ".join(cmd) + "\n" + r.stderr


@pytest.mark.parametrize("binary", [DUROD, DUROD_TEST])
def test_durod_exports_exactly_the_duro_api(binary):
    out = subprocess.run(["nm", "-D", "--defined-only", binary], capture_output=True,
                         text=True, check=True).stdout
    exported = set()
    for line in out.splitlines():
        name = line.split()[-1]
        # Copy relocations of libc's data (stdout@GLIBC_2.2.5) and the sanitizer runtime's
        # own options are the linker's, not durod's.
        if "@" in name or name.startswith(("__asan", "__ubsan", "__lsan", "__tsan")):
            continue
        exported.add(name)
    assert exported == api_functions(), (sorted(exported - api_functions()),
                                        sorted(api_functions() - exported))


def module_durod(durod_factory, path, class_name, prefix, binding="MOD", **kw):
    cfg = modbuild.module_config([path], [(binding, class_name, prefix)],
                                 [{"tag": "mod-v1", "new_classes": [class_name]}])
    return durod_factory(config=cfg, **kw)


def test_template_builds_out_of_tree_against_the_sdk(tmp_path, durod_factory):
    tpl = subprocess.run(["pkg-config", "--variable=templatedir", "duro"], env=SDK_ENV,
                         capture_output=True, text=True, check=True).stdout.strip()
    proj = tmp_path / "myclass"
    shutil.copytree(tpl, proj)
    for cmd in (["meson", "setup", "build"], ["ninja", "-C", "build"]):
        r = subprocess.run(cmd, cwd=proj, env=SDK_ENV, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    so = str(proj / "build" / "myclass.so")
    d = module_durod(durod_factory, so, "MyClass", "/my/")
    assert requests.post(d.url + "/my/a").text == "MyClass v1: 1\n"
    assert requests.post(d.url + "/my/a").text == "MyClass v1: 2\n"
    assert "module %s: class MyClass" % so in d.logtext()
    # The author's next version: edited, rebuilt where it is, deployed live.
    src = proj / "myclass.c"
    src.write_text(src.read_text().replace('#define VERSION "v1"', '#define VERSION "v2"'))
    r = subprocess.run(["ninja", "-C", "build"], cwd=proj, env=SDK_ENV, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    r = modbuild.duroctl(d, "deploy", "MyClass", so, "--immediate")
    assert "deployed version" in r.stdout, r.stdout
    assert requests.post(d.url + "/my/a").text == "MyClass v2: 3\n"


def test_a_module_class_is_bound_routed_and_durable(tmp_path, durod_factory):
    so = modbuild.versioned(tmp_path, "v1")
    d = module_durod(durod_factory, so, "Versioned", "/v/", cores=2)
    assert requests.post(d.url + "/v/x").text.startswith("v1 1 ")
    assert requests.post(d.url + "/v/x").text.startswith("v1 2 ")
    # The built-in classes run beside it.
    assert requests.post(d.url + "/counter/x").text == "1"


def test_a_module_of_abi_1_0_still_loads(tmp_path, durod_factory):
    """ABI 1.1 added on_ws_open at the end of struct duro_class: a module built for 1.0
    (its magic block says 1.0 and the 1.0 size) loads, its classes read without it."""
    so = modbuild.build(tmp_path, "old", ("versioned.c", "bad_magic.c"),
                        ["BAD_MINOR=-1", "BAD_CLASS_SIZE=-8"])
    d = module_durod(durod_factory, so, "Versioned", "/v/")
    assert requests.post(d.url + "/v/x").text.startswith("v1 1 ")


def test_a_module_class_needs_a_migration(tmp_path):
    so = modbuild.versioned(tmp_path, "v1")
    cfg = modbuild.module_config([so], [("MOD", "Versioned", "/v/")], [])
    cfg["data_dir"] = str(tmp_path / "data")
    p = tmp_path / "c.json"
    p.write_text(json.dumps(cfg))
    r = subprocess.run([DUROD, "--config", str(p), "--listen", "127.0.0.1:1", "--cores", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert 'class "Versioned" has no migration' in r.stderr, r.stderr


def bad_module(tmp_path, kind):
    """A module file that durod must refuse, and the words of the refusal."""
    b = modbuild.build
    if kind == "not ELF":
        p = tmp_path / "notelf.so"
        p.write_text("#!/bin/sh\necho not a module\n")
        os.chmod(p, 0o755)
        return str(p), "not an ELF file"
    if kind == "ABI major":
        return (b(tmp_path, "major", ("versioned.c", "bad_magic.c"), ["BAD_MAJOR=1"]),
                "built for duro ABI major version 2, durod runs 1")
    if kind == "newer minor":
        return (b(tmp_path, "minor", ("versioned.c", "bad_magic.c"), ["BAD_MINOR=1"]),
                "built for duro ABI 1.2, newer than durod's 1.1")
    if kind == "struct size":
        return (b(tmp_path, "size", ("versioned.c", "bad_magic.c"), ["BAD_CLASS_SIZE=8"]),
                "struct duro_class is 88 bytes in the module, 80 in durod")
    if kind == "no magic block":
        return b(tmp_path, "plain", ("plain.c",), module=False), "no magic block"
    if kind == "constructor":
        return (b(tmp_path, "ctor", ("versioned.c",), module=False),
                'it registered class "Versioned" from a constructor: build it with -DDURO_MODULE')
    if kind == "unresolved symbol":
        return b(tmp_path, "reach", ("unresolved.c",)), "undefined symbol: obj_find_class"
    if kind == "duplicate class name":
        return (modbuild.builtin_module("counter"),
                'class "Counter" is already registered (built in)')
    if kind == "world-writable":
        p = modbuild.versioned(tmp_path, "v1", name="ww")
        os.chmod(p, 0o757)
        return p, "writable by others (mode 0757): a module runs as durod"
    if kind == "group-writable":
        p = modbuild.versioned(tmp_path, "v1", name="gw")
        os.chmod(p, 0o775)
        return p, "writable by its group (mode 0775)"
    raise AssertionError(kind)


REFUSALS = ["not ELF", "ABI major", "newer minor", "struct size", "no magic block",
            "constructor", "unresolved symbol", "duplicate class name", "world-writable",
            "group-writable"]


@pytest.mark.parametrize("kind", REFUSALS)
def test_start_refuses_a_bad_module_naming_the_file_and_why(tmp_path, kind):
    path, why = bad_module(tmp_path, kind)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"modules": [path]}))
    r = run_durod(["--check-config", str(cfg)])
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [l for l in r.stderr.splitlines() if "modules[0]" in l]
    assert len(lines) == 1 and ("module %s: " % path) in lines[0] and why in lines[0], r.stderr
