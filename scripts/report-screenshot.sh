#!/usr/bin/env bash
# Renders an HTML report (runbook show RUN_ID --format html) in headless
# Chromium and saves a PNG screenshot of it, to check the page as a browser
# draws it rather than as text.
#
#   scripts/report-screenshot.sh REPORT.html OUT.png [WIDTHxHEIGHT]
#
# Needs Debian's chromium (scripts/deps.sh installs it). The page loads
# nothing from the network; --no-sandbox is needed only when run as root
# (Chromium refuses its sandbox there), which CI containers often are.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	echo "usage: $0 REPORT.html OUT.png [WIDTHxHEIGHT]" >&2
	exit 2
fi
html=$1
out=$2
size=${3:-1280x1600}

browser=""
for b in chromium chromium-browser; do
	if command -v "$b" >/dev/null; then
		browser=$b
		break
	fi
done
if [ -z "$browser" ]; then
	echo "report-screenshot: chromium is not installed (scripts/deps.sh installs it)" >&2
	exit 3
fi
[ -f "$html" ] || { echo "report-screenshot: no file $html" >&2; exit 2; }

abs_html=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
abs_out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
udd=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$udd" "$log"' EXIT
flags=(--headless --disable-gpu --hide-scrollbars --no-first-run --no-default-browser-check
	--disable-extensions --disable-background-networking --disable-sync
	--user-data-dir="$udd" --window-size="${size/x/,}" --screenshot="$abs_out")
if [ "$(id -u)" -eq 0 ]; then
	flags+=(--no-sandbox)
fi
# Chromium's own chatter (dbus, GPU) goes to stderr and is not ours to show
# unless it failed.
if ! timeout 60 "$browser" "${flags[@]}" "file://$abs_html" >"$log" 2>&1; then
	cat "$log" >&2
	echo "report-screenshot: chromium failed" >&2
	exit 1
fi
if [ ! -s "$abs_out" ]; then
	cat "$log" >&2
	echo "report-screenshot: chromium wrote no screenshot" >&2
	exit 1
fi
echo "$abs_out"
