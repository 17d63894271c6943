package redfish

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/vbmc"
)

// startUEFIVBMC is startVBMC with a machine whose command line names OVMF: UEFI firmware,
// which offers UefiHttp.
func startUEFIVBMC(t *testing.T) *vbmc.VBMC {
	t.Helper()
	v, err := vbmc.Start(vbmc.Config{Username: "admin", Password: "password", RedfishListen: "127.0.0.1:0",
		Machines: []vbmc.MachineConfig{
			{Name: "uefi", Command: []string{"sh", "-c", "exec sleep 300", "vm", "-bios", "OVMF.fd"}},
			{Name: "legacy", Command: []string{"sh", "-c", "exec sleep 300", "vm"}},
		}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { v.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); v.Close(); <-done })
	return v
}

// TestHTTPSBootAgainstTheVBMC prepares a redfish-https ramdisk boot through the virtual BMC:
// the System's Boot gets UefiHttp once, in UEFI mode, with HttpBootUri the node's ISO on the
// HTTP boot server; nothing is inserted; at power-on the BMC downloads the ISO and QEMU gets
// it as the first boot device. Clean-up clears HttpBootUri and removes the ISO.
func TestHTTPSBootAgainstTheVBMC(t *testing.T) {
	f := newVMFixture(t)
	f.bootIface = HTTPSName
	v := startUEFIVBMC(t)
	ctx := context.Background()
	info := func(sys string) ironwork.JSONObject {
		return ironwork.JSONObject{"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/" + sys,
			"redfish_username": "admin", "redfish_password": "password"}
	}
	n := f.node(t, info("uefi"), ironwork.JSONObject{"capabilities": "boot_mode:uefi"}, nil)
	prepare := func(b conductor.Boot, tk *conductor.Task) error { return b.PrepareRamdisk(ctx, tk) }
	start := time.Now()
	if err := f.boot(t, n.UUID, prepare); err != nil {
		t.Fatal(err)
	}
	t.Logf("ramdisk prepared in %s", time.Since(start).Round(time.Millisecond))
	m := v.Machine("uefi")
	uri := m.HTTPBootURI()
	if !strings.Contains(uri, "/vmedia/"+n.UUID+"/") || !strings.HasSuffix(uri, ".iso") {
		t.Fatalf("HttpBootUri: %q", uri)
	}
	if dev, persistent := m.Boot(); dev != vbmc.BootHTTP || persistent {
		t.Fatalf("boot device after prepare: %s persistent=%v", dev, persistent)
	}
	if mode := m.BootMode(); mode != vbmc.ModeUEFI {
		t.Fatalf("boot mode: %s", mode)
	}
	if m.Media() != "" {
		t.Fatalf("redfish-https inserted virtual media: %q", m.Media())
	}
	got, _ := f.store.GetNode(ctx, n.UUID)
	if rec, _ := got.DriverInternalInfo[vmediaKey].(map[string]any); rec["image"] != uri {
		t.Fatalf("record: %v", got.DriverInternalInfo[vmediaKey])
	}
	// The Redfish view of it, as a client reads it.
	if err := m.PowerOn(); err != nil {
		t.Fatal(err)
	}
	args := strings.Join(m.LastArgs(), " ")
	m.PowerOff()
	if !strings.Contains(args, "id=httpboot") || !strings.Contains(args, "drive=httpboot,bootindex=0") {
		t.Fatalf("QEMU does not boot the downloaded image first: %s", args)
	}
	if dev, _ := m.Boot(); dev != vbmc.BootDisk {
		t.Fatalf("the UefiHttp boot is not one-time: next boot %s", dev)
	}

	if err := f.boot(t, n.UUID, func(b conductor.Boot, tk *conductor.Task) error { return b.CleanUpRamdisk(ctx, tk) }); err != nil {
		t.Fatal(err)
	}
	if u := m.HTTPBootURI(); u != "" {
		t.Fatalf("HttpBootUri after clean-up: %q", u)
	}
	if _, err := os.Stat(filepath.Join(f.root, "vmedia", n.UUID)); !os.IsNotExist(err) {
		t.Fatalf("the node's ISO directory outlives clean-up: %v", err)
	}

	// A BIOS node is refused by validation and by prepare, before anything is built.
	bios := f.node(t, info("uefi"), ironwork.JSONObject{"capabilities": "boot_mode:bios"}, nil)
	err := f.boot(t, bios.UUID, func(b conductor.Boot, tk *conductor.Task) error {
		return b.(conductor.Validator).Validate(ctx, tk)
	})
	if ironwork.ErrorCode(err) != ironwork.EINVALID || !strings.Contains(err.Error(), "needs uefi") {
		t.Fatalf("validate of a bios node: %v", err)
	}
	if err := f.boot(t, bios.UUID, prepare); err == nil || !strings.Contains(err.Error(), "needs uefi") {
		t.Fatalf("prepare of a bios node: %v", err)
	}
	// A BMC whose AllowableValues lack UefiHttp (the legacy machine's) is refused with its list.
	legacy := f.node(t, info("legacy"), ironwork.JSONObject{"capabilities": "boot_mode:uefi"}, nil)
	err = f.boot(t, legacy.UUID, prepare)
	if err == nil || !strings.Contains(err.Error(), "does not offer UEFI HTTP boot") {
		t.Fatalf("prepare against a BMC without UefiHttp: %v", err)
	}
	if u := v.Machine("legacy").HTTPBootURI(); u != "" {
		t.Fatalf("HttpBootUri set on the refusing BMC: %q", u)
	}
	if _, err := os.Stat(filepath.Join(f.root, "vmedia", legacy.UUID)); !os.IsNotExist(err) {
		t.Fatalf("the ISO of the refused node is left: %v", err)
	}
}
