#!/usr/bin/env bash
# DORA exchanges per second: Ironwork's DHCP server (internal/dhcp through
# bench/dhcpserve) against dnsmasq, measured with perfdhcp (Debian package
# kea-admin) in network namespaces this script makes and removes.
#
#   sudo bench/dhcp.sh                 # RATE=4000 CLIENTS=20000 SECS=10
#   RATE=8000 SECS=5 bench/dhcp.sh
#
# perfdhcp (-4 -l IF) acts as a relay: it sets giaddr to its own address on
# the shared link and the server answers it on port 67, so the bench server
# runs with -relayed (giaddr inside the served subnet).
set -euo pipefail

RATE=${RATE:-4000}       # offered DORA/s
CLIENTS=${CLIENTS:-20000} # distinct MACs
SECS=${SECS:-10}          # test period of each run
WORKERS=${WORKERS:-4}

for b in ip perfdhcp dnsmasq go; do
	command -v "$b" >/dev/null || { echo "dhcp.sh: needs $b (apt-get install kea-admin dnsmasq iproute2)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "dhcp.sh: needs root (network namespaces)" >&2; exit 2; }

here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
S=iwbench-$$-s
C=iwbench-$$-c
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	ip netns del "$S" 2>/dev/null || true
	ip netns del "$C" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

ip netns add "$S"
ip netns add "$C"
ip link add bs0 netns "$S" type veth peer name bc0 netns "$C"
ip -n "$S" addr add 10.79.0.1/16 dev bs0
ip -n "$C" addr add 10.79.0.2/16 dev bc0
for n in "$S" "$C"; do ip -n "$n" link set lo up; done
ip -n "$S" link set bs0 up
ip -n "$C" link set bc0 up
sleep 1

(cd "$here" && go build -o "$tmp/dhcpserve" ./bench/dhcpserve)

# perf NAME: run perfdhcp against whatever serves in $S, print the rate.
perf() {
	local out="$tmp/perf-$1.txt"
	ip netns exec "$C" timeout $((SECS + 20)) perfdhcp -4 -l bc0 -r "$RATE" -R "$CLIENTS" -p "$SECS" 10.79.0.1 >"$out" 2>&1 || true
	local rate drops
	rate=$(sed -n 's/.*Rate: \([0-9.]*\) 4-way exchanges\/second.*/\1/p' "$out" | head -1)
	drops=$(awk '/^sent packets:/{s[++i]=$3} /^drops:/{d[++j]=$2} END{printf "DISCOVER sent %s dropped %s, REQUEST sent %s dropped %s", s[1], d[1], s[2], d[2]}' "$out")
	echo "${rate:-0}" >"$tmp/rate-$1"
	printf '%-22s %10s DORA/s   (%s)\n' "$1" "${rate:-0}" "$drops"
}

serve() { # NAME CMD...: start a server in $S, wait for port 67
	local name=$1; shift
	ip netns exec "$S" "$@" >"$tmp/$name.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 50); do
		ip netns exec "$S" ss -Hlun 'sport = :67' | grep -q . && return 0
		sleep 0.1
	done
	echo "dhcp.sh: $name did not start:" >&2; cat "$tmp/$name.log" >&2; exit 1
}
stop_last() { local p=${pids[-1]}; kill "$p"; wait "$p" 2>/dev/null || true; unset 'pids[-1]'; }

echo "offered rate $RATE/s, $CLIENTS clients, ${SECS}s per run; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "dnsmasq $(dnsmasq --version | head -1 | awk '{print $3}'), perfdhcp $(perfdhcp -v 2>&1 | head -1)"

serve ironwork-memory "$tmp/dhcpserve" -interface bs0 -range-start 10.79.1.0 -range-end 10.79.250.255 -workers "$WORKERS"
perf ironwork-memory
stop_last

serve ironwork-file "$tmp/dhcpserve" -interface bs0 -range-start 10.79.1.0 -range-end 10.79.250.255 -workers "$WORKERS" -lease-file "$tmp/leases.jsonl"
perf ironwork-file
stop_last

serve dnsmasq-file dnsmasq --port=0 --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
	--interface=bs0 --except-interface=lo --no-ping --user=root --dhcp-lease-max=100000 \
	--dhcp-range=10.79.1.0,10.79.250.255,255.255.0.0,1h --quiet-dhcp \
	--pid-file="$tmp/dnsmasq.pid" --dhcp-leasefile="$tmp/dnsmasq.leases"
perf dnsmasq-file
stop_last

serve dnsmasq-memory dnsmasq --port=0 --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
	--interface=bs0 --except-interface=lo --no-ping --user=root --dhcp-lease-max=100000 \
	--dhcp-range=10.79.1.0,10.79.250.255,255.255.0.0,1h --quiet-dhcp \
	--pid-file="$tmp/dnsmasq.pid" --leasefile-ro
perf dnsmasq-memory
stop_last

awk -v a="$(cat "$tmp/rate-ironwork-memory")" -v f="$(cat "$tmp/rate-ironwork-file")" \
	-v dm="$(cat "$tmp/rate-dnsmasq-memory")" -v df="$(cat "$tmp/rate-dnsmasq-file")" \
	'BEGIN { if (dm > 0 && df > 0) printf "ratio ironwork/dnsmasq: memory leases %.2f, lease file %.2f\n", a / dm, f / df }'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
