#!/usr/bin/env bash
# The local nginx lab: three nginx instances (Debian's nginx, run as the
# current user) on loopback addresses of their own, for runbooks/nginx-config.yml
# and runbooks/inventory/nginx-lab.yml.
#
#   scripts/nginx-lab.sh up       start the instances on version 1 (idempotent)
#   scripts/nginx-lab.sh status   each instance's master pid and what it serves
#   scripts/nginx-lab.sh down     stop the instances, remove the lab
#
# Each instance n1..n3 listens on 127.0.0.41-43:8080 and has its own prefix
# under NGINX_LAB_DIR (default .runbook/nginx-lab): nginx.conf, nginx.pid,
# error.log, access.log and tmp/. nginx runs as a daemon with its pid file,
# which a reload by signal needs; a watchdog per instance stops it after
# NGINX_LAB_LIFETIME minutes (default 120), so a forgotten lab ends by itself.
#
# Linux only: only Linux routes all of 127.0.0.0/8 to the loopback interface
# without aliases.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
NGINX_LAB_DIR=${NGINX_LAB_DIR:-$root/.runbook/nginx-lab}
case $NGINX_LAB_DIR in /*) ;; *) NGINX_LAB_DIR=$PWD/$NGINX_LAB_DIR ;; esac
NGINX_LAB_DIR=${NGINX_LAB_DIR%/}
case $NGINX_LAB_DIR in "" | "$HOME" | "$root" | /tmp | /) echo "nginx-lab: NGINX_LAB_DIR=${NGINX_LAB_DIR:-/} cannot be the lab's folder; name a folder of its own" >&2; exit 1 ;; esac
NGINX_LAB_LIFETIME=${NGINX_LAB_LIFETIME:-120}
PORT=8080
names=(n1 n2 n3)
addrs=(127.0.0.41 127.0.0.42 127.0.0.43)

say() { printf 'nginx-lab: %s\n' "$*"; }
die() { printf 'nginx-lab: %s\n' "$*" >&2; exit 1; }

nginx_bin() {
  command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || die "nginx is not installed: run scripts/deps.sh"
}

# alive says whether pid runs: a zombie does not, though kill -0 reaches it.
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  case $st in Z* | X*) return 1 ;; esac
}

master() { cat "$NGINX_LAB_DIR/$1/nginx.pid" 2>/dev/null; }

running() {
  local pid
  pid=$(master "$1") && [ -n "$pid" ] && alive "$pid"
}

# conf writes the first config of instance $1 in $2 on $3: what
# runbooks/templates/nginx-lab-good.conf.j2 renders for version 1.
conf() {
  local dir=$2 listen=$3:$PORT
  cat <<CONF
# nginx.conf of an nginx lab instance: every path is its own, so it runs as any user.
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;

events {
    worker_connections 64;
}

http {
    access_log $dir/access.log;
    client_body_temp_path $dir/tmp/client_body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    default_type text/plain;

    server {
        listen $listen;
        location = /healthz {
            return 200 "ok\n";
        }
        location / {
            return 200 "version 1\n";
        }
    }
}
CONF
}

up() {
  local bin i name dir pid
  bin=$(nginx_bin)
  mkdir -p "$NGINX_LAB_DIR"
  touch "$NGINX_LAB_DIR/.runbook-nginx-lab"
  for i in "${!names[@]}"; do
    name=${names[$i]} dir=$NGINX_LAB_DIR/${names[$i]}
    if running "$name"; then
      say "$name runs already (pid $(master "$name"))"
      continue
    fi
    mkdir -p "$dir/tmp"
    # A config a run left is kept: up after a crash serves what was pushed.
    [ -f "$dir/nginx.conf" ] || conf "$name" "$dir" "${addrs[$i]}" >"$dir/nginx.conf"
    "$bin" -p "$dir" -c "$dir/nginx.conf" || die "$name did not start: see $dir/error.log"
    pid=$(master "$name") || die "$name wrote no pid file"
    # The watchdog: the master's pid survives reloads, so QUIT reaches it after
    # the lifetime; timeout bounds the watchdog itself.
    nohup timeout $((NGINX_LAB_LIFETIME * 60 + 30)) sh -c 'sleep "$1"; kill -QUIT "$2" 2>/dev/null; true' \
      nginx-lab-watchdog $((NGINX_LAB_LIFETIME * 60)) "$pid" >/dev/null 2>&1 &
    echo $! >"$dir/watchdog.pid"
    say "$name started on http://${addrs[$i]}:$PORT (pid $pid, stops by itself after ${NGINX_LAB_LIFETIME}m)"
  done
  for i in "${!names[@]}"; do
    wait_up "${names[$i]}" "http://${addrs[$i]}:$PORT/healthz"
  done
}

wait_up() {
  local n=0
  until curl -fsS -o /dev/null --max-time 2 "$2" 2>/dev/null; do
    n=$((n + 1))
    [ "$n" -lt 100 ] || die "$1 does not answer on $2: see $NGINX_LAB_DIR/$1/error.log"
    sleep 0.1
  done
}

down() {
  local name pid n
  [ -d "$NGINX_LAB_DIR" ] || { say "no lab at $NGINX_LAB_DIR"; return; }
  [ -f "$NGINX_LAB_DIR/.runbook-nginx-lab" ] || die "$NGINX_LAB_DIR is not an nginx lab (no .runbook-nginx-lab): not removing it"
  for name in "${names[@]}"; do
    if running "$name"; then
      pid=$(master "$name")
      kill -QUIT "$pid" 2>/dev/null || true
      n=0
      while alive "$pid" && [ "$n" -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
      alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
      say "$name stopped"
    fi
    if [ -f "$NGINX_LAB_DIR/$name/watchdog.pid" ]; then
      kill "$(cat "$NGINX_LAB_DIR/$name/watchdog.pid")" 2>/dev/null || true
    fi
  done
  rm -rf "$NGINX_LAB_DIR"
  say "removed $NGINX_LAB_DIR"
}

status() {
  local i name body
  for i in "${!names[@]}"; do
    name=${names[$i]}
    if running "$name"; then
      body=$(curl -sS --max-time 2 "http://${addrs[$i]}:$PORT/" 2>&1 || true)
      say "$name pid $(master "$name") http://${addrs[$i]}:$PORT/: $body"
    else
      say "$name not running"
    fi
  done
}

case ${1:-} in
up) up ;;
down) down ;;
status) status ;;
*) echo "usage: scripts/nginx-lab.sh up|down|status" >&2; exit 2 ;;
esac
