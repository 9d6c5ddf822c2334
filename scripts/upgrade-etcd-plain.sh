#!/usr/bin/env bash
# A plain shell script that upgrades the lab's etcd members the way an
# operator would by hand, without runbook and without its gates: the
# baseline `make bench-upgrade` reads the runbook against. Per member,
# followers first and the leader last: every member healthy; the target
# binary staged beside the current one; for the leader, leadership handed
# to an upgraded member; SIGTERM and wait until the process is gone; a
# rename; start; wait until the member answers on the target version and is
# healthy. No preflight, no snapshot, no metric gates, no soak, no rollback.
#
#   scripts/upgrade-etcd-plain.sh LAB_DIR VERSION
#
# The lab is scripts/lab.sh's (members/mN/{bin/etcd,start.sh,etcd.pid},
# dist/etcd-VERSION, addrs). Needs curl; talks to etcd's JSON gateway.
# It prints one line per member: when its stop began and when it was back.
set -euo pipefail
# shellcheck source=lib/etcd-gateway.sh
. "$(dirname "$0")/lib/etcd-gateway.sh"

lab=${1:?usage: upgrade-etcd-plain.sh LAB_DIR VERSION}
to=${2:?usage: upgrade-etcd-plain.sh LAB_DIR VERSION}
die() { printf 'plain: %s\n' "$*" >&2; exit 1; }
command -v curl >/dev/null || die "needs curl"
[ -x "$lab/dist/etcd-$to" ] || die "no $lab/dist/etcd-$to"
IFS=, read -r -a addrs <"$lab/addrs" || die "no $lab/addrs"
names=()
for i in "${!addrs[@]}"; do names+=("m$((i + 1))"); done

now() { date +%s.%N; }
healthy() { curl -fsS --max-time 1 "$(member_url "$1")/health" 2>/dev/null | grep -q '"health":"true"'; }
version() { curl -fsS --max-time 1 "$(member_url "$1")/version" 2>/dev/null | sed -n 's/.*"etcdserver":"\([^"]*\)".*/\1/p'; }

# until_ok runs "$@" every 10 ms until it succeeds, for at most 60 s.
until_ok() { poll 6000 "$@"; }
all_healthy() {
  local i
  for i in "${!addrs[@]}"; do healthy "$i" || return 1; done
}
on_target() { [ "$(version "$1")" = "$to" ] && healthy "$1"; }
gone() { ! kill -0 "$1" 2>/dev/null || grep -q '^[^ ]* ([^)]*) [ZX]' "/proc/$1/stat" 2>/dev/null; }

until_ok all_healthy || die "the cluster is not healthy"
leader=$(leader_index) || die "no leader"
order=()
for i in "${!addrs[@]}"; do [ "$i" = "$leader" ] || order+=("$i"); done
order+=("$leader")

upgraded=
for i in "${order[@]}"; do
  m=${names[$i]} dir=$lab/members/${names[$i]}
  until_ok all_healthy || die "$m: the cluster is not healthy"
  cp "$lab/dist/etcd-$to" "$dir/bin/.etcd.plain-new"
  chmod 0755 "$dir/bin/.etcd.plain-new"
  if [ "$i" = "$(leader_index)" ] && [ -n "$upgraded" ]; then
    target=$(member_id "$upgraded")
    hand_leadership "$i" "$target" || die "$m: leader transfer failed"
    until_ok leads "$i" "$target" || die "$m: leadership did not move"
  fi
  pid=$(cat "$dir/etcd.pid")
  stop_began=$(now)
  kill -TERM "$pid"
  until_ok gone "$pid" || die "$m: pid $pid still runs"
  mv -f "$dir/bin/.etcd.plain-new" "$dir/bin/etcd"
  setsid "$dir/start.sh" >>"$dir/etcd.log" 2>&1 </dev/null &
  echo $! >"$dir/etcd.pid"
  until_ok on_target "$i" || die "$m: not healthy on $to"
  back=$(now)
  printf 'plain: %s stop began %s, back on %s and healthy %s (%.0f ms)\n' "$m" "$stop_began" "$to" "$back" \
    "$(awk -v a="$stop_began" -v b="$back" 'BEGIN { print (b - a) * 1000 }')"
  upgraded=${upgraded:-$i}
done
