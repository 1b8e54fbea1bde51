#!/usr/bin/env bash
# Shows that .ci/clean_clone.sh fails when it should: each case commits one defect into a
# scratch clone and expects the check to fail with the matching message.
#   a test reading the signature vectors from beside the repository
#   cmocka (test-only) looked for on the run path
#   node (test-only) used by tools/run.sh
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-ci-self.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

expect_fail() {
  local name=$1 want=$2 edit=$3 repo=$scratch/$1/repo
  git clone -q --no-hardlinks "$src" "$repo"
  (cd "$repo" && eval "$edit" && git -c user.name=ci -c user.email=ci@localhost commit -qam "defect: $name")
  local out rc=0
  out=$("$repo/.ci/clean_clone.sh" "$scratch/$1/work" 2>&1) || rc=$?
  if [ "$rc" -eq 0 ] || ! grep -qF -- "$want" <<<"$out"; then
    echo "$out" | tail -n 15 >&2
    echo "clean-clone self-test: FAIL: '$name' was not caught (exit $rc)" >&2
    exit 1
  fi
  echo "clean-clone self-test: '$name' caught: $(grep -F -- "$want" <<<"$out" | head -n 1)"
}

# the defect's path is spelled in pieces, so this file itself names nothing outside the repository
outside="../../sha""red/vectors/twilio-signatures.json"
expect_fail outside-read "name a path outside the repository" \
  "sed -i \"s|^const VECTORS = .*|const VECTORS = '$outside';|\" tests/integration/sim_core.test.mjs"
expect_fail cmocka-on-run-path "A required package was not found" \
  "sed -i 's|^find_library(WSLAY_LIB wslay REQUIRED)|pkg_check_modules(CMOCKA_RUN REQUIRED cmocka)\nfind_library(WSLAY_LIB wslay REQUIRED)|' CMakeLists.txt"
expect_fail node-on-run-path "the run path used the test-only command node" \
  "sed -i 's|^tools/deps.sh run\$|tools/deps.sh run\nnode -e 1|' tools/run.sh"
echo "clean-clone self-test: ok"
