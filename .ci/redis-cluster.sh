#!/usr/bin/env bash
# Start a local six-node Redis Cluster (three primaries, one replica each) on 127.0.0.1 ports
# 7000-7005, unless one already answers there, and wait until it serves every slot. Nothing is
# kept on disk. The tests reach it as redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002
# (REDIS_CLUSTER_URL). `bash .ci/redis-cluster.sh stop` shuts it down.
set -euo pipefail
PORTS=(7000 7001 7002 7003 7004 7005)
DIR=${REDIS_CLUSTER_DIR:-/tmp/tower-oauth2-redis-cluster}

if [[ "${1:-}" == stop ]]; then
  for p in "${PORTS[@]}"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  exit 0
fi

healthy() {
  redis-cli -p "${PORTS[0]}" cluster info 2>/dev/null | grep -q '^cluster_state:ok' &&
    [[ $(redis-cli -p "${PORTS[0]}" cluster info | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p') == 6 ]]
}

if ! healthy; then
  for p in "${PORTS[@]}"; do
    redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true
  done
  rm -rf "$DIR"
  for p in "${PORTS[@]}"; do
    mkdir -p "$DIR/$p"
    # A short node timeout, so a failover in the tests takes about a second.
    redis-server --daemonize yes --bind 127.0.0.1 --port "$p" --cluster-enabled yes \
      --cluster-config-file "$DIR/$p/nodes.conf" --cluster-node-timeout 1000 \
      --save "" --appendonly no --repl-diskless-sync-delay 0 \
      --dir "$DIR/$p" --logfile "$DIR/$p/redis.log"
  done
  for p in "${PORTS[@]}"; do
    for _ in $(seq 1 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  hosts=()
  for p in "${PORTS[@]}"; do hosts+=("127.0.0.1:$p"); done
  redis-cli --cluster create "${hosts[@]}" --cluster-replicas 1 --cluster-yes >"$DIR/create.log"
fi
for _ in $(seq 1 100); do healthy && break; sleep 0.2; done
healthy || { echo "the Redis Cluster on ports ${PORTS[*]} did not come up" >&2; exit 1; }
redis-cli -p "${PORTS[0]}" cluster info | grep -E '^cluster_(state|known_nodes|size):'
