#!/usr/bin/env bash
# The dpdk backend beside uring over the test veth, and the stack's cycles per packet (root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
exec /usr/bin/python3 bench/dpdk.py "$@"
