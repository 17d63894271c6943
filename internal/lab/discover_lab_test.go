package lab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork/internal/lab"
)

// TestLabDiscovery starts a machine nobody enrolled (2 vCPUs, 1536 MiB, disks of 8 and 4 GiB,
// two NICs) with the server's discovery on: the machine network-boots the discovery ramdisk,
// its agent posts the inventory with no node known, and the server enrols exactly one node
// for it, in enroll, with the machine's hardware as properties, its inventory and a port for
// its PXE MAC; the machine powers itself off. It skips when the server has no agent inspect
// interface.
func TestLabDiscovery(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and taps")
	}
	kernel := lab.FindKernel()
	if err := lab.Check(kernel); err != nil {
		t.Skip(err)
	}
	t.Parallel() // two labs at a time (scripts/test.sh: -parallel 2)
	ironworkBin, agentBin := labBinaries(t)
	dir := filepath.Join(t.TempDir(), "lab")
	ns := fmt.Sprintf("iwlabd-%d", os.Getpid()%10000)
	var logs bytes.Buffer
	shape := lab.Shape{CPUs: 2, MemoryMB: 1536, Disks: []int64{8 << 30, 4 << 30}, NICs: 2}
	opts := lab.Options{Dir: dir, Netns: ns, Subnet: "10.217.0", Ironwork: ironworkBin,
		Agent: agentBin, KernelDir: kernel, Cache: labCache(), Log: &logs,
		Nodes: []lab.NodeSpec{{Name: "new-machine", Firmware: "bios", Power: "redfish", Shape: shape, Discover: true}}}
	start := time.Now()
	st, err := lab.Up(context.Background(), opts)
	t.Cleanup(func() {
		if err := lab.Down(dir, nil); err != nil {
			t.Errorf("lab down: %v", err)
		}
		if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), ns) {
			t.Errorf("network namespace %s is left after down", ns)
		}
	})
	if err != nil {
		t.Fatalf("lab up: %v\n%s", err, logs.String())
	}
	t.Logf("lab up (the machine powered on unenrolled): %.1f s", time.Since(start).Seconds())
	defer func() {
		if t.Failed() {
			for _, f := range []string{"serve.log", "vbmc.log", "new-machine.serial.log"} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				t.Logf("--- %s (tail) ---\n%s", f, tailLines(b, 40))
			}
		}
	}()
	ctx := context.Background()
	c := st.Client()
	var drv map[string]any
	if err := c.Do(ctx, http.MethodGet, "/v1/drivers/redfish", nil, &drv); err != nil {
		t.Fatal(err)
	}
	if ifs, _ := drv["enabled_inspect_interfaces"].([]any); !slices.Contains(ifs, any("agent")) {
		t.Skipf("the server has no agent inspect interface (enabled: %v): the server side of inspection is not on this branch", ifs)
	}
	m := st.Nodes[0]
	var nodes struct{ Nodes []map[string]any }
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if err := c.Do(ctx, http.MethodGet, "/v1/nodes?fields=uuid,name,provision_state", nil, &nodes); err != nil {
			t.Fatal(err)
		}
		if len(nodes.Nodes) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if len(nodes.Nodes) == 0 {
		t.Fatal("no node enrolled within 10 minutes")
	}
	t.Logf("power on to enrolled: %.1f s: %v", time.Since(start).Seconds(), nodes.Nodes)
	// The machine powers off after its inventory; give it time to do anything twice.
	for i := 0; i < 60 && machineOn(t, m); i++ {
		time.Sleep(2 * time.Second)
	}
	time.Sleep(10 * time.Second)
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes?fields=uuid,name,provision_state", nil, &nodes); err != nil {
		t.Fatal(err)
	}
	if machineOn(t, m) || powerOns(t, st, m.Name) != 1 {
		t.Errorf("machine on %v after its inventory, powered on %d times (want off, once)", machineOn(t, m), powerOns(t, st, m.Name))
	}
	if len(nodes.Nodes) != 1 || nodes.Nodes[0]["provision_state"] != "enroll" {
		t.Fatalf("nodes after discovery: %v, want one in enroll", nodes.Nodes)
	}
	uuid, _ := nodes.Nodes[0]["uuid"].(string)
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
func machineOn(t *testing.T, n lab.Node) bool {
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
