#!/usr/bin/env bash
# Prints the share of pure logic (no sockets, no event loops, no files) in the non-test
# sources; --files lists each file as pure or io. The rule is in scripts/pure_share.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/pure_share.py "$@"
