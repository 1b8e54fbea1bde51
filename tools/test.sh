#!/usr/bin/env bash
# Installs what is missing, then builds and runs every test under CTest twice:
# a Release build, and an ASan + UBSan build running the same tests.
#   tools/test.sh            both builds
#   tools/test.sh release    only one of them (release | asan)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh test

jobs=$(nproc)
run_build() {
  local name=$1; shift
  echo "== build: $name"
  cmake -S . -B "build/$name" "$@" >/dev/null
  cmake --build "build/$name" -j"$jobs"
  echo "== tests: $name"
  (cd "build/$name" && ctest --output-on-failure --no-tests=error -j"$jobs")
}

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=86"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"

case "${1:-all}" in
  release) run_build test-release -DCMAKE_BUILD_TYPE=Release -DSB_TESTS=ON ;;
  asan) run_build test-asan -DCMAKE_BUILD_TYPE=Debug -DSB_SANITIZE=ON -DSB_TESTS=ON ;;
  all)
    run_build test-release -DCMAKE_BUILD_TYPE=Release -DSB_TESTS=ON
    run_build test-asan -DCMAKE_BUILD_TYPE=Debug -DSB_SANITIZE=ON -DSB_TESTS=ON
    ;;
  *) echo "usage: tools/test.sh [release|asan]" >&2; exit 2 ;;
esac
