#!/usr/bin/env bash
# test.sh: Ironwork's whole test suite, as CI runs it.
#   - installs what the tests need (scripts/deps.sh, scripts/kernel.sh) and starts a throw-away
#     PostgreSQL
#   - gofmt and go vet
#   - go test -race on every package, against SQLite and PostgreSQL
#   - every fuzz target for FUZZTIME each (default 10s)
#   - the real `baremetal` CLI (python3-ironicclient) against a running Ironwork
# Environment: FUZZTIME=0 skips fuzzing; IRONWORK_SKIP_POSTGRES=1 skips PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
FUZZTIME=${FUZZTIME:-10s}
failed=()
step() { echo; echo "=== $*"; }

step "dependencies"
scripts/deps.sh
# A Debian kernel for the network boot tests' virtual machines (unpacked, not installed).
if kdir=$(scripts/kernel.sh); then
  export IRONWORK_TEST_KERNEL=$kdir/vmlinuz
else
  echo "test.sh: no Debian kernel could be unpacked; the QEMU boot tests will skip" >&2
fi

pgdir=
# The cleanup must never change the suite's verdict: errors in it are reported, not fatal.
cleanup() {
  local rc=$?
  set +e
  if [ -n "$pgdir" ]; then
    scripts/postgres.sh stop "$pgdir" || echo "test.sh: could not stop PostgreSQL in $pgdir" >&2
    rm -rf "$pgdir" 2>/dev/null || rm -rf "$pgdir" 2>/dev/null || echo "test.sh: could not remove $pgdir" >&2
  fi
  exit $rc
}
trap cleanup EXIT
if [ "${IRONWORK_SKIP_POSTGRES:-}" != 1 ] && [ -z "${IRONWORK_TEST_POSTGRES:-}" ]; then
  step "PostgreSQL"
  pgdir=$(mktemp -d /tmp/ironwork-pg.XXXXXX)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  IRONWORK_TEST_POSTGRES=$(scripts/postgres.sh start "$pgdir" "$port")
  export IRONWORK_TEST_POSTGRES
  echo "PostgreSQL at $IRONWORK_TEST_POSTGRES"
fi

step "gofmt and go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
[ -z "$unformatted" ] || { echo "gofmt would change: $unformatted"; failed+=(gofmt); }
go vet ./... || failed+=(vet)

step "go test -race"
# internal/lab runs its QEMU tests one after another: about 24 minutes on an idle 2-core machine.
go test -race -count=1 -timeout 50m ./... || failed+=(go-test)

if [ "$FUZZTIME" != 0 ]; then
  step "fuzz ($FUZZTIME per target)"
  FUZZTIME=$FUZZTIME scripts/fuzz.sh || failed+=(fuzz)
fi

step "real baremetal CLI against Ironwork"
scripts/test-baremetal-cli.sh || failed+=(baremetal-cli)

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all test steps passed"
