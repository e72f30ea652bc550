#!/usr/bin/env bash
# Fault-injection tests: real aerocache-node processes, a fault each (kill -9, restart empty...),
# and aerocache-check recording every outcome and verifying nothing acknowledged was lost.
# Each test prints a PASS line with its figures.
#
#   scripts/fault-tests.sh [--quick] [BIN_DIR] [PYTEST_ARGS...]   (BIN_DIR default: .build/debug)
#
# --quick (run by scripts/test.sh) is, today, the whole set; the longer faults will run only
# without it. BIN_DIR holds aerocache-node, aerocachectl and aerocache-check, already built.
set -euo pipefail

mode=full
bin_dir=
pytest_args=()
for arg in "$@"; do
  if [[ $arg == --quick ]]; then mode=quick
  elif [[ -z $bin_dir && ${#pytest_args[@]} -eq 0 && -d $arg ]]; then bin_dir=$(realpath "$arg")
  else pytest_args+=("$arg")
  fi
done
cd "$(dirname "$0")/.."
bin_dir=${bin_dir:-$(realpath .build/debug)}
for binary in aerocache-node aerocachectl aerocache-check; do
  [[ -x $bin_dir/$binary ]] || { echo "fault-tests: $bin_dir/$binary is missing (swift build first)" >&2; exit 2; }
done
started=$(date +%s)
AEROCACHE_FAULTS=$mode scripts/interop-test.sh "$bin_dir/aerocache-node" Tests/interop/test_faults.py -s "${pytest_args[@]}"
echo "fault tests ($mode): $(( $(date +%s) - started )) s"
