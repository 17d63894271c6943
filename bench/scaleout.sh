#!/usr/bin/env bash
# scaleout.sh: scale-out simulation on one PostgreSQL. Starts a throw-away PostgreSQL
# (scripts/postgres.sh), CONDUCTORS `ironwork serve --role conductor` and APIS
# `ironwork serve --role api` processes (all on 127.0.0.1, stopped on exit), makes N
# fake-hardware nodes (ENROL of them, default 1000, through the APIs, the others copied from
# the first in SQL), marks them deployed (provision_state active, power on,
# straight in the database: deploying 100,000 fake nodes one by one would take hours here),
# and measures:
#   - adoption: from marking to every node having a conductor affinity (take-over of deployed
#     nodes by the ring's owners);
#   - power sync held: each conductor's ironwork_power_sync_lag_seconds, sampled every 10 s;
#   - API latency under a crowd: bench/fleet load (C clients mixing GET, list and detail pages of
#     100) against all API servers for LOAD_SECS;
#   - take-over: one conductor killed with SIGKILL; time from the kill until no deployed node
#     has it as affinity (every node owned by a live conductor), with heartbeat_interval HB and
#     heartbeat_timeout HB_TIMEOUT;
#   - CPU and memory of every process and the database's size.
#
#   N=100000 CONDUCTORS=4 APIS=2 C=200 bench/scaleout.sh     (the defaults)
#   RATE=1000 bench/scaleout.sh     the crowd offers 1000 requests/s in all, each client on a fixed
#                                   schedule, latency from when a request was due (default 0: each
#                                   client sends when answered, the saturation rate)
#   WARMUP=10s bench/scaleout.sh    the crowd runs this long first, its requests counted apart (the
#                                   API servers open their database connections in the first seconds)
#   TIMELINE=true bench/scaleout.sh the crowd's latencies second by second, warm-up included
#   COUNT_INTERVAL=30s bench/scaleout.sh  metrics_count_interval of every process (default the
#                                   server's, 10 s): this script reads each conductor's /metrics every
#                                   10 s, and a scrape finding a count older than that counts again
#   N=10000 LOAD_SECS=30 HB=5s HB_TIMEOUT=20s bench/scaleout.sh   (a quicker look)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
N=${N:-100000}
CONDUCTORS=${CONDUCTORS:-4}
APIS=${APIS:-2}
C=${C:-200}
ENROL=${ENROL:-1000}
LOAD_SECS=${LOAD_SECS:-60}
RATE=${RATE:-0}
WARMUP=${WARMUP:-0s}
TIMELINE=${TIMELINE:-false}
INTERVAL=${INTERVAL:-60s}
HB=${HB:-10s}
HB_TIMEOUT=${HB_TIMEOUT:-60s}
COUNT_INTERVAL=${COUNT_INTERVAL:-}

die() { echo "scaleout.sh: $*" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/scaleout.XXXXXX")
pg_dir=$(mktemp -d /tmp/scaleout-pg.XXXXXX)
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  scripts/postgres.sh stop "$pg_dir" || true
  rm -rf "$pg_dir"
  if [ $rc -eq 0 ]; then rm -rf "$work"; else echo "scaleout.sh: logs kept in $work" >&2; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { local p; for _ in $(seq 1 200); do p=$((20000 + RANDOM % 12000)); port_free $p && { echo $p; return; }; done; die "no free port"; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
tck=$(getconf CLK_TCK)
cpu() { awk -v t="$tck" '{printf "%.1f", ($14+$15)/t}' "/proc/$1/stat" 2>/dev/null || echo "?"; }
mem() { awk '/^VmRSS/{r=$2} /^VmHWM/{h=$2} END{printf "rss=%.0fMiB,hwm=%.0fMiB", r/1024, h/1024}' "/proc/$1/status" 2>/dev/null || echo "gone"; }

go build -o "$work/ironwork" ./cmd/ironwork
go build -o "$work/fleet" ./bench/fleet
pg=$(scripts/postgres.sh start "$pg_dir" "$(free_port)")
sql() { psql -qtA "$pg" -c "$1"; }
echo "scaleout.sh: N=$N CONDUCTORS=$CONDUCTORS APIS=$APIS C=$C INTERVAL=$INTERVAL HB=$HB HB_TIMEOUT=$HB_TIMEOUT COUNT_INTERVAL=${COUNT_INTERVAL:-default}; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"

cat >"$work/serve.toml" <<TOML
database = "$pg"
power_sync_interval = "$INTERVAL"
heartbeat_interval = "$HB"
heartbeat_timeout = "$HB_TIMEOUT"
automated_clean = false
TOML
if [ -n "$COUNT_INTERVAL" ]; then echo "metrics_count_interval = \"$COUNT_INTERVAL\"" >>"$work/serve.toml"; fi
declare -A metrics cpid
for i in $(seq 1 "$CONDUCTORS"); do
  mp=$(free_port)
  "$work/ironwork" serve --config "$work/serve.toml" --role conductor --hostname "cond-$i" --rpc-listen 127.0.0.1:0 \
    --metrics-listen "127.0.0.1:$mp" --data-dir "$work/cond-$i" --log-level warn >"$work/cond-$i.log" 2>&1 &
  pids+=($!) cpid[$i]=$! metrics[$i]="http://127.0.0.1:$mp/metrics"
  sleep 1 # one at a time: the first creates the schema
done
urls=() apipids=()
for i in $(seq 1 "$APIS"); do
  p=$(free_port)
  "$work/ironwork" serve --config "$work/serve.toml" --role api --hostname "api-$i" --listen "127.0.0.1:$p" \
    --data-dir "$work/api-$i" --log-level warn >"$work/api-$i.log" 2>&1 &
  pids+=($!) apipids+=($!) urls+=("http://127.0.0.1:$p")
done
for u in "${urls[@]}"; do
  for _ in $(seq 1 300); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$u/" || true)" = 200 ] && break; sleep 0.2; done
done
api=$(IFS=,; echo "${urls[*]}")

lags() { # every conductor's power sync lag, seconds
  local out="" i l
  for i in $(seq 1 "$CONDUCTORS"); do
    l=$(curl -s --max-time 5 "${metrics[$i]}" 2>/dev/null | awk '/^ironwork_power_sync_lag_seconds/{printf "%.0f", $2}')
    out+="cond-$i=${l:-dead} "
  done
  echo "$out"
}

# ENROL of them through the API; the rest copied from the first one in SQL (fresh UUIDs and
# names), which takes seconds where the API would take minutes on a loaded 2-CPU machine
# (the API's enrolment rate is bench/api.sh's business).
api_n=$(( N < ENROL ? N : ENROL ))
"$work/fleet" enrol -url "$api" -fake "$api_n" -c 32 | tee "$work/enrol.out"
if [ "$N" -gt "$api_n" ]; then
  cols=$(sql "SELECT string_agg(column_name, ', ' ORDER BY ordinal_position) FROM information_schema.columns
    WHERE table_name = 'nodes' AND column_name NOT IN ('id', 'uuid', 'name', 'ring_key')")
  t=$(now)
  # Each copy's ring key is its own UUID's (sqlstore.RingKey, as migration 0022 computes it).
  sql "INSERT INTO nodes (uuid, name, ring_key, $cols) SELECT u, 'fake-' || lpad(g::text, 6, '0'),
    ('x' || substr(md5(u), 1, 16))::bit(64)::bigint, $cols
    FROM (SELECT gen_random_uuid()::text AS u, g, nodes.* FROM nodes, generate_series($api_n, $((N - 1))) g
      WHERE nodes.name = 'fake-000000') AS copies"
  sql "ANALYZE nodes"
  echo "scaleout.sh: $((N - api_n)) more nodes copied in SQL in $(since "$t")s; $(sql 'SELECT count(*) FROM nodes') nodes"
fi
t=$(now)
sql "UPDATE nodes SET provision_state = 'active', power_state = 'power on'"
while :; do
  left=$(sql "SELECT count(*) FROM nodes WHERE conductor_affinity IS NULL")
  [ "$left" = 0 ] && break
  echo "adoption: $left nodes without affinity after $(since "$t")s; lag $(lags)"
  sleep 10
done
echo "RESULT adoption_s=$(since "$t") nodes=$N"

echo "scaleout.sh: power sync for one interval and more ($INTERVAL + 20 s)"
end=$(echo "$(now) + ${INTERVAL%s} + 20" | bc)
while [ "$(echo "$(now) < $end" | bc)" = 1 ]; do echo "lag $(lags) load=$(cut -d' ' -f1 /proc/loadavg)"; sleep 10; done

echo "scaleout.sh: $C clients for ${LOAD_SECS}s against $api (offered rate: ${RATE}/s, 0: back to back)"
( for _ in $(seq 1 $((LOAD_SECS / 10))); do sleep 10; echo "lag during load: $(lags)"; done ) &
lagger=$!
"$work/fleet" load -url "$api" -c "$C" -d "${LOAD_SECS}s" -rate "$RATE" -warmup "$WARMUP" -timeline="$TIMELINE" | tee "$work/load.out" || true
wait $lagger || true

dead_id=$(sql "SELECT id FROM conductors WHERE hostname = 'cond-1'")
owned=$(sql "SELECT count(*) FROM nodes WHERE conductor_affinity = $dead_id")
kill -KILL "${cpid[1]}"
t=$(now)
first=
while :; do
  left=$(sql "SELECT count(*) FROM nodes WHERE conductor_affinity = $dead_id")
  [ -z "$first" ] && [ "$left" != "$owned" ] && first=$(since "$t")
  [ "$left" = 0 ] && break
  echo "take-over: $left of $owned nodes still on cond-1 after $(since "$t")s"
  sleep 2
done
took=$(since "$t")
echo "RESULT takeover_s=$took first_moved_s=${first:-$took} nodes_of_dead=$owned heartbeat_timeout=$HB_TIMEOUT"
end=$(echo "$(now) + ${INTERVAL%s} + 20" | bc)
while [ "$(echo "$(now) < $end" | bc)" = 1 ]; do echo "lag after take-over: $(lags)"; sleep 10; done

for i in $(seq 2 "$CONDUCTORS"); do echo "RESULT process=cond-$i cpu_s=$(cpu "${cpid[$i]}") $(mem "${cpid[$i]}")"; done
for i in $(seq 1 "$APIS"); do echo "RESULT process=api-$i cpu_s=$(cpu "${apipids[$((i-1))]}") $(mem "${apipids[$((i-1))]}")"; done
echo "RESULT database_size=$(sql "SELECT pg_size_pretty(pg_database_size(current_database()))") nodes_table=$(sql "SELECT pg_size_pretty(pg_total_relation_size('nodes'))") load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
grep -h "level=ERROR" "$work"/cond-*.log "$work"/api-*.log | head -5 || true
