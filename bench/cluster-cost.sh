#!/usr/bin/env bash
# What each request costs a Redis Cluster: the bench server on the cluster (near-cache off, so
# every request reaches the store), each workload run with wrk for DURATION, and around each run
# the CPU time (user + sys) and command count of every node read from INFO. Prints, per workload,
# requests/s and per request: commands, CPU microseconds on the primaries and on the replicas —
# the figures BENCHMARKS.md scales to N nodes on paper. With a redis:// URL, the same for one
# server, to compare.
#
#   bash .ci/redis-cluster.sh && bash bench/cluster-cost.sh
#   STORE=redis+cluster://10.0.0.1:6379 DURATION=20s bash bench/cluster-cost.sh
#   STORE=redis://127.0.0.1:6379 bash bench/cluster-cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."

STORE=${STORE:-redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002}
DURATION=${DURATION:-8s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
PORT=${PORT:-3200}
TOKENS=$((CONNECTIONS * 4))

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --example bench_server
work=$(mktemp -d)
PORT=$PORT target/release/examples/bench_server --store "$STORE" --near-cache off \
  --refresh-tokens "$work/tokens.txt" --count "$TOKENS" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"; bash bench/store-cleanup.sh "$STORE"' EXIT
for _ in $(seq 1 300); do grep -q listening "$work/server.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$work/server.log" || { cat "$work/server.log"; exit 1; }

case "$STORE" in
  redis+cluster://*)
    first=${STORE#redis+cluster://}; first=${first%%,*}; first=${first##*@}
    # Every node: address and role, as `CLUSTER NODES` says.
    redis-cli -h "${first%:*}" -p "${first##*:}" cluster nodes |
      awk '$3 !~ /fail/ { split($2, a, "@"); role = ($3 ~ /master/) ? "primary" : "replica"; print a[1], role }' \
      >"$work/nodes" ;;
  *)
    node=${STORE#redis://}; node=${node##*@}; node=${node%%/*}
    echo "$node primary" >"$work/nodes" ;;
esac

sample() { # file: one line per node: address role cpu_seconds commands scripts
  # Commands count those run inside scripts too; scripts are the EVALSHA calls.
  while read -r node role; do
    info=$(redis-cli -h "${node%:*}" -p "${node##*:}" info everything | tr -d '\r')
    cpu=$(echo "$info" | awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { print s }')
    calls=$(echo "$info" | awk -F'[=,:]' '/^cmdstat_/ && !/^cmdstat_(info|cluster|ping)/ { s += $3 } END { print s + 0 }')
    scripts=$(echo "$info" | awk -F'[=,:]' '/^cmdstat_evalsha:/ { s += $3 } END { print s + 0 }')
    echo "$node $role $cpu $calls $scripts"
  done <"$work/nodes" >"$1"
}

token=$(curl -s -u bench:bench-secret -d grant_type=client_credentials "http://127.0.0.1:$PORT/oauth/token" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic YmVuY2g6YmVuY2gtc2VjcmV0"
LUA

run() { # name, wrk arguments…
  local name=$1; shift
  echo "running $name for $DURATION…" >&2
  sample "$work/$name.before"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$@" >"$work/$name.txt" 2>&1
  sample "$work/$name.after"
}

wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "http://127.0.0.1:$PORT/protected" -H "Authorization: Bearer $token" >/dev/null
run protected "http://127.0.0.1:$PORT/protected" -H "Authorization: Bearer $token"
run client_credentials "http://127.0.0.1:$PORT/oauth/token" -s "$work/post.lua"
run refresh "http://127.0.0.1:$PORT/oauth/token" -s bench/refresh.lua -- "$work/tokens.txt" "$THREADS"

python3 - "$work" <<'PY'
import re, sys
work = sys.argv[1]
def load(path):
    return {l.split()[0]: (l.split()[1], float(l.split()[2]), int(l.split()[3]), int(l.split()[4]))
            for l in open(path) if l.strip()}
print("%-20s %9s %12s %10s %16s %16s" % ("workload", "req/s", "scripts/req", "cmds/req",
                                         "primary µs/req", "replica µs/req"))
for name in ["protected", "client_credentials", "refresh"]:
    text = open(f"{work}/{name}.txt").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    reqs = int(re.search(r"(\d+) requests in", text).group(1))
    before, after = load(f"{work}/{name}.before"), load(f"{work}/{name}.after")
    cpu = {"primary": 0.0, "replica": 0.0}
    cmds = scripts = 0
    for node, (role, c1, n1, s1) in after.items():
        _, c0, n0, s0 = before.get(node, (role, c1, n1, s1))
        cpu[role] += c1 - c0
        if role == "primary":
            cmds += n1 - n0
            scripts += s1 - s0
    print("%-20s %9.0f %12.2f %10.2f %16.1f %16.1f" % (
        name, rps, scripts / reqs, cmds / reqs, cpu["primary"] * 1e6 / reqs,
        cpu["replica"] * 1e6 / reqs))
PY
