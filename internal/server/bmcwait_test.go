package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/vbmc"
)

// TestFirmwareUpdateSurvivesAConductorRestart starts a firmware.update clean step against
// `ironwork vbmc` (its update task runs 2 s), stops the conductor while the node waits in
// "clean wait" on the BMC's task, starts a new one on the same database, and checks that the
// new one polls the same task to its end: the node reaches manageable with the new version.
func TestFirmwareUpdateSurvivesAConductorRestart(t *testing.T) {
	const password = "Restart-S3cret-pw"
	v, err := vbmc.Start(vbmc.Config{Username: "admin", Password: password, RedfishListen: "127.0.0.1:0", UpdateSeconds: 2,
		Machines: []vbmc.MachineConfig{{Name: "vm1", Command: []string{"sh", "-c", "exec sleep 300", "vm"}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	vctx, stopVBMC := context.WithCancel(context.Background())
	vdone := make(chan struct{})
	go func() { v.Serve(vctx); close(vdone) }()
	t.Cleanup(func() { stopVBMC(); v.Close(); <-vdone })
	m := v.Machine("vm1")
	fw, _ := firmwareImages(t)
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "ironwork.db")
	dataDir := t.TempDir()
	cfgFn := func(c *server.Config) {
		c.DataDir = dataDir
		c.BMCPollInterval = server.Duration{Duration: 200 * time.Millisecond}
	}

	// The first conductor, stopped by hand.
	cfg := server.Default()
	cfg.Listen, cfg.Database, cfg.Hostname = "127.0.0.1:0", dsn, "test-conductor"
	cfgFn(&cfg)
	ctx, cancel := context.WithCancel(context.Background())
	srv1, err := server.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv1.Serve(ctx) }()
	stop1 := func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		srv1.Close()
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stop1()
		}
	})

	c := apiClient{t: t, base: srv1.URL()}
	code, _, n := c.do("POST", "/v1/nodes", map[string]any{"name": "rf-restart", "driver": "redfish", "firmware_interface": "redfish",
		"driver_info": map[string]any{"redfish_address": v.RedfishURL, "redfish_system_id": "/redfish/v1/Systems/vm1",
			"redfish_username": "admin", "redfish_password": password}})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, n)
	}
	uuid := n["uuid"].(string)
	c.provision(uuid, "manage")
	c.waitState(uuid, "manageable")
	start := time.Now()
	step := map[string]any{"interface": "firmware", "step": "update",
		"args": map[string]any{"settings": []any{map[string]any{"component": "bios", "url": fw + "/bios-2.1.0.bin"}}}}
	if code, _, out := c.do("PUT", "/v1/nodes/"+uuid+"/states/provision",
		map[string]any{"target": "clean", "clean_steps": []any{step}, "disable_ramdisk": true}); code != http.StatusAccepted {
		t.Fatalf("clean: %d %v", code, out)
	}
	for i := 0; ; i++ {
		_, _, n = c.do("GET", "/v1/nodes/"+uuid, nil)
		if n["provision_state"] == "clean wait" {
			break
		}
		if i == 200 {
			t.Fatalf("node not in clean wait: %v, last_error %v", n["provision_state"], n["last_error"])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if info, _ := n["driver_internal_info"].(map[string]any); info != nil {
		if _, ok := info["bmc_wait"]; !ok {
			t.Fatalf("clean wait without a bmc wait: %v", info)
		}
	}
	stop1()
	stopped = true
	if m.Firmware()["BIOS"] == "2.1.0" {
		t.Log("the update task ended before the restart; the restart is still checked")
	}

	srv2 := startServer(t, dsn, cfgFn)
	c2 := apiClient{t: t, base: srv2.URL()}
	c2.waitState(uuid, "manageable")
	t.Logf("firmware update across a conductor restart took %v", time.Since(start).Round(time.Millisecond))
	if m.Firmware()["BIOS"] != "2.1.0" {
		t.Fatalf("machine's firmware after the clean: %v", m.Firmware())
	}
	code, body := versioned(t, srv2.URL(), "1.86", "GET", "/v1/nodes/rf-restart/firmware", nil)
	if code != http.StatusOK {
		t.Fatalf("firmware: %d %v", code, body)
	}
	found := false
	for _, item := range body["firmware"].([]any) {
		if c := item.(map[string]any); c["component"] == "bios" && c["current_version"] == "2.1.0" {
			found = true
		}
	}
	if !found {
		t.Fatalf("firmware after the restart: %v", body)
	}
	_, _, n = c2.do("GET", "/v1/nodes/"+uuid, nil)
	if n["last_error"] != nil || len(n["clean_step"].(map[string]any)) != 0 {
		t.Fatalf("node after the clean: last_error %v, clean_step %v", n["last_error"], n["clean_step"])
	}
}
