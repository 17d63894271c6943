package lab_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/lab"
)

// checkDiscovery checks the discovery of machine m, a machine nobody enrolled (2 vCPUs, 1536
// MiB, disks of 8 and 4 GiB, two NICs) that lab.Up powered on with the server's discovery on:
// the machine network-boots the discovery ramdisk, its agent posts the inventory with no node
// known, and the server enrols exactly one node for it (besides the lab's enrolled ones,
// whose UUIDs are known), in enroll, with the machine's hardware as properties, its inventory
// and a port for its PXE MAC; the machine powers itself off and was powered on once. It skips when the
// server has no agent inspect interface. (It rides on TestLabShapesAndDiscovery's lab.)
func checkDiscovery(ctx context.Context, t testing.TB, st *lab.State, m lab.Node, known ...string) {
	c := st.Client()
	begin := time.Now()
	var drv map[string]any
	if err := c.Do(ctx, http.MethodGet, "/v1/drivers/redfish", nil, &drv); err != nil {
		t.Fatal(err)
	}
	if ifs, _ := drv["enabled_inspect_interfaces"].([]any); !slices.Contains(ifs, any("agent")) {
		t.Skipf("the server has no agent inspect interface (enabled: %v): the server side of inspection is not on this branch", ifs)
	}
	// The nodes the server enrolled itself: all but the known ones.
	discovered := func() []map[string]any {
		var nodes struct{ Nodes []map[string]any }
		if err := c.Do(ctx, http.MethodGet, "/v1/nodes?fields=uuid,name,provision_state", nil, &nodes); err != nil {
			t.Fatal(err)
		}
		var out []map[string]any
		for _, n := range nodes.Nodes {
			if uuid, _ := n["uuid"].(string); !slices.Contains(known, uuid) {
				out = append(out, n)
			}
		}
		return out
	}
	var nodes []map[string]any
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if nodes = discovered(); len(nodes) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if len(nodes) == 0 {
		t.Fatal("no node enrolled within 10 minutes")
	}
	t.Logf("enrolled %.1f s after lab up: %v", time.Since(begin).Seconds(), nodes)
	// The machine powers off after its inventory; give it time to do anything twice.
	for i := 0; i < 60 && machineOn(t, m); i++ {
		time.Sleep(2 * time.Second)
	}
	time.Sleep(10 * time.Second)
	nodes = discovered()
	if machineOn(t, m) || powerOns(t, st, m.Name) != 1 {
		t.Errorf("machine on %v after its inventory, powered on %d times (want off, once)", machineOn(t, m), powerOns(t, st, m.Name))
	}
	if len(nodes) != 1 || nodes[0]["provision_state"] != "enroll" {
		t.Fatalf("nodes after discovery: %v, want one in enroll", nodes)
	}
	uuid, _ := nodes[0]["uuid"].(string)
	var node map[string]any
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid, nil, &node); err != nil {
		t.Fatal(err)
	}
	props, _ := node["properties"].(map[string]any)
	if fmt.Sprint(props["cpus"]) != "2" || fmt.Sprint(props["memory_mb"]) != "1536" || fmt.Sprint(props["local_gb"]) != "3" {
		t.Errorf("discovered properties %v", props)
	}
	var ports struct{ Ports []map[string]any }
	if err := c.Do(ctx, http.MethodGet, "/v1/ports?node="+uuid, nil, &ports); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, p := range ports.Ports {
		addrs = append(addrs, fmt.Sprint(p["address"]))
	}
	if !slices.Contains(addrs, m.MAC) {
		t.Errorf("ports %v lack the PXE MAC %s", addrs, m.MAC)
	}
	var inv map[string]any
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid+"/inventory", nil, &inv); err != nil {
		t.Errorf("inventory of the discovered node: %v", err)
	}
}

// machineOn reads the machine's PowerState from the lab's vbmc (Redfish).
func machineOn(t testing.TB, n lab.Node) bool {
	req, _ := http.NewRequest(http.MethodGet, n.BMCAddress+"/redfish/v1/Systems/"+n.Name, nil)
	req.SetBasicAuth(lab.BMCUser, lab.BMCPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sys struct{ PowerState string }
	json.NewDecoder(resp.Body).Decode(&sys)
	return sys.PowerState == "On"
}
