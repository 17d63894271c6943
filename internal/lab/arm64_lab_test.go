package lab_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/lab"
	"github.com/ironwork/ironwork/internal/lab/testimage"
)

// TestLabARM64Deploys runs an arm64 machine (qemu-system-aarch64 -M virt under TCG, AAVMF,
// Redfish through the vbmc) through the lab's cycle: its UEFI PXE (DHCP architecture 11)
// loads the server's arm64 GRUB loader, which loads the node's GRUB configuration
// (/boot/<mac>.grub) and the arm64 deploy ramdisk the server picks by cpu_arch aarch64
// (deploy_kernel_by_arch: the node's driver_info has no deploy kernel); the agent cleans the
// disk, the deploy writes the arm64 test image, and the machine boots it from its disk
// (the instance's marker line on the serial console, firmware=uefi). Emulating aarch64 on
// two shared cores takes many minutes, so the test runs only with IRONWORK_TEST_ARM64=1:
//
//	scripts/kernel.sh arm64 && scripts/grub-arm64.sh
//	IRONWORK_TEST_ARM64=1 go test -count=1 -timeout 60m -run TestLabARM64Deploys -v ./internal/lab/
func TestLabARM64Deploys(tt *testing.T) {
	t := newLabT(tt)
	if os.Getenv("IRONWORK_TEST_ARM64") != "1" {
		t.Skip("set IRONWORK_TEST_ARM64=1 to run the arm64 lab test (TCG aarch64: many minutes)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and taps")
	}
	kernel, kernelARM64 := lab.FindKernel(), lab.FindKernelARM64()
	if err := lab.Check(kernel); err != nil {
		t.Skip(err)
	}
	if err := lab.CheckARM64(kernelARM64); err != nil {
		t.Fatal(err) // asked for explicitly: missing pieces are a failure, not a skip
	}
	bin := t.TempDir()
	goBuild(t, filepath.Join(bin, "ironwork"), "../../cmd/ironwork")
	goBuild(t, filepath.Join(bin, "ironwork-agent"), "../../cmd/ironwork-agent")
	cmd := exec.Command("go", "build", "-o", filepath.Join(bin, "ironwork-agent-arm64"), "../../cmd/ironwork-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the arm64 agent: %v: %s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "lab")
	ns := fmt.Sprintf("iwlaba-%d", os.Getpid()%10000)
	var logs bytes.Buffer
	opts := lab.Options{Dir: dir, Netns: ns, Subnet: "10.222.0", Ironwork: filepath.Join(bin, "ironwork"),
		Agent: filepath.Join(bin, "ironwork-agent"), AgentARM64: filepath.Join(bin, "ironwork-agent-arm64"),
		KernelDir: kernel, KernelDirARM64: kernelARM64, CallbackTimeout: 20 * time.Minute, Log: &logs,
		Nodes: []lab.NodeSpec{{Name: "arm64-uefi-redfish", Firmware: "uefi", Power: "redfish", Arch: lab.ArchARM64,
			Shape: lab.Shape{MemoryMB: 1024}}}}
	start := time.Now()
	runningLabs.track(t, dir)
	st, err := lab.Up(context.Background(), opts)
	t.Cleanup(func() {
		if err := lab.Down(dir, nil); err != nil {
			t.Errorf("lab down: %v", err)
		}
		if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), ns) {
			t.Errorf("network namespace %s is left after down: %s", ns, out)
		}
	})
	if err != nil {
		t.Logf("lab up's log:\n%s", logs.String())
		t.Fatalf("lab up: %v", err)
	}
	t.Logf("lab up (x86 and arm64 ramdisks, both test images, server, BMC): %.1f s", time.Since(start).Seconds())
	n := st.Nodes[0]
	defer t.dumpIfFailed(dir, 60, "serve.log", "vbmc.log", n.Name+".serial.log")
	cycleStart := time.Now()
	res := lab.Cycle(context.Background(), st, []string{n.Name}, lab.CycleOptions{Timeout: 25 * time.Minute, SkipUndeploy: true,
		OnProgress: func(p lab.Progress) {
			t.Logf("%7.1fs %s %s %s", time.Since(cycleStart).Seconds(), p.Node, p.State, p.Step)
		}})[0]
	for _, p := range res.Phases {
		t.Logf("phase %s: %.1f s", p.Name, p.Duration.Seconds())
	}
	if res.Err != nil {
		t.Fatalf("arm64 cycle: %v", res.Err)
	}
	if fw, ok := testimage.ParseBootedLine(res.BootedLine); !ok || fw != testimage.FirmwareUEFI {
		t.Errorf("booted line %q: want the instance's marker with firmware=uefi", res.BootedLine)
	}
	serve, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
	for _, want := range []string{"GRUB configuration served", "nodes/" + n.UUID + "/kernel"} {
		if !bytes.Contains(serve, []byte(want)) {
			t.Errorf("serve.log has no %q", want)
		}
	}
	serial, _ := os.ReadFile(n.Serial)
	if !bytes.Contains(serial, []byte("aarch64")) && !bytes.Contains(serial, []byte("arm64")) {
		t.Errorf("the serial log shows no arm64 kernel booting")
	}
	t.Logf("arm64 machine: clean + deploy + boot from disk in %.1f s (wall), lab up %.1f s", time.Since(cycleStart).Seconds(), cycleStart.Sub(start).Seconds())
}
