#!/usr/bin/env bash
# Installs what switchboard needs on Debian 12, only what is missing: safe to run again.
#   tools/deps.sh run    build and run the server
#   tools/deps.sh test   also the test tools (cmocka, node, sqlite3 CLI, clang for fuzzing, chromium, npm packages)
set -euo pipefail
cd "$(dirname "$0")/.."

want=(build-essential cmake pkg-config ca-certificates openssl curl
      libh2o-dev libuv1-dev libwslay-dev libwebsockets-dev libwebsockets-evlib-uv
      libxml2-dev libssl-dev libcurl4-openssl-dev libsqlite3-dev libjwt-dev libjansson-dev)
if [ "${1:-run}" = test ]; then
  want+=(libcmocka-dev sqlite3 clang wrk)
  want+=(chromium fonts-dejavu-core) # the dashboard's browser tests (playwright-core drives Debian's chromium)
  command -v node >/dev/null 2>&1 || want+=(nodejs)
  command -v npm >/dev/null 2>&1 || want+=(npm)
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
fi

# npm ci is exact and repeatable; skip it when the lock file has not changed since the last install
npm_install() {
  local dir=$1 stamp=$1/node_modules/.lock-stamp
  if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
  fi
}
if [ "${1:-run}" = test ]; then
  npm_install tests     # the integration tests' clients and fakes
  npm_install tools/sim # switchboard-sim, whose core the tests share
fi
