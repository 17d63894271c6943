package server_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
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
	"github.com/ironwork/ironwork/internal/netns"
	"github.com/ironwork/ironwork/internal/netns/netnstest"
	"github.com/ironwork/ironwork/internal/ramdisk"
	"github.com/ironwork/ironwork/internal/server"
)

// testKernel finds a Linux kernel unpacked by scripts/kernel.sh.
func testKernel(t *testing.T) string {
	t.Helper()
	if k := os.Getenv("IRONWORK_TEST_KERNEL"); k != "" {
		return k
	}
	ks, _ := filepath.Glob("/var/cache/ironwork/kernel/*/vmlinuz")
	if len(ks) == 0 {
		t.Skip("no Linux kernel to boot: run scripts/kernel.sh (or set IRONWORK_TEST_KERNEL)")
	}
	return ks[len(ks)-1]
}

// markerRamdisk builds an initramfs whose init prints a marker line and powers off.
func markerRamdisk(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is needed to build the test ramdisk's init")
	}
	initBin := filepath.Join(dir, "init")
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", initBin, "./testdata/bootmarker")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the marker init: %v: %s", err, out)
	}
	data, err := os.ReadFile(initBin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := ramdisk.NewCPIO(&buf)
	if err := w.File("init", 0o755, data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "marker.cpio")
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNetworkBootQEMU boots QEMU virtual machines from the network through Ironwork's own
// DHCP, TFTP and HTTP boot services in a network namespace: SeaBIOS with its iPXE option
// ROM, and OVMF (UEFI) with its own PXE client, which fetches snponly.efi over TFTP first.
// Each machine gets its address and its node's iPXE script, loads the deploy kernel and
// ramdisk the boot interface prepared, and runs the ramdisk, which prints a marker with its
// kernel command line on the serial console.
func TestNetworkBootQEMU(t *testing.T) {
	t.Parallel() // mostly waits on a guest under TCG: overlaps the package's other long tests
	netnstest.Need(t)
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
	}
	for _, f := range []string{"/usr/lib/ipxe/undionly.kpxe", "/usr/lib/ipxe/snponly.efi", "/usr/lib/ipxe/qemu/efi-virtio.rom"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("%s is missing (Debian packages ipxe and ipxe-qemu)", f)
		}
	}
	kernel := testKernel(t)
	work := t.TempDir()
	initrd := markerRamdisk(t, work)

	cases := []struct {
		name, bootMode, mac string
		firmware            func(dir string) []string
	}{
		{"bios-ipxe-rom", "bios", "52:54:00:98:00:01", func(string) []string { return nil }},
		{"uefi-pxe-snponly", "uefi", "52:54:00:98:00:02", func(dir string) []string {
			code := "/usr/share/OVMF/OVMF_CODE_4M.fd"
			vars := filepath.Join(dir, "vars.fd")
			b, err := os.ReadFile("/usr/share/OVMF/OVMF_VARS_4M.fd")
			if err != nil {
				t.Skip("OVMF is not installed (Debian package ovmf)")
			}
			if err := os.WriteFile(vars, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{"-machine", "q35", "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + code,
				"-drive", "if=pflash,format=raw,unit=1,file=" + vars}
		}},
	}
	ns := netnstest.New(t, "iwnb")
	netnstest.Bridge(t, ns, "br0", "10.98.0.1/24", "fd98::1/64")
	logs := &lockedbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- server log ---\n%s", logs.String())
		}
	})
	srv := startBootServer(t, logs, func(c *server.Config) {
		c.ProvisioningNetns, c.ProvisioningInterface = ns, "br0"
		c.DHCPRange = "10.98.0.100,10.98.0.150"
		c.FileURLAllowedPaths = []string{work, filepath.Dir(kernel)}
	})
	cl := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	ctx := context.Background()
	_, apiPort, _ := net.SplitHostPort(srv.Addr())
	agentAPI := "http://10.98.0.1:" + apiPort
	// Agents on the provisioning network reach the agent's endpoints, and only those.
	inNS := &api.Client{BaseURL: agentAPI, Version: "1.87", HTTP: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: netns.Dialer(ns)}}}
	var lr api.LookupResponse
	if err := inNS.Do(ctx, http.MethodGet, "/v1/lookup?addresses=52:54:00:98:00:01", nil, &lr); !api.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("lookup from the provisioning network: %v, want 404 (no node)", err)
	}
	if err := inNS.Do(ctx, http.MethodGet, "/v1/nodes", nil, nil); !api.IsStatus(err, http.StatusForbidden) {
		t.Fatalf("node list from the provisioning network: %v, want 403", err)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fw := tc.firmware(dir)
			tap := fmt.Sprintf("tap%d", i)
			netnstest.Tap(t, ns, tap, "br0")
			var node map[string]any
			if err := cl.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": tc.name, "driver": "fake-hardware",
				"boot_interface": "ipxe", "properties": map[string]any{"capabilities": "boot_mode:" + tc.bootMode},
				"driver_info": map[string]any{"deploy_kernel": kernel, "deploy_ramdisk": initrd}}, &node); err != nil {
				t.Fatal(err)
			}
			uuid := node["uuid"].(string)
			if err := cl.Do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": tc.mac,
				"pxe_enabled": true}, nil); err != nil {
				t.Fatal(err)
			}
			err := srv.Conductor().WithNode(ctx, uuid, func(tk *conductor.Task) error {
				return tk.Driver.Impl(ironwork.BootInterface).(conductor.Boot).PrepareRamdisk(ctx, tk)
			})
			if err != nil {
				t.Fatalf("prepare ramdisk: %v", err)
			}
			serial := filepath.Join(dir, "serial.log")
			nic := "virtio-net-pci,netdev=n0,mac=" + tc.mac
			if tc.bootMode == "uefi" {
				nic += ",romfile=" // OVMF's own PXE, which loads snponly.efi over TFTP
			}
			args := append([]string{"netns", "exec", ns, qemu, "-accel", "tcg", "-m", "512", "-display", "none",
				"-nodefaults", "-no-reboot", "-serial", "file:" + serial, "-boot", "n",
				"-netdev", "tap,id=n0,ifname=" + tap + ",script=no,downscript=no", "-device", nic}, fw...)
			qctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
			defer cancel()
			vm := exec.CommandContext(qctx, "ip", args...)
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
			var line string
			for line == "" {
				b, _ := os.ReadFile(serial)
				// The whole line: QEMU writes the console a character at a time.
				if i := bytes.Index(b, []byte(marker)); i >= 0 {
					if l, _, whole := strings.Cut(string(b[i:]), "\n"); whole {
						line = l
						break
					}
				}
				select {
				case err := <-exited:
					exited <- err
					t.Fatalf("QEMU ended before the ramdisk ran (%v): %s\nserial:\n%s", err, qout.String(), b)
				case <-qctx.Done():
					t.Fatalf("the ramdisk did not run within the time limit\nserial:\n%s", b)
				case <-time.After(200 * time.Millisecond):
				}
			}
			t.Logf("%s: power on to ramdisk running in %.1f s", tc.name, time.Since(start).Seconds())
			for _, want := range []string{"BOOTIF=01-" + strings.ReplaceAll(tc.mac, ":", "-"), "ipa-api-url=" + agentAPI + " ",
				"ironwork-node=" + uuid, "ironwork-boot-mode=" + tc.bootMode, "initrd=ramdisk"} {
				if !strings.Contains(line, want) {
					t.Errorf("kernel command line lacks %q: %s", want, line)
				}
			}
			log := logs.String()
			for _, want := range []string{"iPXE script served", "file=nodes/" + uuid + "/kernel", "file=nodes/" + uuid + "/ramdisk"} {
				if !strings.Contains(log, want) {
					t.Errorf("server log lacks %q", want)
				}
			}
			if tc.bootMode == "uefi" && !strings.Contains(log, "snponly.efi") {
				t.Errorf("UEFI firmware did not fetch snponly.efi over TFTP")
			}
			lease, ok, err := srv.Store().Lease(ctx, "10.98.0.0/24", tc.mac)
			if err != nil || !ok || !strings.HasPrefix(lease.IP, "10.98.0.") {
				t.Errorf("no DHCP lease recorded for %s: %+v %v %v", tc.mac, lease, ok, err)
			}
		})
	}
}

// startBootServer starts the whole server on SQLite with its log going to logs.
func startBootServer(t *testing.T, logs *lockedbuf.Buffer, mutate func(*server.Config)) *server.Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return startServerLog(t, "sqlite://"+filepath.Join(t.TempDir(), "ironwork.db"), log, func(c *server.Config) {
		c.Hostname, c.LogLevel = "boot-conductor", "debug"
		mutate(c)
	})
}
