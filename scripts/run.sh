#!/usr/bin/env bash
# Sets up if needed, then starts durod with the built-in classes on 127.0.0.1:8787, data in
# ./duro-data. Extra arguments go to durod (see build/control/durod --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
cat <<'MSG'
durod is starting on http://127.0.0.1:8787 (Ctrl-C stops it). Try, from another terminal:
  curl -X POST http://127.0.0.1:8787/counter/hello     # -> 1, then 2, 3 ...
  curl http://127.0.0.1:8787/counter/hello             # the current count
  curl -i -X POST http://127.0.0.1:8787/obj/COUNTER/new  # a new unique object; see Duro-Id
  curl -d 'some body' http://127.0.0.1:8787/echo/me/path?x=1   # what an object sees
MSG
exec build/control/durod "$@"
