#!/usr/bin/env bash
# Class modules and live deploys: module against built-in req/s, and deploys under load
# (p99 while objects switch, time to switch). See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
exec /usr/bin/python3 bench/deploy.py "$@"
