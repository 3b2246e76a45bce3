#!/usr/bin/env bash
# Remove what the bench server left in a shared store: its keys (`tower-oauth2-bench:*`) or its
# schema (`tower_oauth2_bench`). A load run leaves millions of tokens, which would otherwise stay
# until they expire (an hour) and slow every KEYS or SCAN of that Redis meanwhile.
#   bash bench/store-cleanup.sh redis://127.0.0.1:6379
#   bash bench/store-cleanup.sh redis+cluster://127.0.0.1:7000,127.0.0.1:7001
set -euo pipefail
url=${1:?a redis://, redis+cluster:// or postgres:// URL}
case "$url" in
  redis+cluster://*)
    # Primary by primary, one key per UNLINK (a cluster refuses keys of several slots at once).
    first=${url#redis+cluster://}; first=${first%%,*}; first=${first##*@}
    redis-cli -h "${first%:*}" -p "${first##*:}" cluster nodes |
      awk '$3 ~ /master/ && $3 !~ /fail/ { split($2, a, "@"); print a[1] }' |
      while read -r node; do
        redis-cli -h "${node%:*}" -p "${node##*:}" --scan --pattern 'tower-oauth2-bench:*' |
          sed 's/^/UNLINK /' | redis-cli -h "${node%:*}" -p "${node##*:}" >/dev/null
      done ;;
  redis*) redis-cli -u "$url" --scan --pattern 'tower-oauth2-bench:*' |
    xargs -r -n 1000 redis-cli -u "$url" unlink >/dev/null ;;
  postgres*) psql -q "$url" -c 'DROP SCHEMA IF EXISTS tower_oauth2_bench CASCADE' >/dev/null 2>&1 ;;
esac
