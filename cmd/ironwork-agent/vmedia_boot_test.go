package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/vmedia"
)

// TestBootVirtualMediaWithoutDHCP boots the real agent ramdisk from a virtual media ISO
// (internal/vmedia: GRUB, the kernel parameters with a pregenerated token, network_data with a
// static address) as a QEMU CD under OVMF, with its NIC on a tap in a network
// namespace made here where no DHCP server runs. The agent must read network_data from the
// CD, configure the static address and route, look up (the API withholds the token, as for a
// pregenerated one) and heartbeat with the token from the CD, from the static address.
// SeaBIOS: the ISO's BIOS path is booted, through the whole server, by TestLabVirtualMedia
// (each of its two machines under one firmware), so this test boots one firmware only: each
// boot is about 40 s of a CI run's two CPUs under TCG. Add "bios" to the list to run both.
func TestBootVirtualMediaWithoutDHCP(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and tap devices")
	}
	kernels, _ := filepath.Glob("/var/cache/ironwork/kernel/*/vmlinuz")
	if len(kernels) == 0 {
		t.Skip("no kernel in /var/cache/ironwork/kernel (run scripts/kernel.sh)")
	}
	dir := t.TempDir()
	start := time.Now()
	res := builtRamdisk(t, filepath.Dir(kernels[0]))
	kernel, _ := os.ReadFile(res.KernelPath)
	initrd, _ := os.ReadFile(res.InitramfsPath)
	loaders, err := vmedia.LoadLoaders(context.Background(), filepath.Join(dir, "loaders"))
	if err != nil {
		t.Fatal(err)
	}
	const (
		node  = "5d0c1a52-8f3e-4b7a-9c2d-1e0f3a4b5c6d"
		token = "pregenerated-token-from-the-cd"
		mac   = "52:54:00:aa:bb:cd"
	)
	nd := map[string]any{
		"links": []any{map[string]any{"id": "nic0", "type": "phy", "ethernet_mac_address": mac}},
		"networks": []any{map[string]any{"id": "prov", "link": "nic0", "type": "ipv4", "ip_address": "10.97.0.5", "netmask": "255.255.255.0",
			"routes": []any{map[string]any{"network": "10.96.0.0", "netmask": "255.255.0.0", "gateway": "10.97.0.1"}}}},
		"services": []any{map[string]any{"type": "dns", "address": "10.97.0.1"}},
	}
	iso, err := vmedia.ISO(vmedia.Boot{Kernel: kernel, Ramdisk: initrd, NetworkData: nd, Params: []string{"console=ttyS0", "panic=-1",
		"ipa-api-url=http://10.97.0.1:6385", "ironwork-node=" + node, "ipa-agent-token=" + token, "ipa-lookup-timeout=200"}}, loaders)
	if err != nil {
		t.Fatal(err)
	}
	isoPath := filepath.Join(dir, "boot.iso")
	if err := os.WriteFile(isoPath, iso, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("agent, ramdisk and boot ISO (%d MB) built in %s", len(iso)>>20, time.Since(start).Round(time.Second))

	for _, fw := range []string{"uefi"} {
		t.Run(fw, func(t *testing.T) {
			ns := fmt.Sprintf("iwvmedia%d%s", os.Getpid(), fw)
			must(t, "ip", "netns", "add", ns)
			t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
			must(t, "ip", "-n", ns, "link", "set", "lo", "up")
			must(t, "ip", "-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap")
			must(t, "ip", "-n", ns, "addr", "add", "10.97.0.1/24", "dev", "tap0")
			must(t, "ip", "-n", ns, "link", "set", "tap0", "up")

			lookups := make(chan string, 4)
			beats := make(chan api.HeartbeatRequest, 4)
			mux := http.NewServeMux()
			mux.HandleFunc("GET /v1/lookup", func(w http.ResponseWriter, r *http.Request) {
				select {
				case lookups <- r.URL.RawQuery:
				default:
				}
				json.NewEncoder(w).Encode(api.LookupResponse{Node: map[string]any{"uuid": node, "properties": map[string]any{}},
					Config: api.LookupConfig{HeartbeatTimeout: 30, AgentToken: "******", AgentTokenRequired: true}})
			})
			mux.HandleFunc("POST /v1/heartbeat/{node}", func(w http.ResponseWriter, r *http.Request) {
				var hb api.HeartbeatRequest
				json.NewDecoder(r.Body).Decode(&hb)
				select {
				case beats <- hb:
				default:
				}
				w.WriteHeader(http.StatusAccepted)
			})
			var ln net.Listener
			if nerr := inNetns(ns, func() { ln, err = net.Listen("tcp", "10.97.0.1:6385") }); nerr != nil || err != nil {
				t.Fatal(nerr, err)
			}
			hs := &http.Server{Handler: mux}
			go hs.Serve(ln)
			t.Cleanup(func() { hs.Close() })

			serial := filepath.Join(t.TempDir(), "serial.log")
			args := []string{"netns", "exec", ns, "qemu-system-x86_64", "-accel", "tcg", "-m", "768", "-display", "none", "-no-reboot",
				"-serial", "file:" + serial, "-monitor", "none",
				"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no", "-device", "virtio-net-pci,netdev=n0,mac=" + mac + ",romfile=",
				"-drive", "media=cdrom,readonly=on,format=raw,file=" + isoPath, "-boot", "d"}
			if fw == "uefi" {
				vars := filepath.Join(t.TempDir(), "vars.fd")
				b, err := os.ReadFile("/usr/share/OVMF/OVMF_VARS_4M.fd")
				if err != nil {
					t.Fatalf("OVMF: %v", err)
				}
				os.WriteFile(vars, b, 0o644)
				args = append(args, "-machine", "q35", "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
					"-drive", "if=pflash,format=raw,unit=1,file="+vars)
			}
			qemu := exec.Command("ip", args...)
			var qemuLog bytes.Buffer
			qemu.Stdout, qemu.Stderr = &qemuLog, &qemuLog
			booted := time.Now()
			if err := qemu.Start(); err != nil {
				t.Fatal(err)
			}
			qemuDone := make(chan error, 1)
			go func() { qemuDone <- qemu.Wait() }()
			t.Cleanup(func() {
				select {
				case <-qemuDone:
				default:
					qemu.Process.Kill()
					<-qemuDone
				}
				if t.Failed() {
					b, _ := os.ReadFile(serial)
					t.Logf("serial console:\n%s\nqemu: %s", b, qemuLog.String())
				}
			})
			var hb api.HeartbeatRequest
			select {
			case hb = <-beats:
			case err := <-qemuDone:
				qemuDone <- err
				t.Fatalf("QEMU ended before a heartbeat: %v", err)
			case <-time.After(400 * time.Second): // TCG on 2 shared cores: a bound, not a measure
				t.Fatal("no heartbeat within 400 s")
			}
			t.Logf("%s: first heartbeat %s after QEMU started", fw, time.Since(booted).Round(time.Second))
			if hb.AgentToken != token {
				t.Errorf("heartbeat token %q, want the one from the CD", hb.AgentToken)
			}
			if !strings.HasPrefix(hb.CallbackURL, "http://10.97.0.5:") {
				t.Errorf("callback URL %q: want the static address from network_data", hb.CallbackURL)
			}
			if q := <-lookups; !strings.Contains(q, "52%3A54%3A00%3Aaa%3Abb%3Acd") && !strings.Contains(q, mac) {
				t.Errorf("lookup query %s", q)
			}
			console, _ := os.ReadFile(serial)
			for _, want := range []string{"Ironwork: booting the deploy ramdisk from virtual media", "network: configured from network_data on /dev/sr0"} {
				if !bytes.Contains(console, []byte(want)) {
					t.Errorf("console lacks %q", want)
				}
			}
			if bytes.Contains(console, []byte("network: DHCP")) {
				t.Error("the agent ran DHCP although network_data gave a static address")
			}
		})
	}
}
