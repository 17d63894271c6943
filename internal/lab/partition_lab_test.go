package lab_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/agent"
	"github.com/ironwork/ironwork/internal/lab"
	"github.com/ironwork/ironwork/internal/lab/testimage"
)

// TestLabPartitionImage deploys the partition test image on two QEMU machines at once, one
// under SeaBIOS (IPMI) and one under OVMF (Redfish), with its kernel and ramdisk in
// instance_info, swap, an ephemeral partition and a config drive: the agent lays the disk
// out, streams the root file system into the root partition and installs the image's boot
// loader (grub-install run chrooted from the written root for BIOS; the ESP populated and a
// boot entry written through efivarfs for UEFI). Each machine must then boot from its disk
// and its instance read the config drive. The disks are checked after: the partition table
// Ironic would make, and on the UEFI one the ESP's files.
func TestLabPartitionImage(tt *testing.T) {
	t := newLabT(tt)
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and taps")
	}
	kernel := lab.FindKernel()
	if err := lab.Check(kernel); err != nil {
		t.Skip(err)
	}
	for _, tool := range []string{"mkfs.ext4", "mkfs.fat", "mtools", "ldd", "grub-install", "sfdisk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/deps.sh)", tool)
		}
	}
	t.Parallel() // two labs at a time (scripts/test.sh: -parallel 2)
	ironworkBin, agentBin := labBinaries(t)
	dir := filepath.Join(t.TempDir(), "lab")
	ns := fmt.Sprintf("iwlabpi-%d", os.Getpid()%10000)
	var logs bytes.Buffer
	nodes := []lab.NodeSpec{
		{Name: "p-bios-ipmi", Firmware: "bios", Power: "ipmi"},
		{Name: "p-uefi-redfish", Firmware: "uefi", Power: "redfish"},
	}
	start := time.Now()
	runningLabs.track(t, dir)
	st, err := lab.Up(context.Background(), lab.Options{Dir: dir, Netns: ns, Subnet: "10.218.0", Ironwork: ironworkBin,
		Agent: agentBin, KernelDir: kernel, Cache: labCache(), CallbackTimeout: 5 * time.Minute, Log: &logs, Nodes: nodes,
		PartitionImage: true})
	t.Cleanup(func() {
		if err := lab.Down(dir, nil); err != nil {
			t.Errorf("lab down: %v", err)
		}
		if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), ns) {
			t.Errorf("network namespace %s is left after down", ns)
		}
	})
	if err != nil {
		t.Logf("lab up's log:\n%s", logs.String())
		t.Fatalf("lab up: %v", err)
	}
	t.Logf("lab up (ramdisk, both images, namespace, server, BMCs, enrolment): %.1f s", time.Since(start).Seconds())
	files := []string{"serve.log", "vbmc.log"}
	for _, n := range nodes {
		files = append(files, n.Name+".serial.log")
	}
	defer t.dumpIfFailed(dir, 60, files...)

	p := st.Partition
	if p == nil {
		t.Fatal("lab up made no partition image")
	}
	const swapMB, ephemeralGB = 64, 1
	ctx := context.Background()
	// No automated cleaning: this test is about the partition image's deploy (cleaning is
	// asserted by TestLabEndToEnd and TestLabProductionLayout); provide goes straight to available.
	for _, n := range st.Nodes {
		if err := st.Client().Do(ctx, http.MethodPatch, "/v1/nodes/"+n.UUID, []map[string]any{{"op": "replace", "path": "/automated_clean", "value": false}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	res := lab.Cycle(ctx, st, []string{"p-bios-ipmi", "p-uefi-redfish"}, lab.CycleOptions{Timeout: 6 * time.Minute, SkipUndeploy: true,
		InstanceInfo: func(lab.Node) map[string]any {
			return map[string]any{"image_source": p.Image, "image_checksum": "sha256:" + p.SHA256, "image_disk_format": "raw",
				"kernel": p.Kernel, "ramdisk": p.Ramdisk, "root_gb": 1, "swap_mb": swapMB, "ephemeral_gb": ephemeralGB, "ephemeral_format": "ext4"}
		},
		ConfigDrive: map[string]any{"meta_data": map[string]any{"hostname": "lab-part-1"}},
	})
	for _, r := range res {
		for _, ph := range r.Phases {
			t.Logf("%s: %-30s %6.1f s", r.Node, ph.Name, ph.Duration.Seconds())
		}
		if r.Err != nil {
			t.Errorf("%s: %v", r.Node, r.Err)
			continue
		}
		n, _ := st.Node(r.Node)
		if !strings.Contains(r.BootedLine, "firmware="+n.Firmware) {
			t.Errorf("%s: the instance reported %q, want firmware=%s", r.Node, r.BootedLine, n.Firmware)
		}
		rep, err := testimage.ParseConfigDriveLine(r.ConfigDriveLine)
		if err != nil || !rep.Found || rep.Hostname != "lab-part-1" || rep.UUID != n.UUID {
			t.Errorf("%s: config drive seen by the instance: %q (%+v, %v)", r.Node, r.ConfigDriveLine, rep, err)
		}
		t.Logf("%s: %s / %s", r.Node, r.BootedLine, r.ConfigDriveLine)

		// The disk as Ironic lays it out: msdos for BIOS (ephemeral, swap, config drive, root),
		// GPT with an ESP first for UEFI; root last, of root_gb.
		pt, err := agent.PartitionUUIDs(n.Disk)
		if err != nil {
			t.Errorf("%s: %v", r.Node, err)
			continue
		}
		wantType, wantSizes := "dos", []int64{ephemeralGB << 30, swapMB << 20, 64 << 20, 1 << 30}
		if n.Firmware == "uefi" {
			wantType, wantSizes = "gpt", append([]int64{agent.ESPSizeMiB << 20}, wantSizes...)
		}
		var got []int64
		for _, part := range pt.Partitions {
			got = append(got, part.Size)
		}
		if pt.Type != wantType || fmt.Sprint(got) != fmt.Sprint(wantSizes) {
			t.Errorf("%s: %s table with partition sizes %v, want %s with %v", r.Node, pt.Type, got, wantType, wantSizes)
		}
		if out, err := exec.Command("sfdisk", "-d", n.Disk).CombinedOutput(); err == nil {
			t.Logf("%s: sfdisk -d:\n%s", r.Node, out)
		}
		if n.Firmware == "uefi" {
			esp := pt.Partitions[0]
			out, err := exec.Command("mtools", "-c", "mdir", "-/", "-b", "-i", fmt.Sprintf("%s@@%d", n.Disk, esp.Start), "::/EFI").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "ironwork/grubx64.efi") || !strings.Contains(strings.ToUpper(string(out)), "BOOT/BOOTX64.EFI") {
				t.Errorf("%s: the ESP holds %s (%v)", r.Node, out, err)
			}
		}
	}
	t.Logf("whole test: %.1f s", time.Since(start).Seconds())
}
