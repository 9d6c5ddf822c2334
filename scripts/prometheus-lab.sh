#!/usr/bin/env bash
# One Prometheus server for the lab and the demos, on loopback, scraping the
# etcd lab's members and the demo services every second, so that runbooks
# can judge a change by PromQL (the analysis module, assert-metric's
# prometheus source).
#
#   scripts/prometheus-lab.sh up      start it (idempotent), wait until ready, print its URL
#   scripts/prometheus-lab.sh status  whether it runs, and its targets' health
#   scripts/prometheus-lab.sh url     print its URL
#   scripts/prometheus-lab.sh down    stop it and remove its data
#
# It is Debian's prometheus package (scripts/deps.sh installs it), never the
# package's system service: one process of our own, with its own data dir,
# that stops by itself after PROM_MAX_LIFETIME.
#
# Environment:
#   PROM_DIR           its folder: config, data, log, pid (default .runbook/prometheus)
#   PROM_ADDR          where it listens (default 127.0.0.1:19090; loopback only)
#   PROM_TARGETS       host:port targets to scrape (default: the etcd lab's
#                      metrics, 127.0.0.11-13:2381, and the demo services,
#                      127.0.0.1:18081-18083)
#   PROM_MAX_LIFETIME  it stops by itself after this long (default 1h)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
PROM_DIR=${PROM_DIR:-$root/.runbook/prometheus}
case $PROM_DIR in /*) ;; *) PROM_DIR=$PWD/$PROM_DIR ;; esac
PROM_DIR=${PROM_DIR%/}
case $PROM_DIR in "" | "$HOME" | "$root" | /tmp | /) echo "prometheus-lab: PROM_DIR=${PROM_DIR:-/} cannot be its folder; name a folder of its own" >&2; exit 1 ;; esac
PROM_ADDR=${PROM_ADDR:-127.0.0.1:19090}
PROM_TARGETS=${PROM_TARGETS:-127.0.0.11:2381 127.0.0.12:2381 127.0.0.13:2381 127.0.0.1:18081 127.0.0.1:18082 127.0.0.1:18083}
PROM_MAX_LIFETIME=${PROM_MAX_LIFETIME:-1h}
pidfile=$PROM_DIR/prometheus.pid
url=http://$PROM_ADDR

say() { printf 'prometheus-lab: %s\n' "$*"; }
die() { printf 'prometheus-lab: %s\n' "$*" >&2; exit 1; }

case ${PROM_ADDR%:*} in 127.*) ;; *) die "PROM_ADDR=$PROM_ADDR: the lab's Prometheus listens on 127.0.0.0/8 only" ;; esac

# running prints the pid of our server when it runs.
running() {
	[ -f "$pidfile" ] || return 1
	local pid
	pid=$(cat "$pidfile")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	# Only our own process: its command line names our config file.
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--config.file=$PROM_DIR/prometheus.yml" || return 1
	echo "$pid"
}

ready() { curl -fsS -m 2 "$url/-/ready" >/dev/null 2>&1; }

up() {
	command -v prometheus >/dev/null || die "prometheus is not installed; scripts/deps.sh installs Debian's package"
	if pid=$(running); then
		say "already running (pid $pid) at $url"
		echo "$url"
		return
	fi
	if ready; then
		die "something else answers at $url; stop it or set PROM_ADDR"
	fi
	mkdir -p "$PROM_DIR/data"
	{
		echo "# written by scripts/prometheus-lab.sh"
		echo "global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }"
		echo "scrape_configs:"
		echo "  - job_name: lab"
		echo "    static_configs:"
		echo "      - targets:"
		for t in $PROM_TARGETS; do echo "          - '$t'"; done
	} >"$PROM_DIR/prometheus.yml"
	# timeout bounds its life; setsid detaches it from this shell.
	setsid timeout --signal=TERM --kill-after=20s "$PROM_MAX_LIFETIME" \
		prometheus --config.file="$PROM_DIR/prometheus.yml" --storage.tsdb.path="$PROM_DIR/data" \
		--storage.tsdb.retention.time=2h --web.listen-address="$PROM_ADDR" --log.level=warn \
		>>"$PROM_DIR/prometheus.log" 2>&1 </dev/null &
	local tpid=$!
	# The pid file names prometheus itself, the child of timeout.
	for _ in $(seq 1 100); do
		child=$(pgrep -P "$tpid" prometheus || true)
		[ -n "$child" ] && break
		sleep 0.1
	done
	[ -n "${child:-}" ] || die "prometheus did not start; see $PROM_DIR/prometheus.log"
	echo "$child" >"$pidfile"
	for _ in $(seq 1 300); do
		if ready; then
			say "running (pid $child) at $url, scraping $PROM_TARGETS every 1s, for at most $PROM_MAX_LIFETIME"
			echo "$url"
			return
		fi
		kill -0 "$child" 2>/dev/null || die "prometheus exited; see $PROM_DIR/prometheus.log: $(tail -3 "$PROM_DIR/prometheus.log")"
		sleep 0.1
	done
	die "prometheus at $url not ready after 30s; see $PROM_DIR/prometheus.log"
}

down() {
	if pid=$(running); then
		kill -TERM "$pid"
		for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
		say "stopped (pid $pid)"
	else
		say "not running"
	fi
	rm -rf "$PROM_DIR"
}

status() {
	if pid=$(running); then
		say "running (pid $pid) at $url"
		curl -fsS -m 5 "$url/api/v1/query" --data-urlencode 'query=up' |
			tr '{' '\n' | sed -n 's/.*"instance":"\([^"]*\)".*/\1/p' | sed 's/^/  target /' || true
	else
		say "not running"
		return 3
	fi
}

case ${1:-} in
up) up ;;
down) down ;;
status) status ;;
url) echo "$url" ;;
*) die "usage: $0 up|status|url|down" ;;
esac
