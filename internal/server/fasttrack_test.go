package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/lockedbuf"
	"github.com/ironwork/ironwork/internal/server"
)

// TestDirectDeployFastTrack: with fast_track on, the real agent that cleaned a node stays up
// in available (the node powered on, its heartbeats accepted and recorded), and the deploy
// uses that same agent process: no second agent is started, so a deploy that rebooted or
// forgot the agent could not reach active.
func TestDirectDeployFastTrack(t *testing.T) {
	dir := t.TempDir()
	mac := hostMAC(t)
	raw, qcow := qemuImage(t, dir)
	agent := buildAgent(t)
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "image.qcow2", time.Time{}, bytes.NewReader(qcow))
	}))
	defer images.Close()
	sum := sha256.Sum256(qcow)
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, bytes.Repeat([]byte{0xAA}, 16<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &lockedbuf.Buffer{}
	srv := startServerLog(t, "sqlite://"+filepath.Join(dir, "db"), slog.New(slog.NewTextHandler(logs, nil)), func(c *server.Config) {
		c.AgentPowerOffTimeout = server.Duration{Duration: 2 * time.Second}
		c.FastTrack = true
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- server log ---\n%s", logs.String())
		}
	})
	c := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	ctx := context.Background()
	var node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "fast-1", "driver": "fake-hardware",
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
	waitState(t, c, uuid, "clean wait", 10*time.Second)
	a := startAgent(t, agent, srv.URL(), disk)
	n := waitState(t, c, uuid, "available", 60*time.Second)
	if n["power_state"] != "power on" {
		t.Fatalf("fast track: node is %v after cleaning, want power on", n["power_state"])
	}
	dii, _ := n["driver_internal_info"].(map[string]any)
	if dii["agent_url"] == nil || dii["agent_secret_token"] != "******" {
		t.Fatalf("fast track: the agent was forgotten after cleaning, or its token shown: %v", dii)
	}
	// The agent goes on heartbeating in available, and the heartbeats are recorded.
	first := dii["agent_last_heartbeat"]
	deadline := time.Now().Add(40 * time.Second)
	for {
		if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid, nil, &n); err != nil {
			t.Fatal(err)
		}
		dii, _ = n["driver_internal_info"].(map[string]any)
		if dii["agent_last_heartbeat"] != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no heartbeat recorded in available within 40 s (last %v)", first)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if strings.Contains(a.out.String(), "heartbeat failed") {
		t.Errorf("a heartbeat in available was refused:\n%s", a.out.String())
	}

	start := time.Now()
	provisionVerb(t, c, uuid, "active")
	n = waitState(t, c, uuid, "active", 60*time.Second)
	t.Logf("fast-track deploy with the agent cleaning left running: %.1f s", time.Since(start).Seconds())
	if !strings.Contains(logs.String(), "fast track: the deploy agent is up; no reboot") {
		t.Error("the deploy did not take the fast track")
	}
	b := mapDisk(t, disk)
	if !bytes.Equal(b[:len(raw)], raw) {
		t.Fatal("the disk does not hold the image")
	}
	if dii, _ := n["driver_internal_info"].(map[string]any); dii["agent_url"] != nil || dii["agent_secret_token"] != nil {
		t.Errorf("the agent's URL or token outlived the deploy: %v", dii)
	}
}
