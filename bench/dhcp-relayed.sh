#!/usr/bin/env bash
# Racks behind DHCP relays: DORA exchanges per second when every request comes relayed from one
# of SUBNETS racks (each a /16 selected by the relay's giaddr), for Ironwork's DHCP server
# (internal/dhcp through bench/dhcpserve -subnets), ISC Kea (kea-dhcp4) and dnsmasq, each with
# its leases in memory. One perfdhcp (Debian kea-admin) per rack acts as that rack's relay, all
# at once, in network namespaces this script makes and removes.
#
#   sudo bench/dhcp-relayed.sh               # SUBNETS=4 RATE=4000 CLIENTS=20000 SECS=10
#   SUBNETS=8 RATE=8000 bench/dhcp-relayed.sh
set -euo pipefail

SUBNETS=${SUBNETS:-4}     # racks, at most 9
RATE=${RATE:-4000}        # offered DORA/s, over all racks
CLIENTS=${CLIENTS:-20000} # distinct MACs, over all racks
SECS=${SECS:-10}          # test period of each run
WORKERS=${WORKERS:-4}

for b in ip perfdhcp kea-dhcp4 dnsmasq go; do
	command -v "$b" >/dev/null || { echo "dhcp-relayed.sh: needs $b (apt-get install kea-admin kea-dhcp4-server dnsmasq iproute2)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "dhcp-relayed.sh: needs root (network namespaces)" >&2; exit 2; }
[ "$SUBNETS" -ge 1 ] && [ "$SUBNETS" -le 9 ] || { echo "dhcp-relayed.sh: SUBNETS must be 1..9" >&2; exit 2; }

here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
S=iwrelay-$$-s
C=iwrelay-$$-c
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
# Rack k's relay is 10.(80+k).0.2 on the client side; the server reaches it over the link.
for k in $(seq "$SUBNETS"); do
	ip -n "$C" addr add "10.$((80 + k)).0.2/16" dev bc0
	ip -n "$S" route add "10.$((80 + k)).0.0/16" dev bs0
done
sleep 1

(cd "$here" && go build -o "$tmp/dhcpserve" ./bench/dhcpserve)

# perf NAME: one perfdhcp per rack at once, each relaying from its rack's giaddr with MACs of
# its own; prints the summed rate.
perf() {
	local k ppids=()
	for k in $(seq "$SUBNETS"); do
		ip netns exec "$C" timeout $((SECS + 20)) perfdhcp -4 -l "10.$((80 + k)).0.2" -b "mac=02:0c:0$k:00:00:00" \
			-r $((RATE / SUBNETS)) -R $((CLIENTS / SUBNETS)) -p "$SECS" 10.79.0.1 >"$tmp/perf-$1-$k.txt" 2>&1 &
		ppids+=($!)
	done
	for p in "${ppids[@]}"; do wait "$p" || true; done
	local rate
	rate=$(cat "$tmp"/perf-"$1"-*.txt | sed -n 's/.*Rate: \([0-9.]*\) 4-way exchanges\/second.*/\1/p' | awk '{s += $1} END {printf "%.0f", s}')
	local drops
	drops=$(cat "$tmp"/perf-"$1"-*.txt | awk '/^sent packets:/{s[++i % 2] += $3} /^drops:/{d[++j % 2] += $2} END{printf "DISCOVER sent %d dropped %d, REQUEST sent %d dropped %d", s[1], d[1], s[0], d[0]}')
	echo "${rate:-0}" >"$tmp/rate-$1"
	printf '%-18s %10s DORA/s over %d racks   (%s)\n' "$1" "${rate:-0}" "$SUBNETS" "$drops"
}

serve() { # NAME CMD...: start a server in $S, wait for port 67
	local name=$1; shift
	ip netns exec "$S" "$@" >"$tmp/$name.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 50); do
		ip netns exec "$S" ss -Hlun 'sport = :67' | grep -q . && return 0
		sleep 0.1
	done
	echo "dhcp-relayed.sh: $name did not start:" >&2; cat "$tmp/$name.log" >&2; exit 1
}
stop_last() { local p=${pids[-1]}; kill "$p"; wait "$p" 2>/dev/null || true; unset 'pids[-1]'; }

echo "$SUBNETS racks, offered rate $RATE/s, $CLIENTS clients, ${SECS}s per run; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kea $(kea-dhcp4 -v 2>&1 | head -1), dnsmasq $(dnsmasq --version | head -1 | awk '{print $3}'), perfdhcp $(perfdhcp -v 2>&1 | head -1)"

serve ironwork "$tmp/dhcpserve" -interface bs0 -range-start 10.79.1.0 -range-end 10.79.250.255 -workers "$WORKERS" -subnets "$SUBNETS" -relayed=false
perf ironwork
stop_last

subnets=""
ranges=()
for k in $(seq "$SUBNETS"); do
	b=$((80 + k))
	subnets+="${subnets:+,}{\"id\": $k, \"subnet\": \"10.$b.0.0/16\", \"pools\": [{\"pool\": \"10.$b.1.0 - 10.$b.250.255\"}]}"
	ranges+=("--dhcp-range=10.$b.1.0,10.$b.250.255,255.255.0.0,1h")
done
cat >"$tmp/kea.json" <<JSON
{"Dhcp4": {
  "interfaces-config": {"interfaces": ["bs0"], "dhcp-socket-type": "udp"},
  "lease-database": {"type": "memfile", "persist": false},
  "valid-lifetime": 3600,
  "subnet4": [{"id": 100, "subnet": "10.79.0.0/16", "pools": [{"pool": "10.79.1.0 - 10.79.250.255"}]}, $subnets],
  "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stderr"}], "severity": "WARN"}]
}}
JSON
KEA_PIDFILE_DIR=$tmp KEA_LOCKFILE_DIR=$tmp serve kea env KEA_PIDFILE_DIR="$tmp" KEA_LOCKFILE_DIR="$tmp" kea-dhcp4 -c "$tmp/kea.json"
perf kea
stop_last

serve dnsmasq dnsmasq --port=0 --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
	--interface=bs0 --except-interface=lo --no-ping --user=root --dhcp-lease-max=100000 \
	--dhcp-range=10.79.1.0,10.79.250.255,255.255.0.0,1h "${ranges[@]}" --quiet-dhcp \
	--pid-file="$tmp/dnsmasq.pid" --leasefile-ro
perf dnsmasq
stop_last

awk -v a="$(cat "$tmp/rate-ironwork")" -v k="$(cat "$tmp/rate-kea")" -v d="$(cat "$tmp/rate-dnsmasq")" \
	'BEGIN { if (k > 0) printf "ratio ironwork/kea %.2f", a / k; if (d > 0) printf ", ironwork/dnsmasq %.2f", a / d; print "" }'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
