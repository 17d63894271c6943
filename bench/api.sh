#!/usr/bin/env bash
# api.sh: API benchmark "enrol and list nodes" (bench/apibench), in one run, against
#   (a) Ironwork on its embedded SQLite,
#   (b) Ironwork on PostgreSQL, when IRONWORK_BENCH_POSTGRES=postgres://... is set (a fresh
#       database is created on that server for the run and dropped after, when psql can),
#   (c) the real OpenStack Ironic (Debian 21.4, split mode, 2 API workers, SQLite) started with
#       ../shared/tools/real-ironic.sh (skipped with a message when ../shared or Ironic is absent),
# one after the other, each on a fresh empty store, and prints the results and the ratios.
#
#   N=2000 C=16 R=3 bench/api.sh      N nodes (default 10000), C clients (16), R listings (3)
#   D=200 bench/api.sh                 also take D of the nodes through manage, provide and deploy
#                                      (fake-hardware) and report deploys per minute
#   G=2000 bench/api.sh                single-node GETs after the listings (default 2000; p50/p99,
#                                      and GETs/s: the get/s ratio; C clients in closed loop, so
#                                      Ironic's p50 is low when its two workers serve a few clients'
#                                      connections while the others wait, and its mean is 16/rate)
#   CROWD=30s CROWD_C=200 bench/api.sh after the rest, CROWD_C clients (default 200) mixing list,
#                                      detail page (CROWD_LIMIT=100 nodes), GET and PATCH for CROWD
#   CROWD_IRONIC=30s                   the crowd against Ironic as well (default: Ironwork only)
#   CROWD_RATE=1069                    the crowd offers this many requests/s in all, each client on a
#                                      fixed schedule, latency counted from when a request was due
#                                      (default 0: every client back to back, the saturation rate)
#   CROWD_WARMUP=5s                    run the crowd this long first, its numbers left out
#   CROWD_TIMELINE=true                the crowd's latencies second by second (the warm-up's apart)
#   Ironwork's memory (VmRSS, VmHWM of the server process) is read after the listings.
#
# Everything started here listens on 127.0.0.1 and is stopped on exit.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
N=${N:-10000}
C=${C:-16}
R=${R:-3}
D=${D:-0}
G=${G:-2000}
CROWD=${CROWD:-0}
CROWD_C=${CROWD_C:-200}
CROWD_LIMIT=${CROWD_LIMIT:-100}
CROWD_RATE=${CROWD_RATE:-0}
CROWD_WARMUP=${CROWD_WARMUP:-0}
CROWD_TIMELINE=${CROWD_TIMELINE:-false} # true: the crowd's latencies second by second
CROWD_IRONIC=${CROWD_IRONIC:-0} # the crowd against Ironic too (its requests take seconds there)
# REAL_IRONIC: the real-ironic.sh script (default ../shared/tools/real-ironic.sh next to the
# repository; a git worktree elsewhere names it). IRONIC=0 leaves the Ironic target out.
real_ironic=${REAL_IRONIC:-$(cd "$repo/.." && pwd)/shared/tools/real-ironic.sh}
IRONIC=${IRONIC:-1}

die() { echo "api.sh: $*" >&2; exit 1; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { # free_port [SPAN]: p .. p+SPAN-1 all free
  local span=${1:-1} p i ok
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000)) ok=1 # below Linux's ephemeral range, where :0 listeners land
    for ((i = 0; i < span; i++)); do port_free $((p + i)) || { ok=0; break; }; done
    [ $ok = 1 ] && { echo "$p"; return 0; }
  done
  die "no free port found"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/api-bench.XXXXXX")
iw_pid= ironic_dir= pg_admin= pg_db=
stop_ironwork() {
  if [ -n "$iw_pid" ] && kill -0 "$iw_pid" 2>/dev/null; then
    kill -TERM "$iw_pid" 2>/dev/null || true
    wait "$iw_pid" 2>/dev/null || true
  fi
  iw_pid=
}
cleanup() {
  local rc=$?
  stop_ironwork
  [ -n "$ironic_dir" ] && { "$real_ironic" stop "$ironic_dir" >/dev/null 2>&1 || true; }
  [ -n "$pg_db" ] && { psql -q "$pg_admin" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true; }
  if [ $rc -eq 0 ]; then rm -rf "$work"; else echo "api.sh: logs kept in $work" >&2; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "api.sh: N=$N nodes, C=$C clients, R=$R listings; $(nproc) CPUs; $(uname -sr)"
go build -o "$work/ironwork" ./cmd/ironwork
go build -o "$work/apibench" ./bench/apibench

# bench LABEL URL [PID [CROWD]]: run apibench and keep its RESULT line.
bench() {
  echo "== $1 (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  "$work/apibench" -url "$2" -n "$N" -c "$C" -rounds "$R" -deploy "$D" -gets "$G" -pid "${3:-0}" \
    -crowd "${4:-$CROWD}" -crowd-c "$CROWD_C" -crowd-limit "$CROWD_LIMIT" -crowd-rate "$CROWD_RATE" -crowd-warmup "$CROWD_WARMUP" -crowd-timeline="$CROWD_TIMELINE" -label "$1" | tee "$work/$1.out"
  grep '^RESULT ' "$work/$1.out" >> "$work/results"
}

# start_ironwork NAME [serve flags...]: start Ironwork on a free port; sets iw_url. A port
# taken between the check and the bind (a test's :0 listener, say) means another try.
start_ironwork() {
  local name=$1 port attempt up
  shift
  mkdir -p "$work/$name"
  for attempt in 1 2 3; do
    port=$(free_port 1)
    "$work/ironwork" serve --listen "127.0.0.1:$port" --data-dir "$work/$name" "$@" >"$work/$name.log" 2>&1 &
    iw_pid=$! up=0
    for _ in $(seq 1 200); do
      kill -0 "$iw_pid" 2>/dev/null || break
      [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/" || true)" = 200 ] && { up=1; break; }
      sleep 0.1
    done
    if kill -0 "$iw_pid" 2>/dev/null; then
      [ $up = 1 ] || die "Ironwork ($name) does not answer on port $port"
      iw_url="http://127.0.0.1:$port"
      return 0
    fi
    wait "$iw_pid" 2>/dev/null || true
    iw_pid=
    grep -q 'address already in use' "$work/$name.log" || break
  done
  tail -n 20 "$work/$name.log" >&2
  die "Ironwork ($name) exited during start-up"
}

# (a) Ironwork, SQLite
start_ironwork ironwork-sqlite
bench ironwork-sqlite "$iw_url" "$iw_pid"
stop_ironwork

# (b) Ironwork, PostgreSQL
if [ -n "${IRONWORK_BENCH_POSTGRES:-}" ]; then
  pg_url=$IRONWORK_BENCH_POSTGRES
  if command -v psql >/dev/null; then
    name="ironwork_bench_$$"
    if psql -q "$pg_url" -c "CREATE DATABASE $name" >/dev/null 2>"$work/psql.err"; then
      pg_admin=$pg_url pg_db=$name
      # Same server and credentials, the new database.
      pg_url=$(printf '%s' "$pg_url" | sed -E "s#^(postgres(ql)?://[^/?]+)(/[^?]*)?#\1/$name#")
    else
      echo "api.sh: cannot create a database ($(head -n 1 "$work/psql.err")); using $pg_url as it is: existing nodes count in the listing"
    fi
  else
    echo "api.sh: no psql: using IRONWORK_BENCH_POSTGRES as it is; existing nodes count in the listing"
  fi
  start_ironwork ironwork-postgres --database "$pg_url"
  bench ironwork-postgres "$iw_url" "$iw_pid"
  stop_ironwork
else
  echo "== ironwork-postgres: SKIP (set IRONWORK_BENCH_POSTGRES=postgres://... to include it)"
fi

# (c) real Ironic
if [ "$IRONIC" = 0 ]; then
  echo "== ironic: SKIP (IRONIC=0)"
elif [ ! -x "$real_ironic" ]; then
  echo "== ironic: SKIP ($real_ironic not found: ../shared is absent next to the repo)"
elif [ ! -x /usr/bin/ironic-api ]; then
  echo "== ironic: SKIP (the real Ironic is not installed: '$real_ironic install')"
else
  port=$(free_port 2) # the conductor's JSON-RPC listens on PORT+1
  ironic_dir=$work/ironic
  IRONIC_MODE=split IRONIC_API_WORKERS=2 "$real_ironic" start "$port" "$ironic_dir"
  bench ironic "http://127.0.0.1:$port" 0 "$CROWD_IRONIC"
  "$real_ironic" stop "$ironic_dir" >/dev/null
  ironic_dir=
fi

# Summary and ratios (Ironwork / Ironic; for times, Ironic / Ironwork, so >1 means Ironwork is faster).
echo
echo "== summary (N=$N, C=$C, R=$R)"
awk '
  { delete f; for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    l = f["label"]; order[++n] = l
    rate[l] = f["enrol_rate"]; p50[l] = f["p50_ms"]; p99[l] = f["p99_ms"]; list[l] = f["list_best_s"]; listed[l] = f["listed"]
    dpm[l] = f["deploys_per_min"]; pg50[l] = f["page_p50_ms"]; pg99[l] = f["page_p99_ms"]
    g50[l] = f["get_p50_ms"]; g99[l] = f["get_p99_ms"]; grate[l] = f["get_rate"]; rss[l] = f["rss_mib"]; hwm[l] = f["hwm_mib"]
    precv[l] = f["page_recv_p50_ms"]
    pagesplit[l] = ("page_recv_p50_ms" in f) ? sprintf("body received p50 %s ms, client decoding p50 %s ms", f["page_recv_p50_ms"], f["page_decode_p50_ms"]) : ""
    floor[l] = f["page_floor_p50_ms"]
    if (floor[l] > 0) pagesplit[l] = pagesplit[l] sprintf("; the same page from a server that answers at once p50 %s ms", floor[l])
    crowd[l] = ("crowd_rps" in f) ? sprintf("%s%s req/s, %s failed; p99 list %s detail %s get %s patch %s ms",
      (f["crowd_offered"] > 0) ? "offered " f["crowd_offered"] ", served " : "", f["crowd_rps"], f["crowd_failed"],
      f["crowd_list_p99_ms"], f["crowd_detail_p99_ms"], f["crowd_get_p99_ms"], f["crowd_patch_p99_ms"]) : "" }
  function x(a, b) { return (a > 0 && b > 0) ? sprintf("%.1f", a / b) : "-" }
  END {
    printf "%-18s %10s %8s %8s %9s %7s %8s %8s %8s %8s %9s %8s %8s\n", "target", "enrol/s", "crt p50", "crt p99", "best list", "listed",
      "page p50", "page p99", "get p50", "get p99", "deploys/m", "RSS MiB", "HWM MiB"
    for (i = 1; i <= n; i++) { l = order[i]
      printf "%-18s %10.1f %8.1f %8.1f %9.3f %7d %8.1f %8.1f %8.2f %8.2f %9.1f %8s %8s\n", l, rate[l], p50[l], p99[l], list[l], listed[l],
        pg50[l], pg99[l], g50[l], g99[l], dpm[l], rss[l], hwm[l] }
    for (i = 1; i <= n; i++) { l = order[i]; if (pagesplit[l] != "") printf "page  %-18s %s\n", l, pagesplit[l] }
    for (i = 1; i <= n; i++) { l = order[i]; if (crowd[l] != "") printf "crowd %-18s %s\n", l, crowd[l] }
    if (!("ironic" in rate)) { print "(no Ironic result: no ratios)"; exit }
    print ""
    printf "%-18s %8s %8s %8s %8s %8s %8s %8s %8s %8s %8s\n", "vs Ironic (x)", "enrol", "crt p50", "crt p99", "list", "page p50", "page p99", "page rcv", "get/s", "get p50", "get p99"
    for (i = 1; i <= n; i++) { l = order[i]; if (l == "ironic") continue
      printf "%-18s %8s %8s %8s %8s %8s %8s %8s %8s %8s %8s %s\n", l, x(rate[l], rate["ironic"]), x(p50["ironic"], p50[l]), x(p99["ironic"], p99[l]),
        x(list["ironic"], list[l]), x(pg50["ironic"], pg50[l]), x(pg99["ironic"], pg99[l]), x(precv["ironic"], precv[l]),
        x(grate[l], grate["ironic"]), x(g50["ironic"], g50[l]), x(g99["ironic"], g99[l]),
        (dpm["ironic"] > 0 ? sprintf("deploys/min %.1fx", dpm[l] / dpm["ironic"]) : "") }
    # The most any server could show on the page: Ironic'"'"'s page over the client'"'"'s own share
    # (the first page served from the client'"'"'s memory, read and decoded the same way).
    for (i = 1; i <= n; i++) { l = order[i]; if (l == "ironic" || !(floor[l] > 0)) continue
      printf "page ceiling %-18s Ironic page p50 / a server answering at once: %sx (this target %sx)\n", l, x(pg50["ironic"], floor[l]), x(pg50["ironic"], pg50[l]) }
  }' "$work/results"
