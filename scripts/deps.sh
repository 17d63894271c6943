#!/usr/bin/env bash
# deps.sh: install the Debian packages Ironwork's tests use: PostgreSQL (store tests),
# python3-ironicclient (the real `baremetal` CLI), python3-ironic (the reference state machine),
# openipmi, ipmitool, python3-pyghmi and python3-sushy (BMC simulators and independent IPMI and
# Redfish clients) and qemu-system-x86 (virtual machines behind the virtual BMC).
# Idempotent; needs root for apt-get.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/baremetal ] || need+=(python3-ironicclient)
command -v curl >/dev/null || need+=(curl)
[ -f /usr/lib/python3/dist-packages/ironic/common/states.py ] || need+=(python3-ironic)
command -v ipmi_sim >/dev/null || need+=(openipmi)
command -v ipmitool >/dev/null || need+=(ipmitool)
[ -x /usr/bin/fakebmc ] || need+=(python3-pyghmi)
command -v redfishtool >/dev/null || need+=(redfishtool)
/usr/bin/python3 -c 'import sushy' 2>/dev/null || need+=(python3-sushy)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ ${#need[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || { echo "deps.sh: missing ${need[*]}; run as root or install them" >&2; exit 1; }
echo "deps.sh: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Packages must never start their services here (PostgreSQL's cluster, for one).
made=
if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made=1; fi
trap '[ -n "$made" ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get -o DPkg::Lock::Timeout=600 install -y -q "${need[@]}" >/tmp/ironwork-deps.log 2>&1 || {
  apt-get -o DPkg::Lock::Timeout=600 update -q >>/tmp/ironwork-deps.log 2>&1
  apt-get -o DPkg::Lock::Timeout=600 install -y -q "${need[@]}" >>/tmp/ironwork-deps.log 2>&1 || { tail -n 30 /tmp/ironwork-deps.log >&2; exit 1; }
}
