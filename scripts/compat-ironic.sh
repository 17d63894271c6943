#!/usr/bin/env bash
# compat-ironic.sh: compare Ironwork's API with the real OpenStack Ironic, side by side.
#
#   scripts/compat-ironic.sh [OUT]     (default OUT: docs/compat-report.md)
#
# Builds Ironwork, starts it on a free loopback port with a temporary data dir (embedded
# SQLite), starts the real Ironic (Debian's 21.4, split mode, 2 API workers) with
# ../shared/tools/real-ironic.sh on another free port, runs `go run ./bench/compat` against
# both and writes the Markdown report to OUT. Both servers are stopped on exit.
# Extra arguments for the Go program go in COMPAT_ARGS (e.g. COMPAT_ARGS=-strict).
# Skips (exit 0, with a message) when ../shared or the Ironic packages are absent.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
out=${1:-docs/compat-report.md}
shared=$(cd "$repo/.." && pwd)/shared
real_ironic=$shared/tools/real-ironic.sh

die() { echo "compat-ironic: $*" >&2; exit 1; }

if [ ! -x "$real_ironic" ]; then
  echo "compat-ironic: SKIP: $real_ironic not found (../shared is absent next to the repo)"
  exit 0
fi
if [ ! -x /usr/bin/ironic-api ]; then
  echo "compat-ironic: SKIP: the real Ironic is not installed (run '$real_ironic install')"
  exit 0
fi
command -v curl >/dev/null || die "curl is needed"

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port [SPAN]: a random port p such that p .. p+SPAN-1 are all free.
free_port() {
  local span=${1:-1} p i ok
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000)) ok=1 # below Linux's ephemeral range, where :0 listeners land
    for ((i = 0; i < span; i++)); do port_free $((p + i)) || { ok=0; break; }; done
    [ $ok = 1 ] && { echo "$p"; return 0; }
  done
  die "no free port found"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/compat-ironic.XXXXXX")
iw_pid=
cleanup() {
  local rc=$?
  if [ -n "$iw_pid" ] && kill -0 "$iw_pid" 2>/dev/null; then
    kill -TERM "$iw_pid" 2>/dev/null || true
    wait "$iw_pid" 2>/dev/null || true
  fi
  [ -d "$work/ironic" ] && "$real_ironic" stop "$work/ironic" >/dev/null 2>&1 || true
  if [ $rc -eq 0 ]; then rm -rf "$work"; else echo "compat-ironic: logs kept in $work" >&2; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "compat-ironic: building Ironwork"
go build -o "$work/ironwork" ./cmd/ironwork

mkdir -p "$work/iw"
# A port taken between the check and the bind (a test's :0 listener, say) means another try.
for attempt in 1 2 3; do
  iw_port=$(free_port 1)
  "$work/ironwork" serve --listen "127.0.0.1:$iw_port" --data-dir "$work/iw" >"$work/ironwork.log" 2>&1 &
  iw_pid=$! up=0
  for _ in $(seq 1 100); do
    kill -0 "$iw_pid" 2>/dev/null || break
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$iw_port/" || true)" = 200 ] && { up=1; break; }
    sleep 0.1
  done
  kill -0 "$iw_pid" 2>/dev/null && break
  wait "$iw_pid" 2>/dev/null || true
  iw_pid=
  grep -q 'address already in use' "$work/ironwork.log" && [ "$attempt" != 3 ] && continue
  tail -n 20 "$work/ironwork.log" >&2
  die "Ironwork exited during start-up"
done
[ $up = 1 ] || die "Ironwork does not answer on port $iw_port"
echo "compat-ironic: Ironwork up at http://127.0.0.1:$iw_port (pid $iw_pid)"

ir_port=$(free_port 2) # Ironic's conductor JSON-RPC listens on PORT+1
IRONIC_MODE=split IRONIC_API_WORKERS=2 "$real_ironic" start "$ir_port" "$work/ironic"

mkdir -p "$(dirname "$out")"
# shellcheck disable=SC2086
go run ./bench/compat -ironwork "http://127.0.0.1:$iw_port" -ironic "http://127.0.0.1:$ir_port" \
  -out "$out" ${COMPAT_ARGS:-}
