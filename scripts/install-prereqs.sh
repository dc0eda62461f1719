#!/usr/bin/env bash
# Installs what the integration tests need beyond Python packages: from Debian, docker-compose (to validate
# docker-compose.yml) and Chromium (the browser test of the Jaeger UI, driven by Playwright); the venvs of the Phoenix
# and MLflow servers (scripts/backend_envs.py, cached in ~/.cache/dspy-otel/venvs); the collector and Jaeger binaries
# built from Go modules (and the committed Jaeger UI, unpacked beside them).
# Without Go, Chromium or the server venvs, outside CI, it says in one line which tests will be skipped and succeeds,
# so that `make test` runs every other test; under CI=true any of them missing fails.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
    else
        echo "install-prereqs: ${missing[*]} missing and cannot be installed here (needs root and apt-get)" >&2
    fi
fi
if ! command -v chromium >/dev/null 2>&1; then
    if [ "${CI:-}" = true ]; then
        echo "install-prereqs: Chromium is not installed; under CI=true the browser test of the Jaeger UI must run" >&2
        exit 1
    fi
    echo "install-prereqs: Chromium is not installed: the browser test of the Jaeger UI (tests/integration/test_jaeger_ui.py) will be skipped" >&2
fi
if ! .venv/bin/python scripts/backend_envs.py >/dev/null; then
    if [ "${CI:-}" = true ]; then
        echo "install-prereqs: the Phoenix and MLflow venvs could not be built; under CI=true their tests must run" >&2
        exit 1
    fi
    echo "install-prereqs: the Phoenix and MLflow venvs could not be built: their integration tests will be skipped" >&2
fi
# Go on PATH, else in GO_DIR (default /usr/local/go/bin, where the official tarball puts it; GO_DIR= to not look).
GO_DIR="${GO_DIR-/usr/local/go/bin}"
if [ -n "$GO_DIR" ]; then
    export PATH="$PATH:$GO_DIR"
fi
if ! command -v go >/dev/null 2>&1; then
    where="on PATH${GO_DIR:+ or in $GO_DIR}"
    if [ "${CI:-}" = true ]; then
        echo "install-prereqs: Go is not installed ($where); under CI=true the integration tests must run" >&2
        exit 1
    fi
    echo "install-prereqs: Go is not installed ($where): the integration tests (tests/integration) will be skipped; install Go 1.26 or newer to run them" >&2
    exit 0
fi
.venv/bin/python scripts/build_otel_binaries.py
