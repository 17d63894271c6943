package redfish

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/fake"
	"github.com/ironwork/ironwork/internal/httpboot"
	"github.com/ironwork/ironwork/internal/image"
	"github.com/ironwork/ironwork/internal/sqlstore"
	"github.com/ironwork/ironwork/internal/vbmc"
)

type linker struct{ c *image.Cache }

func (l linker) Link(ctx context.Context, url, checksum, dest string) error {
	return l.c.Link(ctx, image.Source{URL: url, Checksum: checksum}, dest)
}

type noScripts struct{}

func (noScripts) Script(context.Context, string) (string, error)     { return "", os.ErrNotExist }
func (noScripts) ChainScript() string                                { return "" }
func (noScripts) GrubConfig(context.Context, string) (string, error) { return "", os.ErrNotExist }

// vmFixture is a conductor on SQLite whose redfish nodes use the real redfish power,
// management and virtual media boot interfaces, with the real image cache and HTTP boot
// server on loopback.
type vmFixture struct {
	store *sqlstore.Store
	cond  *conductor.Conductor
	dir   string
	root  string
	// bootIface is the boot interface of the nodes node makes (default redfish-virtual-media).
	bootIface string
}

func newVMFixture(t *testing.T) *vmFixture {
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
	root := filepath.Join(dir, "boot")
	hb, err := httpboot.New(root, noScripts{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hb)
	t.Cleanup(srv.Close)
	boot, err := NewVirtualMediaBoot(VirtualMediaConfig{Root: root, HTTPURL: srv.URL, APIURL: "http://10.0.0.1:6385",
		KernelParams: "console=ttyS0", FileDirs: []string{dir}, LoaderDir: filepath.Join(dir, "loaders")}, linker{cache}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := conductor.Registry{}
	fake.Register(reg)
	rf := Interface{PollInterval: 20 * time.Millisecond, RequestTimeout: 30 * time.Second, ConnectionAttempts: 1}
	reg.Add(ironwork.PowerInterface, "redfish", rf)
	reg.Add(ironwork.ManagementInterface, "redfish", rf)
	reg.Add(ironwork.BootInterface, VirtualMediaName, boot)
	httpsBoot, err := NewHTTPSBoot(VirtualMediaConfig{Root: root, HTTPURL: srv.URL, APIURL: "http://10.0.0.1:6385",
		KernelParams: "console=ttyS0", FileDirs: []string{dir}, LoaderDir: filepath.Join(dir, "loaders")}, linker{cache}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg.Add(ironwork.BootInterface, HTTPSName, httpsBoot)
	if err := store.RegisterConductor(ctx, &ironwork.Conductor{Hostname: "c1", Drivers: []string{"fake-hardware", "redfish"}}); err != nil {
		t.Fatal(err)
	}
	cond := conductor.New(conductor.Config{Hostname: "c1"}, store, ironwork.DefaultDriverConfig(), reg, nil)
	return &vmFixture{store: store, cond: cond, dir: dir, root: root, bootIface: VirtualMediaName}
}

func (f *vmFixture) node(t *testing.T, info ironwork.JSONObject, props ironwork.JSONObject, nd ironwork.JSONObject) *ironwork.Node {
	t.Helper()
	kernel, ramdisk := filepath.Join(f.dir, "vmlinuz"), filepath.Join(f.dir, "initrd")
	os.WriteFile(kernel, []byte("KERNEL"), 0o644)
	os.WriteFile(ramdisk, []byte("RAMDISK"), 0o644)
	info["deploy_kernel"], info["deploy_ramdisk"] = kernel, "file://"+ramdisk
	n := &ironwork.Node{Driver: "redfish", ProvisionState: ironwork.Cleaning, DriverInfo: info, Properties: props, NetworkData: nd,
		Interfaces: map[ironwork.InterfaceKind]string{ironwork.BootInterface: f.bootIface, ironwork.ManagementInterface: "redfish", ironwork.PowerInterface: "redfish"}}
	if err := ironwork.DefaultDriverConfig().ResolveInterfaces(n); err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateNode(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *vmFixture) boot(t *testing.T, uuid string, fn func(conductor.Boot, *conductor.Task) error) error {
	t.Helper()
	return f.cond.WithNode(context.Background(), uuid, func(tk *conductor.Task) error {
		return fn(tk.Driver.Impl(ironwork.BootInterface).(conductor.Boot), tk)
	})
}

func startVBMC(t *testing.T) *vbmc.VBMC {
	t.Helper()
	v, err := vbmc.Start(vbmc.Config{Username: "admin", Password: "password", RedfishListen: "127.0.0.1:0",
		Machines: []vbmc.MachineConfig{{Name: "vm1", Command: []string{"sh", "-c", "exec sleep 300", "vm"}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { v.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); v.Close(); <-done })
	return v
}

// TestVirtualMediaBootAgainstTheVBMC prepares a node's ramdisk boot through the virtual BMC:
// the BMC downloads the ISO from the HTTP boot server, the one-time boot is from Cd in the
// node's boot mode, the ISO holds the agent's parameters with a pregenerated token (which a
// lookup withholds) and the network_data; cleaning up ejects and removes the ISO, and the
// instance boots from disk.
func TestVirtualMediaBootAgainstTheVBMC(t *testing.T) {
	f := newVMFixture(t)
	v := startVBMC(t)
	ctx := context.Background()
	nd := ironwork.JSONObject{"links": []any{map[string]any{"id": "eth0", "type": "phy", "ethernet_mac_address": "52:54:00:00:00:01"}},
		"networks": []any{map[string]any{"id": "n0", "link": "eth0", "type": "ipv4", "ip_address": "192.168.50.10", "netmask": "255.255.255.0"}}}
	n := f.node(t, ironwork.JSONObject{"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/vm1",
		"redfish_username": "admin", "redfish_password": "password", "kernel_append_params": "%default% ipa-debug=1"},
		ironwork.JSONObject{"capabilities": "boot_mode:bios"}, nd)

	start := time.Now()
	if err := f.boot(t, n.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.PrepareRamdisk(ctx, tk) }); err != nil {
		t.Fatal(err)
	}
	t.Logf("ramdisk prepared (loaders made, ISO built, downloaded by the BMC) in %s", time.Since(start).Round(time.Millisecond))
	m := v.Machine("vm1")
	image := m.Media()
	if !strings.Contains(image, "/vmedia/"+n.UUID+"/") || !strings.HasSuffix(image, ".iso") {
		t.Fatalf("the virtual CD holds %q", image)
	}
	if dev, persistent := m.Boot(); dev != vbmc.BootCD || persistent {
		t.Fatalf("boot device after prepare: %s persistent=%v", dev, persistent)
	}
	if mode := m.BootMode(); mode != vbmc.ModeLegacy {
		t.Fatalf("boot mode sent with the Cd boot: %s", mode)
	}
	got, _ := f.store.GetNode(ctx, n.UUID)
	if got.DriverInternalInfo["agent_secret_token_pregenerated"] != true {
		t.Fatalf("no pregenerated token: %v", got.DriverInternalInfo)
	}
	token, _ := got.DriverInternalInfo["agent_secret_token"].(string)
	// Read the ISO as QEMU gets it, with xorriso.
	if err := m.PowerOn(); err != nil {
		t.Fatal(err)
	}
	args := strings.Join(m.LastArgs(), " ")
	m.PowerOff()
	file := regexp.MustCompile(`file=(\S+\.iso)`).FindStringSubmatch(args)
	if file == nil {
		t.Fatalf("QEMU gets no CD: %s", args)
	}
	out := t.TempDir()
	if msg, err := exec.Command("xorriso", "-osirrox", "on", "-indev", file[1], "-extract", "/", out).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, msg)
	}
	cfg, _ := os.ReadFile(filepath.Join(out, "ironwork/grub.cfg"))
	for _, want := range []string{"'ipa-api-url=http://10.0.0.1:6385'", "'ironwork-node=" + n.UUID + "'", "'ironwork-boot-mode=bios'",
		"'ipa-agent-token=" + token + "'", "'console=ttyS0'", "'ipa-debug=1'"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("grub.cfg lacks %s:\n%s", want, cfg)
		}
	}
	if strings.Contains(string(cfg), "%default%") {
		t.Errorf("grub.cfg has Ironic's %%default%% placeholder (the conductor's parameters are there already):\n%s", cfg)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "ironwork/ramdisk")); string(b) != "RAMDISK" {
		t.Errorf("ramdisk on the ISO: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "openstack/latest/network_data.json")); !strings.Contains(string(b), "192.168.50.10") {
		t.Errorf("network_data on the ISO: %q", b)
	}
	lk, err := f.cond.LookupAgent(ctx, conductor.NodeRef{Node: n.UUID})
	if err != nil || lk.Token != "******" {
		t.Fatalf("lookup of a node with a pregenerated token: %q %v", lk.Token, err)
	}

	if err := f.boot(t, n.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.PrepareInstance(ctx, tk) }); err != nil {
		t.Fatal(err)
	}
	if m.Media() != "" {
		t.Fatalf("the CD still holds %q after prepare instance", m.Media())
	}
	if dev, persistent := m.Boot(); dev != vbmc.BootDisk || !persistent {
		t.Fatalf("boot device after prepare instance: %s %v", dev, persistent)
	}
	if _, err := os.Stat(filepath.Join(f.root, "vmedia", n.UUID)); !os.IsNotExist(err) {
		t.Fatalf("the node's ISO directory outlives prepare instance: %v", err)
	}
	got, _ = f.store.GetNode(ctx, n.UUID)
	if _, ok := got.DriverInternalInfo[vmediaKey]; ok {
		t.Fatalf("record left: %v", got.DriverInternalInfo)
	}
}

// TestVirtualMediaFailuresLeaveNothingInserted: a BMC without virtual media, one whose
// InsertMedia fails, and an image the BMC cannot fetch fail the step with the BMC's reason;
// nothing stays inserted and the ISO is gone.
func TestVirtualMediaFailuresLeaveNothingInserted(t *testing.T) {
	ctx := context.Background()
	t.Run("no virtual media", func(t *testing.T) {
		f := newVMFixture(t)
		_, info := newBMC(t) // the DMTF mockup's manager has no VirtualMedia
		n := f.node(t, info, nil, nil)
		err := f.boot(t, n.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.PrepareRamdisk(ctx, tk) })
		if err == nil || !strings.Contains(err.Error(), "offers no virtual CD, DVD or USB stick drive") {
			t.Fatalf("prepare with a BMC without virtual media: %v", err)
		}
		if _, err := os.Stat(filepath.Join(f.root, "vmedia", n.UUID)); !os.IsNotExist(err) {
			t.Fatalf("ISO left: %v", err)
		}
	})
	t.Run("unreachable image", func(t *testing.T) {
		f := newVMFixture(t)
		v := startVBMC(t)
		n := f.node(t, ironwork.JSONObject{"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/vm1",
			"redfish_username": "admin", "redfish_password": "password"}, nil, nil)
		// The BMC is told a URL where nothing listens: the boot interface's HTTP URL is wrong.
		b, _ := NewVirtualMediaBoot(VirtualMediaConfig{Root: f.root, HTTPURL: "http://127.0.0.1:1", APIURL: "http://10.0.0.1:6385",
			FileDirs: []string{f.dir}, LoaderDir: filepath.Join(f.dir, "loaders")}, linker{mustCache(t, f.dir)}, nil)
		err := f.cond.WithNode(ctx, n.UUID, func(tk *conductor.Task) error { return b.PrepareRamdisk(ctx, tk) })
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("prepare with an image the BMC cannot fetch: %v", err)
		}
		if m := v.Machine("vm1").Media(); m != "" {
			t.Fatalf("the drive holds %q after the failure", m)
		}
		if _, err := os.Stat(filepath.Join(f.root, "vmedia", n.UUID)); !os.IsNotExist(err) {
			t.Fatalf("ISO left: %v", err)
		}
		got, _ := f.store.GetNode(ctx, n.UUID)
		if _, ok := got.DriverInternalInfo[vmediaKey]; ok {
			t.Fatalf("record left: %v", got.DriverInternalInfo)
		}
	})
}

// TestVirtualMediaRefusedAndUSB: a BMC that refuses the image (the server hands it something
// that is not an ISO) fails the step with the BMC's reason and nothing stays inserted; a BMC
// whose only drive is a USB stick gets the ISO there and a one-time boot from Usb.
func TestVirtualMediaRefusedAndUSB(t *testing.T) {
	ctx := context.Background()
	t.Run("refused", func(t *testing.T) {
		f := newVMFixture(t)
		v := startVBMC(t)
		n := f.node(t, ironwork.JSONObject{"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/vm1",
			"redfish_username": "admin", "redfish_password": "password"}, nil, nil)
		// Whatever the BMC asks for, it gets 64 KiB of zeros: no ISO 9660 volume descriptor.
		junk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 64<<10)) }))
		t.Cleanup(junk.Close)
		b, _ := NewVirtualMediaBoot(VirtualMediaConfig{Root: f.root, HTTPURL: junk.URL, APIURL: "http://10.0.0.1:6385",
			FileDirs: []string{f.dir}, LoaderDir: filepath.Join(f.dir, "loaders")}, linker{mustCache(t, f.dir)}, nil)
		err := f.cond.WithNode(ctx, n.UUID, func(tk *conductor.Task) error { return b.PrepareRamdisk(ctx, tk) })
		if err == nil || !strings.Contains(err.Error(), "not an ISO 9660 image") {
			t.Fatalf("prepare with an image the BMC refuses: %v", err)
		}
		if m := v.Machine("vm1").Media(); m != "" {
			t.Fatalf("the drive holds %q after the refusal", m)
		}
		if _, err := os.Stat(filepath.Join(f.root, "vmedia", n.UUID)); !os.IsNotExist(err) {
			t.Fatalf("ISO left: %v", err)
		}
	})
	t.Run("usb stick only", func(t *testing.T) {
		f := newVMFixture(t)
		v := startVBMC(t)
		m := v.Machine("vm1")
		if err := m.SetDrives([]string{vbmc.DriveUSB}); err != nil {
			t.Fatal(err)
		}
		n := f.node(t, ironwork.JSONObject{"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/vm1",
			"redfish_username": "admin", "redfish_password": "password"}, ironwork.JSONObject{"capabilities": "boot_mode:uefi"}, nil)
		if err := f.boot(t, n.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.PrepareRamdisk(ctx, tk) }); err != nil {
			t.Fatal(err)
		}
		if img := m.MediaIn(vbmc.DriveUSB); !strings.Contains(img, "/vmedia/"+n.UUID+"/") || m.Media() != "" {
			t.Fatalf("USB stick holds %q, CD %q", img, m.Media())
		}
		if dev, persistent := m.Boot(); dev != vbmc.BootUSB || persistent {
			t.Fatalf("boot device after prepare: %s persistent=%v, want usb once", dev, persistent)
		}
		if err := f.boot(t, n.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.CleanUpRamdisk(ctx, tk) }); err != nil {
			t.Fatal(err)
		}
		if img := m.MediaIn(vbmc.DriveUSB); img != "" {
			t.Fatalf("USB stick holds %q after clean-up", img)
		}
	})
}

func mustCache(t *testing.T, dir string) *image.Cache {
	c, err := image.New(image.Config{Dir: filepath.Join(dir, "images2"), AllowUnverified: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
