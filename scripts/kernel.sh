#!/usr/bin/env bash
# kernel.sh: unpack Debian's current kernel (linux-image-ARCH's dependency) and its modules
# into a cache directory without installing it, for deploy ramdisks and boot tests.
# Prints the directory, which holds vmlinuz and lib/modules/<version>/. Idempotent.
# usage: scripts/kernel.sh [amd64|arm64] [CACHE_DIR]
#   default amd64 into /var/cache/ironwork/kernel; arm64 into /var/cache/ironwork/kernel-arm64
#   (apart, so that what looks for the newest amd64 kernel never finds an arm64 one)
# arm64 (for arm64 deploy ramdisks, docs/network-boot.md) reads the arm64 package lists of the
# same Debian mirror into CACHE_DIR/../apt-arm64 (a private apt state: the host's dpkg
# architectures are not changed) and unpacks linux-image-<version>-arm64 from it.
set -euo pipefail
arch=amd64
case ${1:-} in amd64|arm64) arch=$1; shift ;; esac
default_cache=/var/cache/ironwork/kernel
[ "$arch" = amd64 ] || default_cache=/var/cache/ironwork/kernel-$arch
cache=${1:-$default_cache}
apt_opts=()
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
  state=$(dirname "$cache")/apt-$arch
  mkdir -p "$state/lists/partial" "$state/archives/partial"
  apt_opts=(-o "APT::Architecture=$arch" -o "APT::Architectures::=$arch" -o "Dir::State::Lists=$state/lists"
    -o "Dir::Cache=$state" -o "Dir::State::status=/dev/null" -o Debug::NoLocking=1)
fi
depends() { apt-cache "${apt_opts[@]}" depends "linux-image-$arch" 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
pkg=$(depends)
if [ -z "$pkg" ]; then
  apt-get "${apt_opts[@]}" -o DPkg::Lock::Timeout=600 update -q >/dev/null 2>&1 || true
  pkg=$(depends)
fi
[ -n "$pkg" ] || { echo "kernel.sh: cannot tell which package linux-image-$arch depends on" >&2; exit 1; }
dir=$cache/$pkg
if [ ! -f "$dir/vmlinuz" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/ironwork-kernel.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  chmod 755 "$work"   # apt's download user must be able to write here
  ( cd "$work" && apt-get "${apt_opts[@]}" download -q "$pkg" >/dev/null 2>&1 ) || { echo "kernel.sh: apt-get download $pkg failed" >&2; exit 1; }
  mkdir -p "$work/x"
  dpkg-deb -x "$work"/"$pkg"_*.deb "$work/x"
  mkdir -p "$dir.tmp"
  cp "$work"/x/boot/vmlinuz-* "$dir.tmp/vmlinuz"
  mkdir -p "$dir.tmp/lib"
  cp -a "$work/x/lib/modules" "$dir.tmp/lib/"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
fi
echo "$dir"
