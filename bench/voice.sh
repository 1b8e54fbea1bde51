#!/usr/bin/env bash
# A signed POST /twilio/voice (signature check, tenant lookup, call row and event insert,
# TwiML render) on one worker, against a bare h2o handler with a fixed body, in the same run.
#   bench/voice.sh [duration_s=10] [connections=32]
# Each request carries its own CallSid (pre-signed bodies), so every one inserts a row until
# the list wraps around; then requests are retries of known calls (a lookup, no insert).
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10}
conns=${2:-32}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DSB_TESTS=OFF -DSB_BENCH=ON >/dev/null
cmake --build build/bench -j"$(nproc)" >/dev/null

work=$(mktemp -d)
trap 'kill $sb_pid $bare_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
token=bench-token-0123456789
base=https://voice.example.com
node bench/sign_bodies.mjs "$work/bodies.tsv" 400000 "$token" "$base/twilio/voice"

(cd "$work" && PORT=0 TLS_PORT=off WORKERS=1 BIND_ADDRESS=127.0.0.1 LOG_LEVEL=info TWILIO_AUTH_TOKEN=$token \
  PUBLIC_BASE_URL=$base AI_PROVIDER=echo MAX_CONCURRENT_CALLS=0 exec "$OLDPWD/build/bench/switchboard" 2>"$work/sb.log") &
sb_pid=$!
bare_port=$((20000 + RANDOM % 20000))
build/bench/bench_bare_h2o "$bare_port" 2>"$work/bare.log" &
bare_pid=$!
for _ in $(seq 100); do grep -q server.listening "$work/sb.log" 2>/dev/null && grep -q listening "$work/bare.log" && break; sleep 0.05; done
sb_port=$(grep -o 'server.listening port=[0-9]*' "$work/sb.log" | grep -o '[0-9]*$')

run() { wrk -t1 -c"$conns" -d"${dur}s" --latency "$@" >"$work/$RUN.txt"; cat "$work/$RUN.txt" >&2; }
# CPU ticks (user + system, all threads) of a process
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# During the signed run, a window that leaves out wrk's start (its script pre-formats every
# body) and its end: the CPU of the server and of wrk (both on this machine's cores) and the
# requests served in it (the server's access-log lines).
sample_window() {
  local wrk_pid=$1 t0
  t0=$(ticks "$sb_pid")
  while [ "$(ticks "$sb_pid")" = "$t0" ]; do sleep 0.1; done
  sleep 1
  echo "$(ticks "$sb_pid") $(ticks "$wrk_pid") $(grep -c http.request "$work/sb.log")" >"$work/w0"
  sleep $((dur > 4 ? dur - 3 : 1))
  echo "$(ticks "$sb_pid") $(ticks "$wrk_pid") $(grep -c http.request "$work/sb.log")" >"$work/w1"
}
echo "== bare h2o" >&2; RUN=bare run "http://127.0.0.1:$bare_port/"
echo "== switchboard signed POST /twilio/voice (1 worker)" >&2
wrk -t1 -c"$conns" -d"${dur}s" --latency -s bench/voice.lua "http://127.0.0.1:$sb_port" -- "$work/bodies.tsv" \
  >"$work/sb.txt" &
wrk_pid=$!
sample_window "$wrk_pid"
wait "$wrk_pid"
cat "$work/sb.txt" >&2
rows=$(sqlite3 "$work/data/switchboard.db" 'SELECT COUNT(*) FROM calls' 2>/dev/null || echo '?')
non2xx=$(grep -o 'Non-2xx or 3xx responses: [0-9]*' "$work/sb.txt" || true)
rps() { grep 'Requests/sec' "$work/$1.txt" | awk '{print $2}'; }
p99() { grep ' 99%' "$work/$1.txt" | awk '{print $2}'; }
b=$(rps bare); s=$(rps sb)
printf '\nconnections=%s duration=%ss calls inserted=%s %s\n' "$conns" "$dur" "$rows" "$non2xx"
printf 'bare h2o:                 %10.0f req/s  p99 %s\n' "$b" "$(p99 bare)"
printf 'switchboard /twilio/voice: %9.0f req/s  p99 %s\n' "$s" "$(p99 sb)"
awk -v s="$s" -v b="$b" 'BEGIN { printf "ratio:                    %.2f of bare h2o (target: at least 0.40, p99 under 2 ms)\n", s / b }'

# Where the CPU goes per request, and what that allows on this machine's cores: the server's
# share, the store's share (measured alone, no HTTP) and wrk's (it runs on the same cores).
store=$(build/bench/bench_store_inbound 50000 32 | tee /dev/stderr | grep -o '[0-9.]* us CPU' | awk '{ print $1 }')
read -r s0 w0 r0 <"$work/w0"
read -r s1 w1 r1 <"$work/w1"
awk -v n="$((r1 - r0))" -v ds="$((s1 - s0))" -v dw="$((w1 - w0))" -v hz="$(getconf CLK_TCK)" -v store="$store" \
  -v cores="$(nproc)" -v b="$b" 'BEGIN {
  server = ds / hz * 1e6 / n; client = dw / hz * 1e6 / n
  printf "CPU per request:          server %.1f us (the store alone: %.1f us), wrk %.1f us\n", server, store, client
  printf "ceilings:                 one worker (one core) %.0f req/s; all %d cores, wrk included, %.0f req/s\n",
         1e6 / server, cores, cores * 1e6 / (server + client)
  printf "the target, %.0f req/s, leaves one worker %.1f us per request; the store alone takes %.1f us\n",
         0.40 * b, 1e6 / (0.40 * b), store
}'
