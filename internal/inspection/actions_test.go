package inspection

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
)

// TestActions checks every action on the fixture: what it changes, and the failures Ironic
// raises for it.
func TestActions(t *testing.T) {
	port := func(res Result, id string) *ironwork.Port {
		for _, p := range res.Ports {
			if p.UUID == id {
				return p
			}
		}
		t.Fatalf("no port %s", id)
		return nil
	}
	for _, tc := range []struct {
		name, actions string
		check         func(t *testing.T, res Result)
		failure       string
	}{
		{"set-attribute properties from inventory", `[
			{"op": "set-attribute", "args": {"path": "/properties/cpus", "value": "{inventory[cpu][count]}"}},
			{"op": "set-attribute", "args": {"path": "properties.memory_mb", "value": "{inventory[memory][physical_mb]}"}},
			{"op": "set-attribute", "args": {"path": "/properties/cpu_arch", "value": "{inventory[cpu][architecture]}"}}]`,
			func(t *testing.T, res Result) {
				want := ironwork.JSONObject{"capabilities": "boot_mode:bios", "cpus": "2", "memory_mb": "1536", "cpu_arch": "x86_64"}
				if diff := cmp.Diff(want, res.Node.Properties); diff != "" || !res.NodeChanged {
					t.Errorf("properties (-want +got):\n%s", diff)
				}
			}, ""},
		{"set-attribute literal keeps its type", `[{"op": "set-attribute", "args": {"path": "/properties/local_gb", "value": 19}}]`,
			func(t *testing.T, res Result) {
				if got := res.Node.Properties["local_gb"]; got != json.Number("19") {
					t.Errorf("local_gb = %#v", got)
				}
			}, ""},
		{"set-attribute driver and nested driver_info", `[
			{"op": "set-attribute", "args": {"path": "/driver", "value": "redfish"}},
			{"op": "set-attribute", "args": {"path": "/driver_info/redfish_address", "value": "https://{inventory[bmc_address]}"}},
			{"op": "set-attribute", "args": {"path": "/driver_info/deep/er", "value": "x"}}]`,
			func(t *testing.T, res Result) {
				if res.Node.Driver != "redfish" || res.Node.DriverInfo["redfish_address"] != "https://192.168.122.1" ||
					res.Node.DriverInfo["deep"].(map[string]any)["er"] != "x" || res.Node.DriverInfo["ipmi_address"] != "10.0.0.5" {
					t.Errorf("node = %+v", res.Node)
				}
			}, ""},
		{"set-attribute string field from a number", `[{"op": "set-attribute", "args": {"path": "resource_class", "value": 7}}]`,
			func(t *testing.T, res Result) {
				if res.Node.ResourceClass != "7" {
					t.Errorf("resource_class = %q", res.Node.ResourceClass)
				}
			}, ""},
		{"set-attribute interface", `[{"op": "set-attribute", "args": {"path": "/inspect_interface", "value": "agent"}}]`,
			func(t *testing.T, res Result) {
				if res.Node.Interfaces[ironwork.InspectInterface] != "agent" {
					t.Errorf("interfaces = %v", res.Node.Interfaces)
				}
			}, ""},
		{"set-attribute on a string", `[{"op": "set-attribute", "args": {"path": "driver.some_key", "value": "x"}}]`, nil,
			"Failed to set attribute driver.some_key: 'str' object has no attribute 'setdefault'"},
		{"set-attribute unknown", `[{"op": "set-attribute", "args": {"path": "/flavor", "value": "x"}}]`, nil, "object has no attribute 'flavor'"},
		{"set-attribute read only", `[{"op": "set-attribute", "args": {"path": "/provision_state", "value": "active"}}]`, nil, "cannot be changed by a rule"},
		{"set-attribute dict from a list", `[{"op": "set-attribute", "args": {"path": "/extra", "value": [1]}}]`, nil, "a dictionary is required"},
		{"set-attribute None driver", `[{"op": "set-attribute", "args": {"path": "/driver", "value": null}}]`, nil, "cannot be None"},
		{"extend-attribute", `[
			{"op": "extend-attribute", "args": {"path": "/extra/tags", "value": "b"}},
			{"op": "extend-attribute", "args": {"path": "/extra/tags", "value": "a", "unique": true}},
			{"op": "extend-attribute", "args": {"path": "/extra/new", "value": "{inventory[hostname]}"}}]`,
			func(t *testing.T, res Result) {
				want := ironwork.JSONObject{"tags": []any{"a", "b"}, "keep": "x", "new": []any{"debian"}}
				if diff := cmp.Diff(want, res.Node.Extra); diff != "" {
					t.Errorf("extra (-want +got):\n%s", diff)
				}
			}, ""},
		{"extend-attribute non-list", `[{"op": "extend-attribute", "args": {"path": "/extra/keep", "value": "y"}}]`, nil, "Cannot extend non-list attribute"},
		{"extend-attribute top level", `[{"op": "extend-attribute", "args": {"path": "driver", "value": "y"}}]`, nil, "Cannot extend non-list attribute"},
		{"del-attribute", `[{"op": "del-attribute", "args": {"path": "/extra/keep"}}, {"op": "del-attribute", "args": {"path": "/extra/missing/x"}},
			{"op": "del-attribute", "args": {"path": "description"}}]`,
			func(t *testing.T, res Result) {
				if diff := cmp.Diff(ironwork.JSONObject{"tags": []any{"a"}}, res.Node.Extra); diff != "" {
					t.Errorf("extra (-want +got):\n%s", diff)
				}
			}, ""},
		{"del-attribute driver", `[{"op": "del-attribute", "args": {"path": "driver"}}]`, nil, "cannot be deleted"},
		{"set-capability appends as Ironic", `[{"op": "set-capability", "args": {"name": "boot_mode", "value": "{inventory[boot][current_boot_mode]}"}},
			{"op": "set-capability", "args": {"name": "cpu_vt", "value": "true"}}]`,
			func(t *testing.T, res Result) {
				if got := res.Node.Properties["capabilities"]; got != "boot_mode:bios,boot_mode:uefi,cpu_vt:true" {
					t.Errorf("capabilities = %q", got)
				}
			}, ""},
		{"set-capability non-string", `[{"op": "set-capability", "args": {"name": "x", "value": 1}}]`, nil, "Failed to set capability x"},
		{"unset-capability", `[{"op": "unset-capability", "args": {"name": "boot_mode"}}]`,
			func(t *testing.T, res Result) {
				if got := res.Node.Properties["capabilities"]; got != "" {
					t.Errorf("capabilities = %q", got)
				}
			}, ""},
		{"add-trait and remove-trait", `[{"op": "add-trait", "args": {"name": "CUSTOM_QEMU"}}, {"op": "add-trait", "args": {"name": "CUSTOM_QEMU"}},
			{"op": "remove-trait", "args": {"name": "CUSTOM_OLD"}}, {"op": "remove-trait", "args": {"name": "CUSTOM_NONE"}}]`,
			func(t *testing.T, res Result) {
				if diff := cmp.Diff([]string{"CUSTOM_QEMU"}, res.Node.Traits); diff != "" {
					t.Errorf("traits (-want +got):\n%s", diff)
				}
			}, ""},
		{"add-trait not a string", `[{"op": "add-trait", "args": {"name": ""}}]`, nil, "Failed to add new trait"},
		{"plugin data", `[{"op": "set-plugin-data", "args": {"path": "x.y", "value": "{inventory[cpu][count]}"}},
			{"op": "extend-plugin-data", "args": {"path": "list", "value": 1}},
			{"op": "extend-plugin-data", "args": {"path": "list", "value": 1, "unique": true}},
			{"op": "extend-plugin-data", "args": {"path": "list", "value": 2}},
			{"op": "unset-plugin-data", "args": {"path": "nested.a"}},
			{"op": "unset-plugin-data", "args": {"path": "auto_discovered"}},
			{"op": "unset-plugin-data", "args": {"path": "not.there"}}]`,
			func(t *testing.T, res Result) {
				want := map[string]any{"auth_token": "tok", "x": map[string]any{"y": "2"}, "list": []any{json.Number("1"), json.Number("2")},
					"nested": map[string]any{"b": json.Number("2")}}
				if diff := cmp.Diff(want, res.PluginData); diff != "" || !res.PluginDataChanged {
					t.Errorf("plugin data (-want +got):\n%s", diff)
				}
			}, ""},
		{"unset-plugin-data prunes an emptied parent", `[{"op": "unset-plugin-data", "args": {"path": "nested.a"}}, {"op": "unset-plugin-data", "args": {"path": "nested.b"}}]`,
			func(t *testing.T, res Result) {
				if _, ok := res.PluginData["nested"]; ok {
					t.Errorf("plugin data = %v", res.PluginData)
				}
			}, ""},
		{"set-plugin-data through a string", `[{"op": "set-plugin-data", "args": {"path": "auth_token.x", "value": 1}}]`, nil, "Failed to set plugin data at auth_token.x"},
		{"port attributes", `[{"op": "set-port-attribute", "args": {"port_id": "` + testPort0 + `", "path": "/physical_network", "value": "physnet1"}},
			{"op": "set-port-attribute", "args": {"port_id": "52:54:00:12:34:57", "path": "local_link_connection.switch_id", "value": "aa:bb:cc:dd:ee:ff"}},
			{"op": "extend-port-attribute", "args": {"port_id": "` + testPort1 + `", "path": "/extra/l", "value": "y"}},
			{"op": "set-port-attribute", "args": {"port_id": "` + testPort1 + `", "path": "pxe_enabled", "value": "yes"}},
			{"op": "del-port-attribute", "args": {"port_id": "` + testPort0 + `", "path": "pxe_enabled"}}]`,
			func(t *testing.T, res Result) {
				p0, p1 := port(res, testPort0), port(res, testPort1)
				if p0.PhysicalNetwork != "physnet1" || p0.PXEEnabled || !p1.PXEEnabled ||
					p1.LocalLinkConnection["switch_id"] != "aa:bb:cc:dd:ee:ff" || len(p1.Extra["l"].([]any)) != 2 {
					t.Errorf("ports %+v %+v", p0, p1)
				}
				if diff := cmp.Diff([]string{testPort0, testPort1}, res.ChangedPorts); diff != "" {
					t.Errorf("changed ports (-want +got):\n%s", diff)
				}
			}, ""},
		{"port not found", `[{"op": "set-port-attribute", "args": {"port_id": "00000000-0000-0000-0000-000000000000", "path": "extra", "value": {}}}]`,
			nil, "Port 00000000-0000-0000-0000-000000000000 could not be found."},
		{"port address read only", `[{"op": "set-port-attribute", "args": {"port_id": "` + testPort0 + `", "path": "address", "value": "x"}}]`, nil, "cannot be changed"},
		{"log", `[{"op": "log", "args": {"msg": "vendor {inventory[system_vendor][manufacturer]}", "level": "warning"}}]`,
			func(t *testing.T, res Result) {
				if res.NodeChanged || len(res.Applied) != 1 {
					t.Errorf("log changed the node or did not apply: %+v", res)
				}
			}, ""},
		{"log level is not interpolated", `[{"op": "log", "args": {"msg": "x", "level": "{inventory[hostname]}"}}]`, nil, "Invalid log level: {inventory[hostname]}"},
		{"fail", `[{"op": "set-attribute", "args": {"path": "/extra/before", "value": 1}}, {"op": "fail", "args": {"msg": "no {inventory[x]}"}},
			{"op": "set-attribute", "args": {"path": "/extra/after", "value": 1}}]`,
			func(t *testing.T, res Result) {
				if _, ok := res.Node.Extra["before"]; !ok || res.Failure != "Failed to inspect hardware. Reason: no {inventory[x]}" {
					t.Errorf("extra %v, failure %q", res.Node.Extra, res.Failure)
				}
				if _, ok := res.Node.Extra["after"]; ok {
					t.Errorf("an action after fail ran")
				}
			}, "Failed to inspect hardware"},
		{"loop over actions", `[{"op": "set-attribute", "args": {"path": "{item[path]}", "value": "{item[value]}"},
			"loop": [{"path": "/driver_info/ipmi_username", "value": "admin"}, {"path": "/driver_info/ipmi_address", "value": "{inventory[bmc_address]}"}]}]`,
			func(t *testing.T, res Result) {
				if res.Node.DriverInfo["ipmi_username"] != "admin" || res.Node.DriverInfo["ipmi_address"] != "192.168.122.1" {
					t.Errorf("driver_info = %v", res.Node.DriverInfo)
				}
			}, ""},
		{"interpolate a whole object", `[{"op": "set-attribute", "args": {"path": "/extra/hw", "value": {"arch": "{inventory[cpu][architecture]}", "n": ["{inventory[disks][1][name]}", 3]}}}]`,
			func(t *testing.T, res Result) {
				want := map[string]any{"arch": "x86_64", "n": []any{"/dev/vdb", json.Number("3")}}
				if diff := cmp.Diff(want, res.Node.Extra["hw"]); diff != "" {
					t.Errorf("extra.hw (-want +got):\n%s", diff)
				}
			}, ""},
		{"path is not interpolated outside loops", `[{"op": "set-attribute", "args": {"path": "/extra/{inventory[hostname]}", "value": 1}}]`,
			func(t *testing.T, res Result) {
				if _, ok := res.Node.Extra["{inventory[hostname]}"]; !ok {
					t.Errorf("extra = %v", res.Node.Extra)
				}
			}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := run(t, rule(t, `{"actions": `+tc.actions+`}`))
			if tc.failure != "" && !strings.Contains(res.Failure, tc.failure) {
				t.Fatalf("failure = %q, want it to contain %q", res.Failure, tc.failure)
			}
			if tc.failure == "" && res.Failure != "" {
				t.Fatalf("failure %q", res.Failure)
			}
			if tc.check != nil {
				tc.check(t, res)
			}
		})
	}
}
