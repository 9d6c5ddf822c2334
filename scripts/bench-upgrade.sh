#!/usr/bin/env bash
# make bench-upgrade: what the etcd upgrade costs, by runbook and by a plain
# shell script, side by side in one run. Each way runs on a fresh lab of three
# etcd 3.6.16 members, upgraded to 3.7.3 under a steady load from etcd-load:
#
#   runbook  runbooks/upgrade-etcd.yml with every gate on, its declared waits
#            short (-e soak=1s -e preflight_window=1s): preflight, then
#            followers first, each stopped with SIGTERM while all members are
#            healthy, the leader last after a leadership transfer, gates
#            between members; the point of no return is approved by a
#            second process as soon as the run asks (approve_self in the lab
#            inventory), and that wait is printed apart, as a person's time
#   plain    scripts/upgrade-etcd-plain.sh: the same steps without the gates
#            (all healthy, stage, leader transfer for the last, TERM and wait
#            until gone, rename, start, wait for version and health)
#   idle     no upgrade: the same load alone for BENCH_IDLE_SECONDS, the
#            machine's own noise, to read the other two against
#   naive    (only when asked for) members in inventory order, each killed
#            (SIGKILL), swapped and started; no leader transfer
#   moves    (only when asked for) no upgrade: BENCH_MOVES leadership moves
#            (default 10), each to the next member, through etcd's own API
#            and 1.5 s apart: what the one move the runbook and the plain
#            script make costs the writers, without the rest of an upgrade
#
# and prints, for each: the wall time of the whole upgrade, each member's
# outage (from its stop until it answers again, sees the leader and has
# applied the leader's commit index but for 1000 entries, as etcd-load's
# -watch reads every member each 20 ms, each on its own), and the failed, lost and slowest
# writes; then, for every run of failed writes or writes slower than 100 ms
# with one cause, that cause in one line, found in the members' logs (a
# leader transfer, a member stopping or starting, a slow fsync or apply, or
# nothing logged: the machine's own load) and the step the runbook was at
# (etcd-load -explain-logs -journal). A benchmark, not a test: it fails only
# when a way cannot be run or loses a write.
#
# The runbook's point of no return waits for an approval that --yes does not
# give: a second process approves it at once, as make demo does (the lab
# inventory lets the operator approve their own run).
#
# BENCH_RUNS=N (make bench-upgrade BENCH_RUNS=10) runs the runbook way N
# times instead, each on a fresh lab, and prints every run in one table:
# scripts/bench-upgrade-series.sh.
#
# Linux only, like the lab. The lab lives in BENCH_DIR (default
# .runbook/bench) on BENCH_ADDRS (default 127.0.0.91-93, never the dev
# lab's), and goes down at the end. Settings: BENCH_RATE (writes per second,
# default 200), BENCH_WAYS (default "idle runbook plain"), BENCH_IDLE_SECONDS
# (default 30), BENCH_MOVES (default 10), BENCH_BIN_DIR (where runbook and etcd-load are built,
# default BENCH_DIR/bin).
#
# Besides its output, each way leaves in BENCH_DIR: load-WAY.json (the
# load's report), logs-WAY/ (the members' logs), explain-WAY.txt (the
# causes), summary-WAY.txt (the figures, one NAME=VALUE a line), and for the
# runbook runbook.log and journal-runbook.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=lib/etcd-gateway.sh
. scripts/lib/etcd-gateway.sh

rate=${BENCH_RATE:-200}
ways=${BENCH_WAYS:-idle runbook plain}
idle_seconds=${BENCH_IDLE_SECONDS:-30}
move_count=${BENCH_MOVES:-10}
work=${BENCH_DIR:-$root/.runbook/bench}
case $work in /*) ;; *) work=$root/$work ;; esac
addr_list=${BENCH_ADDRS:-127.0.0.91,127.0.0.92,127.0.0.93}
from=3.6.16
to=3.7.3

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[[ $rate =~ ^[0-9]+$ ]] && [ "$rate" -gt 0 ] || die "BENCH_RATE=$rate is not a number of writes per second"
[[ $idle_seconds =~ ^[0-9]+$ ]] && [ "$idle_seconds" -gt 0 ] || die "BENCH_IDLE_SECONDS=$idle_seconds is not a number of seconds"
[[ $move_count =~ ^[0-9]+$ ]] && [ "$move_count" -gt 0 ] && [ "$move_count" -le 1000 ] || die "BENCH_MOVES=$move_count is not a number of leadership moves from 1 to 1000"
for w in $ways; do
  case $w in idle | runbook | plain | naive | moves) ;; *) die "BENCH_WAYS: unknown way '$w'; the ways are idle, runbook, plain, naive and moves" ;; esac
done
IFS=, read -r -a addrs <<<"$addr_list"
[ ${#addrs[@]} -eq 3 ] || die "BENCH_ADDRS=$addr_list: give three loopback addresses, like 127.0.0.91,127.0.0.92,127.0.0.93"
for a in "${addrs[@]}"; do
  case $a in 127.0.0.11 | 127.0.0.12 | 127.0.0.13) die "BENCH_ADDRS: $a is the dev lab's (make lab-up); the bench takes a lab of its own" ;; esac
done

export LAB_DIR=$work/lab LAB_ADDRS=$addr_list LAB_VERSION=$from LAB_VERSIONS="$from $to"
# A safety net: the lab goes down by itself should this script be killed.
export LAB_MAX_LIFETIME=30m
unset KEEP_DATA

bin=${BENCH_BIN_DIR:-$work/bin}
case $bin in /*) ;; *) bin=$root/$bin ;; esac
mkdir -p "$bin" "$work"
go build -o "$bin/runbook" ./cmd/runbook
go build -o "$bin/etcd-load" ./cmd/etcd-load
endpoints=http://${addrs[0]}:2379,http://${addrs[1]}:2379,http://${addrs[2]}:2379

load_pid= approver_pid=
cleanup() {
  if [ -n "$load_pid" ]; then kill -TERM "$load_pid" 2>/dev/null || true; fi
  if [ -n "$approver_pid" ]; then kill -TERM "$approver_pid" 2>/dev/null || true; fi
  scripts/lab.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT

# inventory writes the lab inventory with the bench's addresses and folder.
inventory() {
  sed -e "s|127\.0\.0\.11|${addrs[0]}|g" -e "s|127\.0\.0\.12|${addrs[1]}|g" -e "s|127\.0\.0\.13|${addrs[2]}|g" \
    -e "s|^\( *lab_dir:\).*|\1 '$LAB_DIR'|" runbooks/inventory/lab.yml >"$work/inventory.yml"
  grep -q "${addrs[2]}:2381" "$work/inventory.yml" || die "runbooks/inventory/lab.yml no longer names 127.0.0.11-13; update this script"
}

fresh_lab() {
  scripts/lab.sh down >/dev/null
  scripts/lab.sh up | grep -v '^lab: it runs until'
}

# member_pid prints the pid of member $1 from its pidfile, if it runs.
member_pid() {
  local pid
  pid=$(cat "$LAB_DIR/members/$1/etcd.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# naive upgrades the members in inventory order: SIGKILL, swap, start, wait.
naive() {
  local m pid i
  for m in m1 m2 m3; do
    pid=$(member_pid "$m") || die "naive: $m is not running"
    echo "naive: $m: SIGKILL (pid $pid)"
    kill -KILL "$pid"
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    ! kill -0 "$pid" 2>/dev/null || die "naive: $m (pid $pid) still runs 5s after SIGKILL"
    cp "$LAB_DIR/dist/etcd-$to" "$LAB_DIR/members/$m/bin/etcd.new"
    mv -f "$LAB_DIR/members/$m/bin/etcd.new" "$LAB_DIR/members/$m/bin/etcd"
    # up starts the stopped member on the binary it has now, and waits
    # until every member is healthy.
    scripts/lab.sh up | grep -E "^lab: $m started" || die "naive: $m did not start again"
  done
}

# moves hands leadership on move_count times, each time from the leader to
# the next member in address order, and waits until that member leads (at
# most 5 s) before the next move, 1.5 s later.
moves() {
  local ids=() i k li t
  for i in 0 1 2; do
    ids[i]=$(member_id "$i")
    [ -n "${ids[i]}" ] || die "moves: ${addrs[$i]} does not answer"
  done
  for ((k = 1; k <= move_count; k++)); do
    li=$(leader_index) || die "moves: no leader before move $k"
    t=$(((li + 1) % 3))
    hand_leadership "$li" "${ids[t]}" || die "moves: move $k (m$((li + 1))→m$((t + 1))) failed"
    poll 500 leads "$li" "${ids[t]}" || die "moves: m$((t + 1)) did not lead 5 s after move $k"
    echo "moves: $k of $move_count: m$((li + 1))→m$((t + 1))"
    [ "$k" -eq "$move_count" ] || sleep 1.5
  done
}

# approve_own_run approves the runbook's point of no return as soon as the
# run asks, as a colleague at the ready would: --yes never approves, and the
# lab inventory lets the operator who started the run count (approve_self).
# It looks for the run's journal with the shell alone: a runbook process
# every 100 ms would compete for the CPU with the run it waits for.
approve_own_run() {
  local id="" i j
  for ((i = 0; i < 3000; i++)); do
    for j in "$work"/state/runs/*.jsonl; do
      [ -e "$j" ] && id=$(basename "$j" .jsonl)
    done
    [ -n "$id" ] && break
    sleep 0.1
  done
  [ -n "$id" ] || return 0
  # exec: a TERM to this background job ends the approval's wait too.
  exec "$bin/runbook" approve "$id" --state-dir "$work/state" --wait 15m \
    --reason "make bench-upgrade: the lab approves its own run (approve_self in the lab inventory)" >/dev/null
}

# approval_wait prints how long the run waited for its approval (seconds),
# from its journal: a person's time, not the runbook's.
approval_wait() {
  local journal asked given
  journal=$(ls -t "$work"/state/runs/*.jsonl 2>/dev/null | head -n 1)
  [ -n "$journal" ] || { echo 0; return; }
  asked=$(grep '"kind":"approval_wait"' "$journal" | sed -n 's/^{"seq":[0-9]*,"time":"\([^"]*\)".*/\1/p' | head -n 1)
  given=$(grep '"kind":"approval"' "$journal" | sed -n 's/^{"seq":[0-9]*,"time":"\([^"]*\)".*/\1/p' | tail -n 1)
  if [ -z "$asked" ] || [ -z "$given" ]; then echo 0; return; fi
  awk -v a="$(date -d "$asked" +%s.%N)" -v b="$(date -d "$given" +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}

# field prints the number after "NAME": in the report's first line that has it.
field() {
  sed -n "s/^ *\"$1\": \([0-9.e+-]*\),\{0,1\}\$/\1/p" "$2" | head -n 1
}

# outages prints "NAME MS" for each member outage the explanation lists.
outages() {
  local a i
  while IFS= read -r line; do
    a=$(sed -n 's|^outage of http://\([0-9.]*\):2379: .*(\([0-9]*\) ms).*|\1 \2|p' <<<"$line")
    [ -n "$a" ] || continue
    for i in 0 1 2; do
      if [ "${a%% *}" = "${addrs[$i]}" ]; then echo "m$((i + 1)) ${a#* }"; fi
    done
  done <"$1"
}

approval=0 swaps=
declare -A stall failed slowest lost took verified outage slow
for w in $ways; do
  say "$w: a fresh lab"
  fresh_lab
  inventory
  report=$work/load-$w.json log=$work/load-$w.log
  rm -f "$report"
  "$bin/etcd-load" -endpoints "$endpoints" -rate "$rate" -duration 15m -watch 20ms -out "$report" >"$log" 2>&1 &
  load_pid=$!
  # Some writes before the upgrade starts, as in production.
  sleep 2
  if [ "$w" = idle ]; then
    say "idle: no upgrade, $rate writes/s for ${idle_seconds}s"
  elif [ "$w" = moves ]; then
    say "moves: no upgrade, $move_count leadership moves under $rate writes/s"
  else
    say "$w: the upgrade $from → $to under $rate writes/s"
  fi
  start=$(date +%s.%N)
  case $w in
    idle) sleep "$idle_seconds" ;;
    runbook)
      rc=0
      rm -rf "$work/state"
      approve_own_run >"$work/approve.log" 2>&1 &
      approver_pid=$!
      "$bin/runbook" exec runbooks/upgrade-etcd.yml -i "$work/inventory.yml" --yes \
        --state-dir "$work/state" -e lab_dir="$LAB_DIR" -e soak=1s -e preflight_window=1s >"$work/runbook.log" 2>&1 || rc=$?
      kill -TERM "$approver_pid" 2>/dev/null || true
      wait "$approver_pid" 2>/dev/null || true
      approver_pid=
      grep -E '" (changed|failed)|end: ' "$work/runbook.log" || true
      approval=$(approval_wait)
      swaps=$(sed -n 's/^.* \(m[0-9]\) step [0-9/]* "install the target binary" changed (\(.*\))$/\1 \2/p' "$work/runbook.log" |
        awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')
      [ $rc -eq 0 ] || die "runbook: exit $rc; its output is in $work/runbook.log"
      ;;
    plain) scripts/upgrade-etcd-plain.sh "$LAB_DIR" "$to" || die "plain: the script failed" ;;
    naive) naive ;;
    moves) moves ;;
  esac
  end=$(date +%s.%N)
  sleep 2
  kill -TERM "$load_pid"
  load_rc=0
  wait "$load_pid" || load_rc=$?
  load_pid=
  cat "$log"
  [ -f "$report" ] || die "$w: etcd-load wrote no report (exit $load_rc)"
  stall[$w]=$(field ms "$report")
  failed[$w]=$(field failed "$report")
  slowest[$w]=$(field max_ms "$report")
  lost[$w]=$(field lost "$report")
  took[$w]=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  verified[$w]=yes
  grep -q '"complete": true' "$report" || verified[$w]=no
  scripts/lab.sh status | tail -n 4
  # The members' own logs, kept past the lab: what etcd saw during each way.
  rm -rf "$work/logs-$w" && mkdir -p "$work/logs-$w"
  for m in m1 m2 m3; do cp "$LAB_DIR/members/$m/etcd.log" "$work/logs-$w/$m.log" 2>/dev/null || true; done
  journal=()
  if [ "$w" = runbook ]; then
    # Run ids sort by their start: the newest journal is this way's run.
    j=$(ls "$work/state/runs/"*.jsonl 2>/dev/null | tail -n 1) || true
    if [ -n "$j" ]; then
      cp "$j" "$work/journal-runbook.jsonl"
      journal=(-journal "$work/journal-runbook.jsonl")
    fi
  fi
  "$bin/etcd-load" -report-from "$report" "${journal[@]}" \
    -explain-logs "m1=$work/logs-$w/m1.log,m2=$work/logs-$w/m2.log,m3=$work/logs-$w/m3.log" >"$work/explain-$w.txt" || true
  outage[$w]=$(outages "$work/explain-$w.txt" | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')
  [ -n "${outage[$w]}" ] || outage[$w]="none"
  slow[$w]=$(field slow "$report")
  # The figures of this way, for scripts/bench-upgrade-series.sh: each
  # member's longest outage (the watch also counts a member that did not
  # answer a status read within 500 ms, which a busy machine causes).
  {
    echo "took=${took[$w]}"
    echo "failed=${failed[$w]}"
    echo "lost=${lost[$w]}"
    echo "slowest=${slowest[$w]}"
    echo "slow=${slow[$w]}"
    echo "verified=${verified[$w]}"
    for m in m1 m2 m3; do
      echo "outage_$m=$(outages "$work/explain-$w.txt" | awk -v m="$m" '$1 == m && $2 > max { max = $2 } END { print max + 0 }')"
    done
    echo "causes=$(sed -n 's/^cause \([a-z-]*\): \([0-9]*\) failed, \([0-9]*\) slow.*/\1:\2\/\3/p' "$work/explain-$w.txt" | paste -s -d ' ' -)"
    echo "load=$(cut -d' ' -f1-3 /proc/loadavg)"
  } >"$work/summary-$w.txt"
done

say "results ($rate writes/s, one attempt per write; details in $work/load-*.json, member logs in $work/logs-*)"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
printf '%-26s' ""
for w in $ways; do printf '%-14s' "$w"; done
printf '\n'
row() {
  local name=$1 fmt=$2 w
  local -n arr=$3
  printf '%-26s' "$name"
  for w in $ways; do
    # shellcheck disable=SC2059
    printf "$fmt" "${arr[$w]}"
  done
  printf '\n'
}
row "longest write stall (ms)" '%-14.0f' stall
row "failed writes" '%-14s' failed
printf '%-26s' "retried writes"
for w in $ways; do printf '%-14s' "0"; done
printf '  (etcd-load never retries: every write is one attempt)\n'
row "slowest write (ms)" '%-14.0f' slowest
row "writes over 100 ms" '%-14s' slow
row "lost writes" '%-14s' lost
row "read back complete" '%-14s' verified
row "took (s)" '%-14s' took
case " $ways " in
  *" runbook "*)
    echo
    echo "runbook: waited ${approval}s of that for the approval of its point of no return (a person's time, not the runbook's)"
    echo "runbook: the install swap inside each outage: ${swaps:-not seen}"
    ;;
esac
echo
echo "each member's outage (ms; from its stop until it answers, sees the leader and has caught up):"
for w in $ways; do printf '  %-10s %s\n' "$w" "${outage[$w]}"; done
for w in $ways; do
  say "$w: failed and slow writes by cause (one line for each run of them), and outages"
  cat "$work/explain-$w.txt"
done

rc=0
for w in $ways; do
  if [ "${lost[$w]}" != 0 ] || [ "${verified[$w]}" != yes ]; then
    echo "bench: $w: acknowledged writes were lost or could not be read back" >&2
    rc=1
  fi
done
# The runbook's targets: at most 1.2 times the plain script's time plus the
# waits the runbook declares (three soaks of 1s and a preflight window of
# 1s), and at most 12s; each member's outage at most 2s.
case " $ways " in
  *" plain "*) [ -n "${took[runbook]:-}" ] &&
    awk -v r="${took[runbook]}" -v a="$approval" -v p="${took[plain]}" 'BEGIN {
      t = 1.2 * p + 4; if (t > 12) t = 12; r -= a
      printf "runbook: %.1fs for the upgrade less %.1fs waiting for the approval, target %.1fs (1.2 x plain %.1fs + 4s of declared waits, at most 12s): %s\n", r, a, t, p, (r <= t ? "on target" : "off target") }'
    ;;
esac
case " $ways " in
  *" runbook "*)
    awk -v o="${outage[runbook]}" 'BEGIN { n = split(o, parts, ", "); worst = 0
      for (i = 1; i <= n; i++) { split(parts[i], f, " "); if (f[2] + 0 > worst) worst = f[2] + 0 }
      printf "runbook: longest member outage %d ms, target 2000 ms: %s\n", worst, (worst <= 2000 ? "on target" : "off target") }'
    ;;
esac
case " $ways " in
  *" runbook "*)
    if [ "${failed[runbook]}" = 0 ] && awk -v s="${slowest[runbook]}" 'BEGIN { exit !(s < 100) }'; then
      echo "runbook: on target (no failed write, slowest write under 100 ms)"
    else
      echo "runbook: off target (want no failed write and the slowest write under 100 ms)"
    fi
    ;;
esac
exit "$rc"
