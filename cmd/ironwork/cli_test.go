package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/server"
)

func startServer(t *testing.T) string {
	t.Helper()
	cfg := server.Default()
	cfg.Listen, cfg.DataDir, cfg.Hostname = "127.0.0.1:0", t.TempDir(), "cli-test"
	cfg.Database = "sqlite://" + filepath.Join(cfg.DataDir, "cli.db")
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return srv.URL()
}

// cli runs one ironwork command line against url and returns its exit code and output.
func cli(t *testing.T, url string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append(args, "--url", url), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLI(t *testing.T) {
	url := startServer(t)
	code, out, errs := cli(t, url, "node", "create", "--driver", "fake-hardware", "--name", "cli-1",
		"--property", "cpus=4", "--driver-info", "ipmi_password=topsecret", "-o", "json")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	var node map[string]any
	if err := json.Unmarshal([]byte(out), &node); err != nil {
		t.Fatalf("create output is not JSON: %v\n%s", err, out)
	}
	if strings.Contains(out, "topsecret") || node["name"] != "cli-1" {
		t.Fatalf("create output: %s", out)
	}
	if code, out, _ := cli(t, url, "node", "list"); code != 0 || !strings.Contains(out, "cli-1") || !strings.Contains(out, "PROVISION_STATE") {
		t.Fatalf("list: %d %s", code, out)
	}
	if code, out, errs := cli(t, url, "node", "set", "cli-1", "--maintenance", "--property", "memory_mb=2048", "--extra", "rack=r1", "-o", "json"); code != 0 ||
		!strings.Contains(out, `"memory_mb": "2048"`) || !strings.Contains(out, `"maintenance": true`) {
		t.Fatalf("set: %d %s %s", code, out, errs)
	}
	if code, out, _ := cli(t, url, "node", "unset", "cli-1", "--property", "cpus", "--extra", "rack", "-o", "json"); code != 0 ||
		strings.Contains(out, `"cpus"`) || strings.Contains(out, "rack") {
		t.Fatalf("unset: %d %s", code, out)
	}
	if code, _, errs := cli(t, url, "port", "create", "52:54:00:aa:bb:cc", "--node", "cli-1"); code != 0 {
		t.Fatalf("port create: %s", errs)
	}
	if code, out, _ := cli(t, url, "port", "list", "--node", "cli-1"); code != 0 || !strings.Contains(out, "52:54:00:aa:bb:cc") {
		t.Fatalf("port list: %d %s", code, out)
	}
	if code, out, _ := cli(t, url, "driver", "list"); code != 0 || !strings.Contains(out, "fake-hardware") || !strings.Contains(out, "cli-test") {
		t.Fatalf("driver list: %d %s", code, out)
	}
	if code, out, _ := cli(t, url, "driver", "properties", "ipmi"); code != 0 || !strings.Contains(out, "ipmi_address") {
		t.Fatalf("driver properties: %d %s", code, out)
	}
	if code, out, _ := cli(t, url, "conductor", "show", "cli-test"); code != 0 || !strings.Contains(out, "alive") {
		t.Fatalf("conductor show: %d %s", code, out)
	}
	code, _, errs = cli(t, url, "node", "show", "missing-node")
	if code != 1 || !strings.Contains(errs, "Node missing-node could not be found. (HTTP 404)") {
		t.Fatalf("show missing: %d %q", code, errs)
	}
	code, _, errs = cli(t, url, "node", "create", "--driver", "fake-hardware", "--name", "cli-1")
	if code != 1 || !strings.Contains(errs, "A node with name cli-1 already exists") {
		t.Fatalf("duplicate: %d %q", code, errs)
	}
	if code, _, errs := cli(t, url, "node", "bogus"); code != 2 || !strings.Contains(errs, "unknown verb") {
		t.Fatalf("bad verb: %d %q", code, errs)
	}
	if code, out, _ := cli(t, url, "node", "delete", "cli-1"); code != 0 || !strings.Contains(out, "Deleted node cli-1") {
		t.Fatalf("delete: %d %s", code, out)
	}
	if code, out, _ := cli(t, url, "port", "list"); code != 0 || strings.Contains(out, "52:54:00:aa:bb:cc") {
		t.Fatalf("ports of a deleted node remain: %s", out)
	}
}

func TestServeRefusesUnauthenticatedNonLoopback(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"serve", "--listen", "0.0.0.0:0", "--data-dir", t.TempDir()}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "refusing to serve without authentication") {
		t.Fatalf("serve on 0.0.0.0 without auth: %d %q", code, errb.String())
	}
	code = run(context.Background(), []string{"serve", "--help"}, &out, &errb)
	if code != 0 || !strings.Contains(errb.String(), "-database") || !strings.Contains(errb.String(), "-http-basic-auth-file") {
		t.Fatalf("serve --help: %d %q", code, errb.String())
	}
}

// TestCLIInspect runs "node inspect" (with --wait on a fake-hardware node, without on an
// agent-inspected one, whose inventory the test posts as the agent would) and "node inventory".
func TestCLIInspect(t *testing.T) {
	url := startServer(t)
	ctx := context.Background()
	c := &api.Client{BaseURL: url}
	manage := func(name string) {
		t.Helper()
		if err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "manage"}, nil); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 200; i++ {
			var n map[string]any
			if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+name, nil, &n); err != nil {
				t.Fatal(err)
			}
			if n["provision_state"] == "manageable" && n["target_provision_state"] == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("node %s did not become manageable", name)
	}
	if code, _, errs := cli(t, url, "node", "create", "--driver", "fake-hardware", "--name", "insp-fake"); code != 0 {
		t.Fatalf("create: %s", errs)
	}
	manage("insp-fake")
	if code, out, errs := cli(t, url, "node", "inspect", "insp-fake", "--wait"); code != 0 || !strings.Contains(out, "manageable") {
		t.Fatalf("inspect --wait: %d\n%s\n%s", code, out, errs)
	}
	code, out, errs := cli(t, url, "node", "show", "insp-fake", "-o", "json")
	if code != 0 || !strings.Contains(out, `"provision_state": "manageable"`) || !strings.Contains(out, `"cpus": 4`) {
		t.Fatalf("after inspect --wait: %d\n%s\n%s", code, out, errs)
	}
	if code, _, errs := cli(t, url, "node", "inventory", "insp-fake"); code != 1 || !strings.Contains(errs, "could not be found") {
		t.Fatalf("inventory of a node inspected without one: %d %s", code, errs)
	}

	if code, _, errs := cli(t, url, "node", "create", "--driver", "fake-hardware", "--name", "insp-agent",
		"--inspect-interface", "agent", "--boot-interface", "fake", "--driver-info", "ipmi_address=192.0.2.5"); code != 0 {
		t.Fatalf("create: %s", errs)
	}
	manage("insp-agent")
	if code, out, errs := cli(t, url, "node", "inspect", "insp-agent"); code != 0 || !strings.Contains(out, "inspect requested") {
		t.Fatalf("inspect: %d %s %s", code, out, errs)
	}
	inv := `{"inventory": {"interfaces": [{"name": "eth0", "mac_address": "52:54:00:cc:00:01"}], "bmc_address": "192.0.2.5",
		"cpu": {"count": 8, "architecture": "aarch64"}, "memory": {"physical_mb": 4096}, "disks": [], "boot": {"current_boot_mode": "uefi"}}}`
	var posted map[string]any
	for i := 0; ; i++ {
		err := c.Do(ctx, http.MethodPost, "/v1/continue_inspection", json.RawMessage(inv), &posted)
		if err == nil {
			break
		}
		if i > 200 {
			t.Fatalf("continue_inspection: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // until the node waits in "inspect wait"
	}
	for i := 0; ; i++ {
		code, out, _ := cli(t, url, "node", "inventory", "insp-agent")
		if code == 0 {
			var got struct {
				Inventory struct {
					CPU map[string]any `json:"cpu"`
				} `json:"inventory"`
				PluginData map[string]any `json:"plugin_data"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil || got.Inventory.CPU["architecture"] != "aarch64" || got.PluginData == nil {
				t.Fatalf("inventory output: %v\n%s", err, out)
			}
			break
		}
		if i > 200 {
			t.Fatalf("no inventory: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _, errs := cli(t, url, "port", "inspect", "x"); code != 1 || !strings.Contains(errs, "applies to nodes") {
		t.Fatalf("port inspect: %d %s", code, errs)
	}
}

// TestInspectionRuleCLI creates, lists, changes and deletes an inspection rule with the CLI.
func TestInspectionRuleCLI(t *testing.T) {
	url := startServer(t)
	actions := filepath.Join(t.TempDir(), "actions.json")
	if err := os.WriteFile(actions, []byte(`[{"op": "set-attribute", "args": {"path": "/properties/cpus", "value": "{inventory[cpu][count]}"}}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cli(t, url, "inspection-rule", "create", "--description", "cpus", "--priority", "20", "--actions", "@"+actions,
		"--conditions", `[{"op": "!is-empty", "args": {"value": "{inventory[cpu][count]}"}}]`, "-o", "json")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	var rule map[string]any
	if err := json.Unmarshal([]byte(out), &rule); err != nil || rule["priority"] != float64(20) {
		t.Fatalf("create output: %v %s", err, out)
	}
	id := rule["uuid"].(string)
	if code, out, _ := cli(t, url, "inspection-rule", "list"); code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "PRIORITY") {
		t.Fatalf("list: %d %s", code, out)
	}
	if code, out, errs := cli(t, url, "inspection-rule", "set", id, "--priority", "30", "--sensitive", "-o", "json"); code != 0 ||
		!strings.Contains(out, `"priority": 30`) || !strings.Contains(out, `"actions": null`) {
		t.Fatalf("set: %d %s %s", code, out, errs)
	}
	if code, _, errs := cli(t, url, "inspection-rule", "create", "--actions", `[{"op": "reboot", "args": {}}]`); code != 1 ||
		!strings.Contains(errs, "'reboot' is not one of") {
		t.Fatalf("a bad rule: %d %s", code, errs)
	}
	if code, _, errs := cli(t, url, "inspection-rule", "create", "--actions", `[`); code != 1 || !strings.Contains(errs, "JSON document") {
		t.Fatalf("bad JSON: %d %s", code, errs)
	}
	if code, out, _ := cli(t, url, "inspection-rule", "delete", id); code != 0 || !strings.Contains(out, "Deleted") {
		t.Fatalf("delete: %d %s", code, out)
	}
}
