#!/usr/bin/env bash
# The Asterisk RTP leg against the Twilio leg, N concurrent calls each through the echo agent,
# one after the other in one invocation:
#   1. twilio:   switchboard-sim-load (C, one libuv loop) drives N Twilio calls (voice webhook,
#                Media Stream, a 20 ms frame every 20 ms), as bench/bridge.sh does;
#   2. asterisk: bench/asterisk_load.mjs drives N Asterisk calls: the fake Asterisk (node) plays
#                ARI, bench/rtp_load.c (C, built on first use) owns one ExternalMedia RTP socket
#                per call and sends a 20 ms PCMU packet every 20 ms from each.
# Each starts its own server (WORKERS=1, echo agent, log level warn), spreads the calls' start
# over about 2 s, then measures a steady window: CPU per call-second, added latency (the echo's
# 100 ms removed), frames lost, RSS per call; for Asterisk also the pacing jitter of
# switchboard's packets (by kernel arrival time) and the driver's own lateness; for both, what
# every other process on the machine used meanwhile. Prints both side by side with the ratio.
#   bench/asterisk.sh [calls=200] [seconds=10]
# Environment: PIN=1 runs each server on CPU 0 and its load generator on CPU 1 (taskset);
# NICE=n runs each server at that nice level (e.g. -10, as root: other work on a shared
# machine then preempts it less, which separates its own pacing from the machine's);
# BUILD (an existing build directory to take the binaries from, default build/bench as
# bridge.sh configures it); KEEP=1 keeps the JSON reports (printed path).
# Exit status: 0 when both runs set up every call and lost under 1 % of frames.
# Not a test: figures depend on the machine; the README records a run.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
calls=${1:-200}
secs=${2:-10}
build=${BUILD:-build/bench}
quiet() { local out; out=$("$@" 2>&1) || { echo "$out" >&2; return 1; }; } # output only on failure
if [ -z "${BUILD:-}" ] || [ ! -f "$build/CMakeCache.txt" ]; then # the tree bench/bridge.sh uses
  quiet cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSB_TESTS=OFF -DSB_BENCH=ON
fi
quiet cmake --build "$build" -j"$(nproc)" --target switchboard switchboard-sim-load

# one socket per call on each side (two while a Twilio call is being set up)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((calls * 2 + 64)) ]; then
  echo "warning: ulimit -n is $(ulimit -n); $calls calls need about $((calls * 2 + 64))" >&2
fi
srv_pin=() gen_pin=() node_cpu=()
if [ -n "${NICE:-}" ]; then # both servers at this nice level (negative: ahead of other work)
  srv_pin=(nice -n "$NICE")
  node_cpu=(--server-nice "$NICE")
fi
if [ "${PIN:-0}" = 1 ]; then
  srv_pin=(taskset -c 0 ${srv_pin[@]+"${srv_pin[@]}"})
  gen_pin=(taskset -c 1)
  node_cpu+=(--server-cpu 0)
fi
ramp=$(( calls / 2 > 0 ? calls / 2 : 1 )) # calls per second: all up in about 2 s

work=$(mktemp -d)
sb_pid=
trap '[ -n "$sb_pid" ] && kill "$sb_pid" 2>/dev/null; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

echo "$(date -u +%FT%TZ) $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); load average" \
  "$(cut -d' ' -f1-3 /proc/loadavg); $calls calls, ${secs} s window, PIN=${PIN:-0} NICE=${NICE:-0}" >&2
echo "other processes above 5 % CPU just before:" \
  "$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 5 && $2 != "ps" { printf "%s %s%%, ", $2, $1 }' | sed 's/, $//')" >&2

# ---- 1. the Twilio leg (as bench/bridge.sh) ----
(cd "$work" && PORT=0 TLS_PORT=off WORKERS=1 BIND_ADDRESS=127.0.0.1 LOG_LEVEL=warn AI_PROVIDER=echo \
  MAX_CONCURRENT_CALLS=0 SILENCE_TIMEOUT_S=3600 DATABASE_PATH="$work/twilio.db" \
  exec ${srv_pin[@]+"${srv_pin[@]}"} "$OLDPWD/$build/switchboard" 2>"$work/sb.log") &
sb_pid=$!
port=$(bench_wait_port "$sb_pid" "$work/sb.log") || exit 1
sleep 0.3
# what else ran meanwhile (bench_others, bench/lib.sh)
read -r o0 k0 < <(bench_others "$sb_pid")
w0=$(date +%s.%N)
rc=0
${gen_pin[@]+"${gen_pin[@]}"} "$build/switchboard-sim-load" --url "http://127.0.0.1:$port" --calls "$calls" \
  --ramp "$ramp" --duration "$secs" --pid "$sb_pid" --json >"$work/twilio.json" || rc=$?
read -r o1 k1 < <(bench_others "$sb_pid")
w1=$(date +%s.%N)
pct() { awk -v o="$1" -v w0="$w0" -v w1="$w1" -v t="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", 100 * o / t / (w1 - w0) }'; }
# shown in the table: over the whole load generator run, set-up included
export REF_OTHERS_PCT=$(pct $((o1 - o0))) REF_KTHREADS_PCT=$(pct $((k1 - k0)))
grep -q 'level=error' "$work/sb.log" && { echo "twilio run: server errors:" >&2; grep 'level=error' "$work/sb.log" | head -5 >&2; }
kill "$sb_pid"
wait "$sb_pid" 2>/dev/null || true
sb_pid=
[ -s "$work/twilio.json" ] || { echo "switchboard-sim-load gave no report" >&2; exit 1; }
sleep 1 # the first server's sockets and CPU out of the way

# ---- 2. the Asterisk leg, and the table ----
${gen_pin[@]+"${gen_pin[@]}"} node bench/asterisk_load.mjs "$calls" "$secs" --bin "$build/switchboard" \
  ${node_cpu[@]+"${node_cpu[@]}"} --reference "$work/twilio.json" --out "$work/asterisk.json" || rc=$?
[ -n "${KEEP:-}" ] && echo "reports kept in $work" >&2
exit $rc
