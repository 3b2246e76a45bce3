#!/usr/bin/env bash
# Runs the curl commands users paste first verbatim against the real quickstart binary: the
# password and refresh grants at localhost:3000/oauth/token (testclient/secret, test/test) and
# at /token (TestClient/TestSecret, bshaffer/brent123), then the README's revoke, introspect and
# metadata commands. Fails on any unexpected answer.
set -euo pipefail
cd "$(dirname "$0")/.."

source .ci/example.sh
if (exec 3<>/dev/tcp/127.0.0.1/3000) 2>/dev/null; then
  echo "seed-curls: port 3000 is in use; the pasted commands name it, so this check needs it free" >&2
  exit 1
fi
start_example quickstart 3000

field() { python3 -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print("" if v is None else v)' "$1"; }
fail() { echo "seed-curls: FAIL: $*" >&2; exit 1; }
pass=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }

# --- at /oauth/token, verbatim ---
out=$(curl -s -X POST -H 'Authorization: Basic dGVzdGNsaWVudDpzZWNyZXQ=' -d 'grant_type=password&username=test&password=test' localhost:3000/oauth/token)
at=$(field access_token <<<"$out"); rt=$(field refresh_token <<<"$out")
[ "$(field token_type <<<"$out")" = Bearer ] && [ -n "$at" ] && [ -n "$rt" ] || fail "/oauth/token password grant: $out"
ok "/oauth/token password grant"

out=$(curl -s -X POST -H 'Authorization: Basic dGVzdGNsaWVudDpzZWNyZXQ=' -d "refresh_token=$rt&grant_type=refresh_token" localhost:3000/oauth/token)
at2=$(field access_token <<<"$out"); rt2=$(field refresh_token <<<"$out")
[ -n "$at2" ] && [ -n "$rt2" ] && [ "$rt2" != "$rt" ] || fail "/oauth/token refresh: $out"
ok "/oauth/token refresh (rotated)"

me=$(curl -s -H "Authorization: Bearer $at2" localhost:3000/api/me)
[ "$(field user <<<"$me")" = test ] && [ "$(field client_id <<<"$me")" = testclient ] || fail "/api/me: $me"
ok "/api/me with the new access token"

# --- at /token, only the host changed ---
out=$(curl -s -u TestClient:TestSecret http://localhost:3000/token -d 'grant_type=password&username=bshaffer&password=brent123')
rt3=$(field refresh_token <<<"$out")
[ -n "$(field access_token <<<"$out")" ] && [ -n "$rt3" ] || fail "/token password grant: $out"
ok "/token password grant"

out=$(curl -s -u TestClient:TestSecret http://localhost:3000/token -d "grant_type=refresh_token&refresh_token=$rt3")
rt4=$(field refresh_token <<<"$out")
[ -n "$(field access_token <<<"$out")" ] && [ -n "$rt4" ] || fail "/token refresh: $out"
ok "/token refresh"

# A rotated token used again: invalid_grant, and the family is revoked.
out=$(curl -s -u TestClient:TestSecret http://localhost:3000/token -d "grant_type=refresh_token&refresh_token=$rt3")
[ "$(field error <<<"$out")" = invalid_grant ] || fail "replay: $out"
out=$(curl -s -u TestClient:TestSecret http://localhost:3000/token -d "grant_type=refresh_token&refresh_token=$rt4")
[ "$(field error <<<"$out")" = invalid_grant ] || fail "family revoked: $out"
ok "replay revokes the family"

# --- README: introspect, revoke, metadata ---
out=$(curl -s -u testclient:secret -d "token=$at2" localhost:3000/oauth/introspect)
[ "$(field active <<<"$out")" = True ] || fail "introspect: $out"
code=$(curl -s -o /dev/null -w '%{http_code}' -u testclient:secret -d "token=$rt2&token_type_hint=refresh_token" localhost:3000/oauth/revoke)
[ "$code" = 200 ] || fail "revoke: $code"
out=$(curl -s -u testclient:secret -d "token=$at2" localhost:3000/oauth/introspect)
[ "$out" = '{"active":false}' ] || fail "introspect after revoke: $out"
ok "introspect, revoke, introspect again"

out=$(curl -s localhost:3000/.well-known/oauth-authorization-server)
[ "$(field token_endpoint <<<"$out")" = "http://localhost:3000/oauth/token" ] || fail "metadata: $out"
ok "metadata"

echo "seed-curls: all $pass checks passed"
