#!/usr/bin/env bash
# Runs the SSH benchmark (bench/): runbook (plan + engine + SSH dialer), the
# SSH transport alone, and the floor (raw x/crypto/ssh) over 10, 100 and 1000
# in-process hosts and over 10 and 100 hosts served by OpenSSH's sshd
# (several sshd processes listening on 127.0.2.1, 127.0.2.2, ...), 10 `true`
# steps each, 50 hosts at a time. Prints wall time per run, the tool/floor
# ratio and each run's peak RSS.
#   BENCHTIME=5x scripts/bench.sh          more runs per configuration (default 3x)
#   BENCH='openssh/hosts=100$' scripts/bench.sh   only the configurations matching
set -euo pipefail
cd "$(dirname "$0")/.."

benchtime=${BENCHTIME:-3x}
filter=${BENCH:-}
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
go test -run '^$' -bench "^BenchmarkSSH\$${filter:+/$filter}" -benchtime "$benchtime" -timeout 120m ./bench/ | tee "$raw" >&2

awk '
/^BenchmarkSSH\/[a-z]+\/hosts=/ {
	split($1, part, "/")
	kind = part[2]
	hosts = substr(part[3], 7); sub(/-[0-9]+$/, "", hosts)
	k = kind " " hosts
	for (i = 2; i < NF; i++) {
		u = $(i+1)
		if (u ~ /-cpu-s\/run$/) { m = u; sub(/-cpu-s\/run$/, "", m); cpu[k, m] = $i }
		else if (u ~ /-s\/run$/) { m = u; sub(/-s\/run$/, "", m); sec[k, m] = $i }
		if (u ~ /-MB-/) { m = u; sub(/-MB-.*/, "", m); mb[k, m] = $i; src = u; sub(/.*-MB-/, "", src) }
		if (u == "tool/floor") ratio[k] = $i
		if (u == "conn/floor") cratio[k] = $i
	}
	order[++n] = k
}
END {
	if (n == 0) { print "bench: no results" > "/dev/stderr"; exit 1 }
	printf "\n%-7s %5s %8s %8s %8s %10s %10s %8s %8s %8s %7s %7s %7s\n", "servers", "hosts", "tool s", "conn s", "floor s",
		"tool/floor", "conn/floor", "tool cpu", "conn cpu", "floor cpu", "tool MB", "conn MB", "floor MB"
	for (i = 1; i <= n; i++) {
		k = order[i]; split(k, kh, " ")
		printf "%-7s %5s %8.3f %8.3f %8.3f %9.2fx %9.2fx %8.2f %8.2f %9.2f %7.1f %7.1f %8.1f\n", kh[1], kh[2],
			sec[k, "tool"], sec[k, "conn"], sec[k, "floor"], ratio[k], cratio[k],
			cpu[k, "tool"], cpu[k, "conn"], cpu[k, "floor"], mb[k, "tool"], mb[k, "conn"], mb[k, "floor"]
	}
	printf "\nservers: inproc = SSH servers inside the benchmark process; openssh = sshd processes (Debian openssh-server).\n"
	printf "s: mean wall time of a run, measured inside its own process; x/floor: median over runs made side by side;\n"
	printf "cpu: mean CPU seconds of a run, client and servers (sshd, its sessions and shells), less swayed by other work than wall time;\n"
	printf "MB: peak RSS (%s) of that process.\n", src
	printf "tool: plan + engine + SSH dialer; conn: the SSH transport alone; floor: raw x/crypto/ssh with the same hosts, commands (the program true) and parallelism.\n"
}' "$raw"
