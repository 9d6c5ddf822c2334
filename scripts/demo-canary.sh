#!/usr/bin/env bash
# make demo-canary: a canary rollout judged by Prometheus, three times: a good
# new version (exit 0), a bad one (exit 1: the canary fails its analysis and
# is rolled back, the others untouched) and a slowly degrading one (exit 3:
# inconclusive, and no terminal to ask). Everything runs on this machine:
# four demo-app instances on 127.0.0.1:18091-18094 and one Prometheus on
# 127.0.0.1:19091 scraping them every second, all stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
go build -o bin/runbook ./cmd/runbook
go build -o bin/demo-app ./cmd/demo-app
rb=bin/runbook
inv=runbooks/inventory/canary.yml
ports="18091 18092 18093 18094"

export PROM_DIR=$PWD/.runbook/prometheus-canary PROM_ADDR=127.0.0.1:19091 PROM_MAX_LIFETIME=20m
export PROM_TARGETS="127.0.0.1:18091 127.0.0.1:18092 127.0.0.1:18093 127.0.0.1:18094"
prom=http://$PROM_ADDR

stop_fleet() {
	for f in .runbook/canary/*.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
	done
	for p in $ports; do
		for _ in $(seq 1 50); do curl -fsS -m 1 "127.0.0.1:$p/health" >/dev/null 2>&1 || break; sleep 0.1; done
	done
	rm -rf .runbook/canary
}
cleanup() { stop_fleet; scripts/prometheus-lab.sh down >/dev/null 2>&1 || true; }
trap cleanup EXIT

versions() {
	local out=""
	for p in $ports; do out="$out $(curl -fsS -m 2 "127.0.0.1:$p/version" 2>/dev/null || echo down)"; done
	echo "versions on 18091-18094:$out"
}

scripts/prometheus-lab.sh down >/dev/null 2>&1 || true
scripts/prometheus-lab.sh up >/dev/null

declare -A want=([good]=0 [bad]=1 [slow]=3)
declare -A got
for variant in good bad slow; do
	say "variant $variant: the old fleet starts"
	stop_fleet
	$rb exec runbooks/canary-deploy.yml -i "$inv" -e demo_root="$PWD" -e prometheus_url="$prom" --tags fleet --yes >/dev/null
	# The baseline is the peers' rate: wait until Prometheus has a few
	# samples of each instance.
	for p in $ports; do
		for _ in $(seq 1 100); do
			n=$(curl -fsS -m 2 "$prom/api/v1/query" --data-urlencode "query=count_over_time(http_requests_total{instance=\"127.0.0.1:$p\",code=\"200\"}[10s])" |
				sed -n 's/.*"value":\[[^,]*,"\([0-9]*\)"\].*/\1/p')
			[ "${n:-0}" -ge 4 ] && break
			sleep 0.2
		done
	done
	versions
	say "variant $variant: rollout of 2.0.0"
	set +e
	$rb exec runbooks/canary-deploy.yml -i "$inv" -e demo_root="$PWD" -e prometheus_url="$prom" -e variant="$variant" --yes </dev/null |
		grep -E 'analysis|canary|exit [0-9]|^web[0-9] ' | grep -v '^$'
	code=${PIPESTATUS[0]}
	set -e
	got[$variant]=$code
	versions
	id=$(ls -t .runbook/runs | head -1)
	$rb show "${id%.jsonl}" | sed -n '/^measurements:/,$p'
done

say "summary"
fail=0
for variant in good bad slow; do
	mark=ok
	[ "${got[$variant]}" = "${want[$variant]}" ] || { mark="UNEXPECTED"; fail=1; }
	echo "variant $variant: exit ${got[$variant]} (want ${want[$variant]}) $mark"
done
exit $fail
