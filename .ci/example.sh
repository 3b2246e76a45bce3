# Sourced by the scripts that run an example: `start_example NAME PORT` builds it, starts it on
# PORT (stopped when the script exits) and waits until it listens there.
start_example() {
  local name=$1 port=$2 bin
  # Ask cargo where it put the binary, so a CARGO_TARGET_DIR elsewhere works too.
  bin=$(cargo build --quiet --example "$name" --message-format=json |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$name")
  [ -x "$bin" ] || { echo "$name: cargo did not report the example's binary" >&2; exit 1; }
  example_log=$(mktemp)
  PORT=$port "$bin" >"$example_log" 2>&1 &
  example_pid=$!
  trap 'kill $example_pid 2>/dev/null || true; rm -f "$example_log"' EXIT
  for _ in $(seq 1 100); do
    grep -q "listening on" "$example_log" && break
    sleep 0.1
  done
  grep -q "listening on http://127.0.0.1:$port" "$example_log" || { cat "$example_log"; exit 1; }
}
