package vbmc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/redfish"
)

// labShape is a QEMU command line shaped as the lab's: 2 vCPUs, 1536 MiB, disks of 8 and
// 4 GiB (sparse files), two NICs; uefi adds OVMF's pflash drives. It is never run.
func labShape(t *testing.T, uefi bool) ([]string, []string) {
	dir := t.TempDir()
	var disks []string
	for i, size := range []int64{8 << 30, 4 << 30} {
		p := filepath.Join(dir, fmt.Sprintf("disk%d", i))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		disks = append(disks, p)
	}
	macs := []string{"52:54:00:1a:02:01", "52:54:00:1a:02:02"}
	cmd := []string{"ip", "netns", "exec", "ns", "qemu-system-x86_64", "-accel", "tcg", "-m", "1536", "-smp", "2",
		"-display", "none", "-chardev", "file,id=serial0,path=/tmp/x", "-serial", "chardev:serial0",
		"-netdev", "tap,id=n0,ifname=tap0", "-netdev", "tap,id=n1,ifname=tap1", "-device", "virtio-rng-pci",
		"-drive", "file=" + disks[0] + ",if=virtio,format=raw", "-drive", "file=" + disks[1] + ",if=virtio,format=raw",
		"-device", "virtio-net-pci,netdev=n0,mac=" + macs[0], "-device", "virtio-net-pci,netdev=n1,mac=" + strings.ToUpper(macs[1])}
	if uefi {
		cmd = append(cmd, "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd")
	}
	return cmd, macs
}

func TestHardwareFromCommand(t *testing.T) {
	cmd, macs := labShape(t, true)
	want := Hardware{CPUs: 2, MemoryMB: 1536, Arch: "x86", UEFI: true, Disks: []int64{8 << 30, 4 << 30}, MACs: macs}
	if d := cmp.Diff(want, HardwareFromCommand(cmd)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	for _, c := range []struct {
		cmd  []string
		want Hardware
	}{
		{[]string{"qemu-system-aarch64", "-smp", "cpus=4,sockets=1", "-m", "size=2G"}, Hardware{CPUs: 4, MemoryMB: 2048, Arch: "ARM"}},
		{[]string{"qemu-system-x86_64", "-m", "lots", "-smp", "-3", "-drive", "media=cdrom,file=x.iso", "-nic", "user,mac=zz"}, Hardware{CPUs: 1, MemoryMB: 128, Arch: "x86"}},
		{[]string{"sh", "-c", "exec sleep 300", "vm"}, Hardware{CPUs: 1, MemoryMB: 128, Arch: "x86"}},
	} {
		if d := cmp.Diff(c.want, HardwareFromCommand(c.cmd)); d != "" {
			t.Errorf("%v (-want +got):\n%s", c.cmd, d)
		}
	}
}

// TestRedfishInspectionAgainstTheVBMC: Ironwork's redfish inspect interface reads a lab-shaped
// machine's hardware from the vbmc without starting it; Ironic's own client (sushy) reads the
// same summaries (its memory_summary truncates to whole GiB).
func TestRedfishInspectionAgainstTheVBMC(t *testing.T) {
	for _, uefi := range []bool{false, true} {
		cmd, macs := labShape(t, uefi)
		v := startVBMC(t, cmd)
		tk := &conductor.Task{Node: &ironwork.Node{UUID: "n1", DriverInfo: ironwork.JSONObject{"redfish_address": v.RedfishURL,
			"redfish_system_id": "/redfish/v1/Systems/vm1", "redfish_username": "admin", "redfish_password": "password"}}}
		res, err := redfish.Interface{}.InspectHardware(context.Background(), tk)
		if err != nil {
			t.Fatal(err)
		}
		mode := map[bool]string{false: "bios", true: "uefi"}[uefi]
		want := &conductor.InspectResult{CPUs: 2, CPUArch: "x86_64", MemoryMB: 1536, LocalGB: 3, BootMode: mode, MACs: macs}
		if d := cmp.Diff(want, res); d != "" {
			t.Errorf("uefi %v (-want +got):\n%s", uefi, d)
		}
		if v.Machine("vm1").On() {
			t.Error("inspection started the machine")
		}
		if !uefi {
			continue
		}
		if err := exec.Command("/usr/bin/python3", "-c", "import sushy").Run(); err != nil {
			t.Fatal("python3-sushy is not installed: scripts/deps.sh installs it")
		}
		script := fmt.Sprintf(`
import sushy
s = sushy.Sushy(%q, username="admin", password="password")
sys = s.get_system("/redfish/v1/Systems/vm1")
print("cpus", sys.processors.summary.count, str(getattr(sys.processors.summary.architecture, "value", sys.processors.summary.architecture)))
print("memory", sys.memory_summary.size_gib)
print("simple", sys.simple_storage.disks_sizes_bytes)
print("drives", sys.storage.drives_sizes_bytes)
print("nics", sorted(sys.ethernet_interfaces.summary))
`, v.RedfishURL+"/redfish/v1")
		out, err := exec.Command("/usr/bin/python3", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("sushy: %v\n%s", err, out)
		}
		for _, line := range []string{"cpus 2 x86", "memory 1\n" /* sushy truncates TotalSystemMemoryGiB 1.5 */, fmt.Sprintf("simple [%d, %d]", 4<<30, 8<<30),
			fmt.Sprintf("drives [%d, %d]", 4<<30, 8<<30), fmt.Sprintf("nics ['%s', '%s']", macs[0], macs[1])} {
			if !strings.Contains(string(out), line) {
				t.Errorf("sushy output lacks %q:\n%s", line, out)
			}
		}
	}
}
