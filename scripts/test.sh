#!/usr/bin/env bash
# test.sh: Ironwork's whole test suite, as CI runs it, or one part of it.
#   - installs what the tests need (scripts/deps.sh, scripts/kernel.sh) and starts a throw-away
#     PostgreSQL
#   - gofmt and go vet
#   - go test -race on every package, against SQLite and PostgreSQL
#   - every fuzz target for FUZZTIME each (default 4s)
#   - the real `baremetal` CLI (python3-ironicclient) against a running Ironwork
# internal/lab (the QEMU machines, 690 to 931 s) runs in the background beside the rest, so
# the whole run (22 min 33 s in stop 27's last run on the 2-core development machine) is the
# setup (1.8 min with vet), the other packages (17.8 min), then fuzz (2 min, two targets at a time)
# and the CLI script (1 min). Both CPUs are busy throughout: only less work makes it shorter
# (docs/decisions.md, "The CI run's length, measured per program", and stop 27's section).
#
# Usage: scripts/test.sh [all|unit|lab|fuzz|cli]   (default all)
#   unit  gofmt, vet and go test -race on every package but internal/lab
#   lab   go test ./internal/lab, without -race (root, QEMU; two labs at a time: 931 s in a full CI run
#         on 2 cores, 2026-12-03; 49 minutes when the labs ran one at a time)
#   fuzz  every fuzz target;  cli  the baremetal CLI script
# Environment: FUZZTIME=0 skips fuzzing; IRONWORK_SKIP_POSTGRES=1 skips PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
FUZZTIME=${FUZZTIME:-4s}
part=${1:-all}
case $part in all|unit|lab|fuzz|cli) ;; *) echo "usage: scripts/test.sh [all|unit|lab|fuzz|cli]" >&2; exit 2;; esac
want() { [ "$part" = all ] || [ "$part" = "$1" ]; }
failed=()
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }

pgdir=
# The cleanup must never change the suite's verdict: errors in it are reported, not fatal.
cleanup() {
  local rc=$?
  set +e
  if [ -n "${prebuild:-}" ]; then
    kill -- -"$prebuild" 2>/dev/null
    wait "$prebuild" 2>/dev/null
  fi
  rm -f "${prebuilt:-}"
  [ -z "${fuzzbin:-}" ] || rm -rf "$fuzzbin"
  if [ -n "${labpid:-}" ] && kill -0 "$labpid" 2>/dev/null; then
    kill -- -"$labpid" 2>/dev/null || kill "$labpid"
    wait "$labpid" 2>/dev/null
  fi
  if [ -n "$pgdir" ]; then
    scripts/postgres.sh stop "$pgdir" || echo "test.sh: could not stop PostgreSQL in $pgdir" >&2
    rm -rf "$pgdir" 2>/dev/null || rm -rf "$pgdir" 2>/dev/null || echo "test.sh: could not remove $pgdir" >&2
  fi
  exit $rc
}
trap cleanup EXIT

# The race detector's builds (the background compile, vet and go test share them, so each
# package compiles once) leave out checkptr, which -race turns on everywhere, in the
# modernc.org packages only: SQLite there is C translated to Go, unsafe.Pointer arithmetic
# on every line, and checking each conversion took a third of the SQLite-heavy tests' CPU
# (internal/sqlstore: 19.8 and 24.1 CPU s with it, 13.5 and 13.0 without; docs/decisions.md,
# "The CI run's length: checkptr, ..."). Its memory accesses are still race-checked, and our
# own unsafe code (the agent's ioctls) keeps checkptr.
export IRONWORK_RACE_GCFLAGS='modernc.org/...=-d=checkptr=0'

prebuild=
prebuilt=$(mktemp -u /tmp/ironwork-prebuilt.XXXXXX)
if want unit || want fuzz; then
  # Compiling every package's race-enabled test binary takes about three minutes of both CPUs
  # on a fresh machine; installing the Debian packages mostly waits on the network. So the
  # compiler fills Go's build cache meanwhile: every package and test package as `go test
  # -race` compiles it (`go list -export` compiles without linking: the test binaries are not
  # cached, so linking them here, as `go test -exec true` did, was done twice: 4.7 of the run's
  # 55 CPU minutes went to the linker), and the lab's own builds of the two commands too;
  # $prebuilt marks the end of that part, which the tests wait for. Then the fuzz targets' test
  # binaries, built with the fuzzing instrumentation into $fuzzbin (scripts/fuzz.sh --build),
  # which the fuzz step runs; that part goes on beside vet and the tests if the install was
  # quick. Its output is not needed: a real compile error shows again in vet and go test below,
  # and fuzz.sh builds any binary missing.
  step "compiling the tests in the background while the dependencies install"
  fuzzbuild=no
  if want fuzz && [ "$FUZZTIME" != 0 ]; then
    fuzzbin=$(mktemp -d /tmp/ironwork-fuzzbin.XXXXXX)
    fuzzbuild=yes
  fi
  setsid bash -c 'if [ "$1" = yes ]; then
      go list -e -export -race -gcflags="$IRONWORK_RACE_GCFLAGS" -test -deps $(go list ./... | grep -v "/internal/lab$") >/dev/null 2>&1
      CGO_ENABLED=0 go build -o /dev/null ./cmd/ironwork >/dev/null 2>&1
      CGO_ENABLED=0 go build -o /dev/null ./cmd/ironwork-agent >/dev/null 2>&1
      CGO_ENABLED=0 go test -c -o /dev/null ./internal/lab/ >/dev/null 2>&1
    fi
    touch "$2"
    if [ "$3" = yes ]; then FUZZBIN=$4 scripts/fuzz.sh --build >/dev/null 2>&1; fi' prebuild "$(want unit && echo yes)" "$prebuilt" "$fuzzbuild" "${fuzzbin:-}" &
  prebuild=$!
fi

step "dependencies"
scripts/deps.sh
# A Debian kernel for the network boot tests' virtual machines (unpacked, not installed).
if kdir=$(scripts/kernel.sh); then
  export IRONWORK_TEST_KERNEL=$kdir/vmlinuz
else
  echo "test.sh: no Debian kernel could be unpacked; the QEMU boot tests will skip" >&2
fi

if [ "${IRONWORK_SKIP_POSTGRES:-}" != 1 ] && [ -z "${IRONWORK_TEST_POSTGRES:-}" ]; then
  step "PostgreSQL"
  pgdir=$(mktemp -d /tmp/ironwork-pg.XXXXXX)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  IRONWORK_TEST_POSTGRES=$(scripts/postgres.sh start "$pgdir" "$port")
  export IRONWORK_TEST_POSTGRES
  echo "PostgreSQL at $IRONWORK_TEST_POSTGRES"
fi

if [ -n "$prebuild" ]; then
  # The race-enabled part only (or the whole job, if it ended early).
  while [ ! -e "$prebuilt" ] && kill -0 "$prebuild" 2>/dev/null; do sleep 1; done
  rm -f "$prebuilt"
fi

labpid=
lablog=
if want lab; then
  step "go test ./internal/lab (in the background)"
  lablog=$(mktemp /tmp/ironwork-lab-test.XXXXXX)
  # Its own process group, so that an interrupted run stops the QEMU tests too.
  # -v so that every test's wall time is in the log; only the summary is printed unless it fails.
  # -parallel 2: two labs at a time (every lab test calls t.Parallel; each has its own
  # namespace, subnet, ports and directory; the binaries, the deploy ramdisk and the test image
  # are built once for all of them). More would only share the same two cores under TCG.
  # Without -race, as users build it (CGO_ENABLED=0, the flags of the command builds above, so
  # the cache holds its packages): the lab's servers and agents are separate processes built by
  # the lab without -race anyway; the test binary's own code is the orchestration, and -race
  # there cost 15 % more CPU (one lab test: 91.7 -> 78.2 CPU s). The race detector covers the
  # server's code in every other package's tests, internal/server's QEMU deploys included.
  CGO_ENABLED=0 setsid go test -count=1 -v -parallel 2 -timeout 80m ./internal/lab/ >"$lablog" 2>&1 &
  labpid=$!
fi

if want unit; then
  step "gofmt and go vet"
  unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
  [ -z "$unformatted" ] || { echo "gofmt would change: $unformatted"; failed+=(gofmt); }
  # With -race: vet needs its packages' dependencies compiled, and those the race-enabled test
  # builds compile are already in the cache (no file of ours has a race build tag, so vet reads
  # the same code); without it, a fresh machine compiles every dependency once more for vet.
  go vet -race -gcflags="$IRONWORK_RACE_GCFLAGS" ./... || failed+=(vet)

  step "go test -race (every package but internal/lab)"
  # Two packages at a time beside the lab's virtual machines (measured: the lab's QEMU guests,
  # under TCG, keep their boot and callback timeouts with that much beside them).
  # The longest packages first (seconds in a CI run: internal/server 547 with its QEMU tests,
  # cmd/ironwork-agent 254, internal/httpapi 170, cmd/ironwork 147, internal/agent 135,
  # internal/ramdisk 125; 1932 in all): go test starts them in the order given, and in
  # alphabetical order internal/server began two thirds of the way through and ran on alone.
  pkgs=$(go list ./... | grep -v '/internal/lab$')
  first=()
  for p in internal/server cmd/ironwork-agent internal/httpapi cmd/ironwork internal/agent internal/ramdisk; do
    first+=($(grep -x "github.com/ironwork/ironwork/$p" <<<"$pkgs" || true))
  done
  rest=$(grep -vxF -f <(printf '%s\n' "${first[@]}") <<<"$pkgs")
  go test -race -gcflags="$IRONWORK_RACE_GCFLAGS" -count=1 -p 2 -timeout 40m "${first[@]}" $rest || failed+=(go-test)
fi

if [ -n "$prebuild" ]; then
  wait "$prebuild" 2>/dev/null || true
  prebuild=
fi

if want fuzz && [ "$FUZZTIME" != 0 ]; then
  step "fuzz ($FUZZTIME per target)"
  FUZZBIN=${fuzzbin:-} FUZZTIME=$FUZZTIME scripts/fuzz.sh || failed+=(fuzz)
fi

# The CLI script runs after the fuzzing, not beside it: beside it (stop 18's CI run), the two
# took 7 minutes, as long as one after the other (3 min 50 s and 3 min).
if want cli; then
  step "real baremetal CLI against Ironwork"
  scripts/test-baremetal-cli.sh || failed+=(baremetal-cli)
fi

if [ -n "$labpid" ]; then
  step "go test ./internal/lab (waiting)"
  labrc=0
  wait "$labpid" || labrc=$?
  labpid=
  if [ "$labrc" != 0 ]; then
    failed+=(lab)
    echo "--- the lab's log, last 4000 lines:"
    tail -n 4000 "$lablog"
  fi
  echo "--- the lab's tests and their wall times:"
  grep -E '^ *--- (PASS|FAIL|SKIP)|^(ok|FAIL|PASS)\b' "$lablog" || true
  rm -f "$lablog"
fi

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all test steps passed ($part) at $(date -u +%H:%M:%S)"
