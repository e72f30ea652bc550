#!/usr/bin/env bash
# Memory, side by side with Redis (release builds, this machine, same run):
#  1. bytes of resident memory per entry beyond the payload, 1M entries of 16-byte keys and
#     100-byte values, for aerocache-node and redis-server;
#  2. a node with --max-memory 64MiB while a writer pushes over 1 GiB through it: the
#     accounted memory against the bound, and resident memory;
#  3. the storage engine alone: ns per get and per set with 1M keys on 2 threads.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
for package in libnghttp2-dev libjemalloc-dev; do dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package"); done
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
swift build -c release >/dev/null
exec python3 scripts/bench_memory.py --bin .build/release
