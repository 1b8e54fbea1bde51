#!/usr/bin/env bash
# Proves the repository stands alone, as a newcomer gets it: clones the commit into a fresh
# folder with nothing beside it, then
#   1. no file names a path outside the repository (the shared folder beside it, or a setting pointing there);
#   2. tools/run.sh builds (configure with -DSB_TESTS=OFF) while the test-only packages are
#      hidden: cmocka.pc is left out of pkg-config's search path and node/npm/npx/clang are
#      shadowed by commands that fail, so a test-only package turning into a run requirement
#      fails here;
#   3. the server it starts answers GET /health with status ok;
#   4. tools/switchboard-sim (which installs its own packages on first use) completes a call
#      against it, and the server then stops cleanly on SIGTERM.
# Prints the clone's path on its last line of stdout; .ci/run runs the README's test command there,
# so any read of a path beside the repository (there is nothing there) fails the tests as well.
#   .ci/clean_clone.sh [WORKDIR]     WORKDIR: an empty folder to clone into (default: mktemp -d)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$src" rev-parse HEAD)
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/switchboard-ci.XXXXXX")}
mkdir -p "$work"
clone=$work/switchboard
say() { echo "clean-clone: $*" >&2; }

if [ -n "$(git -C "$src" status --porcelain --untracked-files=no)" ]; then
  say "note: uncommitted changes in $src are not part of this check (it tests commit $commit)"
fi
[ -z "$(ls -A "$work")" ] || { say "$work is not empty"; exit 1; }
git clone -q --no-hardlinks "$src" "$clone"
git -C "$clone" checkout -q --detach "$commit"
say "commit $commit cloned into $clone (nothing beside it)"

# 1. Paths outside the repository, by name.
# (spelled in pieces so that this file names no such path itself)
outside='\.\./sha''red([/"'"'"' ]|$)|/work/sha''red|SB_SHA''RED_DIR'
if git -C "$clone" grep -nE "$outside" -- .; then
  say "FAIL: the files above name a path outside the repository; test data belongs in tests/"
  exit 1
fi

# 2. The run path without the test-only packages.
pcdir=$work/pkgconfig-run
shadow=$work/shadow-bin
mkdir -p "$pcdir" "$shadow"
IFS=: read -r -a pcpath <<<"$(pkg-config --variable pc_path pkg-config)"
for d in "${pcpath[@]}"; do
  for f in "$d"/*.pc; do
    [ -e "$f" ] || continue
    b=$(basename "$f")
    case $b in cmocka.pc) continue ;; esac # test-only
    [ -e "$pcdir/$b" ] || ln -s "$f" "$pcdir/$b"
  done
done
for t in node npm npx clang; do
  printf '#!/bin/sh\necho "clean-clone: the run path used the test-only command %s" >&2\nexit 127\n' "$t" >"$shadow/$t"
  chmod +x "$shadow/$t"
done

log=$work/run.log
say "tools/run.sh (test-only packages hidden)"
(cd "$clone" && PKG_CONFIG_LIBDIR=$pcdir PKG_CONFIG_PATH= PATH="$shadow:$PATH" \
   PORT=0 TLS_PORT=0 WORKERS=1 BIND_ADDRESS=127.0.0.1 exec tools/run.sh) >"$log" 2>&1 &
pid=$!
stop_server() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap stop_server EXIT

port=
for _ in $(seq 1 1200); do # the build comes first: up to 10 minutes
  port=$(sed -n 's/.*event=server\.listening port=\([0-9]*\).*/\1/p' "$log" | head -n 1)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.5
done
if [ -z "$port" ]; then
  tail -n 40 "$log" >&2
  say "FAIL: tools/run.sh did not start the server without the test-only packages"
  exit 1
fi
health=$(curl -fsS "http://127.0.0.1:$port/health") || { tail -n 20 "$log" >&2; say "FAIL: GET /health"; exit 1; }
say "GET /health: $health"
case $health in *'"status":"ok"'*) ;; *) say "FAIL: /health is not ok"; exit 1 ;; esac

# 3. The simulator right after tools/run.sh: it installs its packages itself.
say "tools/switchboard-sim call --hangup-after 2s"
if ! (cd "$clone" && tools/switchboard-sim call --url "http://127.0.0.1:$port" --hangup-after 2s) >"$work/sim.log" 2>&1; then
  tail -n 30 "$work/sim.log" >&2
  say "FAIL: switchboard-sim did not complete a call"
  exit 1
fi
grep -E '^result:' "$work/sim.log" >&2

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
trap - EXIT
[ "$rc" -eq 0 ] || { tail -n 20 "$log" >&2; say "FAIL: the server exited $rc on SIGTERM"; exit 1; }
say "ok: run path, /health, switchboard-sim, clean stop"
echo "$clone"
