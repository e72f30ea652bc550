#!/usr/bin/env bash
# The wire, side by side with Redis: h2load against a release aerocache-node and
# redis-benchmark against redis-server, on this machine, in the same run, 100-byte values.
#
#   scripts/bench-transport.sh [ROUNDS]        (default 3; medians are reported)
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-benchmark >/dev/null || missing+=(redis-tools)
for package in libnghttp2-dev libjemalloc-dev; do dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package"); done
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

swift build -c release --product aerocache-node >/dev/null
exec python3 scripts/bench_transport.py --node .build/release/aerocache-node --rounds "${1:-3}"
