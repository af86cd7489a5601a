#!/usr/bin/env bash
# Installs what duro needs from Debian (only what is missing; silent when all is there),
# then configures and builds. Usage: scripts/setup.sh [release|asan|fuzz|tsan]...  (default: release)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  gcc pkg-config meson ninja-build
  libdpdk-dev liburing-dev librocksdb-dev libmbedtls-dev libjansson-dev libssl-dev libsqlite3-dev
  clang libclang-rt-14-dev libtsan2
  python3 python3-pytest python3-requests python3-websockets nodejs node-ws
  curl iproute2 procps
)
# What only the tests need: a Prometheus text parser, a browser for the dashboard test,
# setpriv (util-linux), the openssl CLI and testssl.sh for the TLS tests, and npm to fetch
# playwright-core (Debian does not package it); for the dpdk backend's tests ping, ethtool,
# nftables (loss, duplication), hping3 (SYN flood) and scapy (crafted frames); for the
# systemd unit's test strace and systemd-analyze (Debian's systemd package: in a container
# it installs its tools without becoming init or starting anything); g++ to check that
# duro.h compiles as C++ for class authors; etcd (server and etcdctl) for the cluster tests,
# which run a three-member etcd on loopback.
if [ "${DURO_TEST_DEPS:-0}" = 1 ]; then
  PACKAGES+=(python3-prometheus-client chromium util-linux openssl testssl.sh strace systemd g++)
  PACKAGES+=(iputils-ping ethtool nftables hping3 python3-scapy)
  PACKAGES+=(etcd-server etcd-client)
  command -v npm >/dev/null || PACKAGES+=(npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${DURO_TEST_DEPS:-0}" = 1 ] && [ ! -d .cache/playwright/node_modules/playwright-core ]; then
  echo "setup: installing playwright-core from npm into .cache/playwright" >&2
  mkdir -p .cache/playwright
  (cd .cache/playwright && npm install --no-audit --no-fund --silent playwright-core@1.65.1 >/dev/null)
fi

build() {
  local kind=$1 dir
  case "$kind" in
    release) dir=build
      [ -f "$dir/build.ninja" ] || meson setup "$dir" -Dbuildtype=release >/dev/null ;;
    asan) dir=build-asan
      # The test build: sanitizers on, every warning an error.
      [ -f "$dir/build.ninja" ] || meson setup "$dir" -Dbuildtype=debugoptimized \
        -Db_sanitize=address,undefined -Dwerror=true >/dev/null ;;
    fuzz) dir=build-fuzz
      [ -f "$dir/build.ninja" ] || CC=clang meson setup "$dir" -Dfuzz=true -Dbuildtype=debugoptimized \
        -Db_sanitize=address,undefined -Db_lundef=false >/dev/null ;;
    tsan) dir=build-tsan
      # ThreadSanitizer (gcc's libtsan): the unit tests and a short threaded durod run.
      # Not -Werror: gcc warns that TSan cannot model atomic_thread_fence (-Wtsan).
      [ -f "$dir/build.ninja" ] || meson setup "$dir" -Dbuildtype=debugoptimized \
        -Db_sanitize=thread >/dev/null ;;
    *) echo "setup: unknown build '$kind' (release, asan, fuzz, tsan)" >&2; exit 2 ;;
  esac
  ninja -C "$dir" >/dev/null || { ninja -C "$dir"; exit 1; }
}

if (($# == 0)); then set -- release; fi
for kind in "$@"; do build "$kind"; done
