#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine with Go, idempotently.
# Every step checks first, so a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v go >/dev/null || { echo "deps: Go is required (https://go.dev/dl/)" >&2; exit 1; }
go mod download

# The SSH tests start a real OpenSSH sshd on loopback and use ssh-keygen; the
# become tests run `sudo -n`; the vault tests round-trip values through the real
# ansible-vault (ansible-core). Debian packages, installed only when missing, with
# one `apt-get update` at most, and only when something is to be installed.
missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v sudo >/dev/null || missing+=(sudo)
command -v pgrep >/dev/null || missing+=(procps)
command -v ansible-vault >/dev/null || missing+=(ansible-core)
# The redis facts and the Redis runbook's tests run real redis-server processes on loopback.
command -v redis-server >/dev/null || missing+=(redis-server)
# The report tests draw `runbook show --format html` in a headless browser
# (scripts/report-screenshot.sh).
command -v chromium >/dev/null || missing+=(chromium)
# The nginx runbook's lab and tests run nginx processes of their own on loopback.
nginx_missing=
[ -x /usr/sbin/nginx ] || { missing+=(nginx); nginx_missing=1; }
command -v curl >/dev/null || missing+=(curl)
# The analysis tests and the lab query a real Prometheus server, started on
# loopback by the tests and scripts/prometheus-lab.sh, never as the package's service.
command -v prometheus >/dev/null || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
	as_root=()
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
		as_root=(sudo)
	fi
	echo "deps: installing ${missing[*]}" >&2
	"${as_root[@]}" apt-get update -qq
	# The tests run their own sshd on loopback with a generated config; the
	# package's system service is neither needed nor started by them.
	DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# nginx's package starts the system service on port 80 where the machine
	# allows it; nothing here uses it, so it is stopped and left disabled.
	if [ -n "$nginx_missing" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
		"${as_root[@]}" systemctl disable --now nginx >/dev/null 2>&1 || true
	elif [ -n "$nginx_missing" ] && command -v service >/dev/null; then
		"${as_root[@]}" service nginx stop >/dev/null 2>&1 || true
	fi
fi

# The etcd tests (internal/etcdload, internal/labtest) and the lab run real etcd
# servers of these versions, built from Go modules into a cache; a cold build
# takes minutes, which belongs here rather than inside a test's time limit.
scripts/etcd-build.sh 3.6.16 3.7.3 >/dev/null
