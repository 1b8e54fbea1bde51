#!/usr/bin/env bash
# N concurrent calls through the media bridge to the echo agent at real-time pace, driven by
# switchboard-sim-load (C, one libuv loop: cheap enough not to be the bottleneck). Each call
# posts the voice webhook, opens its Media Stream and sends a 20 ms frame every 20 ms; the
# echo comes back 100 ms later. Reports calls set up, webhook latency, per-frame added latency
# (Twilio-in to Twilio-out, the echo's own delay removed), frames lost, and the CPU and RSS of
# the server and of the client over the window when every call is up.
#   bench/bridge.sh [calls=1000] [seconds=20]
# Environment: WORKERS (server threads, default 1), RAMP (calls started per second, default
# 200), JSON=1 for the JSON report. Exit status: the load generator's (0 all calls set up and
# under 1 % of frames lost). Not a test: figures depend on the machine; the README records a run.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
calls=${1:-1000}
secs=${2:-20}
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DSB_TESTS=OFF -DSB_BENCH=ON >/dev/null
cmake --build build/bench -j"$(nproc)" --target switchboard switchboard-sim-load >/dev/null

# one socket per call on each side, two while a call is being set up
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((calls * 2 + 64)) ]; then
  echo "warning: ulimit -n is $(ulimit -n); $calls calls need about $((calls * 2 + 64))" >&2
fi

work=$(mktemp -d)
sb_pid=
trap '[ -n "$sb_pid" ] && kill "$sb_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$work" && PORT=0 TLS_PORT=off WORKERS=${WORKERS:-1} BIND_ADDRESS=127.0.0.1 LOG_LEVEL=warn AI_PROVIDER=echo \
  MAX_CONCURRENT_CALLS=0 SILENCE_TIMEOUT_S=3600 exec "$OLDPWD/build/bench/switchboard" 2>"$work/sb.log") &
sb_pid=$!

port=$(bench_wait_port "$sb_pid" "$work/sb.log") || exit 1

echo "$(date -u +%FT%TZ) $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2);" \
  "server WORKERS=${WORKERS:-1} on port $port; $calls calls, ${secs} s window" >&2
rc=0
build/bench/switchboard-sim-load --url "http://127.0.0.1:$port" --calls "$calls" --ramp "${RAMP:-200}" \
  --duration "$secs" --pid "$sb_pid" ${JSON:+--json} || rc=$?
if grep -q 'level=error' "$work/sb.log"; then
  echo "server errors:" >&2
  grep 'level=error' "$work/sb.log" | head -5 >&2
fi
kill "$sb_pid"
wait "$sb_pid" 2>/dev/null || true
sb_pid=
exit $rc
