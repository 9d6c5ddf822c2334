# shellcheck shell=bash
# Sourced, not run: what the scripts that drive the lab's etcd members with
# curl alone (upgrade-etcd-plain.sh, bench-upgrade.sh) ask of a member
# through etcd's JSON gateway. A member is an index into the array addrs
# (its client URL is http://ADDRESS:2379, as the lab serves it). Every call
# is bounded in time by curl's --max-time.

member_url() { echo "http://${addrs[$1]}:2379"; }

# member_status prints member i's /v3/maintenance/status as JSON, or fails.
member_status() { curl -fsS --max-time 1 -X POST -d '{}' "$(member_url "$1")/v3/maintenance/status" 2>/dev/null; }

# json_string prints the string field NAME of the JSON on standard input.
json_string() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

# member_id prints member i's id, or nothing when it does not answer.
member_id() { member_status "$1" | json_string member_id; }

# leader_index prints the index of the leader, as member 0 sees it.
leader_index() {
  local i lid
  lid=$(member_status 0 | json_string leader) || return 1
  for i in "${!addrs[@]}"; do
    [ "$(member_id "$i")" = "$lid" ] && { echo "$i"; return 0; }
  done
  return 1
}

# hand_leadership asks member i, the leader, to hand leadership to the
# member whose id is ID.
hand_leadership() {
  curl -fsS --max-time 5 -X POST -d "{\"targetID\":\"$2\"}" "$(member_url "$1")/v3/maintenance/transfer-leadership" >/dev/null
}

# leads succeeds when member i sees the member whose id is ID as its leader.
leads() { [ "$(member_status "$1" | json_string leader)" = "$2" ]; }

# poll runs "$@" every 10 ms until it succeeds, at most TRIES times.
poll() {
  local tries=$1 i
  shift
  for ((i = 0; i < tries; i++)); do
    "$@" && return 0
    sleep 0.01
  done
  return 1
}
