package server_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/agent"
	"github.com/ironwork/ironwork/internal/bmctest"
	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// labInventory is what ironwork-agent reports (agent.Inventory, IPA's format) for the lab's
// inspection machine: 2 vCPUs, 1536 MiB, disks of 8 and 16 GiB, two NICs of which the second
// booted and hears a switch over LLDP, a BMC at 192.0.2.21, UEFI.
func labInventory() agent.Inventory {
	str := func(s string) *string { return &s }
	return agent.Inventory{
		Interfaces: []agent.InventoryInterface{
			{Name: "enp0s3", MACAddress: "52:54:00:1e:00:01", HasCarrier: true, LLDP: []any{}, Vendor: str("0x1af4"), Product: str("0x1041")},
			{Name: "enp0s4", MACAddress: "52:54:00:1e:00:02", IPv4Address: str("10.98.0.60"), HasCarrier: true, Vendor: str("0x1af4"), Product: str("0x1041"),
				LLDP: []any{[]any{1.0, "04525400ff0001"}, []any{2.0, "0365746831"}, []any{2.0, "0565746831"}, []any{5.0, "6c61622d737769746368"}}},
		},
		CPU:        agent.InventoryCPU{ModelName: "QEMU Virtual CPU version 2.5+", Frequency: "2400.000", Count: 2, Architecture: "x86_64", Flags: []string{"fpu"}, SocketCount: 1},
		Disks:      []agent.InventoryDisk{{Name: "/dev/vda", Size: 8 << 30, Rotational: true, Vendor: "0x1af4", Serial: str("root-disk")}, {Name: "/dev/vdb", Size: 16 << 30, Rotational: true, Vendor: "0x1af4", Serial: str("data-disk")}},
		Memory:     agent.InventoryMemory{Total: 1536<<20 - 90<<20, PhysicalMB: 1536},
		BMCAddress: str("192.0.2.21"),
		SystemVendor: agent.InventorySystem{ProductName: "Standard PC (Q35 + ICH9, 2009)", SerialNumber: "lab-7", Manufacturer: "QEMU",
			Firmware: agent.InventoryFirmware{Vendor: "EDK II", Version: "stable202302", BuildDate: "02/2023"}},
		Boot:     agent.InventoryBoot{CurrentBootMode: "uefi", PXEInterface: str("52:54:00:1e:00:02")},
		Hostname: "localhost",
	}
}

// TestInspectionThroughTheAPI inspects a node with the agent inspect interface through the
// whole server: inspect moves it to "inspect wait", the agent's inventory (posted as
// ironwork-agent and IPA do, with plugin data beside it) sets its properties and ports, the
// inventory API returns what was sent, and the node ends manageable and powered off.
func TestInspectionThroughTheAPI(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, target.DSN(t), func(cfg *server.Config) { cfg.Inspection.AddPorts = "all" })
			c := &api.Client{BaseURL: srv.URL(), Version: "1.96"}
			ctx := context.Background()
			var node map[string]any
			if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "lab-7", "driver": "fake-hardware",
				"inspect_interface": "agent", "boot_interface": "fake", "properties": map[string]any{"root_device": map[string]any{"serial": "data-disk"}}}, &node); err != nil {
				t.Fatal(err)
			}
			uuid := node["uuid"].(string)
			if err := c.Do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": "52:54:00:1e:00:01"}, nil); err != nil {
				t.Fatal(err)
			}
			provisionVerb(t, c, uuid, "manage")
			waitState(t, c, uuid, "manageable", 10*time.Second)
			provisionVerb(t, c, uuid, "inspect")
			waitState(t, c, uuid, "inspect wait", 10*time.Second)

			inv := labInventory()
			body := map[string]any{"inventory": inv, "root_disk": map[string]any{"name": "/dev/vdb"}, "error": nil}
			var answer map[string]any
			if err := c.Do(ctx, http.MethodPost, "/v1/continue_inspection", body, &answer); err != nil {
				t.Fatalf("continue_inspection: %v", err)
			}
			if answer["uuid"] != uuid {
				t.Fatalf("continue_inspection answered %v", answer)
			}
			n := waitState(t, c, uuid, "manageable", 10*time.Second)
			wantProps := map[string]any{"cpus": float64(2), "cpu_arch": "x86_64", "memory_mb": float64(1536), "local_gb": float64(15),
				"capabilities": "boot_mode:uefi", "root_device": map[string]any{"serial": "data-disk"}}
			if d := cmp.Diff(wantProps, n["properties"]); d != "" {
				t.Errorf("properties (-want +got):\n%s", d)
			}
			if n["power_state"] != "power off" || n["inspection_finished_at"] == nil || n["reservation"] != nil {
				t.Errorf("after inspection: power %v, finished %v, reservation %v", n["power_state"], n["inspection_finished_at"], n["reservation"])
			}
			ports, err := c.List(ctx, "/v1/ports/detail?node="+uuid, "ports", nil)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]any{}
			for _, p := range ports {
				got[p["address"].(string)] = []any{p["pxe_enabled"], p["local_link_connection"]}
			}
			want := map[string]any{
				"52:54:00:1e:00:01": []any{false, map[string]any{}},
				// The interface-name port ID comes after the MAC one in the TLVs: the last wins, as in Ironic.
				"52:54:00:1e:00:02": []any{true, map[string]any{"switch_id": "52:54:00:ff:00:01", "port_id": "eth1", "switch_info": "lab-switch"}},
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("ports (-want +got):\n%s", d)
			}
			var stored struct {
				Inventory  agent.Inventory `json:"inventory"`
				PluginData map[string]any  `json:"plugin_data"`
			}
			if err := c.Do(ctx, http.MethodGet, "/v1/nodes/lab-7/inventory", nil, &stored); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(inv, stored.Inventory); d != "" {
				t.Errorf("stored inventory (-sent +stored):\n%s", d)
			}
			if d := cmp.Diff(map[string]any{"root_disk": map[string]any{"name": "/dev/vdb"}, "error": nil}, stored.PluginData); d != "" {
				t.Errorf("plugin data (-sent +stored):\n%s", d)
			}
			// Deleting the node deletes its inventory (the table's rows go with it).
			if err := c.Do(ctx, http.MethodDelete, "/v1/nodes/"+uuid, nil, nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid+"/inventory", nil, nil); !api.IsStatus(err, http.StatusNotFound) {
				t.Errorf("inventory of a deleted node: %v, want 404", err)
			}
		})
	}
}

// TestInspectionOfThisHost posts the inventory ironwork-agent's own collector reads from the
// machine running the test, as it would from a node: the properties are what it found.
func TestInspectionOfThisHost(t *testing.T) {
	inv, err := agent.CollectInventory(agent.InventoryOptions{SysRoot: "/"})
	if err != nil {
		t.Fatalf("collect this host's inventory: %v", err)
	}
	// The node is found by its BMC address: this host's NICs are not ports of any node.
	bmc := "192.0.2.77"
	inv.BMCAddress = &bmc
	srv := startServer(t, "sqlite://"+t.TempDir()+"/ironwork.db", func(cfg *server.Config) { cfg.Inspection.AddPorts = "disabled" })
	c := &api.Client{BaseURL: srv.URL(), Version: "1.96"}
	ctx := context.Background()
	var node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"driver": "fake-hardware", "inspect_interface": "agent",
		"boot_interface": "fake", "driver_info": map[string]any{"ipmi_address": bmc}}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	provisionVerb(t, c, uuid, "manage")
	waitState(t, c, uuid, "manageable", 10*time.Second)
	provisionVerb(t, c, uuid, "inspect")
	waitState(t, c, uuid, "inspect wait", 10*time.Second)
	if err := c.Do(ctx, http.MethodPost, "/v1/continue_inspection", map[string]any{"inventory": inv}, nil); err != nil {
		t.Fatalf("continue_inspection: %v", err)
	}
	n := waitState(t, c, uuid, "manageable", 10*time.Second)
	props := n["properties"].(map[string]any)
	t.Logf("this host: %d %s CPUs, memory %+v, %d disks, %d NICs; properties %v", inv.CPU.Count, inv.CPU.Architecture, inv.Memory, len(inv.Disks), len(inv.Interfaces), props)
	if props["cpus"] != float64(inv.CPU.Count) || props["cpu_arch"] != inv.CPU.Architecture {
		t.Errorf("cpus %v cpu_arch %v, inventory says %d %s", props["cpus"], props["cpu_arch"], inv.CPU.Count, inv.CPU.Architecture)
	}
	wantMem := inv.Memory.PhysicalMB
	if wantMem == 0 {
		wantMem = inv.Memory.Total >> 20
	}
	if props["memory_mb"] != float64(wantMem) {
		t.Errorf("memory_mb %v, inventory says %d", props["memory_mb"], wantMem)
	}
	if !strings.HasPrefix(props["capabilities"].(string), "boot_mode:") {
		t.Errorf("capabilities %v", props["capabilities"])
	}
}

// TestInspectionRulesOnInventory: a rule created through the API runs on the inventory the
// agent posts; its changes to the node and to the plugin data are what the API shows after.
func TestInspectionRulesOnInventory(t *testing.T) {
	srv := startServer(t, sqlstoretest.Targets()[0].DSN(t))
	c := &api.Client{BaseURL: srv.URL(), Version: "1.96"}
	ctx := context.Background()
	rule := map[string]any{"description": "two-CPU lab machines", "priority": 50,
		"conditions": []any{map[string]any{"op": "eq", "args": map[string]any{"values": []any{"{inventory[cpu][count]}", "2"}}}},
		"actions": []any{
			map[string]any{"op": "add-trait", "args": map[string]any{"name": "CUSTOM_TWO_CPUS"}},
			map[string]any{"op": "set-attribute", "args": map[string]any{"path": "/extra/rack", "value": "{inventory[system_vendor][product_name]}"}},
			map[string]any{"op": "set-plugin-data", "args": map[string]any{"path": "ruled", "value": "yes"}},
		}}
	if err := c.Do(ctx, http.MethodPost, "/v1/inspection_rules", rule, nil); err != nil {
		t.Fatalf("create rule: %v", err)
	}
	var node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "ruled", "driver": "fake-hardware",
		"inspect_interface": "agent", "boot_interface": "fake"}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	if err := c.Do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": "52:54:00:1e:00:02"}, nil); err != nil {
		t.Fatal(err)
	}
	provisionVerb(t, c, uuid, "manage")
	waitState(t, c, uuid, "manageable", 10*time.Second)
	provisionVerb(t, c, uuid, "inspect")
	waitState(t, c, uuid, "inspect wait", 10*time.Second)
	inv := labInventory()
	if err := c.Do(ctx, http.MethodPost, "/v1/continue_inspection", map[string]any{"inventory": inv}, nil); err != nil {
		t.Fatalf("continue_inspection: %v", err)
	}
	n := waitState(t, c, uuid, "manageable", 10*time.Second)
	var traits struct {
		Traits []string `json:"traits"`
	}
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid+"/traits", nil, &traits); err != nil {
		t.Fatal(err)
	}
	if len(traits.Traits) != 1 || traits.Traits[0] != "CUSTOM_TWO_CPUS" {
		t.Errorf("traits after the rule: %v", traits.Traits)
	}
	if extra, _ := n["extra"].(map[string]any); extra["rack"] != inv.SystemVendor.ProductName || inv.SystemVendor.ProductName == "" {
		t.Errorf("extra after the rule: %v (product name %q)", n["extra"], inv.SystemVendor.ProductName)
	}
	if n["properties"].(map[string]any)["cpus"] != float64(2) {
		t.Errorf("the rule's save lost the inspected properties: %v", n["properties"])
	}
	var stored struct {
		PluginData map[string]any `json:"plugin_data"`
	}
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid+"/inventory", nil, &stored); err != nil {
		t.Fatal(err)
	}
	if stored.PluginData["ruled"] != "yes" {
		t.Errorf("plugin data after the rule: %v", stored.PluginData)
	}
}

// TestRedfishInspectionAgainstTheDMTFMockup inspects a node out of band through the API: no
// boot, the BMC's processors, memory, storage and NICs become properties and ports.
func TestRedfishInspectionAgainstTheDMTFMockup(t *testing.T) {
	bmc := bmctest.NewRedfish(t, bmctest.MockupDir(t, "../../.."))
	srv := startServer(t, sqlstoretest.Targets()[0].DSN(t))
	c := &api.Client{BaseURL: srv.URL(), Version: "1.96"}
	ctx := context.Background()
	var node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "rf-inspect", "driver": "redfish",
		"inspect_interface": "redfish", "properties": map[string]any{"capabilities": "disk_label:gpt"},
		"driver_info": map[string]any{"redfish_address": bmc.URL, "redfish_system_id": "/redfish/v1/Systems/437XR1138R2",
			"redfish_username": bmc.User, "redfish_password": bmc.Password}}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	if err := c.Do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": "aa:bb:cc:dd:ee:00"}, nil); err != nil {
		t.Fatal(err)
	}
	provisionVerb(t, c, uuid, "manage")
	waitState(t, c, uuid, "manageable", 20*time.Second)
	provisionVerb(t, c, uuid, "inspect")
	n := waitState(t, c, uuid, "manageable", 20*time.Second)
	want := map[string]any{"cpus": float64(16), "cpu_arch": "x86_64", "memory_mb": float64(96 * 1024), "local_gb": float64(3724),
		"capabilities": "boot_mode:uefi,disk_label:gpt"}
	if d := cmp.Diff(want, n["properties"]); d != "" || n["inspection_finished_at"] == nil || n["last_error"] != nil {
		t.Errorf("after redfish inspection (-want +got):\n%s\nfinished %v, last_error %v", d, n["inspection_finished_at"], n["last_error"])
	}
	ports, err := c.List(ctx, "/v1/ports?node="+uuid, "ports", nil)
	if err != nil {
		t.Fatal(err)
	}
	var macs []string
	for _, p := range ports {
		macs = append(macs, p["address"].(string))
	}
	slices.Sort(macs)
	if d := cmp.Diff([]string{"12:44:6a:3b:04:11", "aa:bb:cc:dd:ee:00", "aa:bb:cc:dd:ee:fe"}, macs); d != "" {
		t.Errorf("ports (-want +got):\n%s", d)
	}
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid+"/inventory", nil, nil); !api.IsStatus(err, http.StatusNotFound) {
		t.Errorf("out-of-band inspection stored an inventory: %v", err)
	}
}
