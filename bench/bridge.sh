#!/usr/bin/env bash
# N concurrent calls at real-time pace through three servers in turn, under the same load (same
# calls, ramp and window, one after the other in one invocation), driven by switchboard-sim-load
# (C, one libuv loop: cheap enough not to be the bottleneck):
#   echo    switchboard, AI_PROVIDER=echo: no AI leg, the reference;
#   openai  switchboard, AI_PROVIDER=openai, its Realtime socket to a fake OpenAI server;
#   node    bench/node_peer/server.mjs: the same bridge written as Twilio's official Node sample
#           (speech-assistant-openai-realtime-api-node: fastify, @fastify/websocket, ws), to the
#           same fake.
# The fake OpenAI server is the load generator itself (--openai-port, on a thread of its own):
# it answers session.update and echoes each input_audio_buffer.append as a
# response.output_audio.delta 100 ms later, as the echo agent echoes a frame 100 ms later.
# Each call posts the voice webhook, opens its Media Stream and sends a 20 ms frame every 20 ms.
# Each run reports calls set up, webhook latency, per-frame added latency (Twilio-in to
# Twilio-out, the 100 ms removed), frames lost, the CPU and RSS of the server and of the load
# generator over the window when every call is up, and what every other process on the machine
# used meanwhile; then a summary of the three with the ratios (openai/echo CPU,
# switchboard-openai/node CPU and RSS, latency differences).
#   bench/bridge.sh [calls=1000] [seconds=20]
# Environment:
#   ONLY=echo,openai,node  the runs to make (default all three; always in that order)
#   WORKERS=n              switchboard's threads (default 1; the Node peer has one JS thread)
#   RAMP=n                 calls started per second (default 200)
#   PIN=1                  the server under test alone on CPU 0 (taskset -c 0: all its threads,
#                          Node's GC and libuv pool too), the load generator, and with it the fake
#                          OpenAI server, on CPU 1. Needs 2 CPUs; use it when the machine is
#                          otherwise idle, else a neighbour on CPU 0 lands in the server's figures.
#   ROUNDS=n               the runs n times over, interleaved (echo, openai, node, echo, ...): the
#                          summary gives each figure's median and each ratio's median over the
#                          rounds (this VM's speed drifts by tens of percent from minute to
#                          minute; runs next to each other in time compare fairly)
#   JSON=1                 the summary as JSON on stdout (each run's load report inside it)
#   KEEP=1                 keep the work directory (reports, server logs; path printed)
# Tables go to stderr, the summary to stdout. The Node peer's packages are installed on first
# use (npm ci in bench/node_peer). Exit status: 0 when every run set up all its calls and lost
# under 1 % of frames, 1 otherwise (after printing everything), 2 on bad arguments.
# Not a test: figures depend on the machine; the README records a run.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
calls=${1:-1000}
secs=${2:-20}
build=build/bench
all=(echo openai node)
only=${ONLY:-echo,openai,node}
runs=()
for r in "${all[@]}"; do
  if [[ ",$only," == *",$r,"* ]]; then runs+=("$r"); fi
done
for r in ${only//,/ }; do
  [[ " ${all[*]} " == *" $r "* ]] || { echo "ONLY: echo, openai or node, not $r" >&2; exit 2; }
done
[ ${#runs[@]} -gt 0 ] || { echo "ONLY names no run" >&2; exit 2; }
wants() { [[ " ${runs[*]} " == *" $1 "* ]]; }

quiet() { local out; out=$("$@" 2>&1) || { echo "$out" >&2; return 1; }; } # output only on failure
quiet cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSB_TESTS=OFF -DSB_BENCH=ON
quiet cmake --build "$build" -j"$(nproc)" --target switchboard switchboard-sim-load
if { wants openai || wants node; } && ! "$build/switchboard-sim-load" --help | grep -q -- '--openai-port'; then
  echo "$build/switchboard-sim-load has no --openai-port: the openai and node runs need it (ONLY=echo runs without)" >&2
  exit 2
fi
peer=bench/node_peer
if wants node && { [ ! -f "$peer/node_modules/.package-lock.json" ] ||
  [ "$peer/package-lock.json" -nt "$peer/node_modules/.package-lock.json" ]; }; then
  echo "installing $peer's packages (npm ci)" >&2
  (cd "$peer" && quiet npm ci --no-audit --no-fund)
fi

# one socket per call on each side, two while a call is being set up; the AI leg adds one per
# call to the server and one to the fake
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((calls * 4 + 64)) ]; then
  echo "warning: ulimit -n is $(ulimit -n); $calls calls need about $((calls * 4 + 64))" >&2
fi
srv_pin=() gen_pin=()
if [ "${PIN:-0}" = 1 ]; then
  [ "$(nproc)" -ge 2 ] || { echo "PIN=1 needs 2 CPUs" >&2; exit 2; }
  srv_pin=(taskset -c 0)
  gen_pin=(taskset -c 1)
fi

work=$(mktemp -d)
srv_pid=
trap '[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

# A free loopback port for the fake OpenAI server (the kernel's pick, released at once)
free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

# The port the Node peer prints (`listening <port>`), waited for up to 10 s
node_wait_port() {
  local pid=$1 out=$2 err=$3 p
  for _ in $(seq 200); do
    p=$(sed -n 's/^listening \([0-9][0-9]*\)$/\1/p' "$out" 2>/dev/null | head -1)
    [ -n "$p" ] && { echo "$p"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "the Node peer did not start" >&2
  cat "$err" >&2
  return 1
}

# Reads the load reports ($work/<run>.json, with <run>.meta beside: others_pct, kthreads_pct,
# error) and prints, by its first argument:
#   table RUN      one run's figures, as switchboard-sim-load's own table lays them out
#   summary RUNS   the runs side by side and their ratios (a table), or with JSON=1 all as JSON
# shellcheck disable=SC2016 # JavaScript, not shell
report_js='
const fs = require("fs");
const [mode, dir, ...names] = process.argv.slice(1);
const LABEL = { echo: "switchboard echo", openai: "switchboard openai", node: "node peer (sample)" };
const read = (f) => { try { return JSON.parse(fs.readFileSync(f, "utf8")); } catch { return null; } };
const load = (n) => ({ name: n, label: LABEL[n], r: read(`${dir}/${n}.json`), meta: read(`${dir}/${n}.meta`) ?? {} });
const f = (v, d = 2) => (v == null || !Number.isFinite(v) ? "-" : v.toFixed(d));
const hist = (h, what = "") => (h && h.n ? `p50 ${f(h.p50).padStart(7)} ms   p99 ${f(h.p99).padStart(7)} ms   max ${f(h.max).padStart(7)} ms   (${h.n}${what})` : "-");
const row = (k, v) => `${k.padEnd(16)} ${v}`;
const ok = (x) => !!(x.r && x.r.ok && !x.meta.error);

if (mode === "table") {
  const x = load(names[0]), r = x.r, out = [];
  out.push(`---- ${x.label} ----`);
  if (!r) {
    out.push(x.meta.error ?? "no report from switchboard-sim-load");
  } else {
    const c = r.calls, fr = r.frames;
    out.push(`switchboard-sim load: ${c.requested} calls at ${f(r.ramp_per_s, 0)}/s; window ${f(r.window_s, 1)} s with ${c.in_window} calls; `
      + (r.openai ? `fake OpenAI delay ${r.openai.delay_ms} ms` : `echo delay ${r.echo_delay_ms} ms`));
    out.push(row("calls", `set up ${c.set_up} of ${c.requested}, failed ${c.failed}, dropped mid-call ${c.dropped}`));
    for (const [why, n] of Object.entries(c.reasons ?? {})) out.push(row("", `${String(n).padStart(6)} x ${why}`));
    out.push(row("webhook", hist(r.webhook_ms, " webhooks")));
    out.push(row("added latency", hist(r.added_latency_ms, " frames in the window")));
    out.push(row("  during ramp", hist(r.ramp_added_latency_ms, " frames")));
    out.push(row("frames", `sent ${fr.sent}, echoed ${fr.echoed}, lost ${fr.lost} (${f(fr.loss_pct, 3)} %); ${r.marks_acked} marks acked`
      + (fr.send_overflow || fr.unmatched ? `; ${fr.send_overflow} not sent (buffer full), ${fr.unmatched} echoes unmatched` : "")));
    if (r.openai) {
      const o = r.openai, extra = Object.entries(o).filter(([k]) => !["port", "delay_ms", "cpu_pct"].includes(k) && o[k]).map(([k, v]) => `${k} ${v}`);
      out.push(row("fake OpenAI", `port ${o.port}, ${f(o.cpu_pct, 1)} % of a core; ${extra.join(", ") || "nothing counted"}`));
    }
    if (r.server) {
      out.push(row("server CPU", `${f(r.server.cpu_pct, 1)} % of a core, ${f(r.server.cpu_ms_per_call_s, 4)} ms per call-second (pid ${r.server.pid})`));
      out.push(row("server RSS", `${f(r.server.rss_before_kib / 1024, 1)} MiB before, ${f(r.server.rss_peak_kib / 1024, 1)} MiB peak, ${f(r.server.rss_per_call_kib, 1)} KiB per call`));
    }
    out.push(row("client CPU", `${f(r.client.cpu_pct, 1)} % of a core, ${f(r.client.cpu_ms_per_call_s, 4)} ms per call-second; RSS ${f(r.client.rss_peak_kib / 1024, 1)} MiB`));
    out.push(row("client lag", hist(r.client_send_lag_ms, " frames, sent behind their due time")));
    out.push(row("others", `${x.meta.others_pct ?? "-"} % of a core (kernel threads ${x.meta.kthreads_pct ?? "-"} %) over the load generator run`));
    if (x.meta.error) out.push(row("error", x.meta.error));
    out.push(row("result", ok(x) ? "ok" : "FAILED (calls not set up, or 1 % of frames or more lost)"));
  }
  console.log(out.join("\n"));
  process.exit(0);
}

// summary: over ROUNDS rounds (the round folders r1, r2, ...), each figure is the median over
// the rounds, and each ratio the median of the ratios within each round (the runs of a round
// are next to each other in time, so their ratio is the fairest figure on a machine whose
// speed drifts)
const rounds = fs.readdirSync(dir).filter((d) => /^r[0-9]+$/.test(d)).sort((a, b) => a.slice(1) - b.slice(1));
const dirs = rounds.length ? rounds.map((d) => `${dir}/${d}`) : [dir];
const loadIn = (d, n) => ({ name: n, label: LABEL[n], r: read(`${d}/${n}.json`), meta: read(`${d}/${n}.meta`) ?? {} });
const fig = (x) => {
  const r = x.r;
  return {
    ok: ok(x), error: x.meta.error ?? (r ? undefined : "no report"),
    requested: r?.calls.requested ?? null, set_up: r?.calls.set_up ?? null,
    cpu_ms_per_call_s: r?.server?.cpu_ms_per_call_s ?? null, cpu_pct: r?.server?.cpu_pct ?? null,
    latency_p50_ms: r?.added_latency_ms?.n ? r.added_latency_ms.p50 : null,
    latency_p99_ms: r?.added_latency_ms?.n ? r.added_latency_ms.p99 : null,
    rss_per_call_kib: r?.server?.rss_per_call_kib ?? null,
    frames_lost: r?.frames.lost ?? null, loss_pct: r?.frames.loss_pct ?? null,
    client_cpu_pct: r?.client.cpu_pct ?? null,
    others_pct: x.meta.others_pct != null ? Number(x.meta.others_pct) : null,
  };
};
const median = (vs) => {
  const v = vs.filter((x) => x != null && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const perRound = dirs.map((d) => Object.fromEntries(names.map((n) => [n, fig(loadIn(d, n))])));
const xs = names.map((n) => ({ name: n, label: LABEL[n], rounds: perRound.map((p) => p[n]) }));
const F = {};
for (const x of xs) {
  const rs = x.rounds, m = (k) => median(rs.map((v) => v[k]));
  F[x.name] = {
    ok: rs.every((v) => v.ok), error: rs.map((v) => v.error).find((e) => e),
    requested: rs[0].requested, set_up: Math.min(...rs.map((v) => v.set_up ?? 0)),
    cpu_ms_per_call_s: m("cpu_ms_per_call_s"), cpu_pct: m("cpu_pct"), latency_p50_ms: m("latency_p50_ms"),
    latency_p99_ms: m("latency_p99_ms"), rss_per_call_kib: m("rss_per_call_kib"),
    frames_lost: rs.reduce((a, v) => a + (v.frames_lost ?? 0), 0), loss_pct: Math.max(...rs.map((v) => v.loss_pct ?? 0)),
    client_cpu_pct: m("client_cpu_pct"), others_pct: m("others_pct"),
    rounds: rs.map((v) => v.cpu_ms_per_call_s),
  };
}
const div = (a, b) => (a != null && b != null && b > 0 ? a / b : null);
const sub = (a, b) => (a != null && b != null ? a - b : null);
const pair = (a, b) => {
  if (!F[a] || !F[b]) return null;
  const per = perRound.map((p) => div(p[a].cpu_ms_per_call_s, p[b].cpu_ms_per_call_s));
  return {
    cpu: median(per), cpu_rounds: per,
    rss_per_call: div(F[a].rss_per_call_kib, F[b].rss_per_call_kib),
    latency_p50_diff_ms: sub(F[a].latency_p50_ms, F[b].latency_p50_ms),
    latency_p99_diff_ms: sub(F[a].latency_p99_ms, F[b].latency_p99_ms),
    latency_p50: div(F[a].latency_p50_ms, F[b].latency_p50_ms),
    latency_p99: div(F[a].latency_p99_ms, F[b].latency_p99_ms),
  };
};
const ratios = {};
if (F.openai && F.echo) ratios.openai_over_echo = pair("openai", "echo");
if (F.openai && F.node) ratios.openai_over_node = pair("openai", "node");
if (F.node && F.echo) ratios.node_over_echo = pair("node", "echo");
const allOk = xs.every((x) => F[x.name].ok);
const env = process.env;

if (env.JSON === "1") {
  console.log(JSON.stringify({
    date: env.BENCH_DATE, machine: env.BENCH_MACHINE, calls: Number(env.BENCH_CALLS), seconds: Number(env.BENCH_SECS),
    ramp_per_s: Number(env.BENCH_RAMP), workers: Number(env.BENCH_WORKERS), pin: env.PIN === "1",
    rounds: dirs.length,
    runs: Object.fromEntries(xs.map((x) => [x.name, { ...F[x.name], reports: dirs.map((d) => read(`${d}/${x.name}.json`)) }])),
    ratios, ok: allOk,
  }));
  process.exit(0);
}
const cols = [["server", 20], ["set up", 11], ["CPU ms/call-s", 14], ["CPU %", 7], ["latency p50/p99 ms", 20],
  ["RSS KiB/call", 13], ["frames lost", 18], ["others %", 9], ["", 6]];
const line = (vals) => vals.map((v, i) => String(v).padEnd(cols[i][1])).join(" ").trimEnd();
const out = ["", (dirs.length > 1 ? `medians of ${dirs.length} rounds\n` : "") + line(cols.map((c) => c[0]))];
for (const x of xs) {
  const v = F[x.name];
  out.push(line([x.label, v.set_up == null ? "-" : `${v.set_up} of ${v.requested}`, f(v.cpu_ms_per_call_s, 3), f(v.cpu_pct, 1),
    `${f(v.latency_p50_ms)} / ${f(v.latency_p99_ms)}`, f(v.rss_per_call_kib, 1),
    v.frames_lost == null ? "-" : `${v.frames_lost} (${f(v.loss_pct, 3)} %)`, f(v.others_pct, 1), v.ok ? "ok" : "FAILED"]));
}
const sign = (v) => (v == null ? "-" : `${v >= 0 ? "+" : ""}${f(v)}`);
const say = (title, p, a, b) => {
  if (!p) return;
  out.push(`${title}:`);
  out.push(`  CPU per call-second  ${a} / ${b} = ${f(p.cpu)}` + (p.cpu ? `  (${b} / ${a} = ${f(1 / p.cpu)})` : "")
    + (p.cpu_rounds.length > 1 ? `; by round: ${p.cpu_rounds.map((v) => f(v)).join(", ")}` : ""));
  out.push(`  added latency        ${a} - ${b}: p50 ${sign(p.latency_p50_diff_ms)} ms, p99 ${sign(p.latency_p99_diff_ms)} ms; ${a} / ${b}: p50 ${f(p.latency_p50)}, p99 ${f(p.latency_p99)}`);
  out.push(`  RSS per call         ${a} / ${b} = ${f(p.rss_per_call)}`);
};
if (Object.keys(ratios).length) out.push("");
say("switchboard openai vs switchboard echo (the AI leg)", ratios.openai_over_echo, "openai", "echo");
say("switchboard openai vs the Node peer (the same bridge)", ratios.openai_over_node, "openai", "node");
if (!ratios.openai_over_node) say("Node peer vs switchboard echo", ratios.node_over_echo, "node", "echo");
out.push("", allOk ? "result: ok" : `result: FAILED (${xs.filter((x) => !ok(x)).map((x) => x.name).join(", ")})`);
console.log(out.join("\n"));
'

export BENCH_DATE BENCH_MACHINE BENCH_CALLS=$calls BENCH_SECS=$secs BENCH_RAMP=${RAMP:-200} BENCH_WORKERS=${WORKERS:-1}
BENCH_DATE=$(date -u +%FT%TZ)
BENCH_MACHINE="$(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "$BENCH_DATE $BENCH_MACHINE; load average $(cut -d' ' -f1-3 /proc/loadavg); runs ${runs[*]};" \
  "$calls calls at ${RAMP:-200}/s, ${secs} s window; WORKERS=${WORKERS:-1} PIN=${PIN:-0}" >&2
echo "other processes above 5 % CPU just before:" \
  "$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 5 && $2 != "ps" { printf "%s %s%%, ", $2, $1 }' | sed 's/, $//')" >&2

# One run: start its server, drive it, stop it; the report in $work/$1.json, the rest in $1.meta
run() {
  local name=$1 fake_port='' port='' err='' out="$work/$1.json" srvlog="$work/$1.log" srvout="$work/$1.out"
  local ai=() gen=()
  if [ "$name" != echo ]; then
    fake_port=$(free_port)
    ai=(OPENAI_API_KEY=sk-bench "OPENAI_REALTIME_URL=ws://127.0.0.1:$fake_port/v1/realtime")
    gen=(--openai-port "$fake_port")
  fi
  if [ "$name" = node ]; then
    (cd "$work" && exec env PORT=0 ${ai[@]+"${ai[@]}"} ${srv_pin[@]+"${srv_pin[@]}"} \
      node "$OLDPWD/$peer/server.mjs" >"$srvout" 2>"$srvlog") &
    srv_pid=$!
    port=$(node_wait_port "$srv_pid" "$srvout" "$srvlog") || err="the Node peer did not start"
  else
    (cd "$work" && exec env PORT=0 TLS_PORT=off WORKERS="${WORKERS:-1}" BIND_ADDRESS=127.0.0.1 LOG_LEVEL=warn \
      AI_PROVIDER="$name" ${ai[@]+"${ai[@]}"} MAX_CONCURRENT_CALLS=0 SILENCE_TIMEOUT_S=3600 \
      DATABASE_PATH="$work/$name.db" ${srv_pin[@]+"${srv_pin[@]}"} "$OLDPWD/$build/switchboard" 2>"$srvlog") &
    srv_pid=$!
    port=$(bench_wait_port "$srv_pid" "$srvlog") || err="switchboard did not start"
  fi
  local o0 k0 o1 k1 w0 w1 pct_o=- pct_k=-
  if [ -z "$err" ]; then
    sleep 0.3
    read -r o0 k0 < <(bench_others "$srv_pid")
    w0=$(date +%s.%N)
    ${gen_pin[@]+"${gen_pin[@]}"} "$build/switchboard-sim-load" --url "http://127.0.0.1:$port" --calls "$calls" \
      --ramp "${RAMP:-200}" --duration "$secs" --pid "$srv_pid" ${gen[@]+"${gen[@]}"} --json >"$out" || true
    read -r o1 k1 < <(bench_others "$srv_pid")
    w1=$(date +%s.%N)
    pct() { awk -v o="$1" -v w0="$w0" -v w1="$w1" -v t="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", 100 * o / t / (w1 - w0) }'; }
    pct_o=$(pct $((o1 - o0)))
    pct_k=$(pct $((k1 - k0)))
    [ -s "$out" ] || err="switchboard-sim-load gave no report"
    kill -0 "$srv_pid" 2>/dev/null || err="${err:+$err; }the server died during the run"
  fi
  kill "$srv_pid" 2>/dev/null || true
  wait "$srv_pid" 2>/dev/null || true
  srv_pid=
  if [ "$name" = node ]; then
    [ -s "$srvlog" ] && { echo "$name run: the Node peer's stderr:" >&2; head -5 "$srvlog" >&2; }
  elif grep -q 'level=error' "$srvlog"; then
    echo "$name run: server errors:" >&2
    grep 'level=error' "$srvlog" | head -5 >&2
  fi
  ERR="$err" O="$pct_o" K="$pct_k" node -e 'const e = process.env; console.log(JSON.stringify({
    others_pct: e.O === "-" ? null : e.O, kthreads_pct: e.K === "-" ? null : e.K, error: e.ERR || undefined }))' \
    >"$work/$name.meta"
  node -e "$report_js" table "$work" "$name" >&2
}

first=1
nrounds=${ROUNDS:-1}
for ((round = 1; round <= nrounds; round++)); do
  [ "$nrounds" -gt 1 ] && echo "== round $round of $nrounds" >&2
  for r in "${runs[@]}"; do
    [ -n "$first" ] || sleep 1 # the previous server's sockets and CPU out of the way
    first=
    run "$r"
    if [ "$nrounds" -gt 1 ]; then
      mkdir -p "$work/r$round"
      mv "$work/$r.json" "$work/$r.meta" "$work/r$round/" 2>/dev/null || true
    fi
  done
done

rc=0
node -e "$report_js" summary "$work" "${runs[@]}" || rc=1
if [ "${JSON:-0}" = 1 ]; then
  JSON=0 node -e "$report_js" summary "$work" "${runs[@]}" >&2 || true
fi
for r in "${runs[@]}"; do
  for d in "$work" "$work"/r[0-9]*; do
    [ -f "$d/$r.json" ] || [ -f "$d/$r.meta" ] || continue
    node -e 'const [f, m] = process.argv.slice(1).map((p) => { try { return JSON.parse(require("fs").readFileSync(p, "utf8")); } catch { return null; } });
      process.exit(f && f.ok && !(m && m.error) ? 0 : 1)' "$d/$r.json" "$d/$r.meta" || rc=1
  done
done
[ -n "${KEEP:-}" ] && echo "reports and server logs kept in $work" >&2
exit $rc
