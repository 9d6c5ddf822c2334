#!/usr/bin/env bash
# Runs the SSH benchmark (bench/): runbook (plan + engine + SSH dialer), the
# SSH transport alone, and the floor (raw x/crypto/ssh) over 10, 100 and 500
# in-process hosts on loopback, 10 `true` steps each, 50 hosts at a time.
# Prints wall time per run, the tool/floor ratio and each run's peak RSS.
#   BENCHTIME=5x scripts/bench.sh     more runs per configuration (default 3x)
set -euo pipefail
cd "$(dirname "$0")/.."

benchtime=${BENCHTIME:-3x}
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
go test -run '^$' -bench '^BenchmarkSSH$' -benchtime "$benchtime" -timeout 60m ./bench/ | tee "$raw" >&2

awk '
/^BenchmarkSSH\/hosts=/ {
	split($1, part, "/")
	hosts = substr(part[2], 7); sub(/-[0-9]+$/, "", hosts)
	for (i = 2; i < NF; i++) {
		u = $(i+1)
		if (u ~ /-s\/run$/) { m = u; sub(/-s\/run$/, "", m); sec[hosts, m] = $i }
		if (u ~ /-MB-/) { m = u; sub(/-MB-.*/, "", m); mb[hosts, m] = $i; src = u; sub(/.*-MB-/, "", src) }
		if (u == "tool/floor") ratio[hosts] = $i
	}
	order[++n] = hosts
}
END {
	if (n == 0) { print "bench: no results" > "/dev/stderr"; exit 1 }
	printf "\n%-6s %9s %9s %9s %11s %9s %9s %9s\n", "hosts", "tool s", "conn s", "floor s", "tool/floor", "tool MB", "conn MB", "floor MB"
	for (i = 1; i <= n; i++) {
		h = order[i]
		printf "%-6s %9.3f %9.3f %9.3f %10.2fx %9.1f %9.1f %9.1f\n", h,
			sec[h, "tool"], sec[h, "conn"], sec[h, "floor"], ratio[h], mb[h, "tool"], mb[h, "conn"], mb[h, "floor"]
	}
	printf "\ns: mean wall time of a run, measured inside its own process; tool/floor: median over runs made side by side;\n"
	printf "MB: peak RSS (%s) of that process.\n", src
	printf "tool: plan + engine + SSH dialer; conn: the SSH transport alone; floor: raw x/crypto/ssh with the same hosts, commands and parallelism.\n"
}' "$raw"
