package server_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/lockedbuf"
	"github.com/ironwork/ironwork/internal/netns/netnstest"
	"github.com/ironwork/ironwork/internal/server"
)

// TestIPv6NetworkBootQEMU boots an OVMF (UEFI) machine whose only network is IPv6: OVMF's
// HTTPv6 boot gets ipxe.efi's URL from Ironwork's DHCPv6 (stateful), iPXE then gets its
// script URL over DHCPv6 and loads the marker ramdisk over HTTP on IPv6. Developer-only (it
// waits out OVMF's and iPXE's IPv4 attempts under TCG; 530 s on the shared machine): set
// IRONWORK_TEST_IPV6_QEMU=1 and run with -timeout 20m.
func TestIPv6NetworkBootQEMU(t *testing.T) {
	t.Parallel() // mostly waits on a guest under TCG: overlaps the package's other long tests
	if os.Getenv("IRONWORK_TEST_IPV6_QEMU") == "" {
		t.Skip("set IRONWORK_TEST_IPV6_QEMU=1 to boot a UEFI machine over IPv6 under QEMU (minutes under TCG)")
	}
	netnstest.Need(t)
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 is not installed")
	}
	vars0, err := os.ReadFile("/usr/share/OVMF/OVMF_VARS_4M.fd")
	if err != nil {
		t.Skip("OVMF is not installed (Debian package ovmf)")
	}
	kernel := testKernel(t)
	work := t.TempDir()
	initrd := markerRamdisk(t, work)
	ns := netnstest.New(t, "iw6q")
	netnstest.Bridge(t, ns, "br0", "", "fd97::1/64")
	logs := &lockedbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- server log ---\n%s", logs.String())
		}
	})
	srv := startBootServer(t, logs, func(c *server.Config) {
		c.ProvisioningNetns, c.ProvisioningInterface = ns, "br0"
		c.DHCP6 = server.DHCP6Config{Mode: "stateful", Prefix: "fd97::/64", Range: "fd97::100,fd97::1ff"}
		c.FileURLAllowedPaths = []string{work, filepath.Dir(kernel)}
	})
	cl := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	ctx := context.Background()
	const mac = "52:54:00:97:00:01"
	var node map[string]any
	if err := cl.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "uefi-httpv6", "driver": "fake-hardware",
		"boot_interface": "ipxe", "properties": map[string]any{"capabilities": "boot_mode:uefi"},
		"driver_info": map[string]any{"deploy_kernel": kernel, "deploy_ramdisk": initrd}}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	if err := cl.Do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": mac, "pxe_enabled": true}, nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.Conductor().WithNode(ctx, uuid, func(tk *conductor.Task) error {
		return tk.Driver.Impl(ironwork.BootInterface).(conductor.Boot).PrepareRamdisk(ctx, tk)
	}); err != nil {
		t.Fatalf("prepare ramdisk: %v", err)
	}
	netnstest.Tap(t, ns, "tap0", "br0")
	vars := filepath.Join(work, "vars.fd")
	if err := os.WriteFile(vars, vars0, 0o644); err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(work, "serial.log")
	qctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	vm := exec.CommandContext(qctx, "ip", "netns", "exec", ns, qemu, "-accel", "tcg", "-m", "512", "-display", "none",
		"-nodefaults", "-no-reboot", "-serial", "file:"+serial, "-machine", "q35",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
		"-drive", "if=pflash,format=raw,unit=1,file="+vars,
		"-fw_cfg", "name=opt/org.tianocore/IPv4Support,string=n", // no IPv4 at all: no PXEv4, no HTTPv4 attempt (60 s of DHCPv4)
		"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,romfile=,bootindex=1,mac="+mac)
	var qout bytes.Buffer
	vm.Stdout, vm.Stderr = &qout, &qout
	start := time.Now()
	if err := vm.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- vm.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited
	})
	const marker = "IRONWORK-TEST-RAMDISK-BOOTED"
	done := false // QEMU has exited: read the serial log once more, then give up
	for {
		b, _ := os.ReadFile(serial)
		// The whole line (QEMU writes the console a character at a time), or what there is
		// once QEMU has ended.
		if i := bytes.Index(b, []byte(marker)); i >= 0 && (done || bytes.IndexByte(b[i:], '\n') >= 0) {
			line, _, _ := strings.Cut(string(b[i:]), "\n")
			t.Logf("power on to ramdisk running over IPv6 in %.1f s: %s", time.Since(start).Seconds(), line)
			if !strings.Contains(line, "ipa-api-url=http://[fd97::1]:") {
				t.Errorf("kernel command line lacks an IPv6 ipa-api-url: %s", line)
			}
			return
		}
		if done {
			t.Fatalf("QEMU ended before the ramdisk ran: %s\nserial:\n%s", qout.String(), b)
		}
		select {
		case err := <-exited:
			exited <- err
			done = true
			t.Logf("QEMU exited (%v)", err)
		case <-qctx.Done():
			t.Fatalf("the ramdisk did not run within the time limit\nserial:\n%s", b)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
