#!/usr/bin/env bash
# fuzz.sh: run every Go fuzz target for FUZZTIME (default 10s) each.
#
# A target fails when it finds an input: Go writes that input under the package's
# testdata/fuzz/<Target>/ and prints it. Go's fuzzing coordinator can also end a run with a bare
# "context deadline exceeded" and no input when the machine is so loaded that a worker misses the
# -fuzztime deadline (a race in the coordinator, seen in CI with workers at 0 execs/s). Such a run
# wrote nothing, so it is replayed once over its corpus without fuzzing; it fails only if the
# replay fails.
#
# FUZZJOBS targets run at a time (default: one per CPU), each with as many fuzzing workers as
# leave one CPU per job (-parallel). A target's fuzzing lasts FUZZTIME whatever CPU it has, and
# each `go test -fuzz` spends about 3 s starting and measuring its corpus besides: one target at
# a time on 2 CPUs, the 51 targets took 7 min 51 s for 5 min 6 s of fuzzing. Two at a time with
# one worker each use the same CPUs, in about half the time, for half the executions per target
# (FUZZJOBS=1 for the old way, or a longer FUZZTIME for more executions). The targets' reports
# are printed in order once all have run.
# Each package's fuzzing test binary is built once (go test -c -fuzz) and run for each of its
# targets, as `go test -fuzz` would run it: linking it again for every target made 51 links for
# 21 packages. FUZZBIN names a directory to keep the binaries in (scripts/test.sh builds them
# there beside the dependencies' install: `scripts/fuzz.sh --build`); a binary already there is
# used as it is.
# Usage: scripts/fuzz.sh [--build] [package pattern...]   (default ./...). Exits 1 when a target
# failed; with --build, builds the binaries and fuzzes nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
FUZZTIME=${FUZZTIME:-10s}
cpus=$(nproc 2>/dev/null || echo 1)
FUZZJOBS=${FUZZJOBS:-$cpus}
workers=$(( cpus / FUZZJOBS ))
[ "$workers" -ge 1 ] || workers=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
build_only=
if [ "${1:-}" = --build ]; then
  build_only=yes
  shift
fi
bindir=${FUZZBIN:-$work/bin}
mkdir -p "$bindir"
fuzzcache=$(go env GOCACHE)/fuzz

# binary PKG: the path of PKG's fuzzing test binary, built if it is not there yet.
binary() {
  local bin
  bin=$bindir/$(echo "$1" | tr / _).test
  if [ ! -x "$bin" ]; then
    go test -c -fuzz=. -o "$bin.tmp" "$1" && mv "$bin.tmp" "$bin" || return 1
  fi
  echo "$bin"
}

# run_target PKG DIR TARGET LOG BIN: fuzzes one target, writes its report to LOG and LOG.failed when
# it failed. BIN is the package's fuzzing test binary, run in the package's directory with the
# fuzzing cache `go test` would give it.
run_target() {
  local pkg=$1 dir=$2 target=$3 log=$4 bin=$5
  local out=$log.out corpus=$dir/testdata/fuzz/$target before after
  {
    echo "--- $target ($pkg)"
    before=$(ls "$corpus" 2>/dev/null | sort)
    if (cd "$dir" && "$bin" -test.run '^$' -test.fuzz "^${target}\$" -test.fuzztime "$FUZZTIME" -test.parallel "$workers" \
        -test.timeout 10m -test.fuzzcachedir "$fuzzcache/$pkg") >"$out" 2>&1; then
      tail -n 3 "$out"
      return 0
    fi
    after=$(ls "$corpus" 2>/dev/null | sort)
    if [ "$before" = "$after" ] && grep -q 'context deadline exceeded' "$out" && ! grep -q 'panic:\|Failing input' "$out"; then
      tail -n 4 "$out"
      echo "fuzz.sh: $target stopped on the coordinator's deadline with no input written; replaying its corpus"
      if (cd "$dir" && "$bin" -test.run "^${target}\$"); then
        echo "fuzz.sh: $target replay passed (counted as passed)"
        return 0
      fi
    else
      cat "$out"
      if [ "$before" != "$after" ]; then
        echo "fuzz.sh: new input(s) for $target:"
        comm -13 <(echo "$before") <(echo "$after") | sed "s|^|  $corpus/|"
      fi
    fi
    touch "$log.failed"
  } >"$log" 2>&1
}

logs=()
targets=()
running=0
build_failed=()
for pkg in $(go list "${@:-./...}"); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  pkgtargets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u)
  [ -n "$pkgtargets" ] || continue
  if ! bin=$(binary "$pkg"); then
    build_failed+=("$pkg")
    continue
  fi
  [ -z "$build_only" ] || continue
  for target in $pkgtargets; do
    if [ "$running" -ge "$FUZZJOBS" ]; then
      wait -n
      running=$((running - 1))
    fi
    log=$work/${#logs[@]}
    logs+=("$log")
    targets+=("$target")
    run_target "$pkg" "$dir" "$target" "$log" "$bin" &
    running=$((running + 1))
  done
done
wait
if [ ${#build_failed[@]} -gt 0 ]; then
  echo "fuzz.sh: could not build the fuzzing test binary of: ${build_failed[*]}"
  exit 1
fi
[ -z "$build_only" ] || exit 0

failed=()
for i in "${!logs[@]}"; do
  cat "${logs[$i]}"
  [ -e "${logs[$i]}.failed" ] && failed+=("${targets[$i]}")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz.sh: every target passed (${#targets[@]} targets, $FUZZJOBS at a time, $workers worker(s) each, $FUZZTIME each)"
