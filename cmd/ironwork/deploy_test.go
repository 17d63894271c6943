package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
)

// waitState polls a node until it reaches state with no target, bounded in time.
func waitState(t *testing.T, c *api.Client, node, state string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n map[string]any
		if err := c.Do(context.Background(), http.MethodGet, "/v1/nodes/"+node, nil, &n); err != nil {
			t.Fatal(err)
		}
		if n["provision_state"] == state && n["target_provision_state"] == nil {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s is %v (target %v), not %s: %v", node, n["provision_state"], n["target_provision_state"], state, n["last_error"])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDeployCommand runs ironwork deploy and undeploy against a real server with fake
// hardware: the allocation picks the only node with the asked trait, the VIFs land on its
// ports, the instance information carries the image, and undeploy gives everything back.
func TestDeployCommand(t *testing.T) {
	url := startServer(t)
	c := &api.Client{BaseURL: url}
	ctx := context.Background()
	for i, trait := range []string{"CUSTOM_SMALL", "CUSTOM_GPU"} {
		name := fmt.Sprintf("dep-%d", i)
		if code, _, errs := cli(t, url, "node", "create", "--driver", "fake-hardware", "--name", name,
			"--resource-class", "lab", "--network-interface", "flat", "--property", "cpu_arch=x86_64"); code != 0 {
			t.Fatalf("create %s: %s", name, errs)
		}
		if err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+name+"/traits/"+trait, nil, nil); err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 2; j++ {
			if code, _, errs := cli(t, url, "port", "create", fmt.Sprintf("52:54:00:77:%02x:%02x", i, j), "--node", name); code != 0 {
				t.Fatalf("port: %s", errs)
			}
		}
		for _, target := range []string{"manage", "provide"} {
			if err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+name+"/states/provision", map[string]any{"target": target}, nil); err != nil {
				t.Fatalf("%s %s: %v", target, name, err)
			}
			waitState(t, c, name, map[string]string{"manage": "manageable", "provide": "available"}[target])
		}
	}
	key := filepath.Join(t.TempDir(), "id.pub")
	if err := os.WriteFile(key, []byte("# a comment\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample tester@lab\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cli(t, url, "deploy", "--resource-class", "lab", "--trait", "CUSTOM_GPU", "--capability", "cpu_arch=x86_64",
		"--image", "http://192.0.2.1/disk.raw", "--checksum", strings.Repeat("ab", 32), "--hostname", "gpu-1",
		"--ssh-key", key, "--network", "ip=10.213.0.50/24,gateway=10.213.0.1", "--network", "dhcp", "--wait", "60s", "-o", "json")
	if code != 0 {
		t.Fatalf("deploy: %d\n%s\n%s", code, out, errs)
	}
	var inst struct {
		Node, NodeName, Allocation string
		NICs                       []struct{ VIF, Port, MAC, Address string }
	}
	if err := json.Unmarshal([]byte(out), &inst); err != nil {
		t.Fatalf("deploy output: %v\n%s", err, out)
	}
	if inst.NodeName != "dep-1" || len(inst.NICs) != 2 || inst.NICs[0].Address != "10.213.0.50/24" || inst.NICs[1].Address != "dhcp" {
		t.Fatalf("deployed instance: %+v", inst)
	}
	if inst.NICs[0].MAC == "" || inst.NICs[0].MAC == inst.NICs[1].MAC || !strings.HasPrefix(inst.NICs[0].MAC, "52:54:00:77:01:") {
		t.Errorf("VIFs not bound to two ports of the node: %+v", inst.NICs)
	}
	if !strings.Contains(errs, "active") {
		t.Errorf("no progress shown:\n%s", errs)
	}
	n := waitState(t, c, "dep-1", "active")
	ii, _ := n["instance_info"].(map[string]any)
	if ii["image_source"] != "http://192.0.2.1/disk.raw" || ii["image_os_hash_algo"] != "sha256" {
		t.Errorf("instance_info: %v", ii)
	}
	if cd, ok := ii["configdrive"]; ok && cd != "******" {
		t.Errorf("the config drive shows in instance_info: %v", cd)
	}
	if n["allocation_uuid"] != inst.Allocation || n["instance_uuid"] == nil {
		t.Errorf("node allocation %v / instance %v, want allocation %s", n["allocation_uuid"], n["instance_uuid"], inst.Allocation)
	}
	var alloc map[string]any
	if err := c.Do(ctx, http.MethodGet, "/v1/allocations/"+inst.Allocation, nil, &alloc); err != nil || alloc["name"] != "gpu-1" || alloc["state"] != "active" {
		t.Errorf("allocation: %v %v", alloc, err)
	}

	// A second request for the trait finds nothing: the allocation error comes back.
	code, _, errs = cli(t, url, "deploy", "--resource-class", "lab", "--trait", "CUSTOM_GPU", "--image", "http://192.0.2.1/disk.raw",
		"--hostname", "gpu-2", "--wait", "30s")
	if code != 1 || !strings.Contains(errs, "no node for gpu-2") {
		t.Errorf("deploy with no free node: %d %q", code, errs)
	}
	var allocs struct {
		Allocations []map[string]any `json:"allocations"`
	}
	if err := c.Do(ctx, http.MethodGet, "/v1/allocations", nil, &allocs); err != nil || len(allocs.Allocations) != 1 {
		t.Errorf("the failed allocation was not removed: %v %v", allocs.Allocations, err)
	}

	code, out, errs = cli(t, url, "undeploy", "dep-1", "--wait", "60s")
	if code != 0 || !strings.Contains(out, "available") {
		t.Fatalf("undeploy: %d %s %s", code, out, errs)
	}
	n = waitState(t, c, "dep-1", "available")
	if n["allocation_uuid"] != nil || n["instance_uuid"] != nil {
		t.Errorf("after undeploy: allocation %v instance %v", n["allocation_uuid"], n["instance_uuid"])
	}
	var vifs struct {
		VIFs []any `json:"vifs"`
	}
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/dep-1/vifs", nil, &vifs); err != nil || len(vifs.VIFs) != 0 {
		t.Errorf("VIFs after undeploy: %v %v", vifs.VIFs, err)
	}
	if code, _, errs := cli(t, url, "deploy", "--image", "http://x/y"); code != 2 || !strings.Contains(errs, "resource class") {
		t.Errorf("deploy without a class: %d %q", code, errs)
	}
}
