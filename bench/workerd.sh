#!/usr/bin/env bash
# SqlCounter on duro against the same SQL counter on workerd (npm), same run. See
# bench/README.md and bench/workerd.py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
if [ ! -x .cache/workerd/node_modules/.bin/workerd ]; then
  echo "bench: installing workerd from npm into .cache/workerd" >&2
  mkdir -p .cache/workerd
  (cd .cache/workerd && npm install --no-audit --no-fund --silent workerd >/dev/null)
fi
exec /usr/bin/python3 bench/workerd.py "$@"
