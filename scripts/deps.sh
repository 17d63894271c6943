#!/usr/bin/env bash
# deps.sh: install the Debian packages Ironwork's tests use: PostgreSQL (store tests),
# python3-ironicclient (the real `baremetal` CLI), python3-ironic (the reference state machine),
# openipmi, ipmitool, python3-pyghmi, python3-sushy and redfishtool (BMC simulators and independent
# IPMI and Redfish clients), QEMU with iPXE and OVMF (virtual machines that network-boot; qemu-system-arm
# and AAVMF from qemu-efi-aarch64 for the arm64 lab machines), and the
# real DHCP, TFTP and router-advertisement peers of the boot services (busybox udhcpc, ISC
# dhclient and dhcrelay, dnsmasq, tftp-hpa, atftp, ndisc6), and the disk tools the agent's tests check its
# work with (qemu-img, sgdisk, sfdisk, xorriso, isoinfo from genisoimage, blkid, zstd, xz, mkfs.vfat
# from dosfstools, which the deploy ramdisk also carries for ESPs), and
# what the lab test image is built with (grub-common, grub-pc-bin, grub-efi-amd64-bin: files
# only, the host boot is untouched; mtools), and chromium (headless, for the web console's
# browser tests), isolinux (the real Ironic builds its BIOS virtual media ISO with it in
# TestRealIronicDrivesVirtualMedia). busybox comes as busybox-static (it replaces Debian's dynamically linked busybox
# and has the same applets): the rescue ramdisk carries it as its shell, and dropbear-bin (the
# server only, no service) for SSH into it.
# Idempotent; needs root for apt-get.
set -euo pipefail
need=()
# Each line: a file or command that must exist, and the Debian package that provides it.
while read -r probe pkg; do
  case $probe in
    /*) compgen -G "$probe" >/dev/null || need+=("$pkg") ;;
    *) command -v "$probe" >/dev/null || need+=("$pkg") ;;
  esac
done <<'LIST'
/usr/lib/postgresql/*/bin/initdb postgresql
/usr/bin/baremetal python3-ironicclient
keystone-manage keystone
uwsgi uwsgi-core
/usr/lib/uwsgi/plugins/python3_plugin.so uwsgi-plugin-python3
curl curl
/usr/lib/python3/dist-packages/ironic/common/states.py python3-ironic
ipmi_sim openipmi
ipmitool ipmitool
/usr/bin/fakebmc python3-pyghmi
redfishtool redfishtool
/usr/lib/python3/dist-packages/sushy python3-sushy
qemu-system-x86_64 qemu-system-x86
qemu-img qemu-utils
/usr/lib/ipxe/undionly.kpxe ipxe
/usr/lib/ipxe/qemu/efi-virtio.rom ipxe-qemu
/usr/share/OVMF/OVMF_CODE_4M.fd ovmf
qemu-system-aarch64 qemu-system-arm
/usr/share/AAVMF/AAVMF_CODE.fd qemu-efi-aarch64
cpio cpio
/usr/share/doc/busybox-static busybox-static
/usr/sbin/dropbear dropbear-bin
/usr/sbin/dhclient isc-dhcp-client
/usr/sbin/dnsmasq dnsmasq-base
/usr/sbin/dhcrelay isc-dhcp-relay
tftp tftp-hpa
atftp atftp
rdisc6 ndisc6
/usr/sbin/ip iproute2
sgdisk gdisk
/usr/sbin/sfdisk fdisk
xorriso xorriso
mkfs.vfat dosfstools
isoinfo genisoimage
/usr/sbin/blkid util-linux
zstd zstd
xz xz-utils
grub-mkimage grub-common
/usr/lib/grub/i386-pc/boot.img grub-pc-bin
/usr/lib/grub/x86_64-efi/linux.mod grub-efi-amd64-bin
mformat mtools
/usr/lib/ISOLINUX/isolinux.bin isolinux
chromium chromium
LIST
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
