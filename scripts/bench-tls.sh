#!/usr/bin/env bash
# What TLS costs: one node's Get throughput at 50 in flight, plaintext against TLS, in one run
# (alternating rounds, medians), through the client and through h2load.
#
#   scripts/bench-tls.sh [ROUNDS] [SECONDS]      (default 5 rounds of 5 s)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_command h2load nghttp2-client
need_command openssl openssl
need_packages libnghttp2-dev libjemalloc-dev
install_needed
swift build -c release >/dev/null
exec python3 scripts/bench_tls.py --bin .build/release --rounds "${1:-5}" --seconds "${2:-5}"
