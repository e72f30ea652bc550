#!/usr/bin/env bash
# A local cluster on 127.0.0.1:7400, 7401, ... (so aerocachectl's default endpoint reaches it).
#
#   scripts/cluster.sh up [N]      install what is missing, build release, start N nodes (default 3)
#   scripts/cluster.sh status      aerocachectl status
#   scripts/cluster.sh down        stop every node started here (SIGTERM, by pid)
#
# Node logs, pid files and the cluster secret (made once, shared by every node) live in
# run/cluster/. Extra node flags: AEROCACHE_NODE_FLAGS.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=run/cluster
mkdir -p "$dir"

source scripts/lib.sh

down() {
  for pidfile in "$dir"/*.pid; do
    [[ -e $pidfile ]] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$pidfile"
  done
}

case "${1:-}" in
  up)
    count=${2:-3}
    need_packages libnghttp2-dev libjemalloc-dev pkg-config
    install_needed
    swift build -c release
    down
    # The secret every node sends on peer calls; a node without it cannot join.
    if [[ ! -s $dir/secret ]]; then
      (umask 077; head -c 32 /dev/urandom | base64 | tr -d '\n' >"$dir/secret")
    fi
    for ((i = 0; i < count; i++)); do
      port=$((7400 + i))
      seeds=""
      ((i > 0)) && seeds="--seeds 127.0.0.1:7400"
      # shellcheck disable=SC2086
      .build/release/aerocache-node --listen "127.0.0.1:$port" --node-id "node-$i" $seeds \
        --cluster-secret-file "$dir/secret" ${AEROCACHE_NODE_FLAGS:-} \
        >"$dir/node-$i.log" 2>&1 &
      echo $! >"$dir/node-$i.pid"
    done
    for ((i = 0; i < 100; i++)); do
      up=$(.build/release/aerocachectl status --json 2>/dev/null | grep -o '"state":"up"' | wc -l || true)
      ((up == count)) && break
      sleep 0.2
    done
    .build/release/aerocachectl status
    cat <<MSG

$count nodes are up (logs in $dir/). Try:
  .build/release/aerocachectl set user:1 '{"name":"ada"}' --ttl 1h
  .build/release/aerocachectl get user:1
  .build/release/aerocachectl owners user:1
  .build/release/aerocachectl ring
  .build/release/aerocache-demo        # the five use cases, through the Swift client
Stop them with: scripts/cluster.sh down
MSG
    ;;
  status)
    .build/release/aerocachectl status
    ;;
  down)
    down
    echo "stopped"
    ;;
  *)
    echo "usage: scripts/cluster.sh up [N] | status | down" >&2
    exit 2
    ;;
esac
