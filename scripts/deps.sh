#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine with Go, idempotently.
# Every step checks first, so a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v go >/dev/null || { echo "deps: Go is required (https://go.dev/dl/)" >&2; exit 1; }
go mod download
