#!/usr/bin/env bash
# Builds every libFuzzer target with clang (ASan + UBSan) and runs each for SECONDS
# over a scratch copy of its seed corpus (the committed corpus stays as it is).
#   tests/fuzz/run.sh [SECONDS=60] [OUT_DIR=build/fuzz]
#   TARGETS="form rtp" limits the run to those targets.
#   KEEP=1 merges what the run found into tests/fuzz/corpus/<target> (libFuzzer -merge=1 keeps
#   only inputs that add coverage) and prints libFuzzer's final figures.
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
)
declare -A libs=([form]="$(pkg-config --libs openssl)" [target]="" [e164]="" [rtp]="" [ari_event]="$(pkg-config --libs jansson)"
  [jambonz_hook]="$(pkg-config --libs jansson openssl)" [pcm]="" [wsc_frame]="$(pkg-config --libs openssl libuv)"
  [wsframe_server]="$(pkg-config --libs openssl)" [wsc_http]="$(pkg-config --libs openssl)")

all="form target e164 rtp ari_event jambonz_hook pcm wsc_frame wsframe_server wsc_http"
for t in ${TARGETS:-$all}; do
  [[ -n ${srcs[$t]:-} ]] || { echo "no fuzz target $t (targets: $all)" >&2; exit 2; }
  src=()
  for f in ${srcs[$t]}; do src+=("$root/$f"); done
  # shellcheck disable=SC2086
  clang "${flags[@]}" "$root/tests/fuzz/fuzz_$t.c" "${src[@]}" -o "$out/fuzz_$t" ${libs[$t]}
  rm -rf "$out/corpus_$t" && mkdir -p "$out/corpus_$t"
  echo "== fuzz_$t: ${secs}s"
  if [[ ${KEEP:-0} == 1 ]]; then
    (cd "$out" && ASAN_OPTIONS=detect_leaks=1 ./fuzz_"$t" -max_total_time="$secs" -print_final_stats=1 \
       "corpus_$t" "$root/tests/fuzz/corpus/$t" 2>&1 | grep -E "^(stat::|#[0-9]+ +DONE|==)" )
    (cd "$out" && ./fuzz_"$t" -merge=1 "$root/tests/fuzz/corpus/$t" "corpus_$t" 2>&1 | tail -n 1)
  else
    (cd "$out" && ASAN_OPTIONS=detect_leaks=1 ./fuzz_"$t" -max_total_time="$secs" -print_final_stats=0 \
       "corpus_$t" "$root/tests/fuzz/corpus/$t" 2>&1 | tail -n 3)
  fi
  # libFuzzer exits non-zero on a crash; pipefail carries it
done
echo "fuzz: all targets ran ${secs}s clean"
