#!/usr/bin/env bash
# make bench-upgrade BENCH_RUNS=N (or make bench-upgrade-series): the
# runbook way of scripts/bench-upgrade.sh N times, each on a fresh lab under
# BENCH_RATE writes/s (default 200), and every run in one table: wall time
# of the upgrade, each member's longest outage, failed, lost and slowest
# writes, the writes over 100 ms and their causes; then how many runs had no
# failed and no lost write, and the medians. All runs are shown, none is
# dropped. A run whose preflight refused to start (on a busy machine the
# quiet-cluster gate may find proposals pending) is a row too, marked
# refused, and another run takes its place, up to twice BENCH_RUNS in all.
#
# Each run keeps its files in BENCH_DIR/run-N (default
# .runbook/bench-series/run-N): bench.log (its whole output), load-runbook.json,
# logs-runbook/ (the members' logs), journal-runbook.jsonl, runbook.log and
# explain-runbook.txt (each failed or slow write's cause, one line for each
# run of them). Settings: BENCH_RUNS (default 10), BENCH_RATE, BENCH_ADDRS,
# BENCH_DIR, and BENCH_SERIES_WAY: runbook (the default) or plain, the
# script without gates, as a control: what the same lab, load and leader
# move give without runbook (its files are named -plain, in
# .runbook/bench-series-plain by default), or moves: no upgrade, only
# BENCH_MOVES leadership moves per run (default 1, the one move an upgrade
# makes), in .runbook/bench-series-moves.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

die() { printf 'bench-series: %s\n' "$*" >&2; exit 1; }
runs=${BENCH_RUNS:-10}
[[ $runs =~ ^[0-9]+$ ]] && [ "$runs" -gt 0 ] && [ "$runs" -le 100 ] || die "BENCH_RUNS=$runs is not a number of runs from 1 to 100"
way=${BENCH_SERIES_WAY:-runbook}
what="" ran=upgraded
case $way in
  runbook) work=${BENCH_DIR:-$root/.runbook/bench-series} ;;
  plain) work=${BENCH_DIR:-$root/.runbook/bench-series-plain} ;;
  moves)
    work=${BENCH_DIR:-$root/.runbook/bench-series-moves}
    export BENCH_MOVES=${BENCH_MOVES:-1}
    what=" ($BENCH_MOVES leadership moves a run, no upgrade)" ran="made their moves"
    ;;
  *) die "BENCH_SERIES_WAY=$way is not a way of the series: runbook, plain or moves" ;;
esac
case $work in /*) ;; *) work=$root/$work ;; esac

rm -rf "$work"
mkdir -p "$work/bin"
export BENCH_BIN_DIR=$work/bin
export BENCH_WAYS=$way
unset BENCH_RUNS

# get prints NAME's value in a run's summary, or "-".
get() {
  local v
  v=$(sed -n "s/^$2=//p" "$1" 2>/dev/null | head -n 1)
  echo "${v:--}"
}

printf 'bench-series: %d runs of the %s way%s at %s writes/s, each on a fresh lab; files in %s\n' \
  "$runs" "$way" "$what" "${BENCH_RATE:-200}" "$work"
rows=()
upgraded=0 attempts=0
for ((i = 1; upgraded < runs && i <= 2 * runs; i++)); do
  attempts=$i
  dir=$work/run-$i
  rc=0
  BENCH_DIR=$dir scripts/bench-upgrade.sh >"$dir.log" 2>&1 || rc=$?
  mkdir -p "$dir" && mv "$dir.log" "$dir/bench.log"
  s=$dir/summary-$way.txt
  status=ok
  if [ ! -f "$s" ]; then
    why=$(grep -m1 -E 'step [0-9]+ ".*" failed' "$dir/runbook.log" 2>/dev/null | sed 's/.*step [0-9]* "\([^"]*\)" failed.*/\1/')
    if grep -q 'end: refused' "$dir/runbook.log" 2>/dev/null; then
      status="refused by preflight: $why"
    else
      status="no upgrade: $(grep -m1 -E '^bench: ' "$dir/bench.log" | cut -c1-100)"
    fi
  else
    upgraded=$((upgraded + 1))
    [ $rc -eq 0 ] || status="exit $rc"
  fi
  row=$(printf '%-4s %-7s %-7s %-7s %-7s %-7s %-5s %-8s %-6s %-11s %s' "$i" "$(get "$s" took)" \
    "$(get "$s" outage_m1)" "$(get "$s" outage_m2)" "$(get "$s" outage_m3)" \
    "$(get "$s" failed)" "$(get "$s" lost)" "$(get "$s" slowest | awk '$1 == "-" { print; next } { printf "%.0f", $1 }')" "$(get "$s" slow)" \
    "$(get "$s" load | cut -d' ' -f1)" "$status")
  rows+=("$row")
  printf 'run %s\n' "$row"
  if [ -f "$dir/explain-$way.txt" ]; then
    # The causes of the failed writes, and of the slow ones other than the
    # machine's own load, one line each.
    grep -E '^[0-9:.]+–' "$dir/explain-$way.txt" | grep -v -E '  0 failed, [0-9]+ slow .*\[machine-load\]' | sed 's/^/      /' | head -n 12 || true
  fi
done

header=$(printf '%-4s %-7s %-7s %-7s %-7s %-7s %-5s %-8s %-6s %-11s %s' run "wall s" "m1 ms" "m2 ms" "m3 ms" failed lost "slowest" ">100ms" "load (1m)" status)
printf '\n== all %d runs (outage: each member longest, from its stop until it answers, sees the leader and has caught up)\n' "$attempts"
echo "$header"
printf '%s\n' "${rows[@]}"
printf '%s\n' "${rows[@]}" | awk -v n="$attempts" -v ran="$ran" '
  function median(a, k,   i, j, t) {
    for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    if (k == 0) return "-"
    return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
  }
  $2 != "-" {
    k++; wall[k] = $2; o1[k] = $3; o2[k] = $4; o3[k] = $5; f[k] = $6; sl[k] = $8; sw[k] = $9
    if ($6 == 0 && $7 == 0) clean++
    if ($7 != 0) lostruns++
  }
  END {
    printf "runs with 0 failed and 0 lost writes: %d of the %d that %s (%d runs in all; runs that lost writes: %d)\n", clean, k, ran, n, lostruns
    printf "median: wall %s s, outage m1 %s / m2 %s / m3 %s ms, failed %s, slowest %s ms, writes over 100 ms %s\n",
      median(wall, k), median(o1, k), median(o2, k), median(o3, k), median(f, k), median(sl, k), median(sw, k)
  }'
echo
echo "causes over all runs (failed/slow writes; the report lists up to 20 failed and 5000 slow writes of each run):"
cat "$work"/run-*/summary-"$way".txt 2>/dev/null | sed -n 's/^causes=//p' | tr ' ' '\n' | awk -F'[:/]' 'NF == 3 {
  f[$1] += $2; s[$1] += $3; if ($2 + $3 > 0) r[$1]++ }
  END { for (c in f) printf "  %-18s %4d failed %6d slow, in %d runs\n", c, f[c], s[c], r[c] }' | sort
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; other work shares it"
