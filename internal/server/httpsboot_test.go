package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/lockedbuf"
	"github.com/ironwork/ironwork/internal/netns/netnstest"
	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/vbmc"
)

// TestRedfishHTTPSBootCleaning drives a redfish node with boot_interface redfish-https through
// manage and provide (automated cleaning) against `ironwork vbmc`, with no QEMU: the conductor
// PATCHes the vbmc's System with a one-time UefiHttp boot of the node's ISO (HttpBootUri) in
// UEFI mode and powers it on; the vbmc downloads the ISO from the conductor's HTTP boot server
// on the provisioning network (its media_netns); the real agent, run in that network with the
// kernel command line read from the downloaded ISO (its pregenerated token included), cleans;
// and clean-up clears HttpBootUri.
func TestRedfishHTTPSBootCleaning(t *testing.T) {
	t.Parallel() // mostly waits on a guest under TCG: overlaps the package's other long tests
	netnstest.Need(t)
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("xorriso is not installed")
	}
	work := t.TempDir()
	agent := buildAgent(t)
	kernel, ramdisk := filepath.Join(work, "vmlinuz"), filepath.Join(work, "initrd")
	os.WriteFile(kernel, []byte("KERNEL"), 0o644)
	os.WriteFile(ramdisk, []byte("RAMDISK"), 0o644)
	disk := filepath.Join(work, "disk.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}

	ns := netnstest.New(t, "iwhb")
	netnstest.Bridge(t, ns, "br0", "10.93.0.1/24", "fd93::1/64")
	logs := &lockedbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- server log ---\n%s", logs.String())
		}
	})
	srv := startBootServer(t, logs, func(c *server.Config) {
		c.ProvisioningNetns, c.ProvisioningInterface = ns, "br0"
		c.FileURLAllowedPaths = []string{work}
	})
	v, err := vbmc.Start(vbmc.Config{Username: "admin", Password: "password", RedfishListen: "127.0.0.1:0", MediaNetns: ns,
		Machines: []vbmc.MachineConfig{{Name: "uefi", Command: []string{"sh", "-c", "exec sleep 300", "vm", "-bios", "OVMF.fd"}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	vctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { v.Serve(vctx); close(done) }()
	t.Cleanup(func() { cancel(); v.Close(); <-done })
	m := v.Machine("uefi")

	c := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	ctx := context.Background()
	var node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "https-1", "driver": "redfish", "boot_interface": "redfish-https",
		"properties": map[string]any{"capabilities": "boot_mode:uefi"},
		"driver_info": map[string]any{"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/uefi",
			"redfish_username": "admin", "redfish_password": "password", "deploy_kernel": kernel, "deploy_ramdisk": "file://" + ramdisk}}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	provisionVerb(t, c, uuid, "manage")
	waitState(t, c, uuid, "manageable", 20*time.Second)
	start := time.Now()
	provisionVerb(t, c, uuid, "provide")
	waitState(t, c, uuid, "clean wait", 60*time.Second)
	t.Logf("provide to clean wait (ISO built, UefiHttp set, ISO downloaded by the vbmc at power-on): %.1f s", time.Since(start).Seconds())

	uri := m.HTTPBootURI()
	if !strings.Contains(uri, "/vmedia/"+uuid+"/") || !strings.HasPrefix(uri, "http://10.93.0.1:") {
		t.Fatalf("HttpBootUri the vbmc received: %q", uri)
	}
	if mode := m.BootMode(); mode != vbmc.ModeUEFI {
		t.Fatalf("boot mode the vbmc received: %s", mode)
	}
	if m.Media() != "" {
		t.Fatalf("redfish-https inserted virtual media: %q", m.Media())
	}
	if !m.On() {
		t.Fatal("the machine is off in clean wait")
	}
	args := strings.Join(m.LastArgs(), " ")
	file := regexp.MustCompile(`id=httpboot,media=cdrom,readonly=on,format=raw,file=(\S+)`).FindStringSubmatch(args)
	if file == nil || !strings.Contains(args, "drive=httpboot,bootindex=0") {
		t.Fatalf("the machine did not start from the HTTP boot image: %s", args)
	}
	if dev, persistent := m.Boot(); dev != vbmc.BootDisk || !persistent {
		t.Fatalf("the UefiHttp boot was not one-time: next boot %s persistent=%v", dev, persistent)
	}
	out := t.TempDir()
	if msg, err := exec.Command("xorriso", "-osirrox", "on", "-indev", file[1], "-extract", "/ironwork/grub.cfg", filepath.Join(out, "grub.cfg")).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, msg)
	}
	cfg, _ := os.ReadFile(filepath.Join(out, "grub.cfg"))
	var params []string
	for _, p := range regexp.MustCompile(`'([^']*)'`).FindAllStringSubmatch(string(cfg), -1) {
		if strings.Contains(p[1], "=") {
			params = append(params, p[1])
		}
	}
	cmdline := strings.Join(params, " ")
	if !strings.Contains(cmdline, "ipa-agent-token=") || !strings.Contains(cmdline, "ironwork-node="+uuid) {
		t.Fatalf("kernel command line on the ISO: %q", cmdline)
	}
	cmdFile := filepath.Join(out, "cmdline")
	os.WriteFile(cmdFile, []byte(cmdline+"\n"), 0o644)

	port := 20000 + rand.IntN(20000)
	agentOut := &lockedbuf.Buffer{}
	a := exec.Command("ip", "netns", "exec", ns, agent, "--cmdline", cmdFile, "--listen", fmt.Sprintf("10.93.0.1:%d", port),
		"--advertise-url", fmt.Sprintf("http://10.93.0.1:%d", port), "--root-device", disk, "--no-poweroff", "--lookup-timeout", "60s")
	a.Stdout, a.Stderr = agentOut, agentOut
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan struct{})
	go func() { a.Wait(); close(agentDone) }()
	t.Cleanup(func() {
		a.Process.Kill()
		<-agentDone
		if t.Failed() {
			t.Logf("--- agent log ---\n%s", agentOut.String())
		}
	})
	n := waitState(t, c, uuid, "available", 120*time.Second)
	t.Logf("provide to available with the agent: %.1f s", time.Since(start).Seconds())
	if u := m.HTTPBootURI(); u != "" {
		t.Fatalf("HttpBootUri after cleaning: %q", u)
	}
	if dii, _ := n["driver_internal_info"].(map[string]any); dii["ironwork_vmedia"] != nil {
		t.Fatalf("the boot ISO's record outlives cleaning: %v", dii)
	}
	if _, err := os.Stat(file[1]); !os.IsNotExist(err) {
		t.Errorf("the vbmc's downloaded image outlives the cleared URI: %v", err)
	}
}
