#!/usr/bin/env bash
# Run each fuzz target for a bounded time (default 60 s each):
#
#   bash fuzz/run.sh              # all targets
#   SECONDS_EACH=600 bash fuzz/run.sh token_endpoint
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Runs on the stable toolchain without a
# sanitizer (--sanitizer none); with a nightly toolchain drop that flag to get AddressSanitizer.
# fuzz/seeds/<target> is the committed seed corpus (read-only); new inputs go to
# fuzz/corpus/<target> (ignored by git). A crash lands in fuzz/artifacts/<target>: turn it into
# a regression test, then fix it.
set -euo pipefail
cd "$(dirname "$0")"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
SECONDS_EACH=${SECONDS_EACH:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(form form_many_names client_auth bearer_header token_endpoint)
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t for ${SECONDS_EACH}s"
  cargo fuzz run "$t" --sanitizer none "corpus/$t" "seeds/$t" -- \
    -max_total_time="$SECONDS_EACH" -print_final_stats=1 2>&1 |
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss|==[0-9]+== ERROR|SUMMARY|Done)' || true
  if ls "artifacts/$t"/crash-* >/dev/null 2>&1; then
    echo "crash found in $t: see fuzz/artifacts/$t" >&2
    exit 1
  fi
done
