//go:build linux

package agent_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/ramdisk"
)

// TestMDRaidInQEMU boots the test kernel (QEMU, TCG) with a ramdisk whose /init is
// testdata/mdcheck and two 64 MiB disks: agent.CreateMD builds a RAID-1 array with the kernel's
// md ioctls, both members hold what was written through it and a 0.90 superblock, AssembleMD
// starts it again, WipeMDSuperblock removes it. It takes about two minutes under TCG, so it
// runs only with IRONWORK_TEST_MDRAID=1 (a developer check of the md ioctls; no CI lane yet).
func TestMDRaidInQEMU(t *testing.T) {
	if os.Getenv("IRONWORK_TEST_MDRAID") == "" {
		t.Skip("boots a VM for about two minutes: set IRONWORK_TEST_MDRAID=1")
	}
	kernel := os.Getenv("IRONWORK_TEST_KERNEL")
	if kernel == "" {
		t.Skip("IRONWORK_TEST_KERNEL is not set")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "mdcheck")
	build := exec.Command("go", "build", "-o", bin, "./testdata/mdcheck")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build mdcheck: %v\n%s", err, out)
	}
	res, err := ramdisk.Build(context.Background(), ramdisk.BuildConfig{KernelDir: filepath.Dir(kernel), Agent: bin,
		Output: filepath.Join(dir, "out"), Modules: []string{"virtio_blk", "virtio_pci", "md_mod", "raid1"}})
	if err != nil {
		t.Fatal(err)
	}
	var disks []string
	for _, name := range []string{"d0.raw", "d1.raw"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, 64<<20); err != nil {
			t.Fatal(err)
		}
		disks = append(disks, "-drive", "file="+p+",if=virtio,format=raw")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	args := append([]string{"-accel", "tcg", "-m", "512", "-nographic", "-no-reboot", "-kernel", res.KernelPath,
		"-initrd", res.InitramfsPath, "-append", "console=ttyS0 panic=-1 quiet"}, disks...)
	start := time.Now()
	out, err := exec.CommandContext(ctx, "qemu-system-x86_64", args...).CombinedOutput()
	t.Logf("QEMU ran %v", time.Since(start).Round(time.Second))
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "MDCHECK") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	if err != nil || !strings.Contains(string(out), "MDCHECK OK") {
		t.Fatalf("qemu: %v\n%s", err, strings.Join(lines, "\n"))
	}
	t.Log(strings.Join(lines, "\n"))
}
