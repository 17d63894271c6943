package ramdisk

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBuildRescue builds the deploy and the rescue ramdisk from the same inputs: the rescue
// one adds a static busybox (and /bin/sh), the filesystem modules and, when given, dropbear
// with its libraries and loader, which run in a chroot of the unpacked archive; the deploy
// one has none of them.
func TestBuildRescue(t *testing.T) {
	kdir := kernelDir(t)
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("GNU cpio is needed to unpack the archives")
	}
	bb, err := readStatic(DefaultBusybox)
	if err != nil || len(bb) == 0 {
		t.Skipf("no static busybox (Debian package busybox-static): %v", err)
	}
	dropbear := ""
	if _, err := os.Stat(DefaultDropbear); err == nil {
		dropbear = DefaultDropbear
	}
	out := t.TempDir()
	deploy, err := Build(context.Background(), BuildConfig{KernelDir: kdir, Agent: someELF(t), Output: out})
	if err != nil {
		t.Fatal(err)
	}
	rescue, err := Build(context.Background(), BuildConfig{KernelDir: kdir, Agent: someELF(t), Output: out, Rescue: true, Dropbear: dropbear})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("deploy %s: %d bytes gzip'd, %d modules; rescue %s: %d bytes gzip'd, %d modules (dropbear %q)",
		filepath.Base(deploy.InitramfsPath), deploy.InitramfsSize, len(deploy.Modules),
		filepath.Base(rescue.InitramfsPath), rescue.InitramfsSize, len(rescue.Modules), dropbear)
	if filepath.Base(rescue.InitramfsPath) != RescueInitramfsName || filepath.Base(rescue.KernelPath) != RescueKernelName {
		t.Errorf("rescue files %s %s", rescue.KernelPath, rescue.InitramfsPath)
	}
	unpack := func(path string) string {
		dir := t.TempDir()
		cmd := exec.Command("cpio", "-id", "--quiet")
		cmd.Dir, cmd.Stdin = dir, bytes.NewReader(gunzip(t, path))
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cpio -id: %v %s", err, b)
		}
		return dir
	}
	d, r := unpack(deploy.InitramfsPath), unpack(rescue.InitramfsPath)
	for _, p := range []string{"bin/busybox", "bin/sh", "usr/sbin/dropbear"} {
		if _, err := os.Lstat(filepath.Join(d, p)); err == nil {
			t.Errorf("the deploy ramdisk has %s", p)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(r, "bin/busybox")); !bytes.Equal(got, bb) {
		t.Error("the rescue ramdisk's /bin/busybox is not the static busybox")
	}
	if l, err := os.Readlink(filepath.Join(r, "bin/sh")); err != nil || l != "busybox" {
		t.Errorf("/bin/sh -> %q (%v)", l, err)
	}
	for _, m := range []string{"vfat", "nls_ascii", "ext4"} {
		if !slices.ContainsFunc(rescue.Modules, func(p string) bool { return strings.HasSuffix(p, "/"+m+".ko") }) {
			t.Errorf("the rescue ramdisk lacks module %s: %v", m, rescue.Modules)
		}
	}
	if os.Geteuid() != 0 {
		t.Log("not root: the chroot checks are skipped")
		return
	}
	if b, err := exec.Command("chroot", r, "/bin/sh", "-c", "echo from-busybox-sh").CombinedOutput(); err != nil || string(b) != "from-busybox-sh\n" {
		t.Errorf("chroot /bin/sh: %q %v", b, err)
	}
	if dropbear != "" {
		if b, err := exec.Command("chroot", r, "/usr/sbin/dropbear", "-V").CombinedOutput(); err != nil || !bytes.Contains(b, []byte("Dropbear")) {
			t.Errorf("dropbear does not run from the rescue ramdisk (its libraries or loader are missing): %q %v", b, err)
		}
	}
	// A dynamically linked busybox is refused: the ramdisk has no loader for it.
	if _, err := Build(context.Background(), BuildConfig{KernelDir: kdir, Agent: someELF(t), Output: t.TempDir(), Rescue: true,
		Busybox: "/usr/bin/env"}); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("a dynamic busybox: %v", err)
	}
}
