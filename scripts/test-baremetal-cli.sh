#!/usr/bin/env bash
# End-to-end compatibility test: drive the real `baremetal` CLI (Debian's
# python3-ironicclient, OpenStack client plugin) in noauth mode against a
# freshly built Ironwork server listening on 127.0.0.1.
#
# Usage: scripts/test-baremetal-cli.sh
#
# Prints one "ok - ..." / "not ok - ..." line per check (lines starting with
# "#" are diagnostics) and ends with "N passed, M failed". Exits 1 if any
# check failed.
#
# The checks run in a few independent lanes in parallel (each lane uses its
# own nodes/ports), because a 409 answer makes the client retry 5 times with a
# 2 s pause. Each CLI call is a process forked from one that imported the CLI
# once (the fork server below): importing it cost ~1 s of CPU per call.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

# --- the CLI -----------------------------------------------------------------
if ! command -v baremetal >/dev/null 2>&1 && [ ! -x /usr/bin/baremetal ]; then
    echo "# baremetal CLI not found; installing python3-ironicclient" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi
    if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-ironicclient; then
        $SUDO apt-get update
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-ironicclient
    fi
fi
BM=/usr/bin/baremetal
[ -x "$BM" ] || BM=$(command -v baremetal)

# --- environment: noauth, loopback only, no inherited OpenStack settings -----
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^OS_' || true)
export OS_AUTH_TYPE=none
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

T=$(mktemp -d)

# --- the CLI's start-up -------------------------------------------------------
# Every CLI call is a new Python process, and its imports are most of its cost: 1.9 CPU
# seconds per call, of which 0.9 s is osprofiler's import chain (keystoneauth1 imports it when
# installed, and it brings oslo.concurrency and eventlet) and 0.2 s setuptools' distutils shim.
# osprofiler only adds trace headers to requests once a profiler is set up (--os-profile), which
# these checks never do, so it is kept out of the CLI's imports here (a package that refuses to
# import, as when osprofiler is not installed, which keystoneauth1 handles); the requests the
# CLI sends are the same. Measured: `baremetal --version` 1.88 -> 0.90 CPU seconds.
mkdir -p "$T/pythonpath/osprofiler"
echo 'raise ImportError("osprofiler is left out of the CLI test (scripts/test-baremetal-cli.sh)")' \
    >"$T/pythonpath/osprofiler/__init__.py"
export PYTHONPATH="$T/pythonpath${PYTHONPATH:+:$PYTHONPATH}" SETUPTOOLS_USE_DISTUTILS=stdlib
SERVER_PID=""
CLI_SERVER_PID=""
LANE_PIDS=()
cleanup() {
    local rc=$?
    set +e
    for p in "${LANE_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    [ -z "${CLI_SERVER_PID:-}" ] || kill "$CLI_SERVER_PID" 2>/dev/null
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$T"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build and start the server ------------------------------------------------
(cd "$REPO" && go build -o "$T/ironwork" ./cmd/ironwork)
echo "# built ironwork in ${SECONDS}s"

start_server() {
    local deadline=$((SECONDS + 20))
    while [ "$SECONDS" -lt "$deadline" ]; do
        PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
        "$T/ironwork" serve --listen "127.0.0.1:$PORT" --data-dir "$T/data" >"$T/server.log" 2>&1 &
        SERVER_PID=$!
        while [ "$SECONDS" -lt "$deadline" ]; do
            if curl -sf --noproxy '*' --max-time 1 "http://127.0.0.1:$PORT/" >/dev/null 2>&1; then
                return 0
            fi
            kill -0 "$SERVER_PID" 2>/dev/null || break   # died (port taken?): retry
            sleep 0.2
        done
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    done
    return 1
}
if ! start_server; then
    echo "not ok - ironwork server did not answer on 127.0.0.1 within 20 s"
    sed 's/^/# server: /' "$T/server.log" 2>/dev/null | tail -20 || true
    echo "0 passed, 1 failed"
    exit 1
fi
export OS_ENDPOINT="http://127.0.0.1:$PORT"
echo "# ironwork listening on $OS_ENDPOINT"

# --- the CLI's fork server ------------------------------------------------------
# Importing the CLI is most of a call's CPU (0.9 s each, 135 calls, the lanes in parallel on
# the CI machine's two CPUs): one Python process imports it once, then forks a child for each
# call, which runs the CLI's own entry point (ironicclient.shell.main, which /usr/bin/baremetal
# calls) with the caller's arguments, environment, directory and output files, and exits. So
# every call is still a fresh process of the real CLI; only its imports are shared.
cat >"$T/cli-forkserver.py" <<'PYEOF'
import json, os, signal, socket, sys, traceback
import ironicclient.shell
from ironicclient.shell import main
# The command modules main() loads through entry points, imported before any fork too.
import importlib, pkgutil, ironicclient.osc.v1
for m in pkgutil.iter_modules(ironicclient.osc.v1.__path__, "ironicclient.osc.v1."):
    importlib.import_module(m.name)

srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(sys.argv[1])
srv.listen(64)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
while True:
    conn, _ = srv.accept()
    if os.fork():
        conn.close()
        continue
    srv.close()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    req = json.loads(conn.makefile().readline())
    os.environ.clear()
    os.environ.update(req["env"])
    os.chdir(req["cwd"])
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(os.open(req["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
    os.dup2(os.open(req["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
    conn.sendall(b"%d\n" % os.getpid())
    sys.argv = ["baremetal"] + req["argv"]
    try:
        code = main(req["argv"])  # its default argv is the fork server's, bound at import
    except SystemExit as e:
        code = e.code
        if isinstance(code, str):
            print(code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    code = 0 if code is None else int(code)
    sys.stdout.flush()
    sys.stderr.flush()
    conn.sendall(b"%d\n" % code)
    os._exit(code)
PYEOF
cat >"$T/cli-client.py" <<'PYEOF'
import json, os, signal, socket, sys
sock, out, err, argv = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(sock)
c.sendall((json.dumps({"argv": argv, "env": dict(os.environ), "cwd": os.getcwd(), "out": out, "err": err}) + "\n").encode())
c.settimeout(60)
f = c.makefile()
try:
    pid = int(f.readline())
    line = f.readline()
except (socket.timeout, TimeoutError):
    try:
        os.kill(pid, signal.SIGKILL)
    except (NameError, OSError):
        pass
    sys.exit(124)
except ValueError:
    line = ""
if not line:
    with open(err, "a") as e:
        print("cli-client: the CLI's process ended without an exit code", file=e)
    sys.exit(1)
sys.exit(int(line))
PYEOF
"$PY" "$T/cli-forkserver.py" "$T/cli.sock" >"$T/cli-forkserver.log" 2>&1 &
CLI_SERVER_PID=$!
for _ in $(seq 1 300); do [ -S "$T/cli.sock" ] && break; kill -0 "$CLI_SERVER_PID" 2>/dev/null || break; sleep 0.1; done
if [ ! -S "$T/cli.sock" ]; then
    echo "not ok - the CLI's fork server did not start"
    sed 's/^/# cli-forkserver: /' "$T/cli-forkserver.log" | tail -20
    echo "0 passed, 1 failed"
    exit 1
fi

# --- helpers (used inside lanes; each lane sets LANE) --------------------------
ok()   { echo "ok - $*"; }
fail() { echo "not ok - $*"; diag; }
diag() {
    echo "#   command: baremetal ${LAST_CMD:-}"
    echo "#   exit code: ${RC:-?}"
    # awk (not sed) so that a cut-off last line still ends with a newline
    [ -s "$T/$LANE.err" ] && head -c 600 "$T/$LANE.err" | awk '{print "#   stderr: " $0}'
    [ -s "$T/$LANE.out" ] && head -c 600 "$T/$LANE.out" | awk '{print "#   stdout: " $0}'
    return 0
}

# run ARGS...: run the CLI; stdout/stderr kept in $T/$LANE.{out,err}, exit code in RC (124
# after 60 s, as timeout(1) says). Each call is a process of its own, forked from the CLI's
# fork server (below) with this shell's environment and working directory.
run() {
    LAST_CMD="$*"
    set +e
    "$PY" -S "$T/cli-client.py" "$T/cli.sock" "$T/$LANE.out" "$T/$LANE.err" "$@"
    RC=$?
    set -e
}

# pyeval EXPR: evaluate a Python expression over d (the last stdout parsed as
# JSON) and E (os.environ); exit status 0 when it is truthy.
pyeval() {
    EXPR="$1" "$PY" -c '
import json, os, re, sys
E = os.environ
try:
    d = json.load(open(sys.argv[1]))
    r = eval(E["EXPR"])
except Exception as e:
    print("#   python: %s: %s" % (type(e).__name__, e))
    sys.exit(1)
sys.exit(0 if r else 1)
' "$T/$LANE.out"
}

# jget EXPR: print a value computed from the last JSON output ("" on error).
jget() {
    EXPR="$1" "$PY" -c '
import json, os, sys
E = os.environ
try:
    v = eval(E["EXPR"], {"d": json.load(open(sys.argv[1])), "E": E})
except Exception:
    v = ""
print("" if v is None else v)
' "$T/$LANE.out" 2>/dev/null || true
}

# check DESC EXPR: last command succeeded and EXPR holds on its JSON output.
check() {
    local desc=$1 expr=$2 msg
    if [ "$RC" -ne 0 ]; then fail "$desc"; return 0; fi
    if msg=$(pyeval "$expr"); then ok "$desc"; else [ -n "$msg" ] && echo "$msg"; fail "$desc"; fi
}

# check_rc0 DESC: last command succeeded.
check_rc0() { if [ "$RC" -eq 0 ]; then ok "$1"; else fail "$1"; fi; }

# check_err DESC PATTERN...: last command failed and stderr matches every
# (case-insensitive, extended) regex.
check_err() {
    local desc=$1; shift
    if [ "$RC" -eq 0 ]; then fail "$desc (unexpectedly succeeded)"; return 0; fi
    local p
    for p in "$@"; do
        if ! grep -Eqi -- "$p" "$T/$LANE.err"; then
            echo "#   stderr does not match /$p/"
            fail "$desc"
            return 0
        fi
    done
    ok "$desc"
}

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
export UUID_RE

# --- lane: nodes ------------------------------------------------------------
lane_nodes() {
    LANE=nodes
    export N=cli-node-1 N2=cli-node-1-renamed SECRET=s3cr3t-Passw0rd
    run node create --driver fake-hardware --name "$N" \
        --property cpus=4 --property memory_mb=1024 --property cpu_arch=x86_64 \
        --driver-info ipmi_address=192.0.2.10 --driver-info ipmi_username=admin \
        --driver-info "ipmi_password=$SECRET" \
        --resource-class baremetal-gold -f json
    check "node create: name, driver, resource class, uuid" \
        'd["name"]==E["N"] and d["driver"]=="fake-hardware" and d["resource_class"]=="baremetal-gold" and re.match(E["UUID_RE"], d["uuid"])'
    check "node create: properties stored" \
        'd["properties"]=={"cpus": 4, "memory_mb": 1024, "cpu_arch": "x86_64"}'
    check "node create: driver_info password masked as ******" \
        'd["driver_info"]=={"ipmi_address": "192.0.2.10", "ipmi_username": "admin", "ipmi_password": "******"}'
    if [ "$RC" -eq 0 ] && ! grep -q "$SECRET" "$T/$LANE.out"; then ok "node create: password not echoed anywhere"
    else fail "node create: password not echoed anywhere"; fi
    check "node create: enroll state, fake interfaces, not in maintenance" \
        'd["provision_state"]=="enroll" and d["maintenance"] is False and d["power_interface"]=="fake" and d["management_interface"]=="fake"'
    export U; U=$(jget 'd["uuid"]')

    run node list -f json
    check "node list: contains the node (UUID, Name, Provisioning State)" \
        'any(x["UUID"]==E["U"] and x["Name"]==E["N"] and x["Provisioning State"]=="enroll" and x["Maintenance"] is False for x in d)'

    run node list --long -f json
    check "node list --long: driver, resource class, properties, masked driver info" \
        'any(x["UUID"]==E["U"] and x["Driver"]=="fake-hardware" and x["Resource Class"]=="baremetal-gold" and x["Properties"]["cpus"]==4 and x["Driver Info"]["ipmi_password"]=="******" for x in d)'

    run node list --fields uuid name resource_class -f json
    check "node list --fields uuid name resource_class: only those columns" \
        'd and all(set(x)=={"UUID","Name","Resource Class"} for x in d) and any(x["UUID"]==E["U"] and x["Resource Class"]=="baremetal-gold" for x in d)'

    run node list --resource-class baremetal-gold -f json
    check "node list --resource-class filters" \
        '[x["UUID"] for x in d]==[E["U"]]'

    run node show "$N" -f json
    check "node show by name" 'd["uuid"]==E["U"] and d["name"]==E["N"] and d["driver_info"]["ipmi_password"]=="******"'

    run node show "$U" -f json
    check "node show by UUID" 'd["uuid"]==E["U"] and d["name"]==E["N"] and d["properties"]["cpus"]==4'

    run node show "$N" --fields uuid name properties -f json
    check "node show --fields uuid name properties" \
        'set(d)=={"uuid","name","properties"} and d["uuid"]==E["U"]'

    run node set "$N" --property memory_mb=2048 --extra rack=r1 --extra pos=3 \
        --description "CLI test node" --owner proj-a --name "$N2" \
        --driver-info ipmi_password=n3w-secret
    check_rc0 "node set --property --extra --description --owner --name --driver-info"

    run node show "$U" -f json
    check "node set: name changed" 'd["name"]==E["N2"]'
    check "node set: property updated, others kept" 'd["properties"]=={"cpus": 4, "memory_mb": 2048, "cpu_arch": "x86_64"}'
    check "node set: extra, description, owner" \
        'd["extra"]=={"rack": "r1", "pos": 3} and d["description"]=="CLI test node" and d["owner"]=="proj-a"'
    check "node set: new password still masked" \
        'd["driver_info"]["ipmi_password"]=="******" and d["driver_info"]["ipmi_username"]=="admin"'

    run node show "$N" -f json
    check_err "node show by old name after rename fails (not found)" "could not be found"

    run node list --owner proj-a -f json
    check "node list --owner filters" '[x["UUID"] for x in d]==[E["U"]]'

    run node unset "$N2" --property cpus --extra rack --description
    check_rc0 "node unset --property --extra --description"
    run node show "$N2" -f json
    check "node unset: property removed, others kept" 'd["properties"]=={"memory_mb": 2048, "cpu_arch": "x86_64"}'
    check "node unset: extra key removed, description cleared" 'd["extra"]=={"pos": 3} and d["description"] is None'

    run node delete "$N2"
    if [ "$RC" -eq 0 ] && grep -q "Deleted node" "$T/$LANE.out"; then ok "node delete"; else fail "node delete"; fi
    run node show "$U" -f json
    check_err "node show after delete fails with 'could not be found'" "could not be found" "HTTP 404"
    echo "# lane $LANE done (${SECONDS}s)"
}

# --- lane: ports ----------------------------------------------------------------
lane_ports() {
    LANE=ports
    export MAC=52:54:00:c1:00:01
    run node create --driver fake-hardware --name cli-port-node -f json
    check "port lane: node created" 're.match(E["UUID_RE"], d["uuid"])'
    export U; U=$(jget 'd["uuid"]')

    run port create --node "$U" "$MAC" -f json
    check "port create: address, node_uuid, pxe_enabled default true" \
        'd["address"]==E["MAC"] and d["node_uuid"]==E["U"] and d["pxe_enabled"] is True and re.match(E["UUID_RE"], d["uuid"])'
    export P; P=$(jget 'd["uuid"]')

    run port create --node "$U" not-a-mac -f json
    check_err "port create with an invalid MAC fails with a message" "HTTP 400" "mac"

    run port list --node "$U" -f json
    check "port list --node" 'd==[{"UUID": E["P"], "Address": E["MAC"]}]'

    run port list --long -f json
    check "port list --long" \
        'any(x["UUID"]==E["P"] and x["Node UUID"]==E["U"] and x["PXE boot enabled"] is True for x in d)'

    run port show "$P" -f json
    check "port show by UUID" 'd["uuid"]==E["P"] and d["address"]==E["MAC"] and d["node_uuid"]==E["U"]'

    run port show --address "$MAC" -f json
    check "port show --address" 'd["uuid"]==E["P"]'

    run port set "$P" --extra vlan=100 --extra role=pxe --pxe-disabled
    check_rc0 "port set --extra --pxe-disabled"
    run port show "$P" -f json
    check "port set: extra and pxe_enabled=false stored" 'd["extra"]=={"vlan": 100, "role": "pxe"} and d["pxe_enabled"] is False'

    run port unset "$P" --extra vlan
    check_rc0 "port unset --extra"
    run port show "$P" -f json
    check "port unset: extra key removed" 'd["extra"]=={"role": "pxe"}'

    run port delete "$P"
    if [ "$RC" -eq 0 ] && grep -q "Deleted port" "$T/$LANE.out"; then ok "port delete"; else fail "port delete"; fi
    run port list --node "$U" -f json
    check "port list --node empty after delete" 'd==[]'
    run port show "$P" -f json
    check_err "port show after delete fails with 'could not be found'" "could not be found"

    run node delete "$U"
    check_rc0 "port lane: node deleted"
    echo "# lane $LANE done (${SECONDS}s)"
}

# --- lane: port groups and chassis ---------------------------------------------
lane_pg_chassis() {
    LANE=pgch
    export PGMAC=52:54:00:c2:00:01
    run node create --driver fake-hardware --name cli-pg-node -f json
    check "port group lane: node created" 're.match(E["UUID_RE"], d["uuid"])'
    export U; U=$(jget 'd["uuid"]')

    run port group create --node "$U" --name cli-pg1 --address "$PGMAC" \
        --mode 802.3ad --property miimon=100 -f json
    check "port group create" \
        'd["name"]=="cli-pg1" and d["node_uuid"]==E["U"] and d["address"]==E["PGMAC"] and d["mode"]=="802.3ad" and d["properties"]=={"miimon": 100}'
    export PG; PG=$(jget 'd["uuid"]')

    run port group list --node "$U" -f json
    check "port group list --node" 'd==[{"UUID": E["PG"], "Address": E["PGMAC"], "Name": "cli-pg1"}]'

    run port group show cli-pg1 -f json
    check "port group show by name" 'd["uuid"]==E["PG"]'

    run port group delete cli-pg1
    check_rc0 "port group delete"
    run port group show "$PG" -f json
    check_err "port group show after delete fails with 'could not be found'" "could not be found"

    run chassis create --description "CLI test rack" --extra location=dc1 -f json
    check "chassis create" 'd["description"]=="CLI test rack" and d["extra"]=={"location": "dc1"} and re.match(E["UUID_RE"], d["uuid"])'
    export C; C=$(jget 'd["uuid"]')

    run chassis show "$C" -f json
    check "chassis show" 'd["uuid"]==E["C"] and d["description"]=="CLI test rack"'

    run chassis list -f json
    check "chassis list" 'any(x["UUID"]==E["C"] and x["Description"]=="CLI test rack" for x in d)'

    run chassis delete "$C"
    check_rc0 "chassis delete"
    run chassis show "$C" -f json
    check_err "chassis show after delete fails with 'could not be found'" "could not be found"

    run node delete "$U"
    check_rc0 "port group lane: node deleted"
    echo "# lane $LANE done (${SECONDS}s)"
}

# --- lane: drivers, conductors, missing resources ------------------------------
lane_readonly() {
    LANE=ro
    run driver list -f json
    check "driver list: fake-hardware, ipmi, manual-management, redfish" \
        '{"fake-hardware","ipmi","manual-management","redfish"} <= {x["Supported driver(s)"] for x in d} and all(x["Active host(s)"] for x in d)'

    run driver show fake-hardware -f json
    check "driver show fake-hardware" \
        'd["name"]=="fake-hardware" and d["hosts"] and d["default_power_interface"]=="fake" and "fake" in d["enabled_power_interfaces"]'

    run driver property list fake-hardware -f json
    check "driver property list fake-hardware" \
        'isinstance(d, list) and all(set(x)=={"Property","Description"} for x in d)'

    # The catalogue offers only what this build implements (docs/conductor.md).
    run driver show redfish -f json
    check "driver show redfish: implemented defaults only" \
        'd["default_boot_interface"]=="ipxe" and d["default_inspect_interface"]=="agent" and d["default_vendor_interface"]=="redfish" and d["default_bios_interface"]=="redfish" and d["default_raid_interface"]=="no-raid" and "redfish" in d["enabled_raid_interfaces"] and "redfish-virtual-media" in d["enabled_boot_interfaces"] and "redfish-https" in d["enabled_boot_interfaces"] and "redfish" in d["enabled_inspect_interfaces"] and "ramdisk" in d["enabled_deploy_interfaces"] and "idrac-redfish-virtual-media" not in d["enabled_boot_interfaces"]'

    run driver property list redfish -f json
    check "driver property list redfish: its BMC and boot keys" \
        '{"redfish_address","deploy_kernel","deploy_ramdisk"} <= {x["Property"] for x in d} and not any(x["Property"].startswith("ipmi_") for x in d)'

    run conductor list -f json
    check "conductor list: at least one alive conductor" \
        'len(d)>=1 and all(set(x)>={"Hostname","Conductor Group","Alive"} for x in d) and any(x["Alive"] is True for x in d)'

    run node show no-such-node -f json
    check_err "node show of a missing node fails with 'could not be found'" "could not be found" "HTTP 404"
    echo "# lane $LANE done (${SECONDS}s)"
}

# --- lane: duplicate name (the client retries a 409 5 times, ~10 s) -------------
lane_duplicate() {
    LANE=dup
    export D=cli-dup-node
    run node create --driver fake-hardware --name "$D" -f json
    check "duplicate lane: node created" 'd["name"]==E["D"]'
    export U; U=$(jget 'd["uuid"]')

    run node create --driver fake-hardware --name "$D" -f json
    check_err "node create with a duplicate name fails with a 409 conflict" "HTTP 409" "already exists"

    run node list --fields uuid name -f json
    check "duplicate name did not create a second node" '[x["UUID"] for x in d if x["Name"]==E["D"]]==[E["U"]]'

    run node delete "$U"
    check_rc0 "duplicate lane: node deleted"
    echo "# lane $LANE done (${SECONDS}s)"
}

# --- lane: provisioning through the state machine --------------------------------
lane_provision() {
    LANE=provision
    export P=cli-prov-node
    run node create --driver fake-hardware --name "$P" --resource-class cli-alloc -f json
    check "provision lane: node created in enroll" 'd["provision_state"]=="enroll"'

    run node manage "$P" --wait 30
    run node show "$P" -f json
    check "node manage --wait: manageable, power state read" 'd["provision_state"]=="manageable" and d["power_state"]=="power off"'

    run node provide "$P" --wait 30
    run node show "$P" -f json
    check "node provide --wait: cleaned to available" 'd["provision_state"]=="available" and d["clean_step"]=={}'

    run allocation create --resource-class cli-alloc --name cli-alloc-1 --wait 30 -f json
    check "allocation create --wait: active on the provisioned node" 'd["state"]=="active" and d["node_uuid"] is not None'
    run allocation list -f json
    check "allocation list: contains the allocation" 'any("cli-alloc-1" in x.values() for x in d)'
    run allocation delete cli-alloc-1
    check_rc0 "allocation delete"

    run node validate "$P" -f json
    check "node validate: every interface passes" 'all(x["Result"] for x in d) and len(d)>=10'

    run node deploy "$P" --wait 30
    run node show "$P" -f json
    check "node deploy --wait: active" 'd["provision_state"]=="active" and d["target_provision_state"] is None'

    run node provide "$P"
    check_err "node provide on an active node is refused" "can not be performed" "active"

    run node power on "$P" --power-timeout 10
    run node show "$P" -f json
    check "node power on: power on" 'd["power_state"]=="power on"'

    run node boot device set "$P" pxe --persistent
    run node boot device show "$P" -f json
    check "node boot device set/show: pxe, persistent" 'd["boot_device"]=="pxe" and d["persistent"]'

    run node maintenance set "$P" --reason "fan replacement"
    run node show "$P" -f json
    check "node maintenance set --reason" 'd["maintenance"] and d["maintenance_reason"]=="fan replacement"'
    run node maintenance unset "$P"
    run node show "$P" -f json
    check "node maintenance unset" 'not d["maintenance"] and d["maintenance_reason"] is None'

    run node undeploy "$P" --wait 30
    run node show "$P" -f json
    check "node undeploy --wait: cleaned back to available" 'd["provision_state"]=="available" and d["instance_info"]=={}'

    run node delete "$P"
    check_rc0 "provision lane: node deleted"
    echo "# lane $LANE done (${SECONDS}s)"
}

# --- lane: inspection (agent inspect interface; the test posts the agent's inventory) ---
lane_inspect() {
    LANE=inspect
    export I=cli-inspect-node IF=cli-inspect-fake
    run node create --driver fake-hardware --name "$IF" -f json
    run node manage "$IF" --wait 30
    run node inspect "$IF" --wait 30
    run node show "$IF" -f json
    check "node inspect --wait (fake): manageable with properties" \
        'd["provision_state"]=="manageable" and d["properties"].get("cpus")==4 and d["inspection_finished_at"]'

    run node create --driver fake-hardware --name "$I" --inspect-interface agent --boot-interface fake \
        --driver-info ipmi_address=192.0.2.44 -f json
    check "inspect lane: node created with the agent inspect interface" 'd["inspect_interface"]=="agent"'
    run node manage "$I" --wait 30
    run node inspect "$I"
    run node show "$I" -f json
    check "node inspect (agent): waits for the inventory" 'd["provision_state"]=="inspect wait"'

    # What ironwork-agent / IPA posts to ipa-inspection-callback-url.
    local inv='{"inventory": {"interfaces": [{"name": "eth0", "mac_address": "52:54:00:c9:00:01", "ipv4_address": "10.1.0.5", "has_carrier": true, "lldp": []},
      {"name": "eth1", "mac_address": "52:54:00:c9:00:02", "ipv4_address": null, "has_carrier": false, "lldp": []}],
      "cpu": {"model_name": "QEMU", "count": 2, "architecture": "x86_64", "flags": []},
      "disks": [{"name": "/dev/vda", "size": 10737418240, "rotational": true}, {"name": "/dev/vdb", "size": 21474836480, "rotational": true}],
      "memory": {"total": 1500000000, "physical_mb": 1536}, "bmc_address": "192.0.2.44",
      "boot": {"current_boot_mode": "uefi", "pxe_interface": "52:54:00:c9:00:01"}}, "root_disk": {"name": "/dev/vda"}}'
    local code
    code=$(curl -s --noproxy '*' -o "$T/$LANE.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -H 'X-OpenStack-Ironic-API-Version: 1.84' --data "$inv" "$OS_ENDPOINT/v1/continue_inspection")
    RC=0; [ "$code" = 202 ] || RC=1
    check "POST /v1/continue_inspection: 202 with the node's uuid" 'len(d["uuid"])==36'

    for _ in $(seq 1 50); do
        run node show "$I" -f json
        [ "$(jget 'd["provision_state"]')" = manageable ] && break
        sleep 0.2
    done
    check "inspected node: manageable with the inventory's properties" \
        'd["provision_state"]=="manageable" and d["properties"]=={"cpus":2,"cpu_arch":"x86_64","memory_mb":1536,"local_gb":9,"capabilities":"boot_mode:uefi"}'
    run port list --node "$I" --fields address pxe_enabled -f json
    check "inspected node: a port for the NIC it booted from (add_ports pxe)" \
        '[(x["Address"], x["PXE boot enabled"]) for x in d]==[("52:54:00:c9:00:01", True)]'

    code=$(curl -s --noproxy '*' -o "$T/$LANE.out" -w '%{http_code}' -H 'X-OpenStack-Ironic-API-Version: 1.81' \
        "$OS_ENDPOINT/v1/nodes/$I/inventory")
    RC=0; [ "$code" = 200 ] || RC=1
    check "GET /v1/nodes/{node}/inventory: inventory and plugin data" \
        'd["inventory"]["cpu"]["count"]==2 and d["plugin_data"]=={"root_disk":{"name":"/dev/vda"}}'

    run node inspect "$I"
    check_rc0 "node inspect again from manageable"
    run node abort "$I"
    for _ in $(seq 1 50); do
        run node show "$I" -f json
        [ "$(jget 'd["provision_state"]')" = "inspect failed" ] && break
        sleep 0.2
    done
    check "node abort in inspect wait: inspect failed, powered off" \
        'd["provision_state"]=="inspect failed" and d["power_state"]=="power off" and "aborted" in d["last_error"]'

    run node delete "$I"
    run node delete "$IF"
    check_rc0 "inspect lane: nodes deleted"
    echo "# lane $LANE done (${SECONDS}s)"
}

# --- lane: console ---
lane_console() {
    LANE=console
    export CN=cli-console-node
    run node create --driver fake-hardware --name "$CN" -f json
    check "console lane: fake-hardware node with the fake console" 'd["console_interface"]=="fake" and d["console_enabled"] is False'
    run node console enable "$CN"
    check_rc0 "node console enable"
    for _ in $(seq 1 50); do
        run node console show "$CN" -f json
        if [ "$RC" -eq 0 ] && pyeval 'd["console_enabled"] is True' >/dev/null; then break; fi
        sleep 0.2
    done
    check "node console show: enabled with a socat tcp:// URL" \
        'd["console_enabled"] is True and d["console_info"]["type"]=="socat" and d["console_info"]["url"].startswith("tcp://")'
    run node console disable "$CN"
    check_rc0 "node console disable"
    for _ in $(seq 1 50); do
        run node console show "$CN" -f json
        if [ "$RC" -eq 0 ] && pyeval 'd["console_enabled"] is False' >/dev/null; then break; fi
        sleep 0.2
    done
    check "node console show after disable: disabled, no info" 'd["console_enabled"] is False and d["console_info"] is None'
    run node create --driver ipmi --name cli-console-ipmi -f json
    run node console enable cli-console-ipmi
    check_err "node console enable on no-console fails with Ironic's message" "does not support console" "HTTP 400"
    echo "# lane $LANE done (${SECONDS}s)"
}

# --- lane: RAID (target_raid_config schema, logical disk properties) -----------------
lane_raid() {
    LANE=raid
    run driver raid property list ipmi -f json
    check "driver raid property list: Ironic's logical disk properties" \
        '{"raid_level","size_gb","is_root_volume","controller","physical_disks"} <= {x["Property"] for x in d} and all(set(x)=={"Property","Description"} for x in d)'

    run node create --driver fake-hardware --name cli-raid -f json
    check "raid lane: node created" 're.match(E["UUID_RE"], d["uuid"])'
    run node set cli-raid --target-raid-config '{"logical_disks": [{"size_gb": 10, "raid_level": "1", "is_root_volume": true, "controller": "software"}]}'
    check_rc0 "node set --target-raid-config with a RAID-1 root volume"
    run node show cli-raid --fields target_raid_config -f json
    check "node show: the target RAID config is stored" \
        'd["target_raid_config"]["logical_disks"][0]["raid_level"]=="1" and d["target_raid_config"]["logical_disks"][0]["size_gb"]==10'
    run node set cli-raid --target-raid-config '{"logical_disks": [{"size_gb": 10, "raid_level": "7"}]}'
    check_err "node set --target-raid-config with an unknown level fails with the schema's error" "RAID config validation error" "is not one of" "HTTP 400"
    run node set cli-raid --target-raid-config '{"logical_disks": [{"raid_level": "1"}]}'
    check_err "node set --target-raid-config without size_gb fails" "'size_gb' is a required property" "HTTP 400"
    run node show cli-raid --fields target_raid_config -f json
    check "a refused config leaves the stored one" 'd["target_raid_config"]["logical_disks"][0]["raid_level"]=="1"'
    run node unset cli-raid --target-raid-config
    check_rc0 "node unset --target-raid-config"
    run node show cli-raid --fields target_raid_config -f json
    check "node unset cleared the target RAID config" 'd["target_raid_config"]=={}'

    run node create --driver ipmi --name cli-raid-ipmi -f json
    run node set cli-raid-ipmi --target-raid-config '{"logical_disks": [{"size_gb": 10, "raid_level": "1"}]}'
    check_err "node set --target-raid-config on no-raid fails with Ironic's message" "does not support raid" "HTTP 400"

    # The agent raid interface (software RAID), offered after no-raid.
    run node create --driver ipmi --raid-interface agent --name cli-raid-agent -f json
    check "node create with raid_interface agent" 'd["raid_interface"]=="agent"'
    run node set cli-raid-agent --target-raid-config '{"logical_disks": [{"size_gb": "MAX", "raid_level": "1", "controller": "software", "is_root_volume": true}]}'
    check_rc0 "node set --target-raid-config with a software RAID-1 on the agent raid interface"
    run node set cli-raid-agent --target-raid-config '{"logical_disks": [{"size_gb": "MAX", "raid_level": "0", "controller": "software"}]}'
    check_err "a software RAID-0 first volume fails with the software RAID rule" "RAID-1 for the first logical disk" "HTTP 400"
    echo "# lane $LANE done (${SECONDS}s)"
}

# --- lane: passthru ------------------------------------------------------------
# The vendor passthru of a fake-hardware node (Ironic's fake vendor methods); the
# driver level, which has no methods. The CLI has no indicator commands.
lane_passthru() {
    LANE=passthru
    export PN=cli-passthru-node
    run node create --driver fake-hardware --name "$PN" -f json
    check "passthru lane: fake-hardware node with the fake vendor interface" 'd["vendor_interface"]=="fake"'
    run node passthru list "$PN" -f json
    check "node passthru list: Ironic's fake methods with http methods and async" \
        'sorted(x["Name"] for x in d)==["fourth_method_shared_lock","log_passthrough","second_method","third_method_sync"] and any(x["Name"]=="third_method_sync" and x["Async"] is False and x["Supported HTTP methods"]=="POST" for x in d)'
    run node passthru call "$PN" third_method_sync --arg bar=woof
    check_rc0 "node passthru call (sync method)"
    run node passthru call "$PN" second_method --arg bar=kazoo
    check_rc0 "node passthru call (async method, 202)"
    run node passthru call "$PN" third_method_sync
    check_err "node passthru call without its argument fails with Ironic's message" "Parameter 'bar' not passed to method 'third_method_sync'" "HTTP 400"
    run node passthru call "$PN" third_method_sync --http-method GET --arg bar=woof
    check_err "node passthru call with an HTTP method it does not take" "does not support HTTP GET" "HTTP 400"
    run node passthru call "$PN" no_such_method
    check_err "node passthru call of an unknown method" "No handler for method no_such_method" "HTTP 400"
    run driver passthru list fake-hardware -f json
    check "driver passthru list: no driver-level methods" 'd==[]'
    run driver passthru call ipmi send_raw --arg raw_bytes=0x06
    check_err "driver passthru call: no driver-level method" "No handler for method send_raw" "HTTP 400"
    echo "# lane $LANE done (${SECONDS}s)"
}

# --- lane: BIOS settings of a redfish node behind `ironwork vbmc` (a dummy machine) ---
lane_bios() {
    LANE=bios
    export B=cli-bios-node
    local vport
    vport=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    cat >"$T/vbmc.toml" <<EOT
username = "admin"
password = "cli-bios-pw"
redfish_listen = "127.0.0.1:$vport"
[[machine]]
name = "vm1"
command = ["sh", "-c", "exec sleep 600", "vm"]
EOT
    "$T/ironwork" vbmc --config "$T/vbmc.toml" >"$T/vbmc.log" 2>&1 &
    local vpid=$!
    # The lane runs in a subshell: this trap stops the vbmc when it ends, whatever happens
    # (the PID is expanded now: the local is gone by then).
    trap "kill $vpid 2>/dev/null" EXIT
    for _ in $(seq 1 50); do
        curl -sf --noproxy '*' --max-time 1 "http://127.0.0.1:$vport/redfish/v1" >/dev/null 2>&1 && break
        sleep 0.1
    done
    run node create --driver redfish --name "$B" --driver-info redfish_address="http://127.0.0.1:$vport" \
        --driver-info redfish_system_id=/redfish/v1/Systems/vm1 --driver-info redfish_username=admin \
        --driver-info redfish_password=cli-bios-pw -f json
    check "bios lane: redfish node with the redfish bios interface" 'd["bios_interface"]=="redfish"'
    run node manage "$B" --wait 30
    run node bios setting list "$B" -f json
    check "node bios setting list: the BIOS settings cached when managed" \
        'len(d)==9 and {"BIOS setting name":"ProcTurboMode","BIOS setting value":"Enabled"} in d'
    run --os-baremetal-api-version 1.74 node bios setting list "$B" --long -f json
    check "node bios setting list --long (1.74): registry fields" \
        'any(x["Name"]=="NetworkBootRetries" and x["Upper Bound"]==10 and x["Attribute Type"]=="Integer" for x in d)'
    run --os-baremetal-api-version 1.74 node bios setting show "$B" SerialNumber -f json
    check "node bios setting show: read-only, unique" 'd["value"]=="VBMC-vm1" and d["read_only"] is True and d["unique"] is True'
    run node bios setting show "$B" NoSuchSetting
    check_err "node bios setting show of an unknown setting: 404" "doesn't have a BIOS setting"
    # This client has no --disable-ramdisk (the server tests send it); out-of-band steps
    # boot no ramdisk either way.
    run node clean "$B" \
        --clean-steps '[{"interface": "bios", "step": "apply_configuration", "args": {"settings": [{"name": "ProcTurboMode", "value": "Sometimes"}]}}]'
    check_err "node clean with a value the registry refuses: 400" "not one of the allowed values" "HTTP 400"
    run node clean "$B" --wait 60 \
        --clean-steps '[{"interface": "bios", "step": "apply_configuration", "args": {"settings": [{"name": "ProcTurboMode", "value": "Disabled"}]}}]'
    run node bios setting show "$B" ProcTurboMode -f json
    check "node clean bios.apply_configuration --wait: the setting took" 'd["value"]=="Disabled"'
    run node show "$B" -f json
    check "bios lane: manageable again, no error" 'd["provision_state"]=="manageable" and d["last_error"] is None'
    run node delete "$B"
    check_rc0 "bios lane: node deleted"
    kill "$vpid" 2>/dev/null
    wait "$vpid" 2>/dev/null
    trap - EXIT
    echo "# lane $LANE done (${SECONDS}s)"
}

# --- lane: volume connectors and targets (API 1.32) ---
lane_volume() {
    LANE=volume
    export VN=cli-volume-node
    run node create --driver fake-hardware --name "$VN" -f json
    check "volume lane: node created" 're.match(E["UUID_RE"], d["uuid"])'
    # --node takes the node's UUID: a name is refused, as Ironic's validator does.
    run volume connector create --node "$VN" --type iqn --connector-id iqn.2026-12.org.example:name
    check_err "volume connector create with a node name: 400" "Expected UUID for node_uuid"
    run node show cli-volume-node -f json
    export VN=$(jget 'd["uuid"]')
    run volume connector create --node "$VN" --type iqn --connector-id iqn.2026-12.org.example:cli -f json
    check "volume connector create" 'd["type"]=="iqn" and d["connector_id"]=="iqn.2026-12.org.example:cli"'
    export VC=$(jget 'd["uuid"]')
    run volume connector create --node "$VN" --type iqn --connector-id iqn.2026-12.org.example:cli
    check_err "volume connector create twice: 409" "already exists"
    run volume target create --node "$VN" --type iscsi --boot-index 0 --volume-id 04452bed-5367-4202-8bf5-de4335ac56d2 -f json
    check "volume target create" 'd["volume_type"]=="iscsi" and d["boot_index"]==0'
    run volume target list --node "$VN" -f json
    check "volume target list --node" 'len(d)==1 and d[0]["Boot Index"]==0'
    run volume connector list -f json
    check "volume connector list" 'any(c["UUID"]==E["VC"] for c in d)'
    run volume connector delete "$VC"
    check_rc0 "volume connector delete (node not powered on)"
    run node delete "$VN"
    check_rc0 "volume lane: node deleted"
    echo "# lane $LANE done (${SECONDS}s)"
}

# --- lane: the API over HTTPS, verified with --os-cacert ---
lane_tls() {
    LANE=tls
    local d="$T/tls" port
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=cli test CA" \
        -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$d/key.pem" -out "$d/req.pem" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >"$d/ext"
    openssl x509 -req -in "$d/req.pem" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 1 \
        -extfile "$d/ext" -out "$d/cert.pem" 2>/dev/null
    port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    "$T/ironwork" serve --listen "127.0.0.1:$port" --data-dir "$d/data" --tls-cert "$d/cert.pem" --tls-key "$d/key.pem" >"$d/server.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 100); do
        curl -sf --cacert "$d/ca.pem" --max-time 1 "https://127.0.0.1:$port/" >/dev/null 2>&1 && break
        sleep 0.2
    done
    run --os-endpoint "https://127.0.0.1:$port" --os-cacert "$d/ca.pem" node list -f json
    check "node list over HTTPS with --os-cacert" 'd==[]'
    run --os-endpoint "https://127.0.0.1:$port" node list -f json
    check_err "node list over HTTPS without the CA fails" "certificate|SSL"
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    echo "# lane $LANE done (${SECONDS}s)"
}

# --- run the lanes in parallel, print their results in a fixed order -----------
# LANES="inspect" scripts/test-baremetal-cli.sh runs only the lanes named.
read -r -a LANES <<<"${LANES:-nodes ports pg_chassis readonly duplicate provision inspect console raid passthru bios volume tls}"
for l in "${LANES[@]}"; do
    ( set +e; "lane_$l" ) >"$T/lane-$l.log" 2>&1 &
    LANE_PIDS+=($!)
done
for p in "${LANE_PIDS[@]}"; do wait "$p" || true; done
LANE_PIDS=()

PASS=0
FAIL=0
for l in "${LANES[@]}"; do
    echo "# --- $l"
    cat "$T/lane-$l.log"
    if ! grep -q '^# lane .* done' "$T/lane-$l.log"; then
        echo "not ok - lane $l did not run to completion"
        FAIL=$((FAIL + 1))
    fi
    PASS=$((PASS + $(grep -c '^ok - ' "$T/lane-$l.log" || true)))
    FAIL=$((FAIL + $(grep -c '^not ok - ' "$T/lane-$l.log" || true)))
done

if [ "$FAIL" -ne 0 ]; then
    echo "# last server log lines:"
    tail -n 15 "$T/server.log" | sed 's/^/# server: /'
fi
echo "# total time: ${SECONDS}s"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
