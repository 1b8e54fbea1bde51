#!/usr/bin/env bash
# GET /health on one worker against a bare h2o handler with a fixed body, same machine,
# same run, same wrk settings. Prints requests/s and latency of each and the ratio.
#   bench/health.sh [duration_s=10] [connections=32]
# The server runs as in production: LOG_LEVEL=info, one access-log line per request (to a file).
# Not a test: figures depend on the machine; the README records a run.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10}
conns=${2:-32}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DSB_TESTS=OFF -DSB_BENCH=ON >/dev/null
cmake --build build/bench -j"$(nproc)" >/dev/null

work=$(mktemp -d)
trap 'kill $sb_pid $bare_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

(cd "$work" && PORT=0 TLS_PORT=off WORKERS=1 BIND_ADDRESS=127.0.0.1 LOG_LEVEL=info \
  exec "$OLDPWD/build/bench/switchboard" 2>"$work/sb.log") &
sb_pid=$!
bare_port=$((20000 + RANDOM % 20000))
build/bench/bench_bare_h2o "$bare_port" 2>"$work/bare.log" &
bare_pid=$!
for _ in $(seq 100); do grep -q 'server.listening' "$work/sb.log" 2>/dev/null && grep -q listening "$work/bare.log" && break; sleep 0.05; done
sb_port=$(grep -o 'server.listening port=[0-9]*' "$work/sb.log" | grep -o '[0-9]*$' || true)
[ -n "$sb_port" ] || { echo "switchboard did not start"; cat "$work/sb.log"; exit 1; }

run() { wrk -t1 -c"$conns" -d"${dur}s" --latency "$1" | tee "$work/$2.txt" >&2; }
echo "== bare h2o" >&2; run "http://127.0.0.1:$bare_port/health" bare
echo "== switchboard GET /health (1 worker)" >&2; run "http://127.0.0.1:$sb_port/health" sb
rps() { grep 'Requests/sec' "$work/$1.txt" | awk '{print $2}'; }
p99() { grep ' 99%' "$work/$1.txt" | awk '{print $2}'; }
b=$(rps bare); s=$(rps sb)
printf '\nconnections=%s duration=%ss\n' "$conns" "$dur"
printf 'bare h2o:     %10.0f req/s  p99 %s\n' "$b" "$(p99 bare)"
printf 'switchboard:  %10.0f req/s  p99 %s\n' "$s" "$(p99 sb)"
awk -v s="$s" -v b="$b" 'BEGIN { printf "ratio:        %.2f of bare h2o (target: at least 0.50)\n", s / b }'
