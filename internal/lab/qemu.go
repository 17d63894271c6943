package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// ExecQEMU runs QEMU for a UEFI lab machine (the hidden 'ironwork lab qemu VARS QEMU ARGS...'):
// OVMF ignores QEMU's "-boot" and keeps booting a disk it has booted once, so the BMC's boot
// device becomes bootindex properties instead ("-boot ...n": the NIC first, else the disk),
// with fresh variables so that no stale boot entry wins. The disk is the drive "disk0". It
// replaces this process with QEMU.
func ExecQEMU(vars string, args []string) error {
	out := uefiBootArgs(args)
	template := OVMFVars
	if len(out) > 0 && filepath.Base(out[0]) == QEMUARM64 {
		template = AAVMFVars
	}
	b, err := os.ReadFile(template)
	if err != nil {
		return fmt.Errorf("UEFI variables: %w", err)
	}
	if err := os.WriteFile(vars, b, 0o644); err != nil {
		return err
	}
	bin, err := exec.LookPath(out[0])
	if err != nil {
		return err
	}
	return syscall.Exec(bin, out, os.Environ())
}

// uefiBootArgs turns "-boot ..." into bootindex properties: the first NIC and the disk
// "disk0", the NIC first when the boot order has n.
func uefiBootArgs(args []string) []string {
	pxe := false
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "-boot" && i+1 < len(args) {
			pxe = strings.HasSuffix(args[i+1], "n")
			i++
			continue
		}
		out = append(out, args[i])
	}
	nicIndex, diskIndex := "2", "1"
	if pxe {
		nicIndex, diskIndex = "1", "2"
	}
	for i, a := range out {
		if strings.HasPrefix(a, "virtio-net-pci,") && !strings.Contains(a, "bootindex=") {
			out[i] = a + ",bootindex=" + nicIndex
			break // the first NIC boots; QEMU refuses a bootindex used twice
		}
	}
	return append(out, "-device", "virtio-blk-pci,drive=disk0,bootindex="+diskIndex)
}
