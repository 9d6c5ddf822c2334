#!/usr/bin/env bash
# Builds etcd server binaries of exact versions from the go.etcd.io/etcd/server/v3
# module, through a tiny wrapper main package per version (its own go.mod):
# `go install` of the server module itself fails because of its replace directives.
# Builds are cached under ${RUNBOOK_CACHE:-$HOME/.cache/runbook}/etcd/VERSION/etcd
# and never committed. Prints the path of each binary.
#
#   scripts/etcd-build.sh 3.6.16 3.7.3
set -euo pipefail
cache=${RUNBOOK_CACHE:-$HOME/.cache/runbook}
[ $# -gt 0 ] || { echo "usage: $0 VERSION..." >&2; exit 2; }

# cached says whether $1 is an etcd binary of version $2. It reads the whole
# output: with pipefail, `| grep -q` stopping at the match would let SIGPIPE
# kill the binary, count as a miss and rebuild a good cache.
cached() {
  [ -x "$1" ] && [ "$("$1" --version 2>/dev/null | sed -n 's/^etcd Version: //p')" = "$2" ]
}

for v in "$@"; do
  case $v in
    [0-9]*.[0-9]*.[0-9]*) ;;
    *) echo "etcd-build: $v is not a version like 3.6.16" >&2; exit 2 ;;
  esac
  dir=$cache/etcd/$v
  bin=$dir/etcd
  if cached "$bin" "$v"; then
    echo "$bin"
    continue
  fi
  # Test packages run at once may ask for the same version: one builds, the
  # others wait for it and then find it cached.
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  if command -v flock >/dev/null 2>&1; then flock 9; fi
  if cached "$bin" "$v"; then
    exec 9>&-
    echo "$bin"
    continue
  fi
  src=$dir/src
  rm -rf "$src"
  mkdir -p "$src"
  cat >"$src/main.go" <<'GO'
// Command etcd is etcd's own server main, built from the server module at an exact version.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (
    cd "$src"
    go mod init runbook.local/etcd-wrapper >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@v$v" >/dev/null 2>&1 || { echo "etcd-build: cannot fetch go.etcd.io/etcd/server/v3@v$v" >&2; exit 1; }
    go mod tidy >/dev/null 2>&1
    CGO_ENABLED=0 go build -trimpath -o "$bin.tmp" .
  )
  mv "$bin.tmp" "$bin"
  got=$("$bin" --version | sed -n 's/^etcd Version: //p')
  if [ "$got" != "$v" ]; then
    echo "etcd-build: built $bin reports version '$got', want $v" >&2
    rm -f "$bin"
    exit 1
  fi
  exec 9>&-
  echo "$bin"
done
