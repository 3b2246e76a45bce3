#!/usr/bin/env bash
# Several instances on one shared store: INSTANCES=2 bench servers on STORE, the protected
# route's load split across them (one wrk per instance, half the connections each), beside one
# instance on the memory store in the same rounds; and, while the two serve, revocations made on
# the first and checked on the second (bench/revocation_probe.py): requests accepted after the
# revocation was acknowledged (must be 0) and the time until the second refuses.
#
#   STORE=redis://127.0.0.1:6379 bash bench/instances.sh    # or: INSTANCES=2 bash bench/load.sh
#   STORE=postgres://postgres@127.0.0.1:5432/test NEAR_CACHE=off bash bench/instances.sh
#
# Every server shares CPU SERVER_CPU (default 0) and wrk runs on WRK_CPU (default 1): on this
# 2-core machine two instances get one core between them, as one memory-store instance does, so
# the ratio compares the same CPU budget. Bounded: ROUNDS (3) × 2 workloads × DURATION (8 s),
# plus PROBES (200) revocations during the last round.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${STORE:?set STORE to a redis:// or postgres:// URL}"
DURATION=${DURATION:-8s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
PORT=${PORT:-3100}
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
NEAR_CACHE=${NEAR_CACHE:-on}
INSTANCES=${INSTANCES:-2}
PROBES=${PROBES:-200}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --example bench_server

work=$(mktemp -d)
servers=()
cleanup() {
  kill "${servers[@]}" 2>/dev/null || true
  rm -rf "$work"
  bash bench/store-cleanup.sh "$STORE"
}
trap cleanup EXIT
start_server() { # port, log, arguments…
  local port=$1 log=$2; shift 2
  PORT=$port taskset -c "$SERVER_CPU" target/release/examples/bench_server "$@" >"$log" 2>&1 &
  servers+=($!)
  for _ in $(seq 1 300); do grep -q listening "$log" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$log" || { cat "$log"; exit 1; }
}
urls=()
for i in $(seq 0 $((INSTANCES - 1))); do
  start_server $((PORT + i)) "$work/instance$i.log" --store "$STORE" --near-cache "$NEAR_CACHE"
  urls+=("http://127.0.0.1:$((PORT + i))")
  head -1 "$work/instance$i.log" >&2
done
mem="http://127.0.0.1:$((PORT + INSTANCES))"
start_server $((PORT + INSTANCES)) "$work/memory.log"

token_at() { curl -s -u bench:bench-secret -d grant_type=client_credentials "$1/oauth/token" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'; }
at=$(token_at "${urls[0]}")
mem_at=$(token_at "$mem")

wrk_one() { # output, connections, url, token
  taskset -c "$WRK_CPU" wrk -t"$THREADS" -c"$2" -d"$DURATION" --latency -H "Authorization: Bearer $4" \
    "$3/protected" >"$1" 2>&1
}
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  wrk_one "$work/memory.$round.txt" "$CONNECTIONS" "$mem" "$mem_at"
  pids=()
  for i in $(seq 0 $((INSTANCES - 1))); do
    wrk_one "$work/shared.$round.$i.txt" $((CONNECTIONS / INSTANCES)) "${urls[$i]}" "$at" &
    pids+=($!)
  done
  if [ "$round" = "$ROUNDS" ]; then
    python3 bench/revocation_probe.py "${urls[0]}" "${urls[1]}" "$PROBES" >"$work/probe.json"
  fi
  wait "${pids[@]}"
done

python3 - "$work" "$INSTANCES" "$STORE" "$NEAR_CACHE" <<'PY'
import glob, json, os, re, statistics, sys
work, n, store, near = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def rps(path):
    text = open(path).read()
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        sys.exit(f"{path}: {non2xx.group(1)} non-2xx responses")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
rounds = sorted({int(p.split(".")[-2]) for p in glob.glob(os.path.join(work, "memory.*.txt"))})
mem = [rps(os.path.join(work, f"memory.{r}.txt")) for r in rounds]
shared = [sum(rps(p) for p in glob.glob(os.path.join(work, f"shared.{r}.*.txt"))) for r in rounds]
ratios = [s / m for s, m in zip(shared, mem)]
med = statistics.median
scheme = store.split(":")[0]
print(f"{len(rounds)} rounds; protected route, req/s (median over rounds)")
print(f"one instance, memory store:          {med(mem):>9.0f}")
print(f"{n} instances, {scheme}, near-cache {near}: {med(shared):>9.0f}  "
      f"= {med(ratios):.2f} x memory [{min(ratios):.2f}-{max(ratios):.2f}] (target >= 0.9)")
probe = json.load(open(os.path.join(work, "probe.json")))
print(f"revocations on instance 0 checked on instance 1 under that load: {json.dumps(probe)}")
PY
