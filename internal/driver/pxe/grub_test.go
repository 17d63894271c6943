package pxe_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/pxe"
)

// An arm64 node without a deploy kernel of its own gets the conductor's for its cpu_arch
// (arm64 spelled either way), its GRUB configuration loads them over HTTP, and a node of an
// architecture the conductor has none for fails validation naming it.
func TestDeployRamdiskByArchAndGrubConfig(t *testing.T) {
	ctx := context.Background()
	f := newFixtureWith(t, func(dir string, c *pxe.Config) {
		for name, body := range map[string]string{"arm64.kernel": "ARM64-KERNEL", "arm64.initrd": "ARM64-RAMDISK", "x86.kernel": "X86"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		c.DeployKernelByArch = pxe.NormalizeArchKeys(map[string]string{"arm64": filepath.Join(dir, "arm64.kernel"), "x86_64": filepath.Join(dir, "x86.kernel")})
		c.DeployRamdiskByArch = pxe.NormalizeArchKeys(map[string]string{"aarch64": filepath.Join(dir, "arm64.initrd"), "x86_64": filepath.Join(dir, "x86.kernel")})
	})
	mac := "52:54:00:00:0a:01"
	n := f.node(t, "arm", pxe.IPXE, ironwork.JSONObject{"cpu_arch": "arm64"}, ironwork.JSONObject{"kernel_append_params": "console=ttyAMA0 it's"}, mac)
	if g, err := f.res.GrubConfig(ctx, mac); err != nil || !strings.Contains(g, "not meant to network-boot") || !strings.Contains(g, "exit") {
		t.Fatalf("GRUB configuration before prepare: %q %v", g, err)
	}
	if err := f.with(t, n.UUID, func(b conductor.Boot, tk *conductor.Task) error {
		if err := b.(conductor.Validator).Validate(ctx, tk); err != nil {
			return err
		}
		return b.PrepareRamdisk(ctx, tk)
	}); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"kernel": "ARM64-KERNEL", "ramdisk": "ARM64-RAMDISK"} {
		if b, err := os.ReadFile(filepath.Join(pxe.NodeDir(f.cfg.Root, n.UUID), file)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want the arm64 one", file, b, err)
		}
	}
	g, err := f.res.GrubConfig(ctx, "52-54-00-00-0A-01")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"if linux (http,10.0.0.1:8080)/nodes/" + n.UUID + "/kernel 'BOOTIF=01-52-54-00-00-0a-01'",
		"'ipa-api-url=http://10.0.0.1:6385'", "'ironwork-node=" + n.UUID + "'", "'console=ttyS0' 'console=ttyAMA0' 'it'\\''s'",
		"if initrd (http,10.0.0.1:8080)/nodes/" + n.UUID + "/ramdisk", "boot", "reboot"} {
		if !strings.Contains(g, want) {
			t.Errorf("GRUB configuration lacks %q:\n%s", want, g)
		}
	}
	if strings.Contains(g, "initrd=ramdisk") {
		t.Errorf("GRUB configuration has iPXE's initrd= parameter:\n%s", g)
	}
	if err := f.with(t, n.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.PrepareInstance(ctx, tk) }); err != nil {
		t.Fatal(err)
	}
	if g, _ := f.res.GrubConfig(ctx, mac); !strings.Contains(g, "boots from its local disk") || !strings.HasSuffix(g, "exit\n") {
		t.Errorf("GRUB local boot: %q", g)
	}
	if g, _ := f.res.GrubConfig(ctx, "52:54:00:00:0f:0f"); !strings.Contains(g, "no node has a port") {
		t.Errorf("GRUB configuration of an unknown MAC: %q", g)
	}

	other := f.node(t, "riscv", pxe.IPXE, ironwork.JSONObject{"cpu_arch": "riscv64"}, nil, "52:54:00:00:0a:02")
	err = f.with(t, other.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.(conductor.Validator).Validate(ctx, tk) })
	if err == nil || !strings.Contains(err.Error(), "deploy_kernel, deploy_ramdisk") || !strings.Contains(err.Error(), `"riscv64"`) {
		t.Errorf("validate a node of an architecture without a deploy ramdisk: %v", err)
	}

	menu, err := f.res.GrubMenu()
	if err != nil || !strings.Contains(menu, "configfile (http,10.0.0.1:8080)/boot/${net_default_mac}.grub") {
		t.Errorf("GRUB menu: %q %v", menu, err)
	}
}
