package testimage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildPartition builds the partition image and reads it back with debugfs: the
// kernel, initramfs, grub.cfg, grub-install with its modules and the EFI GRUB are there,
// and blkid sees ext4 with the fixed UUID.
func TestBuildPartition(t *testing.T) {
	kernel := os.Getenv("IRONWORK_TEST_KERNEL")
	if kernel == "" {
		t.Skip("IRONWORK_TEST_KERNEL is not set (scripts/kernel.sh)")
	}
	for _, tool := range []string{"mkfs.ext4", "debugfs", "blkid", "grub-mkimage", "ldd", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if _, err := os.Stat(hostGRUBInstall); err != nil {
		t.Skip("grub-install not installed (grub-common)")
	}
	dir := t.TempDir()
	p, err := BuildPartition(context.Background(), filepath.Join(dir, "out"), Options{KernelDir: filepath.Dir(kernel), WorkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("blkid", "-p", "-o", "export", p.Image).Output()
	if err != nil || !strings.Contains(string(out), "TYPE=ext4") || !strings.Contains(string(out), "UUID="+PartitionRootUUID) {
		t.Fatalf("blkid: %s %v", out, err)
	}
	for _, f := range []string{"/boot/vmlinuz", "/boot/initrd.img", "/boot/grub/grub.cfg", "/usr/sbin/grub-install",
		"/usr/lib/grub/i386-pc/normal.mod", "/usr/lib/grub/i386-pc/boot.img", "/boot/efi/EFI/ironwork/grubx64.efi", "/lib64/ld-linux-x86-64.so.2"} {
		out, err := exec.Command("debugfs", "-R", "stat "+f, p.Image).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Type: regular") {
			t.Errorf("%s not in the image: %s", f, out)
		}
	}
	for _, f := range []string{p.Kernel, p.Initramfs} {
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	out, _ = exec.Command("debugfs", "-R", "stats", p.Image).CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Free blocks:") || strings.HasPrefix(l, "Block count:") {
			t.Log(l)
		}
	}
}
