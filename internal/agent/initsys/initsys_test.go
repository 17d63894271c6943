package initsys

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCmdline(t *testing.T) {
	got := ParseCmdline(`initrd=ramdisk BOOTIF=01-52-54-00-aa-bb-cc ipa-api-url=http://10.98.0.1:6385 ` +
		`ironwork-node=6f1a ironwork-boot-mode=uefi console=tty0 console=ttyS0,115200n8 quiet ` +
		`ipa-debug=1 msg="hello world" empty=` + "\n")
	want := map[string]string{
		"initrd": "ramdisk", "BOOTIF": "01-52-54-00-aa-bb-cc", "ipa-api-url": "http://10.98.0.1:6385",
		"ironwork-node": "6f1a", "ironwork-boot-mode": "uefi", "console": "ttyS0,115200n8", "quiet": "",
		"ipa-debug": "1", "msg": "hello world", "empty": "",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ParseCmdline (-want +got):\n%s", d)
	}
	if got := ParseCmdline("   "); len(got) != 0 {
		t.Errorf("blank line: %v", got)
	}
}

func TestBootMAC(t *testing.T) {
	for in, want := range map[string]string{
		"01-52-54-00-AA-bb-cc": "52:54:00:aa:bb:cc",
		"52-54-00-aa-bb-cc":    "52:54:00:aa:bb:cc",
		"01-52-54-00-aa":       "",
		"01-52-54-00-aa-bb-zz": "",
		"":                     "",
	} {
		if got := BootMAC(in); got != want {
			t.Errorf("BootMAC(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/nvme/host/nvme-core.ko":    "nvme_core",
		"kernel/drivers/net/virtio_net.ko.xz":      "virtio_net",
		"kernel/drivers/scsi/sd_mod.ko.zst":        "sd_mod",
		"kernel/drivers/net/ethernet/intel/igb.ko": "igb",
	} {
		if got := ModuleName(in); got != want {
			t.Errorf("ModuleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadOrder(t *testing.T) {
	dep := `kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
`
	deps, err := ParseModulesDep(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	order, err := deps.LoadOrder()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko", "kernel/drivers/block/virtio_blk.ko",
		"kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko", "kernel/drivers/net/virtio_net.ko",
	}
	if d := cmp.Diff(want, order); d != "" {
		t.Errorf("LoadOrder (-want +got):\n%s", d)
	}
	checkOrder(t, deps, order)

	cyclic, _ := ParseModulesDep(strings.NewReader("a.ko: b.ko\nb.ko: a.ko\n"))
	if _, err := cyclic.LoadOrder(); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: err = %v", err)
	}
	if _, err := ParseModulesDep(strings.NewReader("no colon here\n")); err == nil {
		t.Error("line without colon accepted")
	}
}

// checkOrder asserts every module comes after all of its dependencies and appears once.
func checkOrder(t *testing.T, deps ModuleDeps, order []string) {
	t.Helper()
	pos := map[string]int{}
	for i, m := range order {
		if _, dup := pos[m]; dup {
			t.Fatalf("%s twice in the load order", m)
		}
		pos[m] = i
	}
	for m, ds := range deps {
		for _, d := range ds {
			if pos[d] >= pos[m] {
				t.Errorf("%s (at %d) loads before its dependency %s (at %d)", m, pos[m], d, pos[d])
			}
		}
	}
}

// TestRealModulesDep orders the modules.dep of the kernel scripts/kernel.sh unpacks (Debian's
// package ships none: depmod writes it at install; then the ramdisk test covers the one we
// generate), and of the running system when present.
func TestRealModulesDep(t *testing.T) {
	files, _ := filepath.Glob("/var/cache/ironwork/kernel/*/lib/modules/*/modules.dep")
	if rel, err := KernelRelease(); err == nil {
		if _, err := os.Stat(filepath.Join("/lib/modules", rel, "modules.dep")); err == nil {
			files = append(files, filepath.Join("/lib/modules", rel, "modules.dep"))
		}
	}
	if len(files) == 0 {
		t.Skip("no modules.dep in /var/cache/ironwork/kernel/*/lib/modules/*/ or /lib/modules/$(uname -r) (the ramdisk build test checks the generated one)")
	}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		deps, err := ParseModulesDep(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		order, err := deps.LoadOrder()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		checkOrder(t, deps, order)
		t.Logf("%s: %d modules ordered", file, len(order))
	}
}

func FuzzParseCmdline(f *testing.F) {
	f.Add(`a=b "c=d e" f`)
	f.Add(`BOOTIF=01-52-54-00-aa-bb-cc ipa-api-url="http://x"`)
	f.Fuzz(func(t *testing.T, s string) {
		for k := range ParseCmdline(s) {
			// Whitespace in a key only comes from quotes, as in the kernel's parser.
			if k == "" || (!strings.Contains(s, `"`) && strings.ContainsAny(k, " \t\n\r")) {
				t.Fatalf("bad key %q from %q", k, s)
			}
		}
		_ = BootMAC(s)
	})
}

func FuzzModulesDep(f *testing.F) {
	f.Add("a.ko: b.ko c.ko\nb.ko: c.ko\nc.ko:\n")
	f.Add("a.ko: a.ko\n")
	f.Add("# comment\n\nx.ko.xz:\n")
	f.Fuzz(func(t *testing.T, s string) {
		deps, err := ParseModulesDep(strings.NewReader(s))
		if err != nil {
			return
		}
		order, err := deps.LoadOrder()
		if err != nil {
			return
		}
		checkOrder(t, deps, order)
	})
}
