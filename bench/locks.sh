#!/usr/bin/env bash
# locks.sh: the "stable means free" benchmark (bench/lockbench), in one run, against
#   (a) Ironwork on its embedded SQLite,
#   (b) the real OpenStack Ironic (Debian 21.4, split mode, 2 API workers, SQLite) started with
#       ../shared/tools/real-ironic.sh (skipped with a message when it is absent, not installed
#       or does not start),
# each on a fresh empty store: N fake-hardware nodes from C clients, manage, provide and deploy,
# every verb sent as soon as the node shows the previous stable state with no target. It
# reports the verbs refused with 409 (locked) and the throughput.
#
#   bench/locks.sh              N=300 nodes, C=16 clients
#   N=50 C=8 bench/locks.sh
#
# Everything started here listens on 127.0.0.1 and is stopped on exit.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
N=${N:-300}
C=${C:-16}
real_ironic=$(cd "$repo/.." && pwd)/shared/tools/real-ironic.sh
[ -x "$real_ironic" ] || real_ironic=/work/shared/tools/real-ironic.sh

die() { echo "locks.sh: $*" >&2; exit 1; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { # free_port [SPAN]: p .. p+SPAN-1 all free
  local span=${1:-1} p i ok
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000)) ok=1
    for ((i = 0; i < span; i++)); do port_free $((p + i)) || { ok=0; break; }; done
    [ $ok = 1 ] && { echo "$p"; return 0; }
  done
  die "no free port found"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/locks-bench.XXXXXX")
iw_pid= ironic_dir=
cleanup() {
  local rc=$?
  if [ -n "$iw_pid" ] && kill -0 "$iw_pid" 2>/dev/null; then
    kill -TERM "$iw_pid" 2>/dev/null || true
    wait "$iw_pid" 2>/dev/null || true
  fi
  [ -n "$ironic_dir" ] && { "$real_ironic" stop "$ironic_dir" >/dev/null 2>&1 || true; }
  if [ $rc -eq 0 ]; then rm -rf "$work"; else echo "locks.sh: logs kept in $work" >&2; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "locks.sh: N=$N nodes, C=$C clients; $(nproc) CPUs; $(uname -sr)"
go build -o "$work/ironwork" ./cmd/ironwork
go build -o "$work/lockbench" ./bench/lockbench

bench() {
  echo "== $1"
  "$work/lockbench" -url "$2" -n "$N" -c "$C" -label "$1" | tee "$work/$1.out" || true
  grep '^RESULT ' "$work/$1.out" >> "$work/results" || echo "locks.sh: $1 gave no result" >&2
}

# (a) Ironwork, SQLite
mkdir -p "$work/iw-data"
port=$(free_port 1)
"$work/ironwork" serve --listen "127.0.0.1:$port" --data-dir "$work/iw-data" >"$work/ironwork.log" 2>&1 &
iw_pid=$!
for _ in $(seq 1 200); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/" || true)" = 200 ] && break
  kill -0 "$iw_pid" 2>/dev/null || { tail -n 20 "$work/ironwork.log" >&2; die "Ironwork exited during start-up"; }
  sleep 0.1
done
bench ironwork "http://127.0.0.1:$port"
kill -TERM "$iw_pid"; wait "$iw_pid" 2>/dev/null || true; iw_pid=

# (b) real Ironic
if [ ! -x "$real_ironic" ]; then
  echo "== ironic: SKIP ($real_ironic not found)"
elif [ ! -x /usr/bin/ironic-api ]; then
  echo "== ironic: SKIP (the real Ironic is not installed: '$real_ironic install')"
else
  port=$(free_port 2) # the conductor's JSON-RPC listens on PORT+1
  ironic_dir=$work/ironic
  if IRONIC_MODE=split IRONIC_API_WORKERS=2 "$real_ironic" start "$port" "$ironic_dir" >"$work/ironic-start.log" 2>&1; then
    bench ironic "http://127.0.0.1:$port"
  else
    echo "== ironic: SKIP (it did not start: $(tail -n 1 "$work/ironic-start.log"))"
  fi
  "$real_ironic" stop "$ironic_dir" >/dev/null 2>&1 || true
  ironic_dir=
fi

echo
echo "== summary (N=$N, C=$C)"
awk '
  { delete f; for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    printf "%-10s %10s s %8s deploys/min %6s calls %5s x409 %5s x503 %4s failed\n", f["label"], f["seconds"], f["deploys_per_min"], f["calls"], f["locked"], f["busy"], f["failed"] }
' "$work/results"
