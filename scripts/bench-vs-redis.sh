#!/usr/bin/env bash
# aerocache-bench against one release aerocache-node and redis-benchmark against Redis, on this
# machine, in the same run: Get and Set at 50 in flight, 100k keys, 100-byte values.
#
#   scripts/bench-vs-redis.sh [ROUNDS] [SECONDS]      (default 3 rounds of 5 s; medians reported)
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-benchmark >/dev/null || missing+=(redis-tools)
for package in libnghttp2-dev libjemalloc-dev; do dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package"); done
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
swift build -c release >/dev/null
exec python3 scripts/bench_vs_redis.py --bin .build/release --rounds "${1:-3}" --seconds "${2:-5}"
