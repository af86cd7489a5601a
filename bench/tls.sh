#!/usr/bin/env bash
# TLS benchmarks: full and resumed handshakes per second on one server core.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
exec /usr/bin/python3 bench/tls.py "$@"
