package vbmc

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/redfish"
	"github.com/ironwork/ironwork/internal/ramdisk"
	"github.com/ironwork/ironwork/internal/vmedia"
)

// TestQEMUBootsInsertedMedia: the redfish driver inserts a boot ISO (served on loopback) into
// a real QEMU machine's virtual CD, sets a one-time Cd boot and powers it on; the machine must
// boot the ISO (GRUB's message on its serial console), under SeaBIOS and under OVMF. A BMC
// whose only drive is a USB stick ("uefi-usb"): the driver finds it by its MediaTypes, says
// the media boots from usb, and OVMF boots the ISO as a disk through its EFI partition.
// "uefi-http": no media, the driver sets a one-time UefiHttp boot of the ISO's URL
// (HttpBootUri); the BMC downloads it at power-on and OVMF boots it (emulated: as a CD).
func TestQEMUBootsInsertedMedia(t *testing.T) {
	need(t, "qemu-system-x86_64", "qemu-system-x86")
	kp := os.Getenv("IRONWORK_TEST_KERNEL")
	if kp == "" {
		t.Skip("IRONWORK_TEST_KERNEL is not set (scripts/kernel.sh unpacks a Debian kernel)")
	}
	kernel, err := os.ReadFile(kp)
	if err != nil {
		t.Fatal(err)
	}
	var rd bytes.Buffer
	c := ramdisk.NewCPIO(&rd)
	c.File("init", 0o644, []byte("x"))
	c.Close()
	l, err := vmedia.LoadLoaders(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	iso, err := vmedia.ISO(vmedia.Boot{Kernel: kernel, Ramdisk: rd.Bytes(), Params: []string{"console=ttyS0", "panic=-1"}}, l)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(iso) }))
	t.Cleanup(srv.Close)

	for _, fw := range []string{"bios", "uefi", "uefi-usb", "uefi-http"} {
		t.Run(fw, func(t *testing.T) {
			dir := t.TempDir()
			serial := filepath.Join(dir, "serial.log")
			cmd := []string{"qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-nodefaults", "-display", "none", "-monitor", "none",
				"-serial", "file:" + serial, "-no-reboot"}
			mode := "bios"
			if fw != "bios" {
				vars := filepath.Join(dir, "vars.fd")
				b, err := os.ReadFile("/usr/share/OVMF/OVMF_VARS_4M.fd")
				if err != nil {
					t.Fatalf("OVMF: %v", err)
				}
				os.WriteFile(vars, b, 0o644)
				cmd = append(cmd, "-machine", "q35", "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
					"-drive", "if=pflash,format=raw,unit=1,file="+vars)
				mode = "uefi"
			}
			v := startVBMC(t, cmd)
			wantDev := conductor.BootCDROM
			if fw == "uefi-usb" {
				if err := v.Machine("vm1").SetDrives([]string{DriveUSB}); err != nil {
					t.Fatal(err)
				}
				wantDev = conductor.BootUSB
			}
			d := redfish.Interface{PollInterval: 50 * time.Millisecond}
			tk := &conductor.Task{Node: &ironwork.Node{UUID: "n-" + fw, Properties: ironwork.JSONObject{"capabilities": "boot_mode:" + mode},
				DriverInfo: ironwork.JSONObject{"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/vm1",
					"redfish_username": "admin", "redfish_password": "password"}}}
			ctx := context.Background()
			if fw == "uefi-http" {
				if err := d.SetHTTPBootURI(ctx, tk, srv.URL+"/boot.iso"); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := d.InsertVirtualMedia(ctx, tk, srv.URL+"/boot.iso"); err != nil {
					t.Fatal(err)
				}
				dev, err := d.VirtualMediaBootDevice(ctx, tk)
				if err != nil || dev != wantDev {
					t.Fatalf("virtual media boot device: %q, %v; want %q", dev, err, wantDev)
				}
				if err := d.SetBootDevice(ctx, tk, conductor.BootDevice{Device: dev}); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			if err := d.SetPowerState(ctx, tk, ironwork.PowerOn, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			defer d.SetPowerState(ctx, tk, ironwork.PowerOff, 10*time.Second)
			for time.Since(start) < 3*time.Minute {
				b, _ := os.ReadFile(serial)
				if bytes.Contains(b, []byte("Ironwork: booting the deploy ramdisk from virtual media")) {
					t.Logf("%s: the inserted ISO's GRUB ran %s after power on", fw, time.Since(start).Round(time.Millisecond))
					args := strings.Join(v.Machine("vm1").LastArgs(), " ")
					if usb := strings.Contains(args, "usb-storage,") && !strings.Contains(args, "ide-cd"); usb != (fw == "uefi-usb") {
						t.Errorf("%s: QEMU's drives are not the BMC's (USB stick only: %v): %s", fw, fw == "uefi-usb", args)
					}
					if hb := strings.Contains(args, "drive=httpboot,bootindex=0") && !strings.Contains(args, "vmedia-"); hb != (fw == "uefi-http") {
						t.Errorf("%s: the HTTP boot image is attached %v, want %v: %s", fw, hb, fw == "uefi-http", args)
					}
					return
				}
				time.Sleep(500 * time.Millisecond)
			}
			b, _ := os.ReadFile(serial)
			t.Fatalf("%s: the machine did not boot the inserted ISO within 3 minutes; args %v; console:\n%s", fw, v.Machine("vm1").LastArgs(), b)
		})
	}
}
