#!/usr/bin/env bash
# Benchmarks for the foundation: in-memory Counter increments against redis-server INCR,
# one server core and both, medians over several runs. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
for p in redis-server redis-tools; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="${missing:-} $p"
done
if [ -n "${missing:-}" ]; then
  echo "bench: installing$missing" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
# The Debian package starts a system redis on 6379; the bench runs its own on another port.
exec /usr/bin/python3 bench/run.py "$@"
