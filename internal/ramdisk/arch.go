package ramdisk

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// Architectures a ramdisk is built for, in Go's and Debian's names.
const (
	AMD64 = "amd64"
	ARM64 = "arm64"
)

// Arches are the architectures Build knows.
func Arches() []string { return []string{AMD64, ARM64} }

// CPUArch is Ironic's properties.cpu_arch for a ramdisk architecture (x86_64, aarch64).
func CPUArch(arch string) string {
	if arch == ARM64 {
		return "aarch64"
	}
	return "x86_64"
}

// elfMachine is the ELF machine an architecture's executables have.
func elfMachine(arch string) elf.Machine {
	if arch == ARM64 {
		return elf.EM_AARCH64
	}
	return elf.EM_X86_64
}

// ModulesFor are the default modules of a deploy ramdisk for arch: DefaultModules on amd64;
// on arm64 the same less the x86-only drivers (ata_piix), plus virtio_mmio (virtio devices
// of platforms described by device tree or ACPI without PCI) and the PL031 RTC of QEMU's virt
// machine and many arm64 servers.
func ModulesFor(arch string) []string {
	if arch != ARM64 {
		return DefaultModules()
	}
	mods := slices.DeleteFunc(DefaultModules(), func(m string) bool { return m == "ata_piix" })
	return append(mods, "virtio_mmio", "rtc_pl031")
}

// DiskToolsFor are the default disk tools of a ramdisk for arch: the build host's
// (DefaultDiskTools) only when the ramdisk is for the host's own architecture, as they are
// copied from it; none otherwise, and the agent then refuses partition images with a clear
// error (whole-disk images deploy).
func DiskToolsFor(arch, host string) []string {
	if arch != host {
		return []string{}
	}
	return DefaultDiskTools()
}

// checkArch verifies that the agent is an executable of arch and the kernel a kernel of arch,
// so that a ramdisk never mixes architectures (it would not boot, or panic at once).
func checkArch(arch string, agent []byte, kernelDir string) error {
	f, err := elf.NewFile(bytes.NewReader(agent))
	if err != nil {
		return fmt.Errorf("read agent ELF header: %w", err)
	}
	defer f.Close()
	if want := elfMachine(arch); f.Machine != want {
		return fmt.Errorf("the agent is built for %s, not for %s (%s): build it with GOARCH=%s", f.Machine, arch, want, arch)
	}
	// A kernel in a form not recognised here (or missing: reported when it is copied) passes.
	if got := kernelArch(filepath.Join(kernelDir, "vmlinuz")); got != "" && got != arch {
		return fmt.Errorf("kernel %s is an %s kernel, not %s (scripts/kernel.sh %s fetches one)", filepath.Join(kernelDir, "vmlinuz"), got, arch, arch)
	}
	return nil
}

// kernelArch tells an arm64 Image (the "ARM\x64" magic at offset 56 of its header) from an
// x86 bzImage ("HdrS" at offset 0x202); "" when it is neither or cannot be read.
func kernelArch(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	hdr := make([]byte, 0x206)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return ""
	}
	switch {
	case binary.LittleEndian.Uint32(hdr[56:60]) == 0x644d5241:
		return ARM64
	case string(hdr[0x202:0x206]) == "HdrS":
		return AMD64
	}
	return ""
}

// checkELFArch verifies that a program copied into the ramdisk (busybox, dropbear) runs on arch.
func checkELFArch(arch, what string, b []byte) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("read %s ELF header: %w", what, err)
	}
	defer f.Close()
	if want := elfMachine(arch); f.Machine != want {
		return fmt.Errorf("%s is built for %s, not for the ramdisk's %s (%s)", what, f.Machine, arch, want)
	}
	return nil
}
