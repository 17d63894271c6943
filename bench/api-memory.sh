#!/usr/bin/env bash
# api-memory.sh: memory of an Ironwork API server (SQLite) holding many nodes.
#
#   N=100000 R=2 bench/api-memory.sh     (R: full listings, default 2)
#
# Enrols 1000 fake-hardware nodes through the API (bench/apibench), stops the server, copies
# those rows in SQLite until the database holds N nodes (new UUIDs and names; the API's own
# enrolment of 100,000 nodes takes minutes on a busy machine), starts the server again on that
# database, lists every node R times (GET /v1/nodes/detail?limit=1000) and reads the server's
# VmRSS and VmHWM from /proc (apibench -pid). Needs the sqlite3 command. Listens on 127.0.0.1
# only; everything started here is stopped on exit.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
N=${N:-100000}
R=${R:-2}
command -v sqlite3 >/dev/null || { echo "api-memory.sh: needs sqlite3" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/api-memory.XXXXXX")
pid=
stop() { if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi; }
trap 'stop; rm -rf "$work"' EXIT
go build -o "$work/ironwork" ./cmd/ironwork
go build -o "$work/apibench" ./bench/apibench
port=$((20000 + RANDOM % 12000))
start() {
  "$work/ironwork" serve --listen "127.0.0.1:$port" --data-dir "$work/data" >>"$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/" || true)" = 200 ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$work/serve.log" >&2
  echo "api-memory.sh: the server does not answer" >&2
  exit 1
}
start
"$work/apibench" -url "http://127.0.0.1:$port" -n 1000 -rounds 0 -gets 0 -label seed >/dev/null
stop
db=$(find "$work/data" -name '*.db' | head -n 1)
copies=$(((N + 999) / 1000 - 1))
for ((k = 1; k <= copies; k++)); do
  echo "INSERT INTO nodes ($(sqlite3 "$db" "SELECT group_concat(name, ', ') FROM pragma_table_info('nodes') WHERE name NOT IN ('id', 'ring_key')"))
        SELECT $(sqlite3 "$db" "SELECT group_concat(CASE name WHEN 'uuid' THEN
          'lower(substr(h,1,8)||''-''||substr(h,9,4)||''-4''||substr(h,14,3)||''-8''||substr(h,18,3)||''-''||substr(h,21,12))'
          WHEN 'name' THEN 'name||''-c$k''' ELSE name END, ', ') FROM pragma_table_info('nodes') WHERE name NOT IN ('id', 'ring_key')")
        FROM (SELECT *, hex(randomblob(16)) AS h FROM nodes WHERE id <= 1000);"
done | sqlite3 "$db"
echo "api-memory.sh: $(sqlite3 "$db" 'SELECT COUNT(*) FROM nodes') nodes in $db ($(du -h "$db" | cut -f1))"
start
echo "api-memory.sh: server started on the copied database (load average $(cut -d' ' -f1-3 /proc/loadavg))"
"$work/apibench" -url "http://127.0.0.1:$port" -n 0 -rounds "$R" -gets 0 -pid "$pid" -label "memory-$N" | grep -v '^enrol:'
