#!/usr/bin/env bash
# Leases in PostgreSQL: DORA exchanges per second of Ironwork's DHCP server keeping its leases in
# PostgreSQL through the SQL store (bench/dhcpserve -database, the store ironwork serve uses)
# against ISC Kea (kea-dhcp4) with its PostgreSQL lease backend, on one PostgreSQL server, same
# perfdhcp load: SUBNETS racks behind relays, one perfdhcp per rack at once, in network
# namespaces this script makes and removes (PostgreSQL runs inside the server's namespace).
#
#   sudo bench/dhcp-sql.sh                # SUBNETS=4 RATE=2000 CLIENTS=20000 SECS=10 ROUNDS=3
#   SUBNETS=1 RATE=1000 bench/dhcp-sql.sh
#
# Rounds alternate the servers (Ironwork, Kea, Ironwork, ...), each round on emptied lease
# tables, and the medians are compared, so that a change of machine load hits both.
#
# PostgreSQL is scripts/postgres.sh's throw-away server (fsync=off, synchronous_commit=off), the
# same for both servers. Each server gets an empty database of its own. Both handle WORKERS
# packets at once (Kea with multi-threading on, WORKERS threads, a queue of WORKERS x 64 as
# ours); neither leaves the database out of a DISCOVER or REQUEST.
set -euo pipefail

SUBNETS=${SUBNETS:-4}     # racks, at most 9
RATE=${RATE:-2000}        # offered DORA/s, over all racks
CLIENTS=${CLIENTS:-20000} # distinct MACs, over all racks
SECS=${SECS:-10}          # test period of each run
WORKERS=${WORKERS:-4}
ROUNDS=${ROUNDS:-3}
PGPORT=${PGPORT:-$((20000 + RANDOM % 20000))}

for b in ip perfdhcp kea-dhcp4 kea-admin go; do
	command -v "$b" >/dev/null || { echo "dhcp-sql.sh: needs $b (apt-get install kea-admin kea-dhcp4-server iproute2)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "dhcp-sql.sh: needs root (network namespaces)" >&2; exit 2; }
[ "$SUBNETS" -ge 1 ] && [ "$SUBNETS" -le 9 ] || { echo "dhcp-sql.sh: SUBNETS must be 1..9" >&2; exit 2; }
kea-dhcp4 -V 2>/dev/null | grep -q "PostgreSQL backend" || { echo "dhcp-sql.sh: skipped: this kea-dhcp4 has no PostgreSQL lease backend" >&2; exit 0; }

here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
chmod 755 "$tmp" # PostgreSQL runs as user postgres
S=iwsql-$$-s
C=iwsql-$$-c
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	ip netns exec "$S" "$here/scripts/postgres.sh" stop "$tmp/pg" 2>/dev/null || true
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
for k in $(seq "$SUBNETS"); do
	ip -n "$C" addr add "10.$((80 + k)).0.2/16" dev bc0
	ip -n "$S" route add "10.$((80 + k)).0.0/16" dev bs0
done

url=$(ip netns exec "$S" "$here/scripts/postgres.sh" start "$tmp/pg" "$PGPORT")
psql=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/psql
for db in ironwork kea; do ip netns exec "$S" "$psql" -q "$url" -c "CREATE DATABASE $db"; done
ip netns exec "$S" kea-admin db-init pgsql -u postgres -p "" -n kea -h 127.0.0.1 -P "$PGPORT" >"$tmp/kea-admin.log" 2>&1 \
	|| { echo "dhcp-sql.sh: kea-admin db-init failed:" >&2; cat "$tmp/kea-admin.log" >&2; exit 1; }

(cd "$here" && go build -o "$tmp/dhcpserve" ./bench/dhcpserve)

# perf NAME: one perfdhcp per rack at once; prints the summed rate.
perf() {
	local k ppids=()
	for k in $(seq "$SUBNETS"); do
		ip netns exec "$C" timeout $((SECS + 20)) perfdhcp -4 -l "10.$((80 + k)).0.2" -b "mac=02:0c:0$k:00:00:00" \
			-r $((RATE / SUBNETS)) -R $((CLIENTS / SUBNETS)) -p "$SECS" 10.79.0.1 >"$tmp/perf-$1-$k.txt" 2>&1 &
		ppids+=($!)
	done
	for p in "${ppids[@]}"; do wait "$p" || true; done
	local rate drops
	rate=$(cat "$tmp"/perf-"$1"-*.txt | sed -n 's/.*Rate: \([0-9.]*\) 4-way exchanges\/second.*/\1/p' | awk '{s += $1} END {printf "%.0f", s}')
	drops=$(cat "$tmp"/perf-"$1"-*.txt | awk '/^sent packets:/{s[++i % 2] += $3} /^drops:/{d[++j % 2] += $2} END{printf "DISCOVER sent %d dropped %d, REQUEST sent %d dropped %d", s[1], d[1], s[0], d[0]}')
	echo "${rate:-0}" >"$tmp/rate-$1"
	printf '%-18s %10s DORA/s over %d racks   (%s)\n' "$1" "${rate:-0}" "$SUBNETS" "$drops"
}

serve() { # NAME CMD...: start a server in $S, wait for port 67
	local name=$1; shift
	ip netns exec "$S" "$@" >"$tmp/$name.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		ip netns exec "$S" ss -Hlun 'sport = :67' | grep -q . && return 0
		sleep 0.1
	done
	echo "dhcp-sql.sh: $name did not start:" >&2; cat "$tmp/$name.log" >&2; exit 1
}
stop_last() { local p=${pids[-1]}; kill "$p"; wait "$p" 2>/dev/null || true; unset 'pids[-1]'; }
leases() { ip netns exec "$S" "$psql" -tA "${url%/postgres*}/$1?sslmode=disable" -c "$2"; }

echo "$SUBNETS racks, offered rate $RATE/s, $CLIENTS clients, ${SECS}s per run; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kea $(kea-dhcp4 -v 2>&1 | head -1), PostgreSQL $("$psql" --version | awk '{print $3}'), perfdhcp $(perfdhcp -v 2>&1 | head -1)"

subnets=""
for k in $(seq "$SUBNETS"); do
	b=$((80 + k))
	subnets+="${subnets:+,}{\"id\": $k, \"subnet\": \"10.$b.0.0/16\", \"pools\": [{\"pool\": \"10.$b.1.0 - 10.$b.250.255\"}]}"
done
cat >"$tmp/kea.json" <<JSON
{"Dhcp4": {
  "interfaces-config": {"interfaces": ["bs0"], "dhcp-socket-type": "udp"},
  "lease-database": {"type": "postgresql", "name": "kea", "host": "127.0.0.1", "port": $PGPORT, "user": "postgres", "password": ""},
  "valid-lifetime": 3600,
  "multi-threading": {"enable-multi-threading": true, "thread-pool-size": $WORKERS, "packet-queue-size": $((WORKERS * 64))},
  "subnet4": [{"id": 100, "subnet": "10.79.0.0/16", "pools": [{"pool": "10.79.1.0 - 10.79.250.255"}]}, $subnets],
  "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stderr"}], "severity": "WARN"}]
}}
JSON
for r in $(seq "$ROUNDS"); do
	leases ironwork 'TRUNCATE dhcp_leases' >/dev/null 2>&1 || true
	serve ironwork-pgsql "$tmp/dhcpserve" -interface bs0 -range-start 10.79.1.0 -range-end 10.79.250.255 -workers "$WORKERS" \
		-subnets "$SUBNETS" -relayed=false -database "${url%/postgres*}/ironwork?sslmode=disable"
	perf ironwork-pgsql
	stop_last
	echo "  round $r: ironwork leases in PostgreSQL: $(leases ironwork 'SELECT count(*) FROM dhcp_leases')"
	cat "$tmp/rate-ironwork-pgsql" >>"$tmp/rates-ironwork"

	leases kea 'TRUNCATE lease4' >/dev/null
	serve kea-pgsql env KEA_PIDFILE_DIR="$tmp" KEA_LOCKFILE_DIR="$tmp" kea-dhcp4 -c "$tmp/kea.json"
	perf kea-pgsql
	stop_last
	echo "  round $r: kea leases in PostgreSQL: $(leases kea 'SELECT count(*) FROM lease4')"
	cat "$tmp/rate-kea-pgsql" >>"$tmp/rates-kea"
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "ironwork-pgsql per round: $(tr '\n' ' ' <"$tmp/rates-ironwork") median $(median "$tmp/rates-ironwork") DORA/s"
echo "kea-pgsql per round:      $(tr '\n' ' ' <"$tmp/rates-kea") median $(median "$tmp/rates-kea") DORA/s"
awk -v a="$(median "$tmp/rates-ironwork")" -v k="$(median "$tmp/rates-kea")" \
	'BEGIN { if (k > 0) printf "ratio ironwork/kea with leases in PostgreSQL (medians): %.2f\n", a / k }'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
