package ramdisk

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/ironwork/ironwork/internal/agent/initsys"
)

// kernelDir is the kernel scripts/kernel.sh unpacks, or a skip.
func kernelDir(t *testing.T) string {
	t.Helper()
	if k := os.Getenv("IRONWORK_TEST_KERNEL"); k != "" {
		return filepath.Dir(k)
	}
	dirs, _ := filepath.Glob("/var/cache/ironwork/kernel/*/vmlinuz")
	if len(dirs) == 0 {
		t.Skip("no kernel in /var/cache/ironwork/kernel (run scripts/kernel.sh)")
	}
	return filepath.Dir(dirs[len(dirs)-1])
}

// someELF is an executable to stand in for the agent: this test binary.
func someELF(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header name %q mtime %v, want none", zr.Name, zr.ModTime)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildRealKernel(t *testing.T) {
	kdir := kernelDir(t)
	agent := someELF(t)
	mods := append(DefaultModules(), "af_packet", "no_such_module")
	var outs []BuildResult
	for i := 0; i < 2; i++ {
		res, err := Build(context.Background(), BuildConfig{KernelDir: kdir, Agent: agent, Output: t.TempDir(), Modules: mods})
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, res)
	}
	a, b := outs[0], outs[1]
	t.Logf("kernel %s: %s %d bytes; initramfs %d bytes gzip'd, %d bytes cpio; %d modules; builtin %v; missing %v",
		a.KernelVersion, KernelName, a.KernelSize, a.InitramfsSize, a.CPIOSize, len(a.Modules), a.Builtin, a.Missing)
	for _, name := range []string{KernelName, InitramfsName} {
		x, _ := os.ReadFile(filepath.Join(filepath.Dir(a.InitramfsPath), name))
		y, _ := os.ReadFile(filepath.Join(filepath.Dir(b.InitramfsPath), name))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two builds (%d vs %d bytes)", name, len(x), len(y))
		}
	}
	if !slices.Equal(a.Missing, []string{"no_such_module"}) || !slices.Contains(a.Builtin, "af_packet") {
		t.Errorf("missing %v builtin %v", a.Missing, a.Builtin)
	}

	archive := gunzip(t, a.InitramfsPath)
	if int64(len(archive)) != a.CPIOSize {
		t.Errorf("CPIOSize %d, archive %d bytes", a.CPIOSize, len(archive))
	}
	modRoot := "lib/modules/" + a.KernelVersion + "/"
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Log("GNU cpio not installed: skipping cpio -t")
	} else {
		cmd := exec.Command("cpio", "-t", "--quiet")
		cmd.Stdin = bytes.NewReader(archive)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("cpio -t: %v", err)
		}
		listed := strings.Split(strings.TrimSpace(string(out)), "\n")
		want := []string{"init", "dev", "proc", "sys", "tmp", "run", modRoot + "modules.dep",
			modRoot + "kernel/drivers/net/virtio_net.ko", modRoot + "kernel/drivers/virtio/virtio_ring.ko",
			modRoot + "kernel/drivers/nvme/host/nvme-core.ko", modRoot + "kernel/drivers/scsi/sd_mod.ko"}
		for _, w := range want {
			if !slices.Contains(listed, w) {
				t.Errorf("cpio -t does not list %s", w)
			}
		}
		for _, m := range a.Modules {
			if !slices.Contains(listed, modRoot+m) {
				t.Errorf("module %s not in the archive", m)
			}
		}
		// Extract modules.dep and init with cpio and check them.
		x := t.TempDir()
		cmd = exec.Command("cpio", "-id", "--quiet", "init", modRoot+"modules.dep")
		cmd.Dir, cmd.Stdin = x, bytes.NewReader(archive)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cpio -id: %v %s", err, out)
		}
		initBin, _ := os.ReadFile(filepath.Join(x, "init"))
		self, _ := os.ReadFile(agent)
		if fi, err := os.Stat(filepath.Join(x, "init")); err != nil || fi.Mode().Perm() != 0o755 || !bytes.Equal(initBin, self) {
			t.Errorf("/init is not the agent with mode 0755")
		}
		f, _ := os.Open(filepath.Join(x, modRoot+"modules.dep"))
		deps, err := initsys.ParseModulesDep(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		order, err := deps.LoadOrder()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(order, a.Modules) {
			t.Errorf("load order of the shipped modules.dep\n%v\nwant\n%v", order, a.Modules)
		}
		if vn := deps["kernel/drivers/net/virtio_net.ko"]; !slices.Contains(vn, "kernel/drivers/virtio/virtio_ring.ko") {
			t.Errorf("virtio_net deps %v lack virtio_ring (transitive)", vn)
		}
	}
	// The device nodes follow the first archive's trailer.
	trailer := bytes.Index(archive, []byte("TRAILER!!!"))
	if trailer < 0 || !bytes.Contains(archive[trailer:], []byte("dev/console\x00")) || !bytes.Contains(archive[trailer:], []byte("dev/null\x00")) {
		t.Error("no /dev/console and /dev/null after the first archive")
	}
}

// TestBuildCompressedModules ships .ko.xz and .ko.zst modules decompressed, resolving
// dependencies from .modinfo (no modules.dep, like Debian's package).
func TestBuildCompressedModules(t *testing.T) {
	kdir := kernelDir(t)
	ver, modDir, err := findModuleDir(kdir)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := os.ReadFile(filepath.Join(modDir, "kernel/drivers/virtio/virtio_ring.ko"))
	if err != nil {
		t.Skipf("kernel without a plain virtio_ring.ko: %v", err)
	}
	virtio, err := os.ReadFile(filepath.Join(modDir, "kernel/drivers/virtio/virtio.ko"))
	if err != nil {
		t.Skip(err)
	}
	// Debian's 6.1 kernels differ: in some builds virtio.ko needs virtio_ring.ko, in others not.
	if deps, err := modinfoDepends(virtio); err != nil || !slices.Contains(deps, "virtio_ring") {
		t.Skipf("this kernel's virtio.ko does not depend on virtio_ring (depends %v, %v): nothing to resolve", deps, err)
	}
	fake := t.TempDir()
	fakeMods := filepath.Join(fake, "lib/modules", ver+"-test", "kernel/drivers/virtio")
	os.MkdirAll(fakeMods, 0o755)
	os.WriteFile(filepath.Join(fake, "vmlinuz"), []byte("not really a kernel"), 0o644)
	var xzBuf bytes.Buffer
	xw, _ := xz.NewWriter(&xzBuf)
	xw.Write(ring)
	xw.Close()
	os.WriteFile(filepath.Join(fakeMods, "virtio_ring.ko.xz"), xzBuf.Bytes(), 0o644)
	zw, _ := zstd.NewWriter(nil)
	os.WriteFile(filepath.Join(fakeMods, "virtio.ko.zst"), zw.EncodeAll(virtio, nil), 0o644)

	res, err := Build(context.Background(), BuildConfig{KernelDir: fake, Agent: someELF(t), Output: t.TempDir(), Modules: []string{"virtio"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko"}; !slices.Equal(res.Modules, want) {
		t.Fatalf("modules %v, want %v", res.Modules, want)
	}
	archive := gunzip(t, res.InitramfsPath)
	for _, m := range [][]byte{ring, virtio} {
		if !bytes.Contains(archive, m) {
			t.Error("a module is not in the archive decompressed")
		}
	}
}

func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "agent.sh")
	os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755)
	if _, err := Build(context.Background(), BuildConfig{KernelDir: dir, Agent: notELF, Output: dir}); err == nil || !strings.Contains(err.Error(), "not an ELF") {
		t.Errorf("shell script agent: %v", err)
	}
	if _, err := Build(context.Background(), BuildConfig{KernelDir: dir, Agent: someELF(t), Output: dir}); err == nil || !strings.Contains(err.Error(), "lib/modules") {
		t.Errorf("no modules dir: %v", err)
	}
}
