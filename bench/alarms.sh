#!/usr/bin/env bash
# Alarm benchmarks: firing rate on one core, start-up with pending alarms, memory per alarm.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
exec /usr/bin/python3 bench/alarms.py "$@"
