#!/usr/bin/env bash
# A local Redis lab for runbooks/redis-upgrade.yml: a primary (r1) and two
# replicas (r2, r3), each on a loopback address of its own (127.0.0.51-53,
# port 6379), run as this user from .runbook/redis-lab the way the lab
# inventory's pidfile service says. Every server stops by itself after
# REDIS_LAB_LIFETIME seconds (default an hour).
#
#   scripts/redis-lab.sh up|down|status [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-status}
dir=${2:-$PWD/.runbook/redis-lab}
lifetime=${REDIS_LAB_LIFETIME:-3600}
hosts=(r1 r2 r3)
# REDIS_LAB_NET moves the lab to other loopback addresses (the tests use
# 127.0.0.6 so as not to meet a lab a developer runs).
net=${REDIS_LAB_NET:-127.0.0.5}
addr() { echo "$net${1#r}"; }

command -v redis-server >/dev/null || { echo "redis-lab: redis-server is missing: run scripts/deps.sh" >&2; exit 1; }

running() { [ -f "$dir/$1/redis.pid" ] && kill -0 "$(cat "$dir/$1/redis.pid")" 2>/dev/null; }

conf() { # host replicaof
	cat <<CONF
# written by scripts/redis-lab.sh; runbooks/redis-upgrade.yml renders the next one
bind $(addr "$1")
# Replicas connect from 127.0.0.1 unless told: announce the address they serve on.
replica-announce-ip $(addr "$1")
port 6379
dir $dir/$1
daemonize no
save ""
appendonly no
protected-mode yes
maxmemory-policy noeviction
CONF
	[ -n "$2" ] && echo "replicaof $2 6379"
	true
}

start() { # host
	local h=$1 d=$dir/$1
	# As runbook's pidfile manager starts it: in the background, its pid kept.
	(cd "$d" && exec timeout "$lifetime" redis-server "$d/redis.conf" >>"$d/redis.log" 2>&1 < /dev/null & echo $! > "$d/redis.pid")
	for _ in $(seq 1 100); do
		redis-cli -h "$(addr "$h")" -p 6379 PING >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "redis-lab: $h did not answer; see $d/redis.log" >&2
	return 1
}

case $cmd in
up)
	for h in "${hosts[@]}"; do
		running "$h" && continue
		mkdir -p "$dir/$h"
		primary=""
		[ "$h" != r1 ] && primary=$(addr r1)
		conf "$h" "$primary" > "$dir/$h/redis.conf"
		start "$h"
	done
	for h in r2 r3; do
		for _ in $(seq 1 200); do
			redis-cli -h "$(addr "$h")" INFO replication | grep -q 'master_link_status:up' && break
			sleep 0.05
		done
	done
	"$0" status "$dir"
	;;
down)
	for h in "${hosts[@]}"; do
		if running "$h"; then kill "$(cat "$dir/$h/redis.pid")" 2>/dev/null || true; fi
	done
	rm -rf "$dir"
	;;
status)
	for h in "${hosts[@]}"; do
		if running "$h"; then
			role=$(redis-cli -h "$(addr "$h")" ROLE 2>/dev/null | head -1)
			echo "$h $(addr "$h"):6379 running, $role"
		else
			echo "$h $(addr "$h"):6379 stopped"
		fi
	done
	;;
*) echo "usage: $0 up|down|status [DIR]" >&2; exit 2 ;;
esac
