package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRamdiskBuildCommand(t *testing.T) {
	kernels, _ := filepath.Glob("/var/cache/ironwork/kernel/*/vmlinuz")
	if len(kernels) == 0 {
		t.Skip("no kernel in /var/cache/ironwork/kernel (run scripts/kernel.sh)")
	}
	agent, err := os.Executable() // any ELF stands in for the agent
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"ramdisk", "build", "--kernel-dir", filepath.Dir(kernels[0]), "--agent", agent,
		"--output", out, "--modules", "virtio_net,virtio_blk,af_packet,no_such_driver"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"ironwork-deploy.kernel\t", "ironwork-deploy.initramfs\t", "MiB gzip'd", "modules: 6 included",
		"built into the kernel: af_packet", "not in this kernel (skipped): no_such_driver"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	for _, f := range []string{"ironwork-deploy.kernel", "ironwork-deploy.initramfs"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if code := run(context.Background(), []string{"ramdisk", "build", "--output", out}, &stdout, &stderr); code != 2 {
		t.Errorf("missing --kernel-dir: exit %d", code)
	}
}

// --arch: an unknown architecture is a usage error; an arm64 build with an x86-64 agent fails
// saying how to build the right one, and writes nothing.
func TestRamdiskBuildArch(t *testing.T) {
	kernels, _ := filepath.Glob("/var/cache/ironwork/kernel-arm64/*/vmlinuz")
	if len(kernels) == 0 {
		t.Skip("no arm64 kernel (run scripts/kernel.sh arm64)")
	}
	agent, err := os.Executable() // this test binary: an x86-64 ELF
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"ramdisk", "build", "--arch", "mips", "--kernel-dir", filepath.Dir(kernels[0]),
		"--agent", agent, "--output", out}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "want one of amd64, arm64") {
		t.Errorf("--arch mips: exit %d: %s", code, stderr.String())
	}
	stderr.Reset()
	code := run(context.Background(), []string{"ramdisk", "build", "--arch", "arm64", "--kernel-dir", filepath.Dir(kernels[0]),
		"--agent", agent, "--output", out}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "GOARCH=arm64") {
		t.Errorf("x86-64 agent in an arm64 ramdisk: exit %d: %s", code, stderr.String())
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("files written by a failed build: %v", entries)
	}
}
