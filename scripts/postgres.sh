#!/usr/bin/env bash
# postgres.sh: a throw-away PostgreSQL server for Ironwork's tests, on 127.0.0.1 and a unix
# socket inside DIR. Installs Debian's postgresql when it is missing.
#
#   scripts/postgres.sh start DIR [PORT]   init (if new) and start; prints the postgres:// URL
#   scripts/postgres.sh stop DIR           stop it (the data stays in DIR)
#   scripts/postgres.sh url DIR            print the URL of a running server
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  return 1
}

install_pg() {
  pg_bin >/dev/null && return 0
  [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed and installing it needs root (apt-get install postgresql)"
  echo "postgres.sh: installing Debian's postgresql" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Never start the packaged cluster as a system service.
  local rc=/usr/sbin/policy-rc.d made=
  if [ ! -e $rc ]; then printf '#!/bin/sh\nexit 101\n' > $rc; chmod +x $rc; made=1; fi
  apt-get -o DPkg::Lock::Timeout=600 install -y -q postgresql >/dev/null 2>&1 \
    || { apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null && apt-get -o DPkg::Lock::Timeout=600 install -y -q postgresql >/dev/null; }
  [ -n "$made" ] && rm -f $rc
  pg_bin >/dev/null || die "postgresql installed but initdb not found"
}

run_as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd_start() {
  local dir=$1 port=${2:-55432} bin
  install_pg
  bin=$(pg_bin)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ "$(id -u)" = 0 ] && chown postgres "$dir" && chmod 700 "$dir"
  if [ ! -s "$dir/data/PG_VERSION" ]; then
    run_as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  fi
  if ! run_as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    run_as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start \
      -o "-k $dir -h 127.0.0.1 -p $port -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null \
      || { tail -n 20 "$dir/postgres.log" >&2; die "pg_ctl start failed"; }
  fi
  echo "$port" > "$dir/port"
  cmd_url "$dir"
}

cmd_stop() {
  local dir=$1 bin
  bin=$(pg_bin) || return 0
  [ -d "$dir/data" ] || return 0
  run_as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

cmd_url() {
  local dir=$1
  [ -f "$dir/port" ] || die "no server in $dir"
  echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/postgres?sslmode=disable"
}

case "${1:-}" in
  start) shift; [ $# -ge 1 ] || die "usage: start DIR [PORT]"; cmd_start "$@" ;;
  stop) shift; [ $# -eq 1 ] || die "usage: stop DIR"; cmd_stop "$@" ;;
  url) shift; [ $# -eq 1 ] || die "usage: url DIR"; cmd_url "$@" ;;
  *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
