#!/usr/bin/env bash
# Installs what is missing, builds the server (Release) and runs it with its embedded defaults:
# HTTP on PORT (8080), HTTPS on TLS_PORT (8443, self-signed unless TLS_CERT_FILE is set),
# SQLite under data/, simulation mode without Twilio credentials. Settings: environment or .env.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh run
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSB_TESTS=OFF >/dev/null
cmake --build build/release -j"$(nproc)"
exec build/release/switchboard "$@"
