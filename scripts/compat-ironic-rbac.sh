#!/usr/bin/env bash
# compat-ironic-rbac.sh: compare Ironwork with the real OpenStack Ironic with RBAC on both sides.
#
#   scripts/compat-ironic-rbac.sh [OUT]     (default OUT: docs/compat-report-rbac.md)
#
# Starts one Keystone (Debian's keystone, SQLite, served by uwsgi on a free loopback port),
# Ironwork with auth_strategy = keystone, and the real Ironic 21.4 (split mode) with
# auth_strategy = keystone and Ironic's new policy defaults with scope enforcement
# ([oslo_policy] enforce_scope/enforce_new_defaults = True, what Ironwork implements). Both
# validate tokens with Keystone's bootstrap admin as their service user. Then
# `go run ./bench/compatrbac` creates the projects and users in Keystone (a system admin, an
# owner project A, a lessee project B, an unrelated project C), seeds both servers identically as
# the system admin, replays the same requests as each persona and writes the report to OUT.
# Everything started is stopped on exit (logs are kept in the run's directory on failure).
#
# real-ironic.sh writes a noauth config and cannot take extra settings, so this script lets it
# create the data directory, the config and the SQLite schema (start, then stop), rewrites
# DATADIR/ironic.conf (auth_strategy, [keystone_authtoken], [oslo_policy]) and starts
# ironic-api and ironic-conductor itself with the same PID files, so `real-ironic.sh stop`
# still stops them.
#
# Extra arguments for the Go program go in COMPAT_ARGS (e.g. COMPAT_ARGS=-strict).
# COMPAT_RBAC_HOLD=1 keeps the three servers up after the run (until Ctrl-C) and prints their URLs.
# Skips (exit 0, with a message) when ../shared, Ironic, Keystone or uwsgi is absent.
# Not part of CI.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
out=${1:-docs/compat-report-rbac.md}
# ../shared next to the repo; a worktree under /work/wt/NAME finds it two levels up; SHARED overrides.
shared=${SHARED:-$(cd "$repo/.." && pwd)/shared}
[ -d "$shared" ] || [ -n "${SHARED:-}" ] || shared=$(cd "$repo/../.." && pwd)/shared
real_ironic=$shared/tools/real-ironic.sh
PY=/usr/bin/python3

die() { echo "compat-ironic-rbac: $*" >&2; exit 1; }
skip() { echo "compat-ironic-rbac: SKIP: $*"; exit 0; }

[ -x "$real_ironic" ] || skip "$real_ironic not found (../shared is absent next to the repo)"
[ -x /usr/bin/ironic-api ] || skip "the real Ironic is not installed (run '$real_ironic install')"
for bin in keystone-manage uwsgi /usr/bin/keystone-wsgi-public; do
  command -v "$bin" >/dev/null || skip "$bin is not installed (apt-get install keystone uwsgi uwsgi-plugin-python3)"
done
$PY -c 'import keystonemiddleware' 2>/dev/null || skip "python3-keystonemiddleware is not installed"
command -v curl >/dev/null || die "curl is needed"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local span=${1:-1} p i ok
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000)) ok=1
    for ((i = 0; i < span; i++)); do port_free $((p + i)) || { ok=0; break; }; done
    [ $ok = 1 ] && { echo "$p"; return 0; }
  done
  die "no free port found"
}
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

work=$(mktemp -d "${TMPDIR:-/tmp}/compat-ironic-rbac.XXXXXX")
iw_pid= ks_pid=
cleanup() {
  local rc=$?
  if pid_alive "$iw_pid"; then kill -TERM "$iw_pid" 2>/dev/null || true; wait "$iw_pid" 2>/dev/null || true; fi
  [ -d "$work/ironic" ] && "$real_ironic" stop "$work/ironic" >/dev/null 2>&1 || true
  if pid_alive "$ks_pid"; then
    kill -TERM -- "-$ks_pid" 2>/dev/null || true
    for _ in $(seq 1 40); do pid_alive "$ks_pid" || break; sleep 0.25; done
    pid_alive "$ks_pid" && kill -KILL -- "-$ks_pid" 2>/dev/null || true
  fi
  if [ $rc -eq 0 ]; then rm -rf "$work"; else echo "compat-ironic-rbac: logs kept in $work" >&2; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Keystone ---------------------------------------------------------------------------
t0=$SECONDS
ks_port=$(free_port 1)
ks_url="http://127.0.0.1:$ks_port/v3"
ks=$work/keystone
mkdir -p "$ks"/{fernet,receipts,credential}
chmod 700 "$ks"/{fernet,receipts,credential}
cat > "$ks/keystone.conf" <<KEOF
[DEFAULT]
log_file = $ks/keystone.log
[database]
connection = sqlite:///$ks/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = $ks/fernet
[fernet_receipts]
key_repository = $ks/receipts
[credential]
key_repository = $ks/credential
[cache]
enabled = false
KEOF
ks_admin_pw=admin-$RANDOM$RANDOM
manage() {
  # keystone-manage may print an eventlet traceback at exit after doing its work; the token
  # request below checks the result.
  keystone-manage --config-file "$ks/keystone.conf" "$@" >>"$ks/manage.out" 2>&1 \
    || grep -q getcurrent "$ks/manage.out" || { tail -n 30 "$ks/manage.out" >&2; die "keystone-manage $1 failed"; }
}
echo "compat-ironic-rbac: setting Keystone up"
manage db_sync
manage fernet_setup --keystone-user root --keystone-group root
manage credential_setup --keystone-user root --keystone-group root
manage bootstrap --bootstrap-password "$ks_admin_pw" --bootstrap-admin-url "$ks_url" \
  --bootstrap-public-url "$ks_url" --bootstrap-internal-url "$ks_url" --bootstrap-region-id RegionOne
$PY -c 'import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL")' "$ks/keystone.db"
OS_KEYSTONE_CONFIG_FILES=$ks/keystone.conf setsid uwsgi --plugin python3 --lazy-apps \
  --http11-socket "127.0.0.1:$ks_port" --wsgi-file /usr/bin/keystone-wsgi-public \
  --processes 1 --threads 1 --master --die-on-term >"$ks/uwsgi.log" 2>&1 </dev/null &
ks_pid=$!
for i in $(seq 1 240); do
  pid_alive "$ks_pid" || { tail -n 30 "$ks/uwsgi.log" >&2; die "Keystone (uwsgi) exited during start-up"; }
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$ks_url" || true)" = 200 ] && break
  [ "$i" = 240 ] && die "Keystone does not answer on $ks_url"
  sleep 0.5
done
echo "compat-ironic-rbac: Keystone up at $ks_url after $((SECONDS - t0)) s"

# --- Ironwork -----------------------------------------------------------------------------
echo "compat-ironic-rbac: building Ironwork"
go build -o "$work/ironwork" ./cmd/ironwork
mkdir -p "$work/iw"
for attempt in 1 2 3; do
  iw_port=$(free_port 1)
  cat > "$work/iw/ironwork.toml" <<IEOF
auth_strategy = "keystone"

[keystone_authtoken]
auth_url = "$ks_url"
username = "admin"
password = "$ks_admin_pw"
user_domain_name = "Default"
project_name = "admin"
project_domain_name = "Default"
IEOF
  "$work/ironwork" serve --config "$work/iw/ironwork.toml" --listen "127.0.0.1:$iw_port" \
    --data-dir "$work/iw" >"$work/ironwork.log" 2>&1 &
  iw_pid=$! up=0
  for _ in $(seq 1 200); do
    pid_alive "$iw_pid" || break
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$iw_port/" || true)" = 200 ] && { up=1; break; }
    sleep 0.1
  done
  pid_alive "$iw_pid" && break
  wait "$iw_pid" 2>/dev/null || true
  iw_pid=
  grep -q 'address already in use' "$work/ironwork.log" && [ "$attempt" != 3 ] && continue
  tail -n 20 "$work/ironwork.log" >&2
  die "Ironwork exited during start-up"
done
[ $up = 1 ] || die "Ironwork does not answer on port $iw_port"
echo "compat-ironic-rbac: Ironwork up at http://127.0.0.1:$iw_port (pid $iw_pid)"

# --- the real Ironic ------------------------------------------------------------------------
ir_port=$(free_port 2) # the conductor's JSON-RPC listens on PORT+1
ir=$work/ironic
echo "compat-ironic-rbac: preparing the real Ironic's data directory (noauth start, then stop)"
IRONIC_MODE=split IRONIC_API_WORKERS=2 "$real_ironic" start "$ir_port" "$ir" >/dev/null
"$real_ironic" stop "$ir" >/dev/null
# Only the first auth_strategy (in [DEFAULT]); [json_rpc] keeps noauth.
sed -i '0,/^auth_strategy = noauth$/s//auth_strategy = keystone/' "$ir/ironic.conf"
# [json_rpc] keeps its own auth_strategy = noauth (API to conductor on loopback).
grep -q '^auth_strategy = keystone$' "$ir/ironic.conf" || die "could not switch Ironic to keystone"
cat >> "$ir/ironic.conf" <<REOF

# Added by compat-ironic-rbac.sh
[keystone_authtoken]
auth_type = password
auth_url = $ks_url
www_authenticate_uri = $ks_url
interface = public
username = admin
password = $ks_admin_pw
user_domain_name = Default
project_name = admin
project_domain_name = Default

[oslo_policy]
enforce_scope = True
enforce_new_defaults = True
REOF
setsid "$PY" /usr/bin/ironic-conductor --config-file "$ir/ironic.conf" >"$ir/ironic-conductor.out" 2>&1 </dev/null &
echo $! >"$ir/ironic-conductor.pid"
setsid "$PY" /usr/bin/ironic-api --config-file "$ir/ironic.conf" >"$ir/ironic-api.out" 2>&1 </dev/null &
echo $! >"$ir/ironic-api.pid"
deadline=$((SECONDS + 240))
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ir_port/" || true)" = 200 ]; do
  for f in "$ir"/*.pid; do pid_alive "$(cat "$f")" || { tail -n 30 "$ir"/*.log "$ir"/*.out >&2 || true; die "$(basename "$f" .pid) exited"; }; done
  [ $SECONDS -lt $deadline ] || die "the real Ironic does not answer on port $ir_port"
  sleep 0.5
done
echo "compat-ironic-rbac: real Ironic up at http://127.0.0.1:$ir_port (keystone)"

mkdir -p "$(dirname "$out")"
echo "compat-ironic-rbac: load average $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2086
go run ./bench/compatrbac -ironwork "http://127.0.0.1:$iw_port" -ironic "http://127.0.0.1:$ir_port" \
  -keystone "$ks_url" -admin-password "$ks_admin_pw" -out "$out" ${COMPAT_ARGS:-} || [ "${COMPAT_RBAC_HOLD:-}" = 1 ]

if [ "${COMPAT_RBAC_HOLD:-}" = 1 ]; then
  echo "compat-ironic-rbac: holding: KS=$ks_url PW=$ks_admin_pw IW=http://127.0.0.1:$iw_port IR=http://127.0.0.1:$ir_port (Ctrl-C ends)"
  echo "KS=$ks_url PW=$ks_admin_pw IW=http://127.0.0.1:$iw_port IR=http://127.0.0.1:$ir_port" >"${TMPDIR:-/tmp}/compat-rbac-hold.env"
  while :; do sleep 5; done
fi
