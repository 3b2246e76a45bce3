#!/usr/bin/env bash
# Remove what the bench server left in a shared store: its keys (`tower-oauth2-bench:*`) or its
# schema (`tower_oauth2_bench`). A load run leaves millions of tokens, which would otherwise stay
# until they expire (an hour) and slow every KEYS or SCAN of that Redis meanwhile.
#   bash bench/store-cleanup.sh redis://127.0.0.1:6379
set -euo pipefail
url=${1:?a redis:// or postgres:// URL}
case "$url" in
  redis*) redis-cli -u "$url" --scan --pattern 'tower-oauth2-bench:*' |
    xargs -r -n 1000 redis-cli -u "$url" unlink >/dev/null ;;
  postgres*) psql -q "$url" -c 'DROP SCHEMA IF EXISTS tower_oauth2_bench CASCADE' >/dev/null 2>&1 ;;
esac
