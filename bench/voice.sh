#!/usr/bin/env bash
# A signed POST /twilio/voice (signature check, tenant lookup, call row and event insert,
# TwiML render) on one worker, against a bare h2o handler with a fixed body, in the same run.
#   bench/voice.sh [duration_s=10] [connections=32]
# Each request carries its own CallSid (pre-signed bodies), so every one inserts a row until
# the list wraps around; then requests are retries of known calls (a lookup, no insert).
# Environment:
#   DB=pg          PostgreSQL instead of SQLite: a durable throwaway server (tests/pg/pg.sh,
#                  PG_FSYNC=on: fsync and synchronous_commit on) in the work folder, a database
#                  of its own, stopped at exit; DATABASE_POOL is passed on as it is.
#                  (PG_FSYNC=off, for a diagnosis only: what the WAL fsync at every commit costs.)
#   INSTANCES=n    (DB=pg) n switchboard processes on that database, WORKERS each; wrk runs one
#                  thread per instance (conns/n connections each, bench/voice.lua) and reports
#                  the sum and the merged latencies.
#   WORKERS=n      workers per switchboard process (default 1).
#   RATE=r         instead of wrk's closed loop, bench/voice_rate.mjs: open loop, r requests/s
#                  for duration s after a warm-up (WARMUP s, default 2, same rate, not counted),
#                  spread over the instances, latency from each request's scheduled send time;
#                  the reference is the same client at the same rate against bare h2o (the
#                  floor: the client, node's timers, loopback).
#   PG_SQL='...'  (DB=pg) SQL run on the database once the servers are up, for a diagnosis (e.g.
#                  ALTER SYSTEM and pg_reload_conf(), or a trigger dropped to see what it costs).
#   DUMP=FILE      (RATE) every request's scheduled time, latency, send lag and instance, to FILE;
#                  FILE.meta: its time 0 on the wall clock, and (DB=pg) the WAL segments' births.
#   PG_STATEMENTS=1 (DB=pg) loads pg_stat_statements and prints the statements that took the
#                  most time during the switchboard run (a diagnosis; it costs a little).
# Also printed: what every other process on the machine used during each run (bench_others),
# the CPU of the servers, of the load generator and of PostgreSQL over a steady window, and
# with PostgreSQL its commits, WAL written and WAL fsyncs (count and time) over the run.
# The last line ("summary: ...") carries the figures as key=value for scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
root=$PWD
dur=${1:-10}
conns=${2:-32}
db=${DB:-sqlite}
instances=${INSTANCES:-1}
workers=${WORKERS:-1}
rate=${RATE:-}
pg_fsync=${PG_FSYNC:-on}
warmup=${WARMUP:-2}
case $db in sqlite | pg) ;; *) echo "DB must be sqlite or pg, not '$db'" >&2; exit 2 ;; esac
[[ $instances =~ ^[1-9][0-9]*$ ]] || { echo "INSTANCES must be a positive number" >&2; exit 2; }
if [ "$db" = sqlite ] && [ "$instances" -gt 1 ]; then
  echo "INSTANCES=$instances needs DB=pg (a SQLite file belongs to one process)" >&2
  exit 2
fi
[ -z "$rate" ] || [[ $rate =~ ^[1-9][0-9]*$ ]] || { echo "RATE must be a positive number" >&2; exit 2; }
[ -n "$rate" ] || command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
[ "$db" = sqlite ] || command -v psql >/dev/null || { echo "psql is missing (tools/deps.sh test)" >&2; exit 1; }
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DSB_TESTS=OFF -DSB_BENCH=ON >/dev/null
cmake --build build/bench -j"$(nproc)" >/dev/null

work=$(mktemp -d)
sb_pids=() bare_pid= pg_dir= pg_pid=
cleanup() {
  kill ${sb_pids[@]+"${sb_pids[@]}"} $bare_pid 2>/dev/null || true
  wait 2>/dev/null || true
  [ -z "$pg_dir" ] || tests/pg/pg.sh stop "$pg_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
token=bench-token-0123456789
base=https://voice.example.com
nbodies=400000
[ -z "$rate" ] || nbodies=$((rate * (dur + warmup) + 1000))
node bench/sign_bodies.mjs "$work/bodies.tsv" "$nbodies" "$token" "$base/twilio/voice"

echo "$(date -u +%FT%TZ) $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); load average" \
  "$(cut -d' ' -f1-3 /proc/loadavg); DB=$db INSTANCES=$instances WORKERS=$workers" \
  "${rate:+RATE=$rate }${DATABASE_POOL:+DATABASE_POOL=$DATABASE_POOL }${dur} s, $conns connections" >&2
echo "other processes above 5 % CPU just before:" \
  "$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 5 && $2 != "ps" { printf "%s %s%%, ", $2, $1 }' | sed 's/, $//')" >&2

dbenv=()
if [ "$db" = pg ]; then
  pg_dir=$work/pg
  admin=$(PG_FSYNC=$pg_fsync tests/pg/pg.sh start "$pg_dir" 2>"$work/pg_start.log" | tail -n 1) ||
    { cat "$work/pg_start.log" >&2; exit 1; }
  pg_data=$(cat "$pg_dir/rundir" 2>/dev/null || echo "$pg_dir")/data
  pg_pid=$(head -n 1 "$pg_data/postmaster.pid")
  db_url=${admin%/*}/switchboard
  # WAL fsync time for the report (pg_stat_wal.wal_sync_time needs it)
  psql -X -q -v ON_ERROR_STOP=1 "$admin" -c 'CREATE DATABASE switchboard' \
    -c 'ALTER SYSTEM SET track_wal_io_timing = on' -c 'SELECT pg_reload_conf()' >/dev/null
  if [ "${PG_STATEMENTS:-0}" = 1 ]; then # per-statement times (pg_stat_statements: a restart)
    psql -X -q -v ON_ERROR_STOP=1 "$admin" -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'" >/dev/null
    PG_FSYNC=$pg_fsync tests/pg/pg.sh restart "$pg_dir" >/dev/null 2>>"$work/pg_start.log"
    pg_pid=$(head -n 1 "$pg_data/postmaster.pid")
    psql -X -q -v ON_ERROR_STOP=1 "$db_url" -c 'CREATE EXTENSION pg_stat_statements' >/dev/null
  fi
  echo "PostgreSQL $(psql -X -qAt "$admin" -c 'SHOW server_version'): fsync $(psql -X -qAt "$admin" -c 'SHOW fsync')," \
    "synchronous_commit $(psql -X -qAt "$admin" -c 'SHOW synchronous_commit'), wal_sync_method" \
    "$(psql -X -qAt "$admin" -c 'SHOW wal_sync_method'), data in $pg_data" >&2
  dbenv=(DATABASE_URL="$db_url")
fi

for k in $(seq "$instances"); do
  mkdir -p "$work/i$k"
  (cd "$work/i$k" && exec env PORT=0 TLS_PORT=off WORKERS="$workers" BIND_ADDRESS=127.0.0.1 LOG_LEVEL=info \
    TWILIO_AUTH_TOKEN=$token PUBLIC_BASE_URL=$base AI_PROVIDER=echo MAX_CONCURRENT_CALLS=0 \
    ${dbenv[@]+"${dbenv[@]}"} "$root/build/bench/switchboard" 2>"$work/sb$k.log") &
  sb_pids+=($!)
done
bare_port=$((20000 + RANDOM % 20000))
build/bench/bench_bare_h2o "$bare_port" 2>"$work/bare.log" &
bare_pid=$!
sb_ports=()
for k in $(seq "$instances"); do
  for _ in $(seq 200); do grep -q server.listening "$work/sb$k.log" 2>/dev/null && break; sleep 0.05; done
  p=$(grep -o 'server.listening port=[0-9]*' "$work/sb$k.log" | grep -o '[0-9]*$') ||
    { echo "switchboard $k did not start:" >&2; cat "$work/sb$k.log" >&2; exit 1; }
  # up once its database is (PostgreSQL: connected and migrated; /health says so)
  for _ in $(seq 300); do curl -s "http://127.0.0.1:$p/health" | grep -q '"db":"ok"' && break; sleep 0.1; done
  curl -s "http://127.0.0.1:$p/health" | grep -q '"db":"ok"' ||
    { echo "switchboard $k: no database:" >&2; tail -n 20 "$work/sb$k.log" >&2; exit 1; }
  sb_ports+=("$p")
done
if [ -n "${PG_SQL:-}" ] && [ -n "$pg_pid" ]; then # a diagnosis: the database changed after migration
  echo "PG_SQL: $PG_SQL" >&2
  printf '%s\n' "$PG_SQL" | psql -X -q -v ON_ERROR_STOP=1 "$db_url" -f - >/dev/null
fi
for _ in $(seq 100); do grep -q listening "$work/bare.log" && break; sleep 0.05; done
sb_addrs=$(printf '127.0.0.1:%s,' "${sb_ports[@]}"); sb_addrs=${sb_addrs%,}
sb_urls=$(printf 'http://127.0.0.1:%s,' "${sb_ports[@]}"); sb_urls=${sb_urls%,}

# CPU ticks (user + system, all threads) of processes; of the PostgreSQL server (the postmaster,
# with the children it reaped, and every child: backends, WAL writer, checkpointer...)
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done; echo $t; }
pg_ticks() {
  [ -n "$pg_pid" ] || { echo 0; return; }
  awk -v pm="$pg_pid" 'BEGIN { for (i = 1; i < ARGC; i++) { f = ARGV[i]; split(f, p, "/")
      if ((getline l < f) > 0) { sub(/.*\) /, "", l); split(l, x, " ")
        if (p[3] == pm) t += x[12] + x[13] + x[14] + x[15]; else if (x[2] == pm) t += x[12] + x[13] }
      close(f) }
    print t + 0; exit }' /proc/[0-9]*/stat
}
# Time spent runnable but waiting for a CPU (schedstat's run delay, ns), of the servers' threads
# and of PostgreSQL's processes: how much the two cores' contention adds to each request.
rq_wait() {
  local pm=${pg_pid:-0}
  { cat $(printf '/proc/%s/task/*/schedstat ' "${sb_pids[@]}") 2>/dev/null | awk '{ s += $2 } END { printf "%.0f ", s }'
    awk -v pm="$pm" 'BEGIN { for (i = 1; i < ARGC; i++) { f = ARGV[i]; split(f, p, "/")
        if ((getline l < f) > 0) { sub(/.*\) /, "", l); split(l, x, " ")
          if (p[3] == pm || x[2] == pm) { g = "/proc/" p[3] "/schedstat"; if ((getline m < g) > 0) { split(m, y, " "); t += y[2] }
            close(g) } }
        close(f) }
      printf "%.0f\n", t; exit }' /proc/[0-9]*/stat; }
}
served() { cat "$work"/sb*.log | grep -c http.request || true; }
# PostgreSQL over a run: commits (all transactions), transaction ids assigned (write
# transactions: exact, where the statistics lag up to a second), WAL bytes, WAL writes and
# fsyncs with their time (ms)
pg_stats() {
  [ -n "$pg_pid" ] || { echo "0 0 0 0 0 0 0"; return; }
  psql -X -qAt -F ' ' "$db_url" -c "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
    pg_snapshot_xmax(pg_current_snapshot())::text::bigint, pg_current_wal_lsn() - '0/0',
    wal_write, wal_sync, round(wal_write_time::numeric, 1), round(wal_sync_time::numeric, 1) FROM pg_stat_wal"
}
# PG_STATEMENTS=1: the statements' counts and times cover the switchboard run only
pg_stats_reset() {
  [ "${PG_STATEMENTS:-0}" = 1 ] && [ -n "$pg_pid" ] || return 0
  psql -X -qAt "$db_url" -c 'SELECT pg_stat_statements_reset()' >/dev/null
}
# During a wrk run, a window that leaves out wrk's start (it pre-formats every body) and its
# end: the CPU of the servers, of wrk and of PostgreSQL, and the requests served in it (the
# servers' access-log lines).
sample_window() {
  local gen_pid=$1 n0
  n0=$(served)
  while [ "$(served)" = "$n0" ] && kill -0 "$gen_pid" 2>/dev/null; do sleep 0.1; done
  sleep 1
  echo "$(date +%s.%N) $(ticks "${sb_pids[@]}") $(ticks "$gen_pid") $(pg_ticks) $(served) $(rq_wait)" >"$work/w0"
  sleep $((dur > 4 ? dur - 3 : 1))
  echo "$(date +%s.%N) $(ticks "${sb_pids[@]}") $(ticks "$gen_pid") $(pg_ticks) $(served) $(rq_wait)" >"$work/w1"
}
# others: what every other process used over a run, % of a core (and kernel threads')
others_begin() { read -r o0 k0 < <(bench_others "${sb_pids[@]}" $bare_pid $pg_pid); t0=$(date +%s.%N); }
others_end() {
  local o1 k1
  read -r o1 k1 < <(bench_others "${sb_pids[@]}" $bare_pid $pg_pid)
  awk -v o=$((o1 - o0)) -v k=$((k1 - k0)) -v t0="$t0" -v t1="$(date +%s.%N)" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.1f %.1f\n", 100 * o / hz / (t1 - t0), 100 * k / hz / (t1 - t0) }' >"$work/$1.others"
}
# wrk's latency (e.g. 812.00us, 5.10ms, 1.02s) in ms
to_ms() { awk -v v="$1" 'BEGIN { u = v; sub(/^[0-9.]+/, "", u); n = v + 0
  printf "%.2f", u == "us" ? n / 1000 : u == "s" ? n * 1000 : u == "m" ? n * 60000 : n }'; }

if [ -z "$rate" ]; then
  echo "== bare h2o" >&2
  others_begin
  wrk -t1 -c"$conns" -d"${dur}s" --latency "http://127.0.0.1:$bare_port/" >"$work/bare.txt"
  others_end bare
  cat "$work/bare.txt" >&2
  echo "== switchboard signed POST /twilio/voice ($instances instance(s), $workers worker(s) each, $db)" >&2
  pg_stats_reset
  p0=$(pg_stats)
  others_begin
  if [ "$instances" -gt 1 ]; then
    VOICE_ADDRS=$sb_addrs wrk -t"$instances" -c"$conns" -d"${dur}s" --latency -s bench/voice.lua \
      "http://127.0.0.1:${sb_ports[0]}" -- "$work/bodies.tsv" >"$work/sb.txt" &
  else
    wrk -t1 -c"$conns" -d"${dur}s" --latency -s bench/voice.lua "http://127.0.0.1:${sb_ports[0]}" -- \
      "$work/bodies.tsv" >"$work/sb.txt" &
  fi
  gen_pid=$!
  sample_window "$gen_pid"
  wait "$gen_pid"
  others_end sb
  cat "$work/sb.txt" >&2
  rps() { grep 'Requests/sec' "$work/$1.txt" | awk '{print $2}'; }
  p99() { to_ms "$(grep ' 99%' "$work/$1.txt" | awk '{print $2}')"; }
  b=$(rps bare); s=$(rps sb); bp99=$(p99 bare); sp99=$(p99 sb)
  non2xx=$(grep -o 'Non-2xx or 3xx responses: [0-9]*' "$work/sb.txt" | grep -o '[0-9]*$' || echo 0)
  errs=$(grep -o 'Socket errors:.*' "$work/sb.txt" || true)
else
  echo "== bare h2o, $rate/s (the client's floor)" >&2
  others_begin
  node bench/voice_rate.mjs --path - --url "http://127.0.0.1:$bare_port" --rate "$rate" --duration "$dur" \
    --warmup "$warmup" --json >"$work/bare.json" || true
  others_end bare
  echo "== switchboard signed POST /twilio/voice at $rate/s ($instances instance(s), $workers worker(s) each, $db)" >&2
  pg_stats_reset
  p0=$(pg_stats)
  others_begin
  # The CPU over the whole run (warm-up included), read before it starts and after it ends: a
  # sample taken during the run (a few tens of ms of awk over /proc) shows in its latencies.
  snap() { echo "$(date +%s.%N) $(ticks "${sb_pids[@]}") 0 $(pg_ticks) 0 $(rq_wait)"; }
  snap >"$work/w0"
  node bench/voice_rate.mjs --bodies "$work/bodies.tsv" --url "$sb_urls" --rate "$rate" --duration "$dur" \
    --warmup "$warmup" --json ${DUMP:+--dump "$DUMP"} >"$work/sb.json" || true
  snap >"$work/w1"
  others_end sb
  [ -s "$work/sb.json" ] && [ -s "$work/bare.json" ] || { echo "voice_rate.mjs gave no report" >&2; exit 1; }
  j() { jq -r "$2" "$work/$1.json"; }
  jr() { jq -r "$2 * 100 | round / 100" "$work/$1.json"; } # ms, to 0.01
  b=$(j bare .achieved_rps); s=$(j sb .achieved_rps); bp99=$(jr bare .latency_ms.p99); sp99=$(jr sb .latency_ms.p99)
  non2xx=$(j sb .non2xx)
  errs="errors $(j sb .errors), unanswered $(j sb .unanswered)"
fi
sleep 1.5 # PostgreSQL's statistics: a backend reports its counts at most once a second
p1=$(pg_stats)
if [ "$db" = pg ]; then
  rows=$(psql -X -qAt "$db_url" -c 'SELECT COUNT(*) FROM calls' 2>/dev/null || echo '?')
else
  rows=$(sqlite3 "$work/i1/data/switchboard.db" 'SELECT COUNT(*) FROM calls' 2>/dev/null || echo '?')
fi
read -r bo bk <"$work/bare.others"
read -r so sk <"$work/sb.others"

printf '\nDB=%s instances=%s workers=%s connections=%s duration=%ss calls inserted=%s non-2xx %s %s\n' \
  "$db" "$instances" "$workers" "$conns" "$dur" "$rows" "$non2xx" "$errs"
if [ -z "$rate" ]; then
  printf 'bare h2o:                 %10.0f req/s  p99 %s ms\n' "$b" "$bp99"
  printf 'switchboard /twilio/voice: %9.0f req/s  p99 %s ms\n' "$s" "$sp99"
  awk -v s="$s" -v b="$b" 'BEGIN { printf "ratio:                    %.2f of bare h2o (target: at least 0.40, p99 under 2 ms)\n", s / b }'
else
  printf 'bare h2o at %s/s:          %s\n' "$rate" \
    "$(jq -r '"p50 \(.latency_ms.p50|.*100|round/100) p99 \(.latency_ms.p99|.*100|round/100) max \(.latency_ms.max|.*100|round/100) ms; send lag p99 \(.send_lag_ms.p99|.*100|round/100) ms"' "$work/bare.json")"
  printf 'switchboard at %s/s:       %s\n' "$rate" \
    "$(jq -r '"achieved \(.achieved_rps|round)/s; from schedule p50 \(.latency_ms.p50|.*100|round/100) p90 \(.latency_ms.p90|.*100|round/100) p99 \(.latency_ms.p99|.*100|round/100) p99.9 \(.latency_ms.p999|.*100|round/100) max \(.latency_ms.max|.*100|round/100) ms"' "$work/sb.json")"
  printf '                          %s\n' \
    "$(jq -r '"from send p99 \(.from_send_ms.p99|.*100|round/100) ms; client send lag p50 \(.send_lag_ms.p50|.*100|round/100) p99 \(.send_lag_ms.p99|.*100|round/100) max \(.send_lag_ms.max|.*100|round/100) ms, client CPU \(.client_cpu_pct|.*10|round/10) %"' "$work/sb.json")"
  printf 'goal:                     p99 under 10 ms at %s/s\n' "$rate"
fi
if [ "$instances" -gt 1 ]; then
  echo "requests per instance:    $(for k in $(seq "$instances"); do printf '%s ' "$(grep -c http.request "$work/sb$k.log" || true)"; done)"
fi
printf 'other processes:          %.1f %% of a core during bare h2o, %.1f %% during switchboard (kernel threads %.1f / %.1f %%)\n' \
  "$bo" "$so" "$bk" "$sk"

read -r t0w s0 g0 q0 r0 rs0 rp0 <"$work/w0"
read -r t1w s1 g1 q1 r1 rs1 rp1 <"$work/w1"
read -r c0 x0 l0 ww0 ws0 wwt0 wst0 <<<"$p0"
read -r c1 x1 l1 ww1 ws1 wwt1 wst1 <<<"$p1"
gen=$([ -n "$rate" ] && echo node || echo wrk)
wlen= nreq= gpct=
if [ -n "$rate" ]; then # the run's length and requests, and the client's CPU as it measured it
  wlen=$((dur + warmup)); nreq=$((rate * (dur + warmup))); gpct=$(jq -r .client_cpu_pct "$work/sb.json")
fi
win=$(awk -v wlen="$wlen" -v nreq="$nreq" -v gpct="$gpct" -v n="$((r1 - r0))" -v ds="$((s1 - s0))" -v dg="$((g1 - g0))" -v dq="$((q1 - q0))" -v t0="$t0w" -v t1="$t1w" \
  -v rs="$((rs1 - rs0))" -v rp="$((rp1 - rp0))" \
  -v hz="$(getconf CLK_TCK)" -v gen="$gen" -v db="$db" 'BEGIN {
  w = wlen != "" ? wlen : t1 - t0; n = nreq != "" ? nreq : n; n = n > 0 ? n : 1
  if (gpct != "") dg = gpct / 100 * hz * w
  if (wlen != "") printf "the whole run, "
  printf "window %.1f s, %.0f req/s: switchboard %.0f %% of a core (%.1f us/request), %s %.0f %% (%.1f us)", w, n / w,
         100 * ds / hz / w, ds / hz * 1e6 / n, gen, 100 * dg / hz / w, dg / hz * 1e6 / n
  if (db == "pg") printf ", PostgreSQL %.0f %% (%.1f us)", 100 * dq / hz / w, dq / hz * 1e6 / n
  printf "; waiting for a CPU (run queue) per request: switchboard %.1f us", rs / 1e3 / n
  if (db == "pg") printf ", PostgreSQL %.1f us", rp / 1e3 / n
  printf "|%.1f|%.1f|%.1f|%.1f|%.1f|%.1f", 100 * ds / hz / w, ds / hz * 1e6 / n, 100 * dq / hz / w, dq / hz * 1e6 / n,
    rs / 1e3 / n, rp / 1e3 / n }')
echo "CPU:                      ${win%%|*}"
IFS='|' read -r _ sbcpu sbus pgcpu pgus sbrq pgrq <<<"$win"
summary="db=$db instances=$instances workers=$workers mode=$([ -n "$rate" ] && echo "rate$rate" || echo wrk) dur=$dur conns=$conns"
summary+=" bare_rps=$(printf %.0f "$b") bare_p99=$bp99 sb_rps=$(printf %.0f "$s") sb_p99=$sp99"
summary+=" ratio=$(awk -v s="$s" -v b="$b" 'BEGIN { printf "%.3f", s / b }') non2xx=$non2xx rows=$rows"
summary+=" others_bare=$bo others_sb=$so kthreads_sb=$sk sb_cpu=$sbcpu sb_us=$sbus sb_rq_us=$sbrq"
if [ -n "$rate" ]; then
  summary+=" sb_p50=$(jr sb .latency_ms.p50) sb_p90=$(jr sb .latency_ms.p90) sb_p999=$(jr sb .latency_ms.p999)"
  summary+=" sb_max=$(jr sb .latency_ms.max) send_p99=$(jr sb .from_send_ms.p99) lag_p50=$(jr sb .send_lag_ms.p50)"
  summary+=" lag_p99=$(jr sb .send_lag_ms.p99) lag_max=$(jr sb .send_lag_ms.max) client_cpu=$(jr sb .client_cpu_pct)"
  summary+=" errors=$(jq -r .errors "$work/sb.json") bare_p50=$(jr bare .latency_ms.p50) bare_max=$(jr bare .latency_ms.max)"
  summary+=" bare_lag_p99=$(jr bare .send_lag_ms.p99)"
fi

if [ "$db" = pg ]; then
  pgline=$(awk -v dc="$((c1 - c0))" -v dx="$((x1 - x0))" -v dl="$(awk -v a="$l0" -v b="$l1" 'BEGIN { print b - a }')" \
    -v dw="$((ww1 - ww0))" -v dsy="$((ws1 - ws0))" -v wt="$(awk -v a="$wwt0" -v b="$wwt1" 'BEGIN { print b - a }')" \
    -v st="$(awk -v a="$wst0" -v b="$wst1" 'BEGIN { print b - a }')" -v d="$dur" -v rate="$rate" -v warm="$warmup" 'BEGIN {
    d += (rate != "") ? warm : 0; nx = dx > 0 ? dx : 1; ns = dsy > 0 ? dsy : 1
    printf "%.0f commits/s, %.0f write transactions/s, WAL %.0f bytes per write transaction, %.0f WAL writes/s (%.3f ms each), %.0f WAL fsyncs/s (%.3f ms each, busy %.0f %% of the run), %.2f write transactions per fsync",
      dc / d, dx / d, dl / nx, dw / d, (dw > 0 ? wt / dw : 0), dsy / d, st / ns, 100 * st / 1000 / d, dx / ns
    printf "|%.0f|%.0f|%.3f|%.2f", dc / d, dsy / d, st / ns, dx / ns }')
  echo "PostgreSQL over the run:  ${pgline%%|*}"
  IFS='|' read -r _ pcs pfs pfms pxpf <<<"$pgline"
  summary+=" pg_cpu=$pgcpu pg_us=$pgus pg_rq_us=$pgrq commits_s=$pcs fsyncs_s=$pfs fsync_ms=$pfms xact_per_fsync=$pxpf"
fi

if [ -n "${DUMP:-}" ] && [ -n "$rate" ]; then
  # for lining the dump up with other events: its time 0 on the wall clock (epoch ms), and with
  # PostgreSQL when each WAL segment file was created (a new one is written full of zeros)
  { echo "measured_from_epoch_ms $(jq -r .measured_from_epoch_ms "$work/sb.json")"
    [ -z "$pg_pid" ] || for f in "$pg_data"/pg_wal/0000*; do
      echo "wal_segment_born $(date -d "$(stat -c %w "$f")" +%s.%N) ${f##*/}"
    done; } >"$DUMP.meta"
fi
if [ "${PG_STATEMENTS:-0}" = 1 ] && [ -n "$pg_pid" ]; then
  echo "PostgreSQL statements by total time (calls, mean ms, total ms, rows, statement):"
  psql -X -qAt -F ' | ' "$db_url" -c "SELECT calls, round(mean_exec_time::numeric, 3), round(total_exec_time::numeric),
    rows, left(regexp_replace(query, '\s+', ' ', 'g'), 110) FROM pg_stat_statements
    WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC LIMIT 12" | sed 's/^/  /'
fi
if [ -z "$rate" ] && [ "$db" = sqlite ]; then
  # Where the CPU goes per request, and what that allows on this machine's cores: the server's
  # share, the store's share (measured alone, no HTTP) and wrk's (it runs on the same cores).
  store=$(build/bench/bench_store_inbound 50000 32 | tee /dev/stderr | grep -o '[0-9.]* us CPU' | awk '{ print $1 }')
  awk -v n="$((r1 - r0))" -v ds="$((s1 - s0))" -v dw="$((g1 - g0))" -v hz="$(getconf CLK_TCK)" -v store="$store" \
    -v cores="$(nproc)" -v b="$b" 'BEGIN {
    server = ds / hz * 1e6 / n; client = dw / hz * 1e6 / n
    printf "CPU per request:          server %.1f us (the store alone: %.1f us), wrk %.1f us\n", server, store, client
    printf "ceilings:                 one worker (one core) %.0f req/s; all %d cores, wrk included, %.0f req/s\n",
           1e6 / server, cores, cores * 1e6 / (server + client)
    printf "the target, %.0f req/s, leaves one worker %.1f us per request; the store alone takes %.1f us\n",
           0.40 * b, 1e6 / (0.40 * b), store
  }'
fi
if grep -h 'level=error' "$work"/sb*.log | head -5 | grep -q .; then
  echo "server errors (first 5):" >&2
  grep -h 'level=error' "$work"/sb*.log | head -5 >&2
fi
echo "summary: $summary"
