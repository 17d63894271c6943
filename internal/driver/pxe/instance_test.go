package pxe_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/pxe"
)

// TestRamdiskInstanceBoot: with the ramdisk deploy interface, PrepareInstance links the
// instance's kernel and ramdisk (or ISO) from the image cache and every script boots them,
// without the agent's parameters; CleanUpInstance removes them.
func TestRamdiskInstanceBoot(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	kernel := writeFile(t, filepath.Join(f.dir, "live.vmlinuz"), "LIVE-KERNEL")
	initrd := writeFile(t, filepath.Join(f.dir, "live.initrd"), "LIVE-RAMDISK")
	iso := writeFile(t, filepath.Join(f.dir, "live.iso"), "LIVE-ISO")
	for _, c := range []struct {
		name, iface, mac string
		ii               ironwork.JSONObject
		files            map[string]string
		want             []string
	}{
		{"kernel and ramdisk over iPXE", pxe.IPXE, "52:54:00:00:01:01",
			ironwork.JSONObject{"kernel": kernel, "ramdisk": "file://" + initrd, "ramdisk_kernel_arguments": "console=ttyS0 live=1"},
			map[string]string{"kernel": "LIVE-KERNEL", "ramdisk": "LIVE-RAMDISK"},
			[]string{"boots its instance ramdisk", "kernel --name kernel http://10.0.0.1:8080/nodes/", "initrd=ramdisk BOOTIF=01-52-54-00-00-01-01 console=ttyS0 live=1"}},
		{"kernel and ramdisk over TFTP", pxe.PXE, "52:54:00:00:01:02",
			ironwork.JSONObject{"kernel": kernel, "ramdisk": initrd},
			map[string]string{"kernel": "LIVE-KERNEL", "ramdisk": "LIVE-RAMDISK"},
			[]string{"kernel --name kernel tftp://10.0.0.1/nodes/"}},
		{"ISO over iPXE", pxe.IPXE, "52:54:00:00:01:03",
			ironwork.JSONObject{"boot_iso": iso},
			map[string]string{"boot.iso": "LIVE-ISO"},
			[]string{"sanboot --no-describe http://10.0.0.1:8080/nodes/"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := &ironwork.Node{Name: strings.ReplaceAll(c.name, " ", "-"), Driver: "fake-hardware", ProvisionState: ironwork.Deploying,
				InstanceInfo: c.ii, Interfaces: map[ironwork.InterfaceKind]string{ironwork.BootInterface: c.iface, ironwork.DeployInterface: pxe.RamdiskDeploy}}
			if err := ironwork.DefaultDriverConfig().ResolveInterfaces(n); err != nil {
				t.Fatal(err)
			}
			if err := f.store.CreateNode(ctx, n); err != nil {
				t.Fatal(err)
			}
			if err := f.store.CreatePort(ctx, &ironwork.Port{Address: c.mac, NodeUUID: n.UUID, PXEEnabled: true}); err != nil {
				t.Fatal(err)
			}
			if err := f.with(t, n.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.PrepareInstance(ctx, tk) }); err != nil {
				t.Fatal(err)
			}
			dir := pxe.NodeDir(f.cfg.Root, n.UUID)
			for name, want := range c.files {
				if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
					t.Fatalf("%s: %q, %v", name, b, err)
				}
			}
			s := f.script(t, c.mac)
			for _, w := range c.want {
				if !strings.Contains(s, w) {
					t.Errorf("script lacks %q:\n%s", w, s)
				}
			}
			if strings.Contains(s, "ipa-api-url") {
				t.Errorf("the instance is told about the agent:\n%s", s)
			}
			if err := f.with(t, n.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.CleanUpInstance(ctx, tk) }); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("instance files left: %v", err)
			}
			if s := f.script(t, c.mac); !strings.Contains(s, "not meant to network-boot") {
				t.Fatalf("script after clean-up: %s", s)
			}
		})
	}
}

func TestValidateRamdiskInstance(t *testing.T) {
	dir := t.TempDir()
	k := filepath.Join(dir, "k")
	os.WriteFile(k, []byte("k"), 0o644)
	for _, c := range []struct {
		ii    ironwork.JSONObject
		iface string
		want  string
	}{
		{ironwork.JSONObject{"kernel": k, "ramdisk": k}, pxe.IPXE, ""},
		{ironwork.JSONObject{"boot_iso": "http://x/live.iso"}, pxe.IPXE, ""},
		{ironwork.JSONObject{"kernel": k}, pxe.IPXE, "needs instance_info.kernel and instance_info.ramdisk"},
		{ironwork.JSONObject{}, pxe.PXE, "needs instance_info.kernel"},
		{ironwork.JSONObject{"boot_iso": "http://x/live.iso"}, pxe.PXE, "use the ipxe boot interface"},
		{ironwork.JSONObject{"boot_iso": "http://x/live.iso", "kernel": k}, pxe.IPXE, "exclude each other"},
		{ironwork.JSONObject{"kernel": "/etc/passwd", "ramdisk": k}, pxe.IPXE, "outside the directories"},
		{ironwork.JSONObject{"kernel": k, "ramdisk": k, "ramdisk_kernel_arguments": "a\nchain http://evil"}, pxe.IPXE, "one line"},
	} {
		err := pxe.ValidateRamdiskInstance(&ironwork.Node{InstanceInfo: c.ii}, []string{dir}, c.iface)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%v on %s: %v, want %q", c.ii, c.iface, err, c.want)
		}
	}
}
