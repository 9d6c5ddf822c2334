#!/usr/bin/env bash
# The etcd demo, to become `make demo` once runbooks/upgrade-etcd.yml exists: a
# fresh lab of three etcd 3.6.16 members, a steady write load through all of
# them, the upgrade runbook to 3.7.3 under that load, then the load's report
# (writes failed, lost, longest gap), the cause of each failed or slow write
# (from the members' logs and the run's journal) and the lab's status. Without the runbook
# it stops after the lab and a short load, and says so (exit 3).
#
# It replaces the lab in LAB_DIR and leaves the new one running: make lab-down
# stops it. Linux only, like the lab. Settings: DEMO_RUNBOOK (default
# runbooks/upgrade-etcd.yml), DEMO_RATE (writes per second, default 200),
# DEMO_LOAD_SECONDS (the load's length without the runbook, default 5),
# DEMO_BIN (where runbook and etcd-load are built, default bin), and the
# lab's own (see scripts/lab.sh).
#
# With the runbook, a Prometheus of the demo's own (scripts/prometheus-lab.sh,
# data in .runbook/prometheus-etcd-demo, on DEMO_PROM_ADDR, default
# 127.0.0.1:19090) scrapes the members every second, and the upgrade analyses
# each member against the others through it (-e prometheus_url); it is
# stopped when the demo ends. DEMO_PROMETHEUS=0 leaves it out, and so does a
# machine without Debian's prometheus package (scripts/deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

runbook_file=${DEMO_RUNBOOK:-runbooks/upgrade-etcd.yml}
rate=${DEMO_RATE:-200}
load_seconds=${DEMO_LOAD_SECONDS:-5}
bindir=${DEMO_BIN:-bin}
export LAB_DIR=${LAB_DIR:-$PWD/.runbook/lab}
# The demo's lab stops by itself after this long (make lab-down stops it sooner).
export LAB_MAX_LIFETIME=${LAB_MAX_LIFETIME:-30m}
case $LAB_DIR in /*) ;; *) LAB_DIR=$PWD/$LAB_DIR ;; esac

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[[ $rate =~ ^[0-9]+$ ]] && [ "$rate" -gt 0 ] || die "DEMO_RATE=$rate is not a number of writes per second"
[[ $load_seconds =~ ^[0-9]+$ ]] && [ "$load_seconds" -gt 0 ] || die "DEMO_LOAD_SECONDS=$load_seconds is not a number of seconds"
have_runbook=
if [ -f "$runbook_file" ]; then
  have_runbook=1
  # The runbook's inventory names the lab's default addresses.
  case ${LAB_ADDRS:-127.0.0.11,127.0.0.12,127.0.0.13} in
    127.0.0.11,127.0.0.12,127.0.0.13 | "127.0.0.11 127.0.0.12 127.0.0.13") ;;
    *) die "LAB_ADDRS=$LAB_ADDRS: the lab inventory (runbooks/inventory/lab.yml) names 127.0.0.11-13; unset LAB_ADDRS to run the upgrade" ;;
  esac
  go build -o "$bindir/runbook" ./cmd/runbook
fi
go build -o "$bindir/etcd-load" ./cmd/etcd-load

say "a fresh lab: three etcd 3.6.16 members, each on its own loopback address"
scripts/lab.sh down
scripts/lab.sh up
endpoints=$(sed 's/\([^,]*\)/http:\/\/\1:2379/g' "$LAB_DIR/addrs")

# The demo's Prometheus, scraping the members' metrics (:2381); it goes when
# the demo does, and by itself after the lab's lifetime at most.
prom_url=
stop_prometheus() { :; }
if [ -n "$have_runbook" ] && [ "${DEMO_PROMETHEUS:-1}" != 0 ]; then
  say "a Prometheus scraping the members every second, for the upgrade's analysis"
  prom_env=(PROM_DIR="$PWD/.runbook/prometheus-etcd-demo" PROM_ADDR="${DEMO_PROM_ADDR:-127.0.0.1:19090}"
    PROM_TARGETS="$(sed 's/\([^,]*\)/\1:2381/g; s/,/ /g' "$LAB_DIR/addrs")" PROM_MAX_LIFETIME="$LAB_MAX_LIFETIME")
  if prom_url=$(env "${prom_env[@]}" scripts/prometheus-lab.sh up | tail -n 1); then
    stop_prometheus() { env "${prom_env[@]}" scripts/prometheus-lab.sh down >/dev/null 2>&1 || true; }
    trap stop_prometheus EXIT
    echo "Prometheus at $prom_url (its data in .runbook/prometheus-etcd-demo, gone when the demo ends)"
  else
    prom_url=
    echo "(no Prometheus: the upgrade runs without its analysis against the other members)"
  fi
fi

report=$LAB_DIR/load-report.json
load_log=$LAB_DIR/load.log
# With the runbook, the load runs until the upgrade is over (10 minutes at
# most); without it, for a few seconds.
duration=10m
[ -n "$have_runbook" ] || duration=${load_seconds}s
say "a write load: $rate writes/s to $endpoints, each write one attempt"
"$bindir/etcd-load" -endpoints "$endpoints" -rate "$rate" -duration "$duration" -out "$report" >"$load_log" 2>&1 &
load_pid=$!
trap 'kill -TERM "$load_pid" 2>/dev/null || true; stop_prometheus' EXIT

# approve_own_run approves the upgrade's point of no return from a second
# process, as a colleague would from their shell: --yes does not pass it,
# and the lab inventory lets the operator who started the run approve it
# (approve_self). It waits for the run to start, then for it to ask.
approve_own_run() {
  local id="" i
  for i in $(seq 1 600); do
    id=$("$bindir/runbook" runs 2>/dev/null | awk '/running/ {print $1; exit}')
    [ -n "$id" ] && break
    sleep 1
  done
  [ -n "$id" ] || return 0
  # exec: killing this background job then ends the approval's wait too.
  exec "$bindir/runbook" approve "$id" --wait 15m --reason "make demo: the lab approves its own run (approve_self in the lab inventory)"
}

rc=0
if [ -n "$have_runbook" ]; then
  say "runbook exec $runbook_file: the upgrade to 3.7.3, member by member, under load"
  echo "(the point of no return waits for an approval that --yes does not give; a second process approves it: runbook approve RUN_ID)"
  approve_own_run &
  approver_pid=$!
  trap 'kill -TERM "$load_pid" "$approver_pid" 2>/dev/null || true; stop_prometheus' EXIT
  analysis=()
  [ -z "$prom_url" ] || analysis=(-e prometheus_url="$prom_url")
  "$bindir/runbook" exec "$runbook_file" -i lab --yes -e lab_dir="$LAB_DIR" "${analysis[@]}" || rc=$?
  kill -TERM "$load_pid" 2>/dev/null || true
  kill -TERM "$approver_pid" 2>/dev/null || true
  wait "$approver_pid" 2>/dev/null || true
fi
load_rc=0
wait "$load_pid" || load_rc=$?
trap stop_prometheus EXIT

if [ -n "$prom_url" ]; then
  run_id=$("$bindir/runbook" runs 2>/dev/null | awk 'NR > 1 {print $1; exit}')
  # Only a run that reached an analysis has measurements to show.
  measured=
  [ -z "$run_id" ] || measured=$("$bindir/runbook" show "$run_id" | sed -n '/^measurements:/,/^$/p') || true
  if [ -n "$measured" ]; then
    say "each upgraded member against the others, through Prometheus (runbook show $run_id)"
    printf '%s\n' "$measured"
  fi
  stop_prometheus
fi

say "the load's report (also in $report)"
cat "$load_log"

# Every failed write and every write over 100 ms, by cause: one line for
# each run of them, from the members' logs and the run's journal (where
# the runbook was then).
if [ -f "$report" ]; then
  say "the cause of each failed or slow write (etcd-load -explain-logs)"
  logs=
  for d in "$LAB_DIR"/members/*/; do
    m=$(basename "$d")
    [ -f "$d/etcd.log" ] && logs=${logs:+$logs,}$m=$d/etcd.log
  done
  journal=()
  if [ -n "$have_runbook" ]; then
    # Run ids sort by their start: the newest journal is this demo's run.
    j=$(ls .runbook/runs/*.jsonl 2>/dev/null | tail -n 1) || true
    [ -n "$j" ] && journal=(-journal "$j")
  fi
  "$bindir/etcd-load" -report-from "$report" -explain-logs "$logs" "${journal[@]}" | tee "$LAB_DIR/load-explain.txt" || true
fi

say "the lab now (make lab-status)"
healthy=1
scripts/lab.sh status || healthy=

[ "$load_rc" -eq 0 ] || { echo "demo: the load lost writes or could not read them back (etcd-load exit $load_rc)" >&2; [ "$rc" -ne 0 ] || rc=1; }
[ -n "$healthy" ] || { echo "demo: the lab is not healthy after the demo" >&2; [ "$rc" -ne 0 ] || rc=1; }
if [ -z "$have_runbook" ] && [ "$rc" -eq 0 ]; then
  printf '\ndemo: %s does not exist yet, so the upgrade was not run: stopping after the lab and the load.\n' "$runbook_file" >&2
  rc=3
fi
printf 'demo: the lab keeps running for %s at most; make lab-down stops it now.\n' "$LAB_MAX_LIFETIME" >&2
exit "$rc"
