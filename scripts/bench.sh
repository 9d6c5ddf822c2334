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
	hosts = substr(part[2], 7)
	mode = part[3]; sub(/-[0-9]+$/, "", mode)
	for (i = 2; i < NF; i++) {
		if ($(i+1) == "ns/op") ns[hosts, mode] = $i
		if ($(i+1) ~ /^peak-MB-/) { mb[hosts, mode] = $i; src = substr($(i+1), 9) }
	}
	if (!(hosts in seen)) { seen[hosts] = 1; order[++n] = hosts }
}
END {
	if (n == 0) { print "bench: no results" > "/dev/stderr"; exit 1 }
	printf "\n%-6s %10s %10s %10s %11s %11s %11s %11s\n", "hosts", "tool s", "conn s", "floor s", "tool/floor", "tool MB", "conn MB", "floor MB"
	for (i = 1; i <= n; i++) {
		h = order[i]
		printf "%-6s %10.3f %10.3f %10.3f %10.2fx %11.1f %11.1f %11.1f\n", h,
			ns[h, "tool"] / 1e9, ns[h, "conn"] / 1e9, ns[h, "floor"] / 1e9,
			ns[h, "tool"] / ns[h, "floor"], mb[h, "tool"], mb[h, "conn"], mb[h, "floor"]
	}
	printf "\nwall time: mean per run, measured inside each run'"'"'s own process; MB: peak RSS (%s) of that process.\n", src
	printf "tool: plan + engine + SSH dialer; conn: the SSH transport alone; floor: raw x/crypto/ssh, same hosts, commands and parallelism.\n"
}' "$raw"
