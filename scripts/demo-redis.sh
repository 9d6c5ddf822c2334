#!/usr/bin/env bash
# The Redis demo: a primary and two replicas on 127.0.0.51-53 (scripts/redis-lab.sh),
# rolled to a new config by runbooks/redis-upgrade.yml while cmd/redis-load
# writes 200 keys a second, then every acknowledged write is checked.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin
scripts/redis-lab.sh up
stop=$(mktemp -u)
"$bin/redis-load" -rate 200 -duration 5m -stop-file "$stop" > .runbook/redis-load.json &
load=$!
trap 'touch "$stop"; wait $load 2>/dev/null || true; rm -f "$stop"' EXIT
sleep 1
rc=0
"$bin/runbook" exec --yes -i redis-lab runbooks/redis-upgrade.yml || rc=$?
touch "$stop"
wait $load || rc=${rc:-1}
trap - EXIT
rm -f "$stop"
echo
echo "writes during the change: $(cat .runbook/redis-load.json)"
scripts/redis-lab.sh status
exit $rc
