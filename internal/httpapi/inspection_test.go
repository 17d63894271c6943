package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/fake"
	"github.com/ironwork/ironwork/internal/driver/network"
	"github.com/ironwork/ironwork/internal/httpapi"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// inspectionInventory is a small inventory as ironic-python-agent sends it.
const inspectionInventory = `{"interfaces": [{"name": "eth0", "mac_address": "52:54:00:aa:bb:01", "ipv4_address": "10.0.0.9", "has_carrier": true, "lldp": []}],
 "cpu": {"model_name": "QEMU", "count": 4, "architecture": "x86_64", "flags": []},
 "disks": [{"name": "/dev/vda", "size": 42949672960, "rotational": true, "model": "", "vendor": "0x1af4"}],
 "memory": {"total": 8000000000, "physical_mb": 8192}, "bmc_address": "192.0.2.33",
 "system_vendor": {"product_name": "KVM", "serial_number": "S1", "manufacturer": "QEMU"},
 "boot": {"current_boot_mode": "bios", "pxe_interface": "52:54:00:aa:bb:01"}}`

// inspectAPI serves the API with a real conductor (fake hardware) and a node in "inspect wait"
// with a port of MAC 52:54:00:aa:bb:01.
func inspectAPI(t testing.TB, cfg func(*conductor.Config)) (*httptest.Server, *sqlstore.Store, *conductor.Conductor, *ironwork.Node) {
	t.Helper()
	var c *conductor.Conductor
	ts, st := newAPI(t, func(o *httpapi.Options) {
		reg := conductor.Registry{}
		fake.Register(reg)
		network.Register(reg)
		ccfg := conductor.Defaults()
		ccfg.Hostname = "c1"
		if cfg != nil {
			cfg(&ccfg)
		}
		c = conductor.New(ccfg, o.Store, ironwork.DefaultDriverConfig(), reg, nil)
		o.Conductor = localConductor{c}
	})
	t.Cleanup(c.Stop)
	n := &ironwork.Node{Name: "n1", Driver: "fake-hardware", ProvisionState: ironwork.InspectWait, TargetProvisionState: ironwork.Manageable,
		PowerState: ironwork.PowerOn}
	if err := ironwork.DefaultDriverConfig().ResolveInterfaces(n); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.CreateNode(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := st.CreatePort(ctx, &ironwork.Port{NodeUUID: n.UUID, Address: "52:54:00:aa:bb:01", PXEEnabled: true}); err != nil {
		t.Fatal(err)
	}
	return ts, st, c, n
}

func TestContinueInspectionAndInventory(t *testing.T) {
	ts, st, c, n := inspectAPI(t, nil)
	// Before 1.84 the endpoint does not exist; before 1.81 neither does the inventory.
	mustStatus(t, call(t, ts, "POST", "/v1/continue_inspection", "1.83", `{"inventory": `+inspectionInventory+`}`), http.StatusNotFound)
	mustStatus(t, call(t, ts, "GET", "/v1/nodes/n1/inventory", "1.81", nil), http.StatusNotFound)

	r := call(t, ts, "POST", "/v1/continue_inspection", "1.84", `{"inventory": `+inspectionInventory+`, "root_disk": {"name": "/dev/vda"}, "logs": "abc"}`)
	mustStatus(t, r, http.StatusAccepted)
	if r.body["uuid"] != n.UUID {
		t.Fatalf("answer %s, want the node's uuid %s", r.raw, n.UUID)
	}
	c.Wait()
	got, err := st.GetNode(context.Background(), n.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ProvisionState != ironwork.Manageable || got.Properties["memory_mb"] != float64(8192) || got.Properties["local_gb"] != float64(39) ||
		got.Properties["capabilities"] != "boot_mode:bios" {
		t.Fatalf("after inspection: state %q, properties %v, last_error %q", got.ProvisionState, got.Properties, got.LastError)
	}
	r = call(t, ts, "GET", "/v1/nodes/n1/inventory", "1.81", nil)
	mustStatus(t, r, http.StatusOK)
	inv, _ := r.body["inventory"].(map[string]any)
	plugin, _ := r.body["plugin_data"].(map[string]any)
	if cpu, _ := inv["cpu"].(map[string]any); cpu["count"] != float64(4) || plugin["logs"] != "abc" || plugin["root_disk"] == nil || len(r.body) != 2 {
		t.Fatalf("inventory answer: %s", r.raw)
	}
	// Inspected already: the same inventory again finds no node waiting for it.
	r = call(t, ts, "POST", "/v1/continue_inspection", "1.84", `{"inventory": `+inspectionInventory+`}`)
	mustStatus(t, r, http.StatusNotFound)
}

func TestContinueInspectionFindsTheNodeByBMCAddress(t *testing.T) {
	ts, st, c, n := inspectAPI(t, nil)
	// No port matches; driver_info names the BMC (as a URL, as redfish_address does).
	if _, err := st.UpdateNode(context.Background(), n.UUID, func(n *ironwork.Node) error {
		n.DriverInfo = ironwork.JSONObject{"redfish_address": "https://192.0.2.33:8443"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	other := strings.ReplaceAll(inspectionInventory, "52:54:00:aa:bb:01", "52:54:00:aa:bb:77")
	r := call(t, ts, "POST", "/v1/continue_inspection", "1.84", `{"inventory": `+other+`}`)
	mustStatus(t, r, http.StatusAccepted)
	c.Wait()
	ports, err := st.PortsOfNode(context.Background(), n.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 2 {
		t.Errorf("%d ports after inspection by BMC address, want the old one and the new pxe one", len(ports))
	}
}

func TestContinueInspectionBadInput(t *testing.T) {
	ts, st, c, n := inspectAPI(t, nil)
	big := `{"inventory": ` + inspectionInventory + `, "logs": "` + strings.Repeat("a", 1<<20) + `"}`
	unknown := strings.ReplaceAll(strings.ReplaceAll(inspectionInventory, "52:54:00:aa:bb:01", "52:54:00:00:00:09"), "192.0.2.33", "192.0.2.99")
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"malformed", `{"inventory": {`, http.StatusBadRequest},
		{"not an object", `[1]`, http.StatusBadRequest},
		{"no inventory", `{"logs": "x"}`, http.StatusBadRequest},
		{"inventory not an object", `{"inventory": "x"}`, http.StatusBadRequest},
		{"wrong types", `{"inventory": {"interfaces": [{"mac_address": "52:54:00:aa:bb:01"}], "memory": {"physical_mb": "lots"}}}`, http.StatusBadRequest},
		{"no MAC or BMC", `{"inventory": {"interfaces": [{"name": "eth0"}], "cpu": {"count": 1}}}`, http.StatusBadRequest},
		{"oversized", big, http.StatusRequestEntityTooLarge},
		{"unknown machine, discovery off", `{"inventory": ` + unknown + `}`, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, ts, "POST", "/v1/continue_inspection", "1.84", tc.body)
			mustStatus(t, r, tc.status)
			r.fault(t) // Ironic's error body
		})
	}
	c.Wait()
	got, _ := st.GetNode(context.Background(), n.UUID)
	if got.ProvisionState != ironwork.InspectWait || got.Reservation != "" || len(got.Properties) != 0 {
		t.Errorf("refused inventories changed the node: %q %q %v", got.ProvisionState, got.Reservation, got.Properties)
	}
	mustStatus(t, call(t, ts, "GET", "/v1/nodes/n1/inventory", "1.81", nil), http.StatusNotFound)
	// Not waiting: not found, and nothing stored.
	if _, err := st.UpdateNode(context.Background(), n.UUID, func(n *ironwork.Node) error { n.ProvisionState = ironwork.Manageable; return nil }); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, call(t, ts, "POST", "/v1/continue_inspection", "1.84", `{"inventory": `+inspectionInventory+`}`), http.StatusNotFound)
	_, msg := call(t, ts, "GET", "/v1/nodes/n1/inventory", "1.81", nil).fault(t)
	if !strings.Contains(msg, "inventory") {
		t.Errorf("404 of a missing inventory says %q", msg)
	}
}

func TestContinueInspectionDiscovers(t *testing.T) {
	ts, st, c, _ := inspectAPI(t, func(cfg *conductor.Config) {
		cfg.Inspection.Discovery = conductor.DiscoveryConfig{Enabled: true, Driver: "fake-hardware"}
	})
	unknown := strings.ReplaceAll(strings.ReplaceAll(inspectionInventory, "52:54:00:aa:bb:01", "52:54:00:00:00:09"), "192.0.2.33", "192.0.2.99")
	r := call(t, ts, "POST", "/v1/continue_inspection", "1.84", `{"inventory": `+unknown+`}`)
	mustStatus(t, r, http.StatusAccepted)
	c.Wait()
	uuid, _ := r.body["uuid"].(string)
	n, err := st.GetNode(context.Background(), uuid)
	if err != nil {
		t.Fatal(err)
	}
	if n.ProvisionState != ironwork.Enroll || n.Name != "discovered-525400000009" {
		t.Errorf("discovered node: %q %q", n.ProvisionState, n.Name)
	}
	// Again: the machine is enrolled now, and not waiting for inspection: not found, no new node.
	mustStatus(t, call(t, ts, "POST", "/v1/continue_inspection", "1.84", `{"inventory": `+unknown+`}`), http.StatusNotFound)
	nodes, _ := st.ListNodes(context.Background(), sqlstore.NodeFilter{}, sqlstore.Page{})
	if len(nodes) != 2 {
		t.Errorf("%d nodes, want the first one and the discovered one", len(nodes))
	}
}

// FuzzContinueInspection posts arbitrary bodies to /v1/continue_inspection, the public
// endpoint anyone on the provisioning network reaches, against a real conductor with a node
// waiting for its inventory: no 5xx, every 4xx in Ironic's format, a 202 only for the
// node's own MAC or BMC address with its inventory stored as sent, and the node never left
// locked or in a state inspection does not lead to.
func FuzzContinueInspection(f *testing.F) {
	f.Add([]byte(`{"inventory": ` + inspectionInventory + `}`))
	f.Add([]byte(`{"inventory": {"interfaces": [{"mac_address": "52:54:00:AA:BB:01"}]}, "x": [1, {"y": null}]}`))
	f.Add([]byte(`{"inventory": {"interfaces": [], "bmc_address": "192.0.2.33", "cpu": {"count": -1}, "disks": [{"size": -5}]}}`))
	f.Add([]byte(`{"inventory": {"interfaces": [{"mac_address": "52:54:00:aa:bb:01", "lldp": [[1, "04"], [2, "zz"], ["a", 1], [5]]}], "boot": {"pxe_interface": "01-52-54-00-aa-bb-01"}}}`))
	f.Add([]byte(`{"inventory": null}`))
	f.Add([]byte("\x00\xff"))
	ts, st, c, n := inspectAPI(f, nil)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte) {
		status, _ := fuzzSend(t, ts, "POST", ts.URL+"/v1/continue_inspection", body)
		c.Wait()
		got, err := st.GetNode(ctx, n.UUID)
		if err != nil {
			t.Fatalf("node unreadable: %v", err)
		}
		if got.Reservation != "" {
			t.Fatalf("node left locked by %q", got.Reservation)
		}
		switch got.ProvisionState {
		case ironwork.InspectWait:
			if status == http.StatusAccepted {
				t.Fatalf("202 but the node still waits")
			}
		case ironwork.Manageable, ironwork.InspectFailed:
			if status != http.StatusAccepted {
				t.Fatalf("node moved to %s on a %d", got.ProvisionState, status)
			}
			var sent struct {
				Inventory json.RawMessage `json:"inventory"`
			}
			if err := json.Unmarshal(body, &sent); err != nil {
				t.Fatalf("202 for a body that is not JSON: %q", body)
			}
			inv, err := st.GetNodeInventory(ctx, got.ID, got.UUID)
			if err != nil {
				t.Fatalf("202 but no inventory stored: %v", err)
			}
			var a, b any
			_ = json.Unmarshal(sent.Inventory, &a)
			_ = json.Unmarshal(inv.Inventory, &b)
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if !bytes.Equal(ja, jb) {
				t.Fatalf("stored inventory %s, sent %s", jb, ja)
			}
			// Back to waiting for the next input.
			if _, err := st.UpdateNode(ctx, n.UUID, func(n *ironwork.Node) error {
				n.ProvisionState, n.Properties = ironwork.InspectWait, ironwork.JSONObject{}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("node in state %s", got.ProvisionState)
		}
	})
}
