#!/usr/bin/env bash
# make demo: build runbook, then show what it does on this machine with the
# example runbook and the local inventory (three app instances on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
rb=bin/runbook
go build -o bin/demo-app ./cmd/demo-app

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "runbook validate: every key, module argument and expression is checked before anything runs"
$rb validate runbooks/rolling-restart.yml -i local -e demo_root="$PWD"

say "a broken copy is refused with every error at once, each at its line and column"
broken=$(mktemp -d)/rolling-restart.yml
trap 'rm -rf "$(dirname "$broken")"' EXIT
sed -e 's/serial: 1 /serail: 1 /' -e 's/wait: 30s/wait: 30/' -e "s/result.json.pid != before.json.pid/result.json.pid != befor.json.pid/" \
  runbooks/rolling-restart.yml >"$broken"
mkdir -p "$(dirname "$broken")/inventory" && cp runbooks/inventory/local.yml "$(dirname "$broken")/inventory/"
if (cd "$(dirname "$broken")" && "$OLDPWD/$rb" validate rolling-restart.yml -i local); then echo "demo: the broken runbook was accepted" >&2; exit 1; else echo "(exit status $?: invalid input, nothing touched)"; fi

say "runbook plan: hosts, batches, steps, guards and rollback, without connecting anywhere"
$rb plan runbooks/rolling-restart.yml -i local -e demo_root="$PWD"

say "the same plan as a Mermaid flowchart for a pull request (first lines)"
mermaid=$($rb plan runbooks/rolling-restart.yml -i local -e demo_root="$PWD" --format mermaid)
printf '%s\n' "$mermaid" | sed -n 1,8p

say "runbook exec: the rolling restart, one instance at a time, health-checked before and after"
echo "(the first run starts the three demo-app instances on 127.0.0.1:18081-18083)"
stop_apps() {
  for f in .runbook/demo/*.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
}
trap 'stop_apps; rm -rf "$(dirname "$broken")"' EXIT
$rb exec runbooks/rolling-restart.yml -i local -e demo_root="$PWD" --yes

say "run it again: every instance gets a new process, none is ever left unhealthy"
$rb exec runbooks/rolling-restart.yml -i local -e demo_root="$PWD" --yes --output json | grep -c '"kind":"step_end"' | sed 's/^/step_end events streamed as JSON: /'

say "runbook runs and runbook show: every run is journaled, and can be resumed if it was killed"
$rb runs | head -4
last=$($rb runs | awk 'NR==2 {print $1}')
$rb show "$last" | head -20

say "done: the demo apps are stopped now; journals stay in .runbook/runs"
