package ramdisk

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// arm64Kernel is the arm64 kernel scripts/kernel.sh arm64 unpacked, or the test skips.
func arm64Kernel(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/var/cache/ironwork/kernel-arm64/*/vmlinuz")
	if len(dirs) == 0 {
		t.Skip("no arm64 kernel: run scripts/kernel.sh arm64")
	}
	return filepath.Dir(dirs[len(dirs)-1])
}

// An arm64 ramdisk: the agent must be an arm64 executable and the kernel an arm64 Image; the
// arm64 module set (virtio, the PL031 RTC) goes in, and none of the build host's disk tools.
func TestBuildARM64(t *testing.T) {
	if runtime.GOARCH != AMD64 {
		t.Skip("checks a cross build from amd64")
	}
	kdir := arm64Kernel(t)
	ctx := context.Background()
	_, err := Build(ctx, BuildConfig{KernelDir: kdir, Agent: someELF(t), Output: t.TempDir(), Arch: ARM64})
	if err == nil || !strings.Contains(err.Error(), "GOARCH=arm64") {
		t.Errorf("an x86-64 agent in an arm64 ramdisk: %v", err)
	}
	if _, err := Build(ctx, BuildConfig{KernelDir: kdir, Agent: someELF(t), Output: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "is an arm64 kernel, not amd64") {
		t.Errorf("an arm64 kernel in an amd64 ramdisk: %v", err)
	}
	if _, err := Build(ctx, BuildConfig{KernelDir: kdir, Agent: someELF(t), Output: t.TempDir(), Arch: "riscv64"}); err == nil {
		t.Error("an unknown architecture was accepted")
	}

	// A real arm64 executable: a tiny Go program cross-compiled.
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module tiny\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	agent := filepath.Join(src, "tiny")
	cmd := exec.Command("go", "build", "-o", agent, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot cross-compile for arm64 here: %v: %s", err, out)
	}
	out := t.TempDir()
	res, err := Build(ctx, BuildConfig{KernelDir: kdir, Agent: agent, Output: out, Arch: ARM64})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(res.KernelVersion, "-arm64") {
		t.Errorf("kernel version %q", res.KernelVersion)
	}
	if len(res.Tools) != 0 {
		t.Errorf("host disk tools in an arm64 ramdisk: %v", res.Tools)
	}
	for _, m := range []string{"virtio_net", "virtio_blk", "virtio_pci"} {
		if !slices.ContainsFunc(res.Modules, func(p string) bool { return strings.HasSuffix(p, "/"+m+".ko") }) {
			t.Errorf("module %s missing from %v", m, res.Modules)
		}
	}
	if slices.Contains(res.Missing, "ata_piix") {
		t.Error("the x86-only ata_piix was asked for in an arm64 ramdisk")
	}
	t.Logf("arm64 ramdisk: kernel %s, %d modules, initramfs %d bytes gzip'd, built-in %v, missing %v",
		res.KernelVersion, len(res.Modules), res.InitramfsSize, res.Builtin, res.Missing)
}
