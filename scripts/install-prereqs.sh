#!/usr/bin/env bash
# Installs what the integration tests need beyond Python packages:
# Debian's docker-compose (to validate docker-compose.yml) and the collector and Jaeger binaries built from Go modules.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v docker-compose >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
    else
        echo "install-prereqs: docker-compose is missing and cannot be installed here (needs root and apt-get)" >&2
    fi
fi
export PATH="$PATH:/usr/local/go/bin"  # where the Go toolchain lives on these machines
.venv/bin/python scripts/build_otel_binaries.py
