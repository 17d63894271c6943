#!/usr/bin/env bash
# kernel.sh: unpack Debian's current amd64 kernel (linux-image-amd64's dependency) and its
# modules into a cache directory without installing it, for deploy ramdisks and boot tests.
# Prints the directory, which holds vmlinuz and lib/modules/<version>/. Idempotent.
# usage: scripts/kernel.sh [CACHE_DIR]   (default /var/cache/ironwork/kernel)
set -euo pipefail
cache=${1:-/var/cache/ironwork/kernel}
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$pkg" ]; then
  apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null 2>&1 || true
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
fi
[ -n "$pkg" ] || { echo "kernel.sh: cannot tell which package linux-image-amd64 depends on" >&2; exit 1; }
dir=$cache/$pkg
if [ ! -f "$dir/vmlinuz" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/ironwork-kernel.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  chmod 755 "$work"   # apt's download user must be able to write here
  ( cd "$work" && apt-get download -q "$pkg" >/dev/null 2>&1 ) || { echo "kernel.sh: apt-get download $pkg failed" >&2; exit 1; }
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
