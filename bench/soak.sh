#!/usr/bin/env bash
# Soak: mixed traffic (validate, issue, refresh, revoke) with wrk on loopback for a bounded time
# (default 5 minutes), tokens living 20 s (access) and 40 s (refresh) and a 10 s sweep, so that
# issuing, expiring and sweeping all run all along. Reports errors and the server's resident
# memory over time: it must stay flat once the first expiry window has passed.
#
#   bash bench/soak.sh             # SOAK=300s CONNECTIONS=32
set -euo pipefail
cd "$(dirname "$0")/.."
SOAK=${SOAK:-300s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=2
PORT=${PORT:-3130}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --example bench_server
work=$(mktemp -d)
trap 'kill $server $sampler 2>/dev/null || true; rm -rf "$work"' EXIT
PORT=$PORT taskset -c 0 target/release/examples/bench_server --refresh-tokens "$work/tokens.txt" \
  --count $((CONNECTIONS * 4)) --access-token-lifetime 20 --refresh-token-lifetime 40 \
  --sweep-interval 10 >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 200); do grep -q listening "$work/server.log" 2>/dev/null && break; sleep 0.1; done
at=$(curl -s -u bench:bench-secret -d grant_type=client_credentials "http://127.0.0.1:$PORT/oauth/token" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
# Sample the server's resident memory every 10 s.
(while kill -0 $server 2>/dev/null; do
  awk '/VmRSS/ {print $2}' /proc/$server/status 2>/dev/null; sleep 10
done) >"$work/rss.txt" &
sampler=$!
taskset -c 1 wrk -t$THREADS -c"$CONNECTIONS" -d"$SOAK" --latency -s bench/soak.lua \
  "http://127.0.0.1:$PORT" -- "$work/tokens.txt" "$THREADS" "$at" >"$work/wrk.txt" 2>&1
kill $sampler 2>/dev/null || true
python3 - "$work" <<'PY'
import re, sys, os
work = sys.argv[1]
text = open(os.path.join(work, "wrk.txt")).read()
reqs = int(re.search(r"(\d+) requests in", text).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
socket = re.search(r"Socket errors: (.*)", text)
rss = [int(l) / 1024 for l in open(os.path.join(work, "rss.txt")) if l.strip()]
mix = re.search(r"^mix:(.*)$", text, re.M)
print(f"soak: {reqs} requests, {rps:.0f} req/s, non-2xx {int(non2xx.group(1)) if non2xx else 0}, "
      f"socket errors: {socket.group(1) if socket else 'none'}")
print("requests sent by kind:" + (mix.group(1) if mix else " (not reported)"))
print("resident MB every 10 s: " + " ".join(f"{m:.0f}" for m in rss))
half = rss[len(rss) // 2:]
print(f"second half: min {min(half):.0f} MB, max {max(half):.0f} MB")
PY
