#!/usr/bin/env bash
# WebSocket benchmarks: broadcast deliveries beside a Node ws server, round trip, memory
# per hibernated connection.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
exec /usr/bin/python3 bench/ws.py "$@"
