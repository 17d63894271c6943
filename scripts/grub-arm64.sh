#!/usr/bin/env bash
# grub-arm64.sh: build the arm64 UEFI network boot loader the conductor serves to ARM64 UEFI
# clients (DHCP architectures 11 and 19; docs/network-boot.md), and keep GRUB's arm64 modules
# for the lab's arm64 test image. GRUB's arm64 modules come from Debian's grub-efi-arm64-bin of
# the host's Debian release (fetched as scripts/kernel.sh arm64 fetches the kernel, not
# installed); grub-mkimage (grub-common) builds the image. Prints the directory, which holds
# grubnetaa64.efi and arm64-efi/ (the modules). Idempotent.
# usage: scripts/grub-arm64.sh [CACHE_DIR]   (default /var/cache/ironwork/grub-arm64)
set -euo pipefail
out=${1:-/var/cache/ironwork/grub-arm64}

command -v grub-mkimage >/dev/null || { echo "grub-arm64.sh: grub-mkimage missing (Debian package grub-common)" >&2; exit 1; }
state=$(dirname "$out")/apt-arm64
apt_opts=(-o "APT::Architecture=arm64" -o "APT::Architectures::=arm64" -o "Dir::State::Lists=$state/lists"
  -o "Dir::Cache=$state" -o "Dir::State::status=/dev/null" -o Debug::NoLocking=1)
if [ ! -f "$out/arm64-efi/linux.mod" ]; then
  mkdir -p "$state/lists/partial" "$state/archives/partial"
  if ! apt-cache "${apt_opts[@]}" show grub-efi-arm64-bin >/dev/null 2>&1; then
    apt-get "${apt_opts[@]}" update -q >/dev/null 2>&1 || true
  fi
  work=$(mktemp -d "${TMPDIR:-/tmp}/ironwork-grub.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  chmod 755 "$work"
  ( cd "$work" && apt-get "${apt_opts[@]}" download -q grub-efi-arm64-bin >/dev/null 2>&1 ) || { echo "grub-arm64.sh: apt-get download grub-efi-arm64-bin failed" >&2; exit 1; }
  dpkg-deb -x "$work"/grub-efi-arm64-bin_*.deb "$work/x"
  mkdir -p "$out"
  rm -rf "$out/arm64-efi.tmp"
  cp -a "$work/x/usr/lib/grub/arm64-efi" "$out/arm64-efi.tmp"
  rm -rf "$out/arm64-efi"
  mv "$out/arm64-efi.tmp" "$out/arm64-efi"
fi
# The loader: its prefix is the TFTP server's grub/ directory, where the conductor writes the
# grub.cfg that asks the HTTP boot server for the booting MAC's configuration.
cat > "$out/embed.cfg.tmp" <<'CFG'
echo "Ironwork: GRUB arm64 network boot, server $net_default_server, MAC $net_default_mac"
CFG
mv "$out/embed.cfg.tmp" "$out/embed.cfg"
grub-mkimage -O arm64-efi -d "$out/arm64-efi" -o "$out/grubnetaa64.efi.tmp" -p '(tftp)/grub' -c "$out/embed.cfg" \
  efinet tftp http net linux normal configfile echo test sleep reboot halt gzio efi_gop
mv "$out/grubnetaa64.efi.tmp" "$out/grubnetaa64.efi"
echo "$out"
