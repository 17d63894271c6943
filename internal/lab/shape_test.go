package lab

import (
	"slices"
	"strings"
	"testing"
)

func TestParseSizes(t *testing.T) {
	got, err := ParseSizes("8G, 4g,512M,1048576")
	if err != nil || !slices.Equal(got, []int64{8 << 30, 4 << 30, 512 << 20, 1 << 20}) {
		t.Errorf("%v %v", got, err)
	}
	for _, bad := range []string{"", "0", "-1G", "8X", "G", "9999999T"} {
		if _, err := ParseSizes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestQEMUCommandShape: a machine of 2 vCPUs, 1536 MiB, two disks and two NICs gets them on
// its command line; only the first NIC boots (BIOS: the second has no option ROM; UEFI: one
// bootindex), and the first disk is the boot disk.
func TestQEMUCommandShape(t *testing.T) {
	st := &State{Dir: t.TempDir(), Netns: "iwlab-x"}
	for _, fw := range []string{"bios", "uefi"} {
		n := Node{Name: "m", Firmware: fw, MAC: "52:54:00:1a:01:01", Tap: "tap0", Disk: "/d0", Serial: "/s",
			MACs: []string{"52:54:00:1a:01:01", "52:54:01:1a:01:01"}, Taps: []string{"tap0", "tap0n1"}, Disks: []string{"/d0", "/d1"}}
		spec := NodeSpec{Firmware: fw, Shape: Shape{CPUs: 2, MemoryMB: 1536, Disks: []int64{8 << 30, 4 << 30}, NICs: 2}}
		args, err := qemuCommand(st, n, spec, "/bin/ironwork")
		if err != nil {
			t.Fatal(err)
		}
		line := strings.Join(args, " ")
		for _, want := range []string{" -smp 2 ", " -m 1536 ", "file=/d1,if=virtio,format=raw", "tap,id=n0,ifname=tap0,",
			"tap,id=n1,ifname=tap0n1,", "virtio-net-pci,netdev=n1,mac=52:54:01:1a:01:01,romfile="} {
			if !strings.Contains(line, want) {
				t.Errorf("%s: lacks %q: %s", fw, want, line)
			}
		}
		if fw == "bios" {
			if !strings.Contains(line, "file=/d0,if=virtio,format=raw") || strings.Contains(line, "mac=52:54:00:1a:01:01,romfile=") {
				t.Errorf("bios: boot disk or first NIC's ROM: %s", line)
			}
			continue
		}
		i := slices.Index(args, "qemu")
		boot := strings.Join(uefiBootArgs(append(args[i+2:], "-boot", "once=n")), " ")
		if strings.Count(boot, "bootindex=1") != 1 || strings.Count(boot, "bootindex=2") != 1 ||
			!strings.Contains(boot, "mac=52:54:00:1a:01:01,romfile=,bootindex=1") || !strings.Contains(boot, "drive=disk0,bootindex=2") {
			t.Errorf("uefi boot order: %s", boot)
		}
	}
}

// TestQEMUCommandARM64: an arm64 machine runs qemu-system-aarch64's virt machine with AAVMF
// (through 'ironwork lab qemu', which copies AAVMF's variables), a Cortex-A57, and the same
// virtio NIC and disk by bootindex as OVMF machines; a bad spec is refused before anything runs.
func TestQEMUCommandARM64(t *testing.T) {
	st := &State{Dir: t.TempDir(), Netns: "iwlab-x"}
	n := Node{Name: "a", Firmware: "uefi", MAC: "52:54:00:1a:01:01", Tap: "tap0", Disk: "/d0", Serial: "/s", Arch: ArchARM64}
	args, err := qemuCommand(st, n, NodeSpec{Firmware: "uefi", Arch: ArchARM64}, "/bin/ironwork")
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{"/bin/ironwork lab qemu " + st.Dir + "/a.vars.fd " + QEMUARM64 + " -accel tcg", "-cpu cortex-a57",
		"-machine virt", "readonly=on,file=" + AAVMFCode, "file=/d0,if=none,id=disk0"} {
		if !strings.Contains(line, want) {
			t.Errorf("lacks %q: %s", want, line)
		}
	}
	if strings.Contains(line, "q35") || strings.Contains(line, "OVMF") || strings.Contains(line, "x86_64") {
		t.Errorf("x86 pieces on an arm64 machine: %s", line)
	}
	for _, spec := range []NodeSpec{{Name: "bios", Firmware: "bios", Arch: ArchARM64}, {Name: "mips", Firmware: "uefi", Arch: "mips"}} {
		o := Options{Nodes: []NodeSpec{spec}, KernelDirARM64: FindKernelARM64()}
		if err := o.checkARM64(); err == nil || !strings.Contains(err.Error(), "machine "+spec.Name) {
			t.Errorf("spec %+v: %v", spec, err)
		}
	}
}
