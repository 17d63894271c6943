#!/usr/bin/env bash
# fleet.sh: real-protocol power sync at fleet size. In a network namespace of its own (only
# loopback; removed on exit) it starts
#   - bench/fleet bmcs: IPMI BMCs (RMCP+, go-ipmi's BMC, all on ONE UDP socket at port 623,
#     one address 127.1.x.y each) and Redfish systems (ironwork vbmc's service), every answer
#     delayed by LATENCY, no QEMU;
#   - one `ironwork serve` (API and conductor) on SQLite, or with STORE=postgres on a
#     throw-away PostgreSQL (scripts/postgres.sh, reached over its unix socket: the
#     namespace has no route to the host's loopback),
# enrols one node per BMC, lets the conductor sync power for SECS seconds, and prints per
# process CPU (user+sys seconds, and the share of one core), memory (VmRSS, VmHWM) and the
# worst power sync lag: max over time of "the BMC read longest ago was read this long ago", as
# the BMCs see it, and the conductor's own ironwork_power_sync_lag_seconds.
#
#   IPMI=10000 REDFISH=10000 bench/fleet.sh          (defaults: 1000 and 1000)
#   LATENCY=50ms INTERVAL=60s WORKERS=100 SECS=300 bench/fleet.sh
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
IPMI=${IPMI:-1000}
REDFISH=${REDFISH:-1000}
LATENCY=${LATENCY:-50ms}
INTERVAL=${INTERVAL:-60s}
WORKERS=${WORKERS:-100}
SECS=${SECS:-300}

die() { echo "fleet.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (a network namespace)"
work=$(mktemp -d "${TMPDIR:-/tmp}/fleet-bench.XXXXXX")
ns="fleet$$"
bmc_pid= iw_pid= pg_dir=
cleanup() {
  local rc=$?
  # Everything this script started runs in the namespace: stop it all, then make sure.
  local left
  left=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -n "$left" ] && kill -TERM $left 2>/dev/null
  for _ in $(seq 1 50); do [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break; sleep 0.2; done
  left=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -n "$left" ] && { echo "fleet.sh: killing what did not stop: $left" >&2; kill -KILL $left 2>/dev/null; }
  ip netns del "$ns" 2>/dev/null || true
  [ -n "$pg_dir" ] && { scripts/postgres.sh stop "$pg_dir" || true; rm -rf "$pg_dir"; }
  if [ $rc -eq 0 ]; then rm -rf "$work"; else echo "fleet.sh: logs kept in $work" >&2; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$work/ironwork" ./cmd/ironwork
go build -o "$work/fleet" ./bench/fleet
ip netns add "$ns"
ip -n "$ns" link set lo up
inns() { ip netns exec "$ns" "$@"; }

database="$work/ironwork.db"
label=sqlite
if [ "${STORE:-sqlite}" = postgres ]; then
  pg_dir=$(mktemp -d /tmp/fleet-pg.XXXXXX) label=postgres
  pg_port=$((20000 + RANDOM % 20000))
  scripts/postgres.sh start "$pg_dir" "$pg_port" >/dev/null
  database="postgres://postgres@/postgres?host=$pg_dir&port=$pg_port&sslmode=disable"
fi
echo "fleet.sh: IPMI=$IPMI REDFISH=$REDFISH LATENCY=$LATENCY INTERVAL=$INTERVAL WORKERS=$WORKERS SECS=$SECS store=$label; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"

ip netns exec "$ns" "$work/fleet" bmcs -ipmi "$IPMI" -redfish "$REDFISH" -latency "$LATENCY" -ipmi-listen 0.0.0.0:623 \
  -redfish-listen 127.0.0.1:8000 -nodes "$work/nodes.jsonl" -report 5s >"$work/bmcs.log" 2>&1 &
bmc_pid=$!
for _ in $(seq 1 600); do grep -q '^fleet bmcs:' "$work/bmcs.log" && break; kill -0 $bmc_pid || die "fleet bmcs: $(tail -n 5 "$work/bmcs.log")"; sleep 0.5; done
grep '^fleet bmcs:' "$work/bmcs.log"

cat >"$work/serve.toml" <<TOML
database = "$database"
power_sync_interval = "$INTERVAL"
power_sync_workers = $WORKERS
automated_clean = false
TOML
ip netns exec "$ns" "$work/ironwork" serve --config "$work/serve.toml" --listen 127.0.0.1:6385 --data-dir "$work" --hostname fleet-conductor \
  --log-level warn >"$work/serve.log" 2>&1 &
iw_pid=$!
for _ in $(seq 1 200); do
  [ "$(inns curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:6385/ || true)" = 200 ] && break
  kill -0 $iw_pid || die "ironwork serve: $(tail -n 5 "$work/serve.log")"; sleep 0.1
done
inns "$work/fleet" enrol -url http://127.0.0.1:6385 -nodes "$work/nodes.jsonl" -c 16 | tee "$work/enrol.out"

# cpu PID: user+system seconds; mem PID: VmRSS and VmHWM in MiB.
tck=$(getconf CLK_TCK)
cpu() { awk -v t="$tck" '{printf "%.1f", ($14+$15)/t}' "/proc/$1/stat"; }
mem() { awk '/^VmRSS/{r=$2} /^VmHWM/{h=$2} END{printf "rss=%.0fMiB hwm=%.0fMiB", r/1024, h/1024}' "/proc/$1/status"; }
c0_iw=$(cpu $iw_pid) c0_bmc=$(cpu $bmc_pid) t0=$(date +%s.%N)
echo "fleet.sh: enrolled; measuring for ${SECS}s (the first sync starts ${INTERVAL} after the conductor)"
max_lag=0
for ((s = 0; s < SECS; s += 10)); do
  sleep 10
  lag=$(inns curl -s http://127.0.0.1:6385/metrics | awk '/^ironwork_power_sync_lag_seconds/{print $2}')
  echo "t=$((s + 10))s conductor_lag=${lag:-?}s $(tail -n 1 "$work/bmcs.log") load=$(cut -d' ' -f1 /proc/loadavg)"
done
t1=$(date +%s.%N) c1_iw=$(cpu $iw_pid) c1_bmc=$(cpu $bmc_pid)
el=$(echo "$t1 - $t0" | bc)
echo "RESULT store=$label ipmi=$IPMI redfish=$REDFISH latency=$LATENCY workers=$WORKERS seconds=$el" \
  "conductor_cpu_s=$(echo "$c1_iw - $c0_iw" | bc) conductor_$(mem $iw_pid)" \
  "bmcs_cpu_s=$(echo "$c1_bmc - $c0_bmc" | bc) bmcs_$(mem $bmc_pid)" \
  "$(tail -n 1 "$work/bmcs.log" | sed 's/^LAG //')" "load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
echo "sync failures logged: $(grep -c 'power sync failed' "$work/serve.log" || true)"
inns curl -s 'http://127.0.0.1:6385/v1/nodes?maintenance=true&limit=1000' -H 'X-OpenStack-Ironic-API-Version: 1.82' |
  python3 -c 'import json,sys; print("nodes in maintenance:", len(json.load(sys.stdin)["nodes"]))' || true
