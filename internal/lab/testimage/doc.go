// Package testimage builds a small bootable whole-disk image for Ironwork's lab and
// end-to-end tests: the "instance" operating system that a deploy writes onto a QEMU VM.
//
// The image has an MBR with GRUB's BIOS boot code (core.img embedded in the gap before the
// first partition) and one FAT partition of type 0xEF that is also the UEFI system partition:
// \EFI\BOOT\BOOTX64.EFI (GRUB for x86_64-efi), the kernel and an initramfs whose /init is the
// instanceinit program of this package. Partition slots 2-4 stay free, so the agent can
// append a config-2 partition at the end of the disk.
//
// The booted image prints BootedLine on the serial console, then one ConfigDriveReport line,
// and then idles forever (it never powers off: the node is active).
package testimage
