#!/usr/bin/env bash
# Load benchmarks on loopback with wrk: the server pinned to one CPU, wrk to another.
# Prints one table: requests/s, p50/p99 latency, non-2xx count, and each ratio. Three reference
# rows split the protected route's cost: the public route sent the same Authorization header
# (hyper parses it, nothing reads it), a route behind a do-nothing layer (`/forward`), and the
# floor (`/floor`): a layer that only inserts a fixed TokenInfo into the request's extensions,
# as any bearer layer that hands details to handlers must.
#
#   bash bench/load.sh                       # 5 rounds × 8 s per workload, memory store
#   DURATION=30s bash bench/load.sh
#   STORE=redis://127.0.0.1:6379 bash bench/load.sh                 # near-cache on (default)
#   STORE=postgres://postgres@127.0.0.1:5432/test NEAR_CACHE=off bash bench/load.sh
#   THREADS=1 CONNECTIONS=32 bash bench/load.sh     # the setting other OAuth servers quote
#   STORE=redis://127.0.0.1:6379 INSTANCES=2 bash bench/load.sh   # two instances: bench/instances.sh
#   STORE=redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002 bash bench/load.sh  # .ci/redis-cluster.sh
#
# With STORE set, a second server on the memory store (PORT+1) runs the protected, client
# credentials and refresh workloads in the same rounds, so the shared store's rows come with
# their ratio to the memory store measured side by side.
#
# Bounded: each workload runs ROUNDS times DURATION (defaults 5 × 8 s, about 6 minutes in all),
# every round running each workload once; ratios are taken within a round and their median
# reported with its range (the machine is shared and noisy). A 2 s warm-up comes first. The
# server is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

# Several instances on one store are bench/instances.sh's run (its own rounds and probe).
if [ "${INSTANCES:-1}" -gt 1 ]; then
  exec bash bench/instances.sh
fi

DURATION=${DURATION:-8s}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
PORT=${PORT:-3100}
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
TOKENS=$((CONNECTIONS * 4))

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --example bench_server

work=$(mktemp -d)

NEAR_CACHE=${NEAR_CACHE:-on}
store_args=(--near-cache "$NEAR_CACHE")
[ -n "${STORE:-}" ] && store_args+=(--store "$STORE")
servers=()
start_server() { # port, log, tokens file, arguments…
  local port=$1 log=$2 tokens=$3; shift 3
  PORT=$port taskset -c "$SERVER_CPU" target/release/examples/bench_server \
    --refresh-tokens "$tokens" --count $((TOKENS * ROUNDS)) "$@" >"$log" 2>&1 &
  servers+=($!)
  for _ in $(seq 1 300); do grep -q listening "$log" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$log" || { cat "$log"; exit 1; }
}
cleanup() {
  kill "${servers[@]}" 2>/dev/null || true
  rm -rf "$work"
  [ -z "${STORE:-}" ] || bash bench/store-cleanup.sh "$STORE"
}
trap cleanup EXIT
start_server "$PORT" "$work/server.log" "$work/tokens.txt" "${store_args[@]}"
head -1 "$work/server.log" >&2
base="http://127.0.0.1:$PORT"
mem="http://127.0.0.1:$((PORT + 1))"
if [ -n "${STORE:-}" ]; then
  start_server $((PORT + 1)) "$work/memory.log" "$work/memory_tokens.txt"
  split -d -l "$TOKENS" "$work/memory_tokens.txt" "$work/memory_tokens."
fi

token_at() { curl -s -u bench:bench-secret -d grant_type=client_credentials "$1/oauth/token" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'; }
at=$(token_at "$base")
[ -n "${STORE:-}" ] && mem_at=$(token_at "$mem")

cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic YmVuY2g6YmVuY2gtc2VjcmV0"
LUA

run() { # name, url, wrk options… [-- script args…]
  local name=$1 url=$2; shift 2
  local opts=() rest=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do opts+=("$1"); shift; done
  [ $# -gt 0 ] && rest=("$@") # "--" and the script's arguments, after the URL
  echo "running $name for $DURATION…" >&2
  if ! taskset -c "$WRK_CPU" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${opts[@]}" \
    "$url" "${rest[@]}" >"$work/$name.txt" 2>&1; then
    echo "wrk failed for $name:" >&2
    cat "$work/$name.txt" >&2
    exit 1
  fi
}

# Each refresh round gets its own fresh tokens: a round leaves its tokens rotated away.
split -d -l "$TOKENS" "$work/tokens.txt" "$work/tokens."

# Warm-up: connections, caches, CPU frequency.
DURATION=2s run warmup "$base/public"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  run "public.$round" "$base/public"
  # Reference rows splitting the protected route's cost: the same header on the public route
  # (parsed by hyper, ignored), and a route behind a layer that does nothing.
  run "public_with_header.$round" "$base/public" -H "Authorization: Bearer $at"
  run "forward_layer.$round" "$base/forward"
  run "floor_insert_only.$round" "$base/floor" -H "Authorization: Bearer $at"
  run "protected.$round" "$base/protected" -H "Authorization: Bearer $at"
  run "baseline.$round" "$base/baseline/token" -s "$work/post.lua"
  run "client_credentials.$round" "$base/oauth/token" -s "$work/post.lua"
  run "refresh.$round" "$base/oauth/token" -s bench/refresh.lua -- "$work/tokens.$(printf %02d $((round - 1)))" "$THREADS"
  if [ -n "${STORE:-}" ]; then
    run "protected_memory.$round" "$mem/protected" -H "Authorization: Bearer $mem_at"
    run "client_credentials_memory.$round" "$mem/oauth/token" -s "$work/post.lua"
    run "refresh_memory.$round" "$mem/oauth/token" -s bench/refresh.lua -- "$work/memory_tokens.$(printf %02d $((round - 1)))" "$THREADS"
  fi
done

python3 - "$work" <<'PY'
# Each round runs every workload once, one after the other, so a ratio is taken within a round
# (the two sides met the same machine conditions) and the median over rounds is reported, with
# its range; req/s, p50 and p99 are medians over rounds too. On this kind of shared VM a single
# round can move ±10 %, and "best round" favours whichever side had the luckier moment.
import glob, os, re, statistics, sys
work = sys.argv[1]
def parse_one(path):
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    def lat(p):
        m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)\b" % p, text)
        v, unit = float(m.group(1)), m.group(2)
        return v * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    return dict(rps=rps, p50=lat(50), p99=lat(99), non2xx=int(non2xx.group(1)) if non2xx else 0,
                errors=errors.group(1) if errors else "")
def rounds(name):
    paths = glob.glob(os.path.join(work, name + ".*.txt"))
    return {int(p.rsplit(".", 2)[-2]): parse_one(p) for p in paths}
names = ["public", "public_with_header", "forward_layer", "floor_insert_only", "protected",
         "baseline", "client_credentials", "refresh"]
ratio = {"public_with_header": ("public", None), "forward_layer": ("public", None),
         "floor_insert_only": ("public", None), "protected": ("public", 0.95),
         "client_credentials": ("baseline", 0.75), "refresh": ("baseline", 0.75)}
if glob.glob(os.path.join(work, "protected_memory.*.txt")):
    # A shared store: its rows against the memory store's, measured in the same rounds.
    names += ["protected_memory", "client_credentials_memory", "refresh_memory"]
data = {n: rounds(n) for n in names}
med = statistics.median
def per_round(name, ref):
    return [data[name][i]["rps"] / data[ref][i]["rps"] for i in sorted(data[name]) if i in data[ref]]
print(f"{len(data['public'])} rounds per workload: medians over rounds; a ratio is the median of the"
      " rounds' own ratios [range]; non-2xx summed over all rounds")
print(f"{'workload':<20} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}  ratio")
for name in names:
    rs = list(data[name].values())
    rel = ""
    if name in ratio:
        ref, target = ratio[name]
        xs = per_round(name, ref)
        rel = f"{med(xs):.2f} x {ref} [{min(xs):.2f}-{max(xs):.2f}]" + (
            f" (target >= {target})" if target else " (reference)")
    errors = "; ".join(r["errors"] for r in rs if r["errors"])
    print(f"{name:<20} {med(r['rps'] for r in rs):>10.0f} {med(r['p50'] for r in rs):>8.3f}"
          f" {med(r['p99'] for r in rs):>8.3f} {sum(r['non2xx'] for r in rs):>8}  {rel}"
          + (f"  socket errors: {errors}" if errors else ""))
if "protected_memory" in data:
    for name, target in [("protected", 0.9), ("client_credentials", None), ("refresh", 0.5)]:
        xs = per_round(name, name + "_memory")
        print(f"{name} on the store / on memory = {med(xs):.2f} [{min(xs):.2f}-{max(xs):.2f}]"
              + (f" (target >= {target})" if target else ""))
xs = per_round("protected", "floor_insert_only")
print(f"protected / floor_insert_only = {med(xs):.2f} [{min(xs):.2f}-{max(xs):.2f}]: the check's own"
      " cost (hash, lookup, expiry, building the TokenInfo)")
PY
