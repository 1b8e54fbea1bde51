#!/usr/bin/env bash
# Installs what switchboard needs on Debian 12, only what is missing: safe to run again.
#   tools/deps.sh run    build and run the server (C libraries only: no node, no test tools)
#   tools/deps.sh sim    node and tools/sim's npm packages, for tools/switchboard-sim (which runs this itself
#                        on first use)
#   tools/deps.sh test   all of the above and the test tools (cmocka, sqlite3 CLI, PostgreSQL server and
#                        psql, clang for fuzzing, chromium, the tests' npm packages)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
case $mode in run | sim | test) ;; *) echo "usage: tools/deps.sh [run|sim|test]" >&2; exit 2 ;; esac

want=()
if [ "$mode" != sim ]; then
  want+=(build-essential cmake pkg-config ca-certificates openssl curl
         libh2o-dev libuv1-dev libwslay-dev
         libxml2-dev libssl-dev libcurl4-openssl-dev libsqlite3-dev libjwt-dev libjansson-dev
         libpq-dev) # the server links libpq for its PostgreSQL store
fi
if [ "$mode" != run ]; then
  command -v node >/dev/null 2>&1 || want+=(nodejs)
  command -v npm >/dev/null 2>&1 || want+=(npm)
fi
if [ "$mode" = test ]; then
  want+=(libcmocka-dev sqlite3 clang wrk)
  want+=(postgresql) # server binaries + psql: tests/pg/pg.sh starts a throwaway cluster per test run
  want+=(prometheus) # promtool and a real Prometheus for tests/integration/metrics.test.mjs (which starts its own)
  want+=(chromium fonts-dejavu-core) # the dashboard's browser tests (playwright-core drives Debian's chromium)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # the package enables (and may start) a system Prometheus on :9090: the tests need none
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1; then
    $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

# npm ci is exact and repeatable; skip it when the lock file has not changed since the last install
npm_install() {
  local dir=$1 stamp=$1/node_modules/.lock-stamp
  if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
  fi
}
[ "$mode" = run ] || npm_install tools/sim # switchboard-sim, whose core the tests share
[ "$mode" != test ] || npm_install tests    # the integration tests' clients and fakes
