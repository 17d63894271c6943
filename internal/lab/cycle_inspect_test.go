package lab_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/agent"
	"github.com/ironwork/ironwork/internal/lab"
	"github.com/ironwork/ironwork/internal/server"
)

// TestCycleInspect drives lab.Cycle with CycleOptions.Inspect (the path of `ironwork lab demo
// --inspect`) against the whole server, no QEMU: a fake-hardware node enrolled as
// `lab up --inspect` enrols (no properties) goes manage → inspect, where the test posts an
// inventory to continue_inspection as the agent does, → manageable with the inspected
// properties → provide → deploy → active; the result carries the properties and the phases.
func TestCycleInspect(t *testing.T) {
	cfg := server.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Database = "sqlite://" + filepath.Join(t.TempDir(), "ironwork.db")
	cfg.Hostname = "test-conductor"
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		t.Fatalf("start server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		srv.Close()
	})
	c := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	var node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "n-1", "driver": "fake-hardware",
		"boot_interface": "fake", "deploy_interface": "fake", "resource_class": lab.ResourceClass}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	const mac = "52:54:00:1e:00:01"
	if err := c.Do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": mac, "pxe_enabled": true}, nil); err != nil {
		t.Fatal(err)
	}
	st := &lab.State{APIURL: srv.URL(), Nodes: []lab.Node{{Name: "n-1", UUID: uuid}},
		Image: "http://127.0.0.1:9/lab.img", ImageSH: strings.Repeat("0", 64)}

	// The agent's part: once the node waits for it, post the inventory.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := lab.WaitState(ctx, c, uuid, "inspect wait", time.Minute, nil); err != nil {
			t.Errorf("inspect wait: %v", err)
			return
		}
		pxe := mac
		inv := agent.Inventory{
			Interfaces: []agent.InventoryInterface{{Name: "enp0s3", MACAddress: mac, HasCarrier: true}},
			CPU:        agent.InventoryCPU{Count: 2, Architecture: "x86_64"},
			Disks:      []agent.InventoryDisk{{Name: "/dev/vda", Size: 8 << 30}},
			Memory:     agent.InventoryMemory{Total: 1536<<20 - 90<<20, PhysicalMB: 1536},
			Boot:       agent.InventoryBoot{CurrentBootMode: "bios", PXEInterface: &pxe},
		}
		if err := c.Do(ctx, http.MethodPost, "/v1/continue_inspection", map[string]any{"inventory": inv}, nil); err != nil {
			t.Errorf("continue_inspection: %v", err)
		}
	}()
	var notes []string
	var mu sync.Mutex
	res := lab.Cycle(ctx, st, []string{"n-1"}, lab.CycleOptions{Inspect: true, NoMarker: true, SkipUndeploy: true,
		Timeout: time.Minute, OnProgress: func(p lab.Progress) {
			mu.Lock()
			defer mu.Unlock()
			if p.Note != "" {
				notes = append(notes, p.Note)
			}
		}})
	wg.Wait()
	r := res[0]
	if r.Err != nil {
		t.Fatalf("cycle: %v (notes %q)", r.Err, notes)
	}
	var phases []string
	for _, p := range r.Phases {
		phases = append(phases, p.Name)
	}
	if got := strings.Join(phases, ", "); got != "manage, inspect, provide (cleaning), deploy" {
		t.Errorf("phases %q", got)
	}
	want := "capabilities=boot_mode:bios cpu_arch=x86_64 cpus=2 local_gb=7 memory_mb=1536"
	if got := lab.FormatProperties(r.Properties); got != want {
		t.Errorf("inspected properties %q, want %q", got, want)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "inspected: "+want) {
		t.Errorf("no progress note with the inspected properties: %q", notes)
	}
	var n map[string]any
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid, nil, &n); err != nil {
		t.Fatal(err)
	}
	if n["provision_state"] != "active" || n["inspect_interface"] != "agent" {
		t.Errorf("node in %v with inspect_interface %v, want active and agent", n["provision_state"], n["inspect_interface"])
	}
}
