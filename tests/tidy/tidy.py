"""The checks behind tidy.sh (see there)."""
import os
import re
import subprocess
import sys
import tempfile

SRC_DIRS = ["include", "classes", "dataplane", "storage", "control", "tests/classes",
            "tests/modules", "sdk"]
# folder -> folders whose headers it may include (design.md: "Folders and who may use whom")
ALLOWED = {
    "include": [],
    "classes": ["include"],
    "dataplane/base": [],
    "dataplane/core": ["dataplane/base"],
    "dataplane/net": ["dataplane/base", "dataplane/core"],
    "dataplane/tls": ["dataplane/base", "dataplane/core", "dataplane/net"],
    "dataplane/http": ["dataplane/base", "dataplane/core", "dataplane/net"],
    "dataplane/ws": ["dataplane/base", "dataplane/core", "dataplane/net", "dataplane/http"],
    "dataplane/obj": ["dataplane/base", "dataplane/core", "dataplane/net", "dataplane/http",
                      "dataplane/ws", "storage", "include"],
    "storage": ["dataplane/base"],
    "control": None,  # may use everything
    "tests/classes": ["include", "classes"],  # test classes: built-in classes plus hooks
    "tests/modules": ["include"],  # class modules the tests build apart from durod
    "sdk": ["include"],  # the class template built against the installed SDK
}
# Headers internal to their own directory: every *_int.h, and all of the dpdk stack's
# (dataplane/net/dpdk/; the port's public header is dataplane/net/dpdk.h). Besides their
# directory only the folders that test or time a module from inside may include them.
INTERNAL_DIRS = ["dataplane/net/dpdk"]
INTERNAL_READERS = ["tests/unit", "tests/fuzz", "bench"]
BANNED = ["strcpy", "strcat", "sprintf", "vsprintf", "gets", "strtok", "strncpy", "alloca"]


def files(exts, dirs=SRC_DIRS):
    for d in dirs:
        for root, _, names in os.walk(d):
            for n in sorted(names):
                if n.endswith(exts):
                    yield os.path.join(root, n)


def folder_of(path):
    parts = path.split(os.sep)
    return "/".join(parts[:2]) if parts[0] in ("dataplane", "tests") else parts[0]


def report(name, problems):
    if problems:
        print("FAIL %s" % name)
        for p in problems:
            print("  " + p)
    else:
        print("ok %s" % name)
    return not problems


def check_banned():
    problems = []
    pat = re.compile(r"\b(%s)\s*\(" % "|".join(BANNED))
    for f in files((".c", ".h")):
        for i, line in enumerate(open(f, encoding="utf-8"), 1):
            code = line.split("//")[0]
            if pat.search(code) and not code.lstrip().startswith(("*", "/*")):
                problems.append("%s:%d: banned call: %s" % (f, i, line.strip()))
    return report("banned-calls", problems)


def header_folders():
    where = {}
    for f in files((".h",)):
        where.setdefault(os.path.basename(f), folder_of(f))
    return where


def check_includes():
    where = header_folders()
    problems = []
    inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
    for f in files((".c", ".h")):
        me = folder_of(f)
        allowed = ALLOWED.get(me, [])
        if allowed is None:
            continue
        for i, line in enumerate(open(f, encoding="utf-8"), 1):
            m = inc.match(line)
            if not m:
                continue
            target = where.get(os.path.basename(m.group(1)))
            if target is None or target == me:
                continue
            if target not in allowed:
                problems.append("%s:%d: %s may not include %s (from %s)" % (f, i, me, m.group(1), target))
    return report("include-direction", problems)


def check_internal_headers():
    """Internal headers stay in their directory (tests/unit, tests/fuzz and bench aside),
    for every folder, control/ included."""
    paths = {}
    for f in files((".h",), SRC_DIRS + INTERNAL_READERS):
        paths.setdefault(os.path.basename(f), f)
    problems = []
    inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
    for f in files((".c", ".h"), SRC_DIRS + INTERNAL_READERS):
        if folder_of(f) in INTERNAL_READERS:
            continue
        for i, line in enumerate(open(f, encoding="utf-8"), 1):
            m = inc.match(line)
            h = m and paths.get(os.path.basename(m.group(1)))
            if not h:
                continue
            hdir = os.path.dirname(h)
            internal = h.endswith("_int.h") or hdir in INTERNAL_DIRS
            if internal and os.path.dirname(f) != hdir:
                problems.append("%s:%d: %s is internal to %s/" % (f, i, m.group(1), hdir))
    return report("internal-headers", problems)


def check_headers_alone():
    dirs = sorted({os.path.dirname(f) for f in files((".h",))})
    flags = ["-I" + d for d in dirs]
    dpdk = subprocess.run(["pkg-config", "--cflags", "libdpdk"], capture_output=True, text=True).stdout.split()
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        for h in files((".h",)):
            src = os.path.join(tmp, "t.c")
            with open(src, "w") as fp:
                fp.write('#include "%s"\n' % os.path.abspath(h))
            r = subprocess.run(["cc", "-std=gnu11", "-D_GNU_SOURCE", "-fsyntax-only", "-Wall", "-Werror"]
                               + flags + dpdk + [src], capture_output=True, text=True)
            if r.returncode:
                problems.append("%s does not compile alone:\n%s" % (h, r.stderr.strip()[:600]))
    return report("headers-compile-alone", problems)


def check_role_comments():
    problems = []
    for f in files((".c", ".h")):
        with open(f, encoding="utf-8") as fp:
            first = fp.readline()
        if not first.startswith("/*"):
            problems.append("%s: opens without a comment on its role" % f)
    return report("role-comments", problems)


# Function definitions at column 0: the name before the parameter list, the body after.
DEFINITION = re.compile(r"^([A-Za-z_][^;{}()#]*?)\b([A-Za-z_]\w*)\s*\([^;{}]*\)\s*\{", re.M)
COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def obj_call_graph():
    """file -> the other files of dataplane/obj whose functions it calls (by name: calls
    through a function pointer given at init, the upward reports, are not edges)."""
    srcs = sorted(f for f in files((".c",)) if folder_of(f) == "dataplane/obj")
    text = {f: COMMENTS.sub("", open(f, encoding="utf-8").read()) for f in srcs}
    defined = {}
    for f in srcs:
        for m in DEFINITION.finditer(text[f]):
            if not re.search(r"\bstatic\b", m.group(1)):
                defined[m.group(2)] = f
    graph = {}
    for f in srcs:
        called = set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", text[f]))
        graph[f] = sorted({defined[n] for n in called if n in defined and defined[n] != f})
    return graph


def cycles(graph):
    found, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in graph.get(n, []):
            if state.get(m) == 1:
                found.append(stack[stack.index(m):] + [m])
            elif not state.get(m):
                visit(m)
        stack.pop()
        state[n] = 2
    for n in graph:
        if not state.get(n):
            visit(n)
    return found


def check_obj_calls():
    """dataplane/obj calls one way: no file reaches itself through the files it calls."""
    graph = obj_call_graph()
    problems = [" -> ".join(os.path.basename(f) for f in c) for c in cycles(graph)]
    return report("obj-calls-one-way", ["call cycle: " + p for p in problems])


if __name__ == "__main__" and sys.argv[1:] == ["--obj-graph"]:
    # Which file of dataplane/obj calls which (tests/tidy/tidy.sh --obj-graph).
    for f, to in obj_call_graph().items():
        print("%-16s -> %s" % (os.path.basename(f), " ".join(os.path.basename(t) for t in to)))
    sys.exit(0)

results = [check_banned(), check_includes(), check_internal_headers(), check_headers_alone(),
           check_role_comments(), check_obj_calls()]
sys.exit(0 if all(results) else 1)
