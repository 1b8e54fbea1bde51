#!/usr/bin/env bash
# Builds every libFuzzer target with clang (ASan + UBSan) and runs each for SECONDS
# over a scratch copy of its seed corpus (the committed corpus stays as it is).
#   tests/fuzz/run.sh [SECONDS=60] [OUT_DIR=build/fuzz]
#   TARGETS="form rtp" limits the run to those targets.
#   KEEP=1: SECONDS counts CPU time (runs of up to 10 minutes, over a scratch corpus kept in
#   OUT_DIR between them), then what the runs found joins tests/fuzz/corpus/<target> (libFuzzer
#   -merge=1 keeps only inputs that add coverage) and the figures are printed. Needs /usr/bin/time.
# Exit status is non-zero when a target crashes; the crashing input is left in OUT_DIR.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
out=${2:-$root/build/fuzz}
mkdir -p "$out"
command -v clang >/dev/null || { echo "clang is missing: tools/deps.sh test installs it" >&2; exit 1; }

flags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=gnu11 -Wall -Wextra -Werror -I"$root")
declare -A srcs=(
  [form]="server/form.c server/sig.c"
  [target]="server/target.c server/e164.c"
  [e164]="server/e164.c"
  [rtp]="asterisk/rtp.c"
  [ari_event]="asterisk/ari_event.c asterisk/ari_url.c"
  [jambonz_hook]="jambonz/hook.c"
  [pcm]="jambonz/pcm.c"
  [wsc_frame]="ai/wsc.c ai/wsc_http.c server/wsframe.c"
  [wsc_http]="ai/wsc_http.c server/wsframe.c"
  [wsframe_server]="server/wsframe.c"
  [jwt]="server/jwt.c"
)
declare -A libs=([form]="$(pkg-config --libs openssl)" [target]="" [e164]="" [rtp]="" [ari_event]="$(pkg-config --libs jansson)"
  [jambonz_hook]="$(pkg-config --libs jansson openssl)" [pcm]="" [wsc_frame]="$(pkg-config --libs openssl libuv)"
  [wsframe_server]="$(pkg-config --libs openssl)" [wsc_http]="$(pkg-config --libs openssl)"
  [jwt]="$(pkg-config --libs libjwt jansson openssl)")

all="form target e164 rtp ari_event jambonz_hook pcm wsc_frame wsframe_server wsc_http jwt"
for t in ${TARGETS:-$all}; do
  [[ -n ${srcs[$t]:-} ]] || { echo "no fuzz target $t (targets: $all)" >&2; exit 2; }
  src=()
  for f in ${srcs[$t]}; do src+=("$root/$f"); done
  # shellcheck disable=SC2086
  clang "${flags[@]}" "$root/tests/fuzz/fuzz_$t.c" "${src[@]}" -o "$out/fuzz_$t" ${libs[$t]}
  if [[ ${KEEP:-0} == 1 ]]; then
    # SECONDS of CPU (not of the clock: the machine may be busy), in runs of at most 10 minutes
    # over a scratch corpus kept between runs; then the new coverage joins the committed corpus
    mkdir -p "$out/corpus_$t"
    used=0 execs=0 last=""
    # a run stopped part way goes on from OUT_DIR/progress_<target> (CPU seconds, executions)
    [[ -f $out/progress_$t ]] && read -r used execs < "$out/progress_$t"
    echo "== fuzz_$t: ${secs} CPU seconds (${used} done)"
    while (( used < secs )); do
      left=$(( secs - used )); chunk=$(( left < 600 ? left : 600 ))
      (cd "$out" && ASAN_OPTIONS=detect_leaks=1 /usr/bin/time -f "%U %S" -o "time_$t" ./fuzz_"$t" \
         -max_total_time="$chunk" -print_final_stats=1 "corpus_$t" "$root/tests/fuzz/corpus/$t" > "log_$t" 2>&1) ||
        { grep -E "^==|SUMMARY|Test unit written" "$out/log_$t" >&2; exit 1; }
      read -r u s < <(tail -n 1 "$out/time_$t")
      used=$(( used + ${u%.*} + ${s%.*} + 1 ))
      execs=$(( execs + $(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log_$t") ))
      last=$(grep -E "^#[0-9]+[[:space:]]+DONE" "$out/log_$t" | tail -n 1 | tr '\t' ' ' || true)
      echo "$used $execs" > "$out/progress_$t"
    done
    before=$(find "$root/tests/fuzz/corpus/$t" -type f | wc -l)
    (cd "$out" && ./fuzz_"$t" -merge=1 "$root/tests/fuzz/corpus/$t" "corpus_$t" > "merge_$t" 2>&1)
    after=$(find "$root/tests/fuzz/corpus/$t" -type f | wc -l)
    echo "fuzz_$t: cpu_seconds=$used executions=$execs crashes=0 last_run=\"${last}\" corpus=$before->$after"
  else
    rm -rf "$out/corpus_$t" && mkdir -p "$out/corpus_$t"
    echo "== fuzz_$t: ${secs}s"
    (cd "$out" && ASAN_OPTIONS=detect_leaks=1 ./fuzz_"$t" -max_total_time="$secs" -print_final_stats=0 \
       "corpus_$t" "$root/tests/fuzz/corpus/$t" 2>&1 | tail -n 3)
  fi
  # libFuzzer exits non-zero on a crash; pipefail carries it
done
echo "fuzz: all targets ran ${secs}s clean"
