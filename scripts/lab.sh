#!/usr/bin/env bash
# The local etcd lab: a 3-member etcd cluster on loopback addresses of its own,
# each member run the way runbook's pidfile service manager runs a service, so
# that the upgrade runbook can stop, swap and start members for real.
#
#   scripts/lab.sh up       build etcd (cached), start the members, wait until healthy
#   scripts/lab.sh status   each member's process, versions, role and health
#   scripts/lab.sh down     stop the members (KILL: their data goes too), remove the lab;
#                           with KEEP_DATA=1, TERM one at a time (KILL after 10s)
#
# Linux only: members listen on 127.0.0.11-13, and only Linux routes all of
# 127.0.0.0/8 to the loopback interface without aliases.
#
# The lab runs until `down`: members have no lifetime of their own. `up` is
# idempotent (a running member of this lab is left as it is, a stopped one is
# started again) and refuses to start when anything else holds one of the
# members' addresses and ports (client :2379, peer :2380, metrics :2381).
#
# Files, under LAB_DIR (default .runbook/lab in the repository):
#   dist/etcd-VERSION      the binaries a runbook swaps in (one per LAB_VERSIONS)
#   members/mN/bin/etcd    the binary member N runs (its own copy: a swap on one
#                          member does not change the others)
#   members/mN/start.sh    runs member N in the foreground; `up` and the lab
#                          inventory's pidfile service both start it
#   members/mN/{data,etcd.log,etcd.pid}
#   cluster-id, token, addrs   what makes this lab's cluster recognisable
#
# Environment:
#   LAB_DIR           the lab's folder
#   LAB_ADDRS         the members' addresses (default 127.0.0.11,127.0.0.12,127.0.0.13)
#   LAB_TOKEN         --initial-cluster-token of a new cluster (default: random)
#   LAB_VERSION       the etcd version a new member starts on (default 3.6.16)
#   LAB_VERSIONS      the versions put in dist/ (default "3.6.16 3.7.3")
#   LAB_WAIT          how long `up` waits for health (default 30s)
#   LAB_MAX_LIFETIME  if set (like 15m), `up` also starts a watchdog that runs
#                     `down` after that long (tests use it, so that a lab
#                     outlives no test run)
#   KEEP_DATA=1       `down` keeps the data, so that the next `up` restarts the
#                     same cluster
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
self=$root/scripts/lab.sh

LAB_DIR=${LAB_DIR:-$root/.runbook/lab}
case $LAB_DIR in /*) ;; *) LAB_DIR=$PWD/$LAB_DIR ;; esac
LAB_DIR=${LAB_DIR%/}
# down removes LAB_DIR: never a folder that holds more than a lab.
case $LAB_DIR in "" | "$HOME" | "$root" | /tmp | /) echo "lab: LAB_DIR=${LAB_DIR:-/} cannot be the lab's folder; name a folder of its own" >&2; exit 1 ;; esac
LAB_VERSION=${LAB_VERSION:-3.6.16}
LAB_VERSIONS=${LAB_VERSIONS:-3.6.16 3.7.3}
LAB_WAIT=${LAB_WAIT:-30s}
KEEP_DATA=${KEEP_DATA:-}
marker=$LAB_DIR/.runbook-lab
# The lab helper's path, set by build_labctl.
labctl=

# How long down waits for a member after SIGTERM before SIGKILL.
term_wait=10

say() { printf 'lab: %s\n' "$*"; }
die() { printf 'lab: %s\n' "$*" >&2; exit 1; }

# q quotes a word for sh.
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# alive says whether pid runs: a zombie does not, though kill -0 reaches it.
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  case $st in Z* | X*) return 1 ;; esac
}

# The addresses: those the lab was made with, else LAB_ADDRS, else the default.
load_addrs() {
  local recorded=
  [ -f "$LAB_DIR/addrs" ] && recorded=$(cat "$LAB_DIR/addrs")
  local want=${LAB_ADDRS:-${recorded:-127.0.0.11,127.0.0.12,127.0.0.13}}
  want=$(printf '%s' "$want" | tr ' ' ',' | tr -s ',')
  want=${want#,}
  want=${want%,}
  if [ -n "$recorded" ] && [ "$recorded" != "$want" ]; then
    die "the lab in $LAB_DIR was made with addresses $recorded, not $want; run 'scripts/lab.sh down' first, or use another LAB_DIR"
  fi
  IFS=, read -r -a addrs <<<"$want"
  [ ${#addrs[@]} -ge 1 ] || die "LAB_ADDRS names no address"
  local a
  for a in "${addrs[@]}"; do
    [[ $a =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "LAB_ADDRS: '$a' is not a loopback address like 127.0.0.11"
  done
  addr_list=$want
}

require_linux() {
  [ "$(uname -s)" = Linux ] || die "the lab runs on Linux only: its members listen on 127.0.0.11-13, which other systems do not route to loopback without aliases"
}

# seconds turns a duration like 90s, 15m or 2h into seconds.
seconds() {
  [[ $1 =~ ^[0-9]+[smh]?$ ]] || return 1
  case $1 in
    *s) echo "${1%s}" ;;
    *m) echo $((${1%m} * 60)) ;;
    *h) echo $((${1%h} * 3600)) ;;
    *) echo "$1" ;;
  esac
}

build_labctl() {
  # One build per content of its sources and the module's requirements,
  # shared by every lab of this machine (tests start many): linking it
  # takes seconds even when Go's cache holds the packages.
  local key dir
  key=$(cd "$root" && cat scripts/lab/labctl/*.go go.mod go.sum | sha256sum | cut -c1-16)
  dir=${RUNBOOK_CACHE:-$HOME/.cache/runbook}/labctl/$key
  labctl=$dir/labctl
  [ -x "$labctl" ] && return
  mkdir -p "$dir"
  (cd "$root" && go build -o "$labctl.tmp.$$" ./scripts/lab/labctl) || die "building the lab helper failed"
  mv -f "$labctl.tmp.$$" "$labctl"
}

# install_file copies $1 to $2 through a temporary file, unless $2 has the
# same content already.
install_file() {
  cmp -s "$1" "$2" 2>/dev/null && return 0
  cp "$1" "$2.tmp.$$"
  chmod 0755 "$2.tmp.$$"
  mv -f "$2.tmp.$$" "$2"
}

write_start_script() {
  local name=m$1 mdir=$LAB_DIR/members/m$1 a=${addrs[$(($1 - 1))]}
  local cluster= j
  for j in "${!addrs[@]}"; do
    cluster+="${cluster:+,}m$((j + 1))=http://${addrs[$j]}:2380"
  done
  cat >"$mdir/start.sh.tmp" <<EOF
#!/bin/sh
# Written by scripts/lab.sh up: runs lab member $name in the foreground. The
# lab starts it detached (setsid, log file, pidfile) as the inventory's
# pidfile service does, so a runbook restarts the member exactly like this.
# --initial-cluster* only matter on the first start; later starts, by either
# binary, reuse the data dir.
exec $(q "$mdir/bin/etcd") \\
  --name $name --data-dir $(q "$mdir/data") \\
  --listen-client-urls http://$a:2379 --advertise-client-urls http://$a:2379 \\
  --listen-peer-urls http://$a:2380 --initial-advertise-peer-urls http://$a:2380 \\
  --listen-metrics-urls http://$a:2381 \\
  --initial-cluster $cluster \\
  --initial-cluster-token $(q "$token") --initial-cluster-state new
EOF
  chmod 0755 "$mdir/start.sh.tmp"
  mv -f "$mdir/start.sh.tmp" "$mdir/start.sh"
}

# start_member starts member $1 as runbook's pidfile manager starts a
# service: detached in a session of its own, output to the log, pid to the
# pidfile. setsid does not fork here (a background job of a non-interactive
# shell is no group leader), so $! is etcd's pid once start.sh execs it.
start_member() {
  local name=m$1 mdir=$LAB_DIR/members/m$1
  local log=$mdir/etcd.log pidf=$mdir/etcd.pid
  : >>"$log"
  if command -v setsid >/dev/null 2>&1; then
    setsid "$mdir/start.sh" >>"$log" 2>&1 </dev/null &
  else
    nohup "$mdir/start.sh" >>"$log" 2>&1 </dev/null &
  fi
  local pid=$!
  echo "$pid" >"$pidf.tmp.$$"
  mv -f "$pidf.tmp.$$" "$pidf"
  say "$name started on ${addrs[$(($1 - 1))]} (pid $pid, $(basename "$(readlink -f "$mdir/bin/etcd")") $("$mdir/bin/etcd" --version | sed -n 's/^etcd Version: //p'))"
}

stop_watchdog() {
  local wpid
  [ -f "$LAB_DIR/watchdog.pid" ] || return 0
  wpid=$(cat "$LAB_DIR/watchdog.pid")
  if [ "${LAB_WATCHDOG:-}" != 1 ] && alive "$wpid"; then
    # Its own session and group: the sleep goes with it.
    kill -TERM -- "-$wpid" 2>/dev/null || true
  fi
  rm -f "$LAB_DIR/watchdog.pid"
}

start_watchdog() {
  [ -n "${LAB_MAX_LIFETIME:-}" ] || return 0
  local secs
  secs=$(seconds "$LAB_MAX_LIFETIME") && [ "$secs" -gt 0 ] || die "LAB_MAX_LIFETIME=$LAB_MAX_LIFETIME is not a duration like 90s, 15m or 2h"
  stop_watchdog
  LAB_DIR=$LAB_DIR LAB_WATCHDOG=1 setsid sh -c 'sleep "$1" && exec "$2" down' lab-watchdog "$secs" "$self" \
    >/dev/null 2>&1 </dev/null &
  echo $! >"$LAB_DIR/watchdog.pid"
  say "watchdog: the lab goes down by itself in $LAB_MAX_LIFETIME (pid $!)"
}

cmd_up() {
  require_linux
  command -v go >/dev/null || die "Go is needed to build etcd and the lab helper"
  if [ -n "${LAB_MAX_LIFETIME:-}" ]; then
    local life
    life=$(seconds "$LAB_MAX_LIFETIME") && [ "$life" -gt 0 ] || die "LAB_MAX_LIFETIME=$LAB_MAX_LIFETIME is not a duration like 90s, 15m or 2h"
  fi
  load_addrs
  mkdir -p "$LAB_DIR"
  touch "$marker"

  local v bin
  case " $LAB_VERSIONS " in *" $LAB_VERSION "*) ;; *) die "LAB_VERSION $LAB_VERSION is not among LAB_VERSIONS ($LAB_VERSIONS)" ;; esac
  mkdir -p "$LAB_DIR/dist"
  for v in $LAB_VERSIONS; do
    bin=$("$root/scripts/etcd-build.sh" "$v") || die "building etcd $v failed"
    install_file "$bin" "$LAB_DIR/dist/etcd-$v"
  done
  build_labctl

  local probe rc=0
  probe=$("$labctl" probe -dir "$LAB_DIR" -addrs "$addr_list" 2>"$LAB_DIR/probe.err") || rc=$?
  if [ $rc -ne 0 ]; then
    sed 's/^/lab: /' "$LAB_DIR/probe.err" >&2
    rm -f "$LAB_DIR/probe.err"
    [ $rc -eq 3 ] && die "refusing to start: the addresses and ports above are not free and not this lab's ($LAB_DIR)"
    die "probing the members' ports failed"
  fi
  rm -f "$LAB_DIR/probe.err"

  # Recorded once the ports are known to be ours to take.
  if [ -f "$LAB_DIR/token" ]; then
    token=$(cat "$LAB_DIR/token")
  else
    token=${LAB_TOKEN:-runbook-lab-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')}
    printf '%s\n' "$token" >"$LAB_DIR/token"
  fi
  printf '%s\n' "$addr_list" >"$LAB_DIR/addrs"

  local started=0 name state pid i
  while read -r name state pid; do
    i=${name#m}
    case $state in
      running) say "$name already running (pid $pid)" ;;
      free)
        mkdir -p "$LAB_DIR/members/$name/bin"
        # A member keeps the binary it has: after an upgrade, a restart
        # must not put the old version back.
        [ -x "$LAB_DIR/members/$name/bin/etcd" ] || install_file "$LAB_DIR/dist/etcd-$LAB_VERSION" "$LAB_DIR/members/$name/bin/etcd"
        write_start_script "$i"
        start_member "$i"
        started=$((started + 1))
        ;;
      answers) die "$name: ${addrs[$((i - 1))]}:2379 answers as this lab's $name, but $LAB_DIR/members/$name/etcd.pid names no etcd of this lab; stop that process by hand, then run up again" ;;
      *) die "unexpected answer from the lab helper: $name $state $pid" ;;
    esac
  done <<<"$probe"

  rc=0
  "$labctl" wait -dir "$LAB_DIR" -addrs "$addr_list" -timeout "$LAB_WAIT" || rc=$?
  if [ $rc -ne 0 ]; then
    die "the lab is not healthy; the logs are $LAB_DIR/members/m*/etcd.log; 'scripts/lab.sh down' stops what runs"
  fi
  start_watchdog
  if [ $started -eq 0 ]; then
    say "already up and healthy: nothing started"
  else
    say "up: $started member(s) started"
  fi
  say "it runs until 'scripts/lab.sh down' (make lab-down); runbook drives it with: -i lab -e lab_dir=$LAB_DIR"
}

# lab_procs prints "PID NAME" for every process that runs a member of this
# lab, whose --data-dir is LAB_DIR/members/NAME/data. Pidfiles are not
# enough: a runbook may have restarted a member, and a test's folder may be
# gone while its members still run.
lab_procs() {
  local p arg prev
  for p in /proc/[0-9]*; do
    prev=
    { while IFS= read -r -d '' arg; do
      if [ "$prev" = --data-dir ]; then
        case $arg in
          "$LAB_DIR"/members/*/data)
            alive "${p#/proc/}" && echo "${p#/proc/} $(basename "$(dirname "$arg")")"
            break
            ;;
        esac
      fi
      prev=$arg
    done <"$p/cmdline"; } 2>/dev/null || true
  done
}

# wait_gone waits for member $1's process $2 to end: SIGKILL after
# term_wait seconds, a failure if even that does not end it.
wait_gone() {
  local i
  for ((i = 0; i < (term_wait + 5) * 20; i++)); do
    alive "$2" || return 0
    if [ $i -eq $((term_wait * 20)) ]; then
      say "$1 (pid $2) still runs ${term_wait}s after SIGTERM: SIGKILL"
      kill -KILL "$2" 2>/dev/null || true
    fi
    sleep 0.05
  done
  die "$1 (pid $2) still runs after SIGKILL"
}

cmd_down() {
  if [ -d "$LAB_DIR" ] && [ ! -f "$marker" ]; then
    die "$LAB_DIR is not a lab folder (no $(basename "$marker")); not touching it"
  fi
  [ -d "$LAB_DIR" ] && stop_watchdog

  local name pid k
  local -a names=() pids=()
  while read -r pid name; do
    [ -n "$pid" ] || continue
    names+=("$name")
    pids+=("$pid")
  done <<<"$(lab_procs)"

  if [ "$KEEP_DATA" = 1 ]; then
    # The data stays: each member shuts down cleanly, one after the other.
    # Stopped together, a leader hands leadership to a member that is
    # stopping too, and waits seconds for a transfer that cannot finish.
    for k in "${!pids[@]}"; do
      kill -TERM "${pids[$k]}" 2>/dev/null || true
      wait_gone "${names[$k]}" "${pids[$k]}"
    done
  else
    # The data goes with the lab: nothing to shut down cleanly for.
    for k in "${!pids[@]}"; do
      kill -KILL "${pids[$k]}" 2>/dev/null || true
    done
    for k in "${!pids[@]}"; do
      wait_gone "${names[$k]}" "${pids[$k]}"
    done
  fi
  for k in "${!pids[@]}"; do
    say "${names[$k]} stopped (pid ${pids[$k]})"
  done

  if [ ! -d "$LAB_DIR" ]; then
    [ ${#pids[@]} -gt 0 ] || say "nothing to stop: $LAB_DIR does not exist"
    return 0
  fi
  [ ${#pids[@]} -gt 0 ] || say "no member was running"
  if [ "$KEEP_DATA" = 1 ]; then
    rm -f "$LAB_DIR"/members/*/etcd.pid
    say "data kept in $LAB_DIR (KEEP_DATA=1); 'scripts/lab.sh up' restarts the same cluster"
  else
    rm -rf -- "$LAB_DIR"
    say "removed $LAB_DIR"
  fi
}

cmd_status() {
  require_linux
  [ -f "$marker" ] || die "no lab in $LAB_DIR; 'scripts/lab.sh up' (make lab-up) starts one"
  load_addrs
  build_labctl
  "$labctl" status -dir "$LAB_DIR" -addrs "$addr_list"
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *)
    echo "usage: scripts/lab.sh up|status|down   (see the top of the script for its settings)" >&2
    exit 2
    ;;
esac
