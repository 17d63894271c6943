package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/lockedbuf"
	"github.com/ironwork/ironwork/internal/server"
)

// TestDeployWithTheAgentOverIPv6: the agent deploys with every URL an IPv6 literal: the API
// at http://[::1]:port, the image at http://[::1]:port/image.qcow2, and its own callback URL,
// which it finds from the route to the API (no --advertise-url) and must bracket. Lookup,
// heartbeat, the image download and the node going active all cross IPv6 (loopback: the
// ramdisk's IPv6 bring-up is tested by internal/agent/initsys, a UEFI machine's IPv6 boot by
// TestIPv6NetworkBootQEMU).
func TestDeployWithTheAgentOverIPv6(t *testing.T) {
	probe, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	agentAddr := probe.Addr().String()
	probe.Close()
	dir := t.TempDir()
	mac := hostMAC(t)
	raw, qcow := qemuImage(t, dir)
	agent := buildAgent(t)
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	var imageFrom lockedbuf.Buffer
	images := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		imageFrom.Write([]byte(r.RemoteAddr + "\n"))
		http.ServeContent(w, r, "image.qcow2", time.Time{}, bytes.NewReader(qcow))
	}))
	images.Listener.Close()
	images.Listener = ln
	images.Start()
	defer images.Close()
	if !strings.HasPrefix(images.URL, "http://[::1]:") {
		t.Fatalf("image server at %s", images.URL)
	}
	sum := sha256.Sum256(qcow)
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, bytes.Repeat([]byte{0xAA}, 16<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "sqlite://"+filepath.Join(dir, "db"), func(c *server.Config) {
		c.Listen = "[::1]:0"
		noClean := false
		c.AutomatedClean = &noClean
		c.AgentPowerOffTimeout = server.Duration{Duration: 2 * time.Second}
	})
	if !strings.HasPrefix(srv.URL(), "http://[::1]:") {
		t.Fatalf("API at %s, want http://[::1]:port", srv.URL())
	}
	c := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	ctx := context.Background()
	var node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "ipv6-1", "driver": "fake-hardware",
		"deploy_interface": "direct", "boot_interface": "fake",
		"instance_info": map[string]any{"image_source": images.URL + "/image.qcow2", "image_checksum": "sha256:" + hex.EncodeToString(sum[:]),
			"image_disk_format": "qcow2"}}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	if err := c.Do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": mac}, nil); err != nil {
		t.Fatal(err)
	}
	provisionVerb(t, c, uuid, "manage")
	waitState(t, c, uuid, "manageable", 10*time.Second)
	provisionVerb(t, c, uuid, "provide")
	waitState(t, c, uuid, "available", 10*time.Second)

	start := time.Now()
	provisionVerb(t, c, uuid, "active")
	waitState(t, c, uuid, "wait call-back", 10*time.Second)
	out := &lockedbuf.Buffer{}
	cmd := exec.Command(agent, "--api-url", srv.URL(), "--listen", agentAddr, "--root-device", disk,
		"--no-poweroff", "--lookup-timeout", "60s")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- agent log ---\n%s", out.String())
		}
	})
	var seen string
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) && seen == "" { // the callback URL the conductor was given
		var n map[string]any
		if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid, nil, &n); err == nil {
			if dii, _ := n["driver_internal_info"].(map[string]any); dii["agent_url"] != nil {
				seen, _ = dii["agent_url"].(string)
			}
			if n["provision_state"] == "active" || n["provision_state"] == "deploy failed" {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	n := waitState(t, c, uuid, "active", 90*time.Second)
	t.Logf("deploy over IPv6 with the agent: %.1f s (load %s)", time.Since(start).Seconds(), loadAvg())
	if seen == "" { // the deploy went by between two polls: take the URL from the agent's log
		if _, after, ok := strings.Cut(out.String(), "commands on "); ok {
			seen, _, _ = strings.Cut(after, ",")
		}
	}
	// http or https (auto-TLS): the host must be the bracketed literal the agent listens on.
	if u, err := url.Parse(seen); seen == "" || err != nil || u.Host != agentAddr || u.Hostname() != "::1" {
		t.Errorf("agent_url %q (%v), want http(s)://%s", seen, err, agentAddr)
	}
	t.Logf("agent callback URL: %q", seen)
	if n["power_state"] != "power on" {
		t.Errorf("deployed node is %v", n["power_state"])
	}
	if from := imageFrom.String(); !strings.HasPrefix(from, "[::1]:") {
		t.Errorf("the image was fetched from %q, want [::1]", from)
	}
	b := mapDisk(t, disk)
	if !bytes.Equal(b[:len(raw)], raw) {
		t.Fatal("the disk does not hold the image (compared with the raw source of the qcow2)")
	}
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}
