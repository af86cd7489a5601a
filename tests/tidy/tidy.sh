#!/usr/bin/env bash
# Tidy checks, one "ok NAME" or "FAIL NAME" line each: banned calls, every header compiles
# on its own, the include direction of design.md, internal headers (*_int.h, and the dpdk
# stack's own in dataplane/net/dpdk/) included only beside them or from tests/unit,
# tests/fuzz and bench, a role comment opening every file, and no call cycle among the
# files of dataplane/obj (--obj-graph prints who calls whom).
set -uo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/tidy/tidy.py "$@"
