#!/usr/bin/env bash
# Runs examples/minimal.rs and the curl lines its header gives: a client_credentials token, the
# protected route with it (200) and without it (401). Fails on any unexpected answer.
set -euo pipefail
cd "$(dirname "$0")/.."

port=${MINIMAL_PORT:-3107}
source .ci/example.sh
start_example minimal "$port"

fail() { echo "minimal: FAIL: $*" >&2; exit 1; }
out=$(curl -s -u app:app-secret -d grant_type=client_credentials "localhost:$port/oauth/token")
at=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' <<<"$out") ||
  fail "no access token: $out"
body=$(curl -s -w '\n%{http_code}' -H "Authorization: Bearer $at" "localhost:$port/hello")
[ "$(tail -n1 <<<"$body")" = 200 ] || fail "protected route with the token: $body"
grep -q '^hello, app (scope: read)$' <<<"$body" || fail "unexpected greeting: $body"
code=$(curl -s -o /dev/null -w '%{http_code}' "localhost:$port/hello")
[ "$code" = 401 ] || fail "protected route without a token answered $code"
echo "ok: minimal example (token, 200 with it, 401 without)"
