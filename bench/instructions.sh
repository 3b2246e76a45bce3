#!/usr/bin/env bash
# Instructions per request, counted by callgrind: repeatable whatever else the machine is doing
# (wrk's req/s here moves by ±10 % from run to run). Runs the bench server under valgrind,
# drives each route with wrk for a fixed time, and divides the instructions executed by the
# requests completed. User-space instructions only: the kernel's TCP work is not counted.
#
#   bash bench/instructions.sh            # SECONDS_PER_ROUTE=6
#
# Under valgrind the CPU's SHA extensions are hidden, so SHA-256 runs the portable code; its
# share is printed apart (natively it is the SHA-NI path, a small fraction of this).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECONDS_PER_ROUTE:-6}
PORT=${PORT:-3102}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
cargo build --release --quiet --example bench_server

work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
PORT=$PORT valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
  "$OLDPWD/target/release/examples/bench_server" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 600); do grep -q listening "$work/server.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$work/server.log" || { cat "$work/server.log"; exit 1; }

base="http://127.0.0.1:$PORT"
at=$(curl -s -u bench:bench-secret -d grant_type=client_credentials "$base/oauth/token" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
wrk -t1 -c8 -d2s "$base/public" >/dev/null # warm-up

printf '%-20s %9s %14s %12s\n' route requests "instr/request" "of it SHA"
measure() { # name, path, wrk options…
  local name=$1 path=$2; shift 2
  callgrind_control -z "$server" >/dev/null 2>&1
  local n
  n=$(wrk -t1 -c8 -d"${SECS}s" "$@" "$base$path" | awk '/requests in/ {print $1}')
  callgrind_control -d "$server" >/dev/null 2>&1
  local dump
  dump=$(ls -t "$work"/cg.out.* | head -1)
  python3 - "$dump" "$n" "$name" <<'PY'
import re, subprocess, sys
dump, n, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
total = int(re.search(r"^summary:\s+(\d+)", open(dump).read(), re.M).group(1))
ann = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", dump],
                     capture_output=True, text=True).stdout
sha = sum(int(m.group(1).replace(",", "")) for m in
          re.finditer(r"^\s*([\d,]+) \([^)]*\)\s+\S*sha256::compress", ann, re.M))
print(f"{name:<20} {n:>9} {total / n:>14.0f} {sha / n:>12.0f}")
PY
}
measure public /public
measure public_with_header /public -H "Authorization: Bearer $at"
measure forward_layer /forward
measure floor_insert_only /floor -H "Authorization: Bearer $at"
measure protected /protected -H "Authorization: Bearer $at"
