package pxe_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/fake"
	"github.com/ironwork/ironwork/internal/driver/pxe"
	"github.com/ironwork/ironwork/internal/image"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

type linker struct{ c *image.Cache }

func (l linker) Link(ctx context.Context, url, checksum, dest string) error {
	return l.c.Link(ctx, image.Source{URL: url, Checksum: checksum}, dest)
}

type fixture struct {
	store *sqlstore.Store
	cond  *conductor.Conductor
	cfg   pxe.Config
	res   *pxe.Resolver
	dir   string
}

// newFixture runs a conductor on SQLite whose boot interfaces are the real ones, with the
// real image cache, and fake power and management.
func newFixture(t *testing.T) *fixture { t.Helper(); return newFixtureWith(t, nil) }

// newFixtureWith is newFixture with mod applied to the boot interfaces' configuration.
func newFixtureWith(t *testing.T, mod func(dir string, c *pxe.Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(dir, "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cache, err := image.New(image.Config{Dir: filepath.Join(dir, "images"), AllowUnverified: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := pxe.Config{Root: filepath.Join(dir, "boot"), HTTPURL: "http://10.0.0.1:8080", TFTPServer: "10.0.0.1",
		APIURL: "http://10.0.0.1:6385", KernelParams: "console=ttyS0", DefaultBootMode: pxe.UEFI, FileDirs: []string{dir}}
	if mod != nil {
		mod(dir, &cfg)
	}
	reg := conductor.Registry{}
	fake.Register(reg)
	for _, name := range []string{pxe.IPXE, pxe.PXE, pxe.HTTP} {
		b, err := pxe.New(name, cfg, linker{cache}, nil)
		if err != nil {
			t.Fatal(err)
		}
		reg.Add(ironwork.BootInterface, name, b)
	}
	if err := store.RegisterConductor(ctx, &ironwork.Conductor{Hostname: "c1", Drivers: []string{"fake-hardware"}}); err != nil {
		t.Fatal(err)
	}
	cond := conductor.New(conductor.Config{Hostname: "c1"}, store, ironwork.DefaultDriverConfig(), reg, nil)
	return &fixture{store: store, cond: cond, cfg: cfg, res: &pxe.Resolver{Nodes: store, Cfg: cfg}, dir: dir}
}

func (f *fixture) node(t *testing.T, name, boot string, props, info ironwork.JSONObject, mac string) *ironwork.Node {
	t.Helper()
	ctx := context.Background()
	n := &ironwork.Node{Name: name, Driver: "fake-hardware", ProvisionState: ironwork.Manageable, Properties: props, DriverInfo: info,
		Interfaces: map[ironwork.InterfaceKind]string{ironwork.BootInterface: boot}}
	if err := ironwork.DefaultDriverConfig().ResolveInterfaces(n); err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateNode(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreatePort(ctx, &ironwork.Port{Address: mac, NodeUUID: n.UUID, PXEEnabled: true}); err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) with(t *testing.T, uuid string, fn func(conductor.Boot, *conductor.Task) error) error {
	t.Helper()
	return f.cond.WithNode(context.Background(), uuid, func(tk *conductor.Task) error {
		return fn(tk.Driver.Impl(ironwork.BootInterface).(conductor.Boot), tk)
	})
}

func (f *fixture) script(t *testing.T, mac string) string {
	t.Helper()
	s, err := f.res.Script(context.Background(), mac)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRamdiskAndInstanceBoot(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	kernel := writeFile(t, filepath.Join(f.dir, "vmlinuz"), "KERNEL")
	initrd := writeFile(t, filepath.Join(f.dir, "initrd"), "RAMDISK")
	n := f.node(t, "n1", pxe.IPXE, ironwork.JSONObject{"capabilities": "boot_mode:bios,cpu_arch:x86_64"},
		ironwork.JSONObject{"deploy_kernel": kernel, "deploy_ramdisk": "file://" + initrd, "kernel_append_params": "ipa-debug=1"},
		"52:54:00:00:00:01")

	if s := f.script(t, "52:54:00:00:00:01"); !strings.Contains(s, "not meant to network-boot") {
		t.Fatalf("script before prepare: %s", s)
	}
	if err := f.with(t, n.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.PrepareRamdisk(ctx, tk) }); err != nil {
		t.Fatal(err)
	}
	nodeDir := pxe.NodeDir(f.cfg.Root, n.UUID)
	for file, want := range map[string]string{"kernel": "KERNEL", "ramdisk": "RAMDISK"} {
		b, err := os.ReadFile(filepath.Join(nodeDir, file))
		if err != nil || string(b) != want {
			t.Fatalf("%s: %q %v", file, b, err)
		}
		st, _ := os.Stat(filepath.Join(nodeDir, file))
		if st.Sys().(*syscall.Stat_t).Nlink < 2 {
			t.Errorf("%s is not a hard link of the cached master", file)
		}
	}
	got, _ := f.store.GetNode(ctx, n.UUID)
	if got.DriverInternalInfo["fake_boot_device"] != "pxe" {
		t.Errorf("boot device after prepare: %v", got.DriverInternalInfo)
	}
	s := f.script(t, "52:54:00:00:00:01")
	for _, want := range []string{"#!ipxe", "kernel --name kernel http://10.0.0.1:8080/nodes/" + n.UUID + "/kernel initrd=ramdisk",
		"BOOTIF=01-52-54-00-00-00-01", "ipa-api-url=http://10.0.0.1:6385", "ironwork-boot-mode=bios", "console=ttyS0", "ipa-debug=1",
		"initrd --name ramdisk http://10.0.0.1:8080/nodes/" + n.UUID + "/ramdisk", "boot ||", "reboot"} {
		if !strings.Contains(s, want) {
			t.Errorf("ramdisk script lacks %q:\n%s", want, s)
		}
	}
	target, err := f.res.Lookup(ctx, "52:54:00:00:00:01")
	if err != nil || !target.Known || !target.NetBoot || target.Node != n.UUID {
		t.Fatalf("lookup while the ramdisk is prepared: %+v %v", target, err)
	}

	if err := f.with(t, n.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.CleanUpRamdisk(ctx, tk) }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(nodeDir); !os.IsNotExist(err) {
		t.Errorf("node directory left after clean up: %v", err)
	}
	if target, _ := f.res.Lookup(ctx, "52:54:00:00:00:01"); target.NetBoot {
		t.Error("node still network-boots after clean up")
	}

	if err := f.with(t, n.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.PrepareInstance(ctx, tk) }); err != nil {
		t.Fatal(err)
	}
	got, _ = f.store.GetNode(ctx, n.UUID)
	if got.DriverInternalInfo["fake_boot_device"] != "disk" || got.DriverInternalInfo["fake_boot_device_persistent"] != true {
		t.Errorf("boot device after prepare instance: %v", got.DriverInternalInfo)
	}
	if s := f.script(t, "52:54:00:00:00:01"); !strings.Contains(s, "sanboot --no-describe --drive 0x80") {
		t.Errorf("BIOS local boot script: %s", s)
	}
}

func TestPXEInterfaceUsesTFTPAndUEFILocalBootExits(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	kernel := writeFile(t, filepath.Join(f.dir, "k"), "K")
	n := f.node(t, "n2", pxe.PXE, nil, ironwork.JSONObject{"deploy_kernel": kernel, "deploy_ramdisk": kernel}, "52:54:00:00:00:02")
	if err := f.with(t, n.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.PrepareRamdisk(ctx, tk) }); err != nil {
		t.Fatal(err)
	}
	s := f.script(t, "52-54-00-00-00-02")
	if !strings.Contains(s, "tftp://10.0.0.1/nodes/"+n.UUID+"/kernel") || !strings.Contains(s, "ironwork-boot-mode=uefi") {
		t.Errorf("pxe interface script: %s", s)
	}
	if err := f.with(t, n.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.PrepareInstance(ctx, tk) }); err != nil {
		t.Fatal(err)
	}
	if s := f.script(t, "52:54:00:00:00:02"); !strings.Contains(s, "exit 1") || strings.Contains(s, "sanboot") {
		t.Errorf("UEFI local boot script: %s", s)
	}
	if s := f.script(t, "52:54:00:ff:ff:ff"); !strings.Contains(s, "no node has a port") {
		t.Errorf("unknown MAC script: %s", s)
	}
}

func TestValidateAndPrepareErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	n := f.node(t, "n3", pxe.IPXE, nil, ironwork.JSONObject{"deploy_kernel": "http://127.0.0.1:1/none"}, "52:54:00:00:00:03")
	h := f.node(t, "n4", pxe.HTTP, ironwork.JSONObject{"capabilities": "boot_mode:bios"},
		ironwork.JSONObject{"deploy_kernel": "/k", "deploy_ramdisk": "/r"}, "52:54:00:00:00:04")
	err := f.with(t, n.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.(conductor.Validator).Validate(ctx, tk) })
	if err == nil || !strings.Contains(err.Error(), "deploy_ramdisk") || strings.Contains(err.Error(), "deploy_kernel,") {
		t.Errorf("validate without deploy_ramdisk: %v", err)
	}
	err = f.with(t, h.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.(conductor.Validator).Validate(ctx, tk) })
	if err == nil || !strings.Contains(err.Error(), "UEFI") {
		t.Errorf("validate http boot in BIOS mode: %v", err)
	}
	err = f.with(t, h.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.PrepareRamdisk(ctx, tk) })
	if err == nil || !strings.Contains(err.Error(), "deploy_kernel") {
		t.Errorf("prepare with a kernel that does not exist: %v", err)
	}
	if target, _ := f.res.Lookup(ctx, "52:54:00:00:00:04"); target.NetBoot {
		t.Error("a failed prepare left the node network-booting")
	}
	// A local file outside the allowed directories is refused: boot files are served to
	// anyone on the provisioning network.
	outside := f.node(t, "n5", pxe.IPXE, nil, ironwork.JSONObject{"deploy_kernel": "/etc/passwd", "deploy_ramdisk": "file:///etc/hostname"},
		"52:54:00:00:00:05")
	err = f.with(t, outside.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.PrepareRamdisk(ctx, tk) })
	if err == nil || !strings.Contains(err.Error(), "outside the directories") {
		t.Errorf("prepare with /etc/passwd as kernel: %v", err)
	}
	if _, err := os.Stat(filepath.Join(pxe.NodeDir(f.cfg.Root, outside.UUID), "kernel")); err == nil {
		t.Error("a file from outside the allowed directories landed in the boot root")
	}
}

// A deployed node's ports answer with their tenant VIF, their own or their portgroup's, and
// do not network-boot.
func TestLookupTenantVIF(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	n := f.node(t, "tenant", "ipxe", nil, nil, "52:54:00:00:07:01")
	g := &ironwork.Portgroup{NodeUUID: n.UUID, Name: "bond0", Address: "52:54:00:00:07:10",
		InternalInfo: ironwork.JSONObject{"tenant_vif_port_id": "vif-bond"}}
	if err := f.store.CreatePortgroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreatePort(ctx, &ironwork.Port{Address: "52:54:00:00:07:11", NodeUUID: n.UUID, PortgroupUUID: g.UUID,
		Extra: ironwork.JSONObject{"ip_address": "10.0.0.77"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ mac, vif, ip string }{
		{"52:54:00:00:07:01", "", ""},
		{"52:54:00:00:07:11", "vif-bond", "10.0.0.77"},
	} {
		got, err := f.res.Lookup(ctx, tc.mac)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Known || got.NetBoot || got.TenantVIF != tc.vif || got.StaticIP != tc.ip {
			t.Errorf("%s: %+v, want known, no network boot, VIF %q, static %q", tc.mac, got, tc.vif, tc.ip)
		}
	}
}
