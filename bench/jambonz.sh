#!/usr/bin/env bash
# The jambonz leg against the Twilio leg, N concurrent calls each through the echo agent, one
# after the other in one invocation, all driven by switchboard-sim-load (C, one libuv loop):
#   1. twilio:       voice webhook, Media Stream, a 20 ms mu-law frame (JSON, base64) every 20 ms;
#   2. jambonz 8k:   POST /jambonz/call, the listen verb's WebSocket (audio.jambonz.org), a binary
#                    frame of 20 ms of L16 at 8 kHz every 20 ms; marks answered at playout;
#   3. jambonz 16k:  the same at 16 kHz (the server resamples both ways).
# Each leg gets its own server (AI_PROVIDER=echo, WORKERS default 1, MAX_CONCURRENT_CALLS=0,
# SILENCE_TIMEOUT_S=3600, log level warn, its own database), so RSS per call starts from a fresh
# process. Calls start over about 2 s; then a steady window of `seconds` measures the server's
# CPU per call-second, the added latency (the echo's 100 ms removed; jambonz frames matched by
# sequence markers that survive G.711, see tools/sim/load.h), frames lost and RSS per call.
# Prints the legs side by side with the jambonz/twilio CPU ratio, what every other process on
# the machine used meanwhile, and (when bench_pcm is an SB_BENCH target) the cost of the
# L16 <-> mu-law conversion itself as a share of jambonz's CPU per call-second.
#   bench/jambonz.sh [calls=200] [seconds=20]
# Environment: WORKERS (server threads, default 1); RAMP (calls started per second, default
# calls/2); RATES (the jambonz legs, default "8000 16000"); MARKS=now answers jambonz's marks on
# receipt instead of once their audio has played; REPEAT=n runs the legs round-robin n times and
# prints medians, with the CPU range (on a shared or virtual machine one leg's CPU per
# call-second moves by 20 % from run to run: the ratio within a round is steadier); TASKSET=1
# runs each server on CPU 0 and the load generator on CPU 1; BUILD (an existing build
# directory, default build/bench as bench/bridge.sh configures it); KEEP=1 keeps the JSON
# reports and server logs (path printed).
# Exit status: 0 when every leg set up every call and lost under 1 % of frames.
# Not a test: figures depend on the machine. Do not run two benches at once (they share
# build/bench and the machine).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
calls=${1:-200}
secs=${2:-20}
build=${BUILD:-build/bench}
rates=${RATES:-8000 16000}
ramp=${RAMP:-$((calls / 2 > 0 ? calls / 2 : 1))}
quiet() { local out; out=$("$@" 2>&1) || { echo "$out" >&2; return 1; }; } # output only on failure
if [ -z "${BUILD:-}" ] || [ ! -f "$build/CMakeCache.txt" ]; then
  quiet cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSB_TESTS=OFF -DSB_BENCH=ON
fi
quiet cmake --build "$build" -j"$(nproc)" --target switchboard switchboard-sim-load
have_pcm=0
targets=$(cmake --build "$build" --target help 2>/dev/null || true)
if grep -qw bench_pcm <<<"$targets"; then
  quiet cmake --build "$build" -j"$(nproc)" --target bench_pcm && have_pcm=1
fi

# one socket per call on each side, two while a call is being set up
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((calls * 2 + 64)) ]; then
  echo "warning: ulimit -n is $(ulimit -n); $calls calls need about $((calls * 2 + 64))" >&2
fi
srv_pin=() gen_pin=()
if [ "${TASKSET:-0}" = 1 ]; then
  srv_pin=(taskset -c 0)
  gen_pin=(taskset -c 1)
fi

work=$(mktemp -d)
sb_pid=
trap '[ -n "$sb_pid" ] && kill "$sb_pid" 2>/dev/null; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

echo "$(date -u +%FT%TZ) $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); load average" \
  "$(cut -d' ' -f1-3 /proc/loadavg); $calls calls at $ramp/s, ${secs} s window, WORKERS=${WORKERS:-1}" \
  "TASKSET=${TASKSET:-0}" >&2
echo "other processes above 5 % CPU just before:" \
  "$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 5 && $2 != "ps" { printf "%s %s%%, ", $2, $1 }' | sed 's/, $//')" >&2

rc=0
# run_leg NAME SERVER_ENV... -- LOAD_ARGS...: one server, one load run, NAME.json and NAME.others
run_leg() {
  local name=$1 senv=() largs=() o0 k0 o1 k1 w0 w1
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do senv+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  largs=("$@")
  (cd "$work" && exec env PORT=0 TLS_PORT=off WORKERS="${WORKERS:-1}" BIND_ADDRESS=127.0.0.1 LOG_LEVEL=warn \
    AI_PROVIDER=echo MAX_CONCURRENT_CALLS=0 SILENCE_TIMEOUT_S=3600 DATABASE_PATH="$work/$name.db" \
    ${senv[@]+"${senv[@]}"} ${srv_pin[@]+"${srv_pin[@]}"} "$OLDPWD/$build/switchboard" 2>"$work/$name.log") &
  sb_pid=$!
  local port
  port=$(bench_wait_port "$sb_pid" "$work/$name.log") || exit 1
  sleep 0.3
  read -r o0 k0 < <(bench_others "$sb_pid")
  w0=$(date +%s.%N)
  ${gen_pin[@]+"${gen_pin[@]}"} "$build/switchboard-sim-load" --url "http://127.0.0.1:$port" --calls "$calls" \
    --ramp "$ramp" --duration "$secs" --pid "$sb_pid" --json ${largs[@]+"${largs[@]}"} >"$work/$name.json" || rc=$?
  read -r o1 k1 < <(bench_others "$sb_pid")
  w1=$(date +%s.%N)
  awk -v o=$((o1 - o0)) -v k=$((k1 - k0)) -v w0="$w0" -v w1="$w1" -v t="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.1f %.1f\n", 100 * o / t / (w1 - w0), 100 * k / t / (w1 - w0) }' >"$work/$name.others"
  if grep -q 'level=error' "$work/$name.log"; then
    echo "$name: server errors:" >&2
    grep 'level=error' "$work/$name.log" | head -5 >&2
  fi
  kill "$sb_pid"
  wait "$sb_pid" 2>/dev/null || true
  sb_pid=
  [ -s "$work/$name.json" ] || { echo "$name: switchboard-sim-load gave no report" >&2; exit 1; }
  sleep 1 # the server's sockets and CPU out of the way
}

legs=(twilio)
for r in $rates; do
  case $r in 8000 | 16000) ;; *) echo "RATES: 8000 and/or 16000, not $r" >&2; exit 2 ;; esac
  legs+=("jambonz$r")
done
for round in $(seq "${REPEAT:-1}"); do
  for leg in "${legs[@]}"; do
    case $leg in
    twilio) run_leg "$leg.$round" -- --platform twilio ;;
    *) run_leg "$leg.$round" JAMBONZ_SAMPLE_RATE="${leg#jambonz}" -- --platform jambonz --rate "${leg#jambonz}" \
      ${MARKS:+--marks "$MARKS"} ;;
    esac
  done
done

pcm_out=
if [ "$have_pcm" = 1 ]; then
  pcm_out=$(${gen_pin[@]+"${gen_pin[@]}"} "$build/bench_pcm" 200000 2>&1) || pcm_out=
fi

node - "$work" "$calls" "$secs" "${REPEAT:-1}" "$pcm_out" "${legs[@]}" <<'EOF'
const fs = require('node:fs');
const [dir, calls, secs, repeat, pcmOut, ...legs] = process.argv.slice(2);
const n = Number(repeat);
// every round of every leg: its report and what the other processes used meanwhile
const runs = {};
for (const l of legs) {
  runs[l] = [];
  for (let i = 1; i <= n; i++) {
    const r = JSON.parse(fs.readFileSync(`${dir}/${l}.${i}.json`, 'utf8'));
    r.others = fs.readFileSync(`${dir}/${l}.${i}.others`, 'utf8').trim().split(' ').map(Number);
    runs[l].push(r);
  }
}
const f = (v, d = 2) => (v == null || Number.isNaN(v) ? '-' : v.toFixed(d));
const median = (xs) => { const s = xs.filter((x) => x != null && !Number.isNaN(x)).sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null; };
const sum = (xs) => xs.reduce((a, b) => a + b, 0);
const title = { twilio: 'twilio', jambonz8000: 'jambonz 8 kHz', jambonz16000: 'jambonz 16 kHz' };
const cpu = (r) => (r.server ? r.server.cpu_ms_per_call_s : null);
const med = (fn) => (l) => median(runs[l].map(fn));
const ratio = (l) => median(runs[l].map((r, i) => cpu(r) / cpu(runs.twilio[i]))); // within each round
const rows = [
  [n > 1 ? 'calls up (the fewest)' : 'calls up', (l) => `${Math.min(...runs[l].map((r) => r.calls.set_up))}/${calls}`],
  ['server CPU, % of a core', (l) => f(med((r) => r.server && r.server.cpu_pct)(l), 1)],
  ['CPU per call-second, ms', (l) => f(med(cpu)(l), 4)],
  ...(n > 1 ? [['  range over the rounds', (l) => `${f(Math.min(...runs[l].map(cpu)), 3)}-${f(Math.max(...runs[l].map(cpu)), 3)}`]] : []),
  ['  ratio to twilio', (l) => (l === 'twilio' ? '1' : f(ratio(l), 2))],
  ['added latency p50, ms', (l) => f(med((r) => r.added_latency_ms.p50)(l))],
  ['added latency p99, ms', (l) => f(med((r) => r.added_latency_ms.p99)(l))],
  ['added latency max, ms', (l) => f(Math.max(...runs[l].map((r) => r.added_latency_ms.max)))],
  ['frames lost (of sent)', (l) => { const u = sum(runs[l].map((r) => r.frames.unmatched));
    return `${sum(runs[l].map((r) => r.frames.lost))} of ${sum(runs[l].map((r) => r.frames.sent))}${u ? `, ${u} unmatched` : ''}`; }],
  ['server RSS per call, KiB', (l) => f(med((r) => r.server && r.server.rss_per_call_kib)(l), 1)],
  ['server RSS peak, MiB', (l) => f(med((r) => r.server && r.server.rss_peak_kib / 1024)(l), 1)],
  ['marks answered', (l) => { const e = sum(runs[l].map((r) => (r.jambonz ? r.jambonz.marks_early : 0)));
    return `${sum(runs[l].map((r) => r.marks_acked))}${e ? ` (${e} early)` : ''}`; }],
  ['generator CPU, % of a core', (l) => f(med((r) => r.client.cpu_pct)(l), 1)],
  ['generator send lag p99, ms', (l) => f(med((r) => r.client_send_lag_ms.p99)(l))],
  ['other processes, % of a core', (l) => f(med((r) => r.others[0])(l), 1)],
  ['kernel threads, % of a core', (l) => f(med((r) => r.others[1])(l), 1)],
];
const w0 = 30, w = 16;
console.log(`\n${calls} calls, ${secs} s window, echo agent; each leg its own server` +
  (n > 1 ? `; ${n} rounds, medians (sums for frames and marks)` : ''));
console.log(''.padEnd(w0) + legs.map((l) => (title[l] || l).padStart(w)).join(''));
for (const [name, fn] of rows) console.log(name.padEnd(w0) + legs.map((l) => String(fn(l)).padStart(w)).join(''));
const R = Object.fromEntries(legs.map((l) => [l, { server: { cpu_ms_per_call_s: med(cpu)(l) } }]));

// the conversion itself: bench_pcm's ns per 20 ms frame, 50 frames each way per call-second
if (pcmOut) {
  const ns = (re) => { const m = pcmOut.split('\n').find((x) => re.test(x)); return m ? Number(m.trim().split(/\s+/).slice(-2)[0]) : NaN; };
  console.log('\nL16 <-> mu-law conversion (bench_pcm, CPU per frame):');
  for (const l of legs.filter((x) => x.startsWith('jambonz'))) {
    const k = l === 'jambonz16000' ? '16' : ' 8';
    const inNs = ns(new RegExp(`in .*L16 +${k.trim()} kHz`)), outNs = ns(new RegExp(`out .*L16 +${k.trim()} kHz`));
    const perCallS = ((inNs + outNs) * 50) / 1e6; // ms of CPU per call-second
    console.log(`  ${title[l].padEnd(16)} in ${f(inNs, 0)} ns + out ${f(outNs, 0)} ns per frame x 50 frames each way` +
      ` = ${f(perCallS * 1000, 1)} us per call-second = ${f((100 * perCallS) / cpu(R[l]), 2)} % of jambonz's` +
      ` ${f(cpu(R[l]), 4)} ms per call-second`);
  }
} else {
  console.log('\n(bench_pcm is not an SB_BENCH target: conversion cost not measured)');
}
EOF
[ -n "${KEEP:-}" ] && echo "reports kept in $work" >&2
exit $rc
