#!/usr/bin/env bash
# tftp.sh: TFTP download throughput of Ironwork's server (internal/tftp via bench/tftpserve)
# against tftpd-hpa (in.tftpd) and dnsmasq's TFTP, in one run, same clients, same file.
#
#   bench/tftp.sh                  64 MiB file, 3 rounds per server and client setting
#   SIZE_MIB=16 ROUNDS=1 bench/tftp.sh
#   CLIENTS="curl 512,atftp 1428 w16" bench/tftp.sh     only these client settings
#
# Client settings: curl with its default 512-byte blocks, curl --tftp-blksize 1428 and 65464
# (lock-step, one ACK per block), and atftp with blksize 1428 and windowsize 16 (RFC 7440; the
# peers do not implement windowsize and fall back to lock-step, which is the point of that row).
# Rounds are interleaved (server A, B, C, A, B, C, ...) so a change in machine load hits all.
#
# Everything runs inside a private network namespace made here (only its loopback is up), so
# dnsmasq can have port 69 without touching the host (a veth pair with 10.254.0.1/24 exists in
# it only for in.tftpd, see below; no traffic uses it); the namespace and every process are
# removed on exit. Needs root, ip(8), curl, atftp, in.tftpd (tftpd-hpa), dnsmasq, bc, go.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MIB=${SIZE_MIB:-64}
ROUNDS=${ROUNDS:-3}
die() { echo "tftp.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (network namespace, dnsmasq on port 69)"
for b in ip curl atftp in.tftpd dnsmasq bc go; do
  command -v "$b" >/dev/null || die "$b not found (Debian: iproute2 curl atftp tftpd-hpa dnsmasq bc; Go in PATH)"
done

base=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm # keep disk speed out of it
work=$(mktemp -d "$base/tftp-bench.XXXXXX")
ns=tftpbench$$
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

in_ns() { ip netns exec "$ns" "$@"; }
ip netns add "$ns"
in_ns ip link set lo up
# in.tftpd resolves its -a address with AI_ADDRCONFIG, which fails when loopback is the only
# configured interface: give the namespace a veth pair (both ends inside) with a private address.
in_ns ip link add tfb0 type veth peer name tfb1
in_ns ip addr add 10.254.0.1/24 dev tfb0
in_ns ip link set tfb0 up
in_ns ip link set tfb1 up

echo "building bench/tftpserve" >&2
(cd "$repo" && go build -o "$work/tftpserve" ./bench/tftpserve)

root=$work/root
mkdir -p "$root" "$work/out"
head -c $((SIZE_MIB << 20)) /dev/urandom >"$root/file"
chmod 755 "$work" "$root" # dnsmasq and in.tftpd drop root
chmod 644 "$root/file"

# Started with ip netns exec directly (not through in_ns) so that $! is the server itself.
ip netns exec "$ns" "$work/tftpserve" -root "$root" -listen 127.0.0.1:6969 2>"$work/ironwork.log" &
pids+=($!)
ip netns exec "$ns" in.tftpd -L -s "$root" -a 127.0.0.1:6970 2>"$work/tftpd.log" &
pids+=($!)
ip netns exec "$ns" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --enable-tftp --tftp-root="$root" \
  --listen-address=127.0.0.1 --bind-interfaces --pid-file="$work/dnsmasq.pid" --log-facility="$work/dnsmasq.log" &
pids+=($!)
declare -A port=([ironwork]=6969 [tftpd-hpa]=6970 [dnsmasq]=69)
servers=(ironwork tftpd-hpa dnsmasq)

# Wait until each server answers a request.
echo small >"$root/ping"
chmod 644 "$root/ping"
for s in "${servers[@]}"; do
  ok=0
  for _ in $(seq 1 50); do
    if in_ns curl -s --max-time 1 -o /dev/null "tftp://127.0.0.1:${port[$s]}/ping"; then ok=1; break; fi
    sleep 0.1
  done
  [ $ok = 1 ] || die "$s does not answer on port ${port[$s]} (see $work/*.log)"
done

clients=()
for c in "curl 512" "curl 1428" "curl 65464" "atftp 1428 w16"; do
  [[ -z ${CLIENTS:-} || ",$CLIENTS," == *",$c,"* ]] && clients+=("$c")
done
[ ${#clients[@]} -gt 0 ] || die "CLIENTS=$CLIENTS matches none of: curl 512, curl 1428, curl 65464, atftp 1428 w16"
fetch() { # fetch CLIENT PORT OUT
  case $1 in
    "curl 512") in_ns curl -sS --max-time 300 -o "$3" "tftp://127.0.0.1:$2/file" ;;
    "curl 1428") in_ns curl -sS --max-time 300 --tftp-blksize 1428 -o "$3" "tftp://127.0.0.1:$2/file" ;;
    "curl 65464") in_ns curl -sS --max-time 300 --tftp-blksize 65464 -o "$3" "tftp://127.0.0.1:$2/file" ;;
    "atftp 1428 w16") in_ns timeout 300 atftp --option "blksize 1428" --option "windowsize 16" \
      -g -r file -l "$3" 127.0.0.1 "$2" >/dev/null 2>&1 ;;
  esac
}

declare -A results
echo "file ${SIZE_MIB} MiB, ${ROUNDS} rounds; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for c in "${clients[@]}"; do
  for r in $(seq 1 "$ROUNDS"); do
    for s in "${servers[@]}"; do
      out=$work/out/file
      rm -f "$out"
      t0=$(date +%s.%N)
      fetch "$c" "${port[$s]}" "$out" || die "$c from $s failed"
      t1=$(date +%s.%N)
      cmp -s "$out" "$root/file" || die "$c from $s: file differs"
      mibs=$(echo "$SIZE_MIB / ($t1 - $t0)" | bc -l)
      results[$c/$s]+="$(printf '%.1f' "$mibs") "
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '\n%-16s %-10s %-22s %8s %14s\n' client server "MiB/s per round" median "ironwork/this"
for c in "${clients[@]}"; do
  iw=$(echo "${results[$c/ironwork]}" | median)
  for s in "${servers[@]}"; do
    m=$(echo "${results[$c/$s]}" | median)
    printf '%-16s %-10s %-22s %8s %14s\n' "$c" "$s" "${results[$c/$s]}" "$m" "$(printf '%.2f' "$(echo "$iw / $m" | bc -l)")"
  done
done
