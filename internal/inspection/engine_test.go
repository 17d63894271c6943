package inspection

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
)

const (
	testNode  = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
	testPort0 = "5a2d3a4c-0d8d-4a40-9d0a-3c3c9d6e0a01"
	testPort1 = "5a2d3a4c-0d8d-4a40-9d0a-3c3c9d6e0a02"
)

// fixture is a node, its ports, the inventory of a lab machine (2 CPUs, 1536 MiB, two
// disks, two NICs) and plugin data, as inspection hands them to the engine.
func fixture(t *testing.T) Input {
	t.Helper()
	b, err := os.ReadFile("testdata/inventory.json")
	if err != nil {
		t.Fatal(err)
	}
	inv, err := DecodeDocument(b)
	if err != nil {
		t.Fatal(err)
	}
	return Input{
		Node: &ironwork.Node{UUID: testNode, Name: "node-1", Driver: "ipmi", ProvisionState: ironwork.Inspecting,
			DriverInfo: ironwork.JSONObject{"ipmi_address": "10.0.0.5", "ipmi_password": "secret"},
			Properties: ironwork.JSONObject{"capabilities": "boot_mode:bios"},
			Extra:      ironwork.JSONObject{"tags": []any{"a"}, "keep": "x"},
			Traits:     []string{"CUSTOM_OLD"}},
		Ports: []*ironwork.Port{
			{UUID: testPort0, Address: "52:54:00:12:34:56", PXEEnabled: true},
			{UUID: testPort1, Address: "52:54:00:12:34:57", Extra: ironwork.JSONObject{"l": []any{"x"}}},
		},
		Inventory:  inv,
		PluginData: map[string]any{"auto_discovered": true, "auth_token": "tok", "nested": map[string]any{"a": json.Number("1"), "b": json.Number("2")}},
	}
}

// rule parses a rule document as the API would.
func rule(t *testing.T, doc string) *ironwork.InspectionRule {
	t.Helper()
	m, err := DecodeDocument([]byte(doc))
	if err != nil {
		t.Fatalf("decode %s: %v", doc, err)
	}
	r, err := ParseRule(m, false)
	if err != nil {
		t.Fatalf("parse %s: %v", doc, err)
	}
	if r.UUID == "" {
		r.UUID = "11111111-2222-3333-4444-555555555555"
	}
	return r
}

func run(t *testing.T, rules ...*ironwork.InspectionRule) (Result, string) {
	t.Helper()
	var logs bytes.Buffer
	e := &Engine{Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	in := fixture(t)
	res := e.Run(context.Background(), PhaseMain, rules, in)
	if diff := cmp.Diff(fixture(t), in); diff != "" {
		t.Errorf("Run changed its input (-want +got):\n%s", diff)
	}
	return res, logs.String()
}

// TestConditions checks every operator, inverted, in loops, over the fixture's inventory.
func TestConditions(t *testing.T) {
	for _, tc := range []struct {
		name, cond string
		want       bool
		failure    string
	}{
		{"eq int from inventory is a string", `{"op": "eq", "args": {"values": ["{inventory[cpu][count]}", 2]}}`, false, ""},
		{"eq strings", `{"op": "eq", "args": {"values": ["{inventory[cpu][count]}", "2"]}}`, true, ""},
		{"eq force_strings", `{"op": "eq", "args": {"values": ["{inventory[cpu][count]}", 2], "force_strings": true}}`, true, ""},
		{"eq literals int float", `{"op": "eq", "args": {"values": [2, 2.0, true, 1]}}`, false, ""},
		{"eq literals numeric", `{"op": "eq", "args": {"values": [1, 1.0, true]}}`, true, ""},
		{"eq one value", `{"op": "eq", "args": {"values": [1]}}`, true, ""},
		{"eq list form", `{"op": "eq", "args": [["{inventory[cpu][architecture]}", "x86_64"]]}`, true, ""},
		{"!eq", `{"op": "!eq", "args": {"values": ["{inventory[cpu][architecture]}", "aarch64"]}}`, true, ""},
		{"! eq with space", `{"op": "!eq", "args": {"values": ["{node.driver}", "ipmi"]}}`, false, ""},
		{"eq not a list", `{"op": "eq", "args": {"values": "x"}}`, false, "Expected list for 'values', got: str"},
		{"lt numbers", `{"op": "lt", "args": {"values": [1, 2, 3.5]}}`, true, ""},
		{"lt not strictly", `{"op": "lt", "args": {"values": [1, 1]}}`, false, ""},
		{"lt strings lexicographic", `{"op": "lt", "args": {"values": ["{inventory[memory][physical_mb]}", "2"]}}`, true, ""},
		{"lt string and int", `{"op": "lt", "args": {"values": ["{inventory[memory][physical_mb]}", 2048]}}`, false,
			"'<' not supported between instances of 'str' and 'int'"},
		{"gt numbers", `{"op": "gt", "args": {"values": [4096, 1536]}}`, true, ""},
		{"gt force strings", `{"op": "gt", "args": {"values": [10, 9], "force_strings": true}}`, false, ""},
		{"is-empty missing key", `{"op": "is-empty", "args": {"value": "{inventory[nothing]}"}}`, true, ""},
		{"is-empty empty string", `{"op": "is-empty", "args": {"value": "{inventory[system_vendor][serial_number]}"}}`, true, ""},
		{"is-empty null", `{"op": "is-empty", "args": {"value": "{inventory[interfaces][0][ipv6_address]}"}}`, true, ""},
		{"is-empty empty list", `{"op": "is-empty", "args": {"value": "{inventory[interfaces][0][lldp]}"}}`, true, ""},
		{"is-empty value", `{"op": "is-empty", "args": {"value": "{inventory[hostname]}"}}`, false, ""},
		{"!is-empty missing", `{"op": "!is-empty", "args": {"value": "{inventory[nothing]}"}}`, false, ""},
		{"in-net", `{"op": "in-net", "args": {"address": "{inventory[bmc_address]}", "subnet": "192.168.122.0/24"}}`, true, ""},
		{"in-net outside", `{"op": "in-net", "args": {"address": "{inventory[bmc_address]}", "subnet": "10.0.0.0/8"}}`, false, ""},
		{"in-net host bits", `{"op": "in-net", "args": {"address": "192.168.122.77", "subnet": "192.168.122.1/24"}}`, true, ""},
		{"in-net v6", `{"op": "in-net", "args": {"address": "fd00::5", "subnet": "fd00::/64"}}`, true, ""},
		{"in-net bad subnet", `{"op": "in-net", "args": {"address": "10.0.0.1", "subnet": "nonsense"}}`, false, "invalid value"},
		{"in-net bad address", `{"op": "in-net", "args": {"address": "{inventory[hostname]}", "subnet": "10.0.0.0/8"}}`, false, "IP address"},
		{"matches whole", `{"op": "matches", "args": {"value": "{inventory[system_vendor][manufacturer]}", "regex": "QE.U"}}`, true, ""},
		{"matches prefix only", `{"op": "matches", "args": {"value": "{inventory[system_vendor][manufacturer]}", "regex": "QE"}}`, false, ""},
		{"matches case-insensitive", `{"op": "matches", "args": {"value": "{inventory[system_vendor][manufacturer]}", "regex": "(?i)qemu"}}`, true, ""},
		{"contains", `{"op": "contains", "args": {"value": "{inventory[system_vendor][product_name]}", "regex": "Q35"}}`, true, ""},
		{"!contains", `{"op": "!contains", "args": {"value": "{inventory[system_vendor][product_name]}", "regex": "(?i)dell"}}`, true, ""},
		{"contains over a list's str", `{"op": "contains", "args": {"value": "{inventory[cpu][flags]}", "regex": "'sse2'"}}`, true, ""},
		{"one-of", `{"op": "one-of", "args": {"value": "{inventory[cpu][architecture]}", "values": ["aarch64", "x86_64"]}}`, true, ""},
		{"one-of no values", `{"op": "one-of", "args": {"value": "x86_64"}}`, false, ""},
		{"one-of number", `{"op": "one-of", "args": {"value": 2, "values": [1, 2.0]}}`, true, ""},
		{"is-none literal", `{"op": "is-none", "args": {"value": null}}`, true, ""},
		{"is-none interpolated is a string", `{"op": "is-none", "args": {"value": "{inventory[interfaces][0][ipv6_address]}"}}`, false, ""},
		{"is-true plugin data", `{"op": "is-true", "args": {"value": "{plugin_data[auto_discovered]}"}}`, true, ""},
		{"is-true disk rotational", `{"op": "is-true", "args": {"value": "{inventory[disks][0][rotational]}"}}`, true, ""},
		{"is-true yes", `{"op": "is-true", "args": {"value": "Yes"}}`, true, ""},
		{"is-true number", `{"op": "is-true", "args": {"value": 3}}`, true, ""},
		{"is-true missing", `{"op": "is-true", "args": {"value": "{node.auto_discovered}"}}`, false, ""},
		{"is-false", `{"op": "is-false", "args": {"value": "{inventory[disks][1][rotational]}"}}`, true, ""},
		{"is-false zero", `{"op": "is-false", "args": {"value": 0}}`, true, ""},
		{"is-false null", `{"op": "is-false", "args": {"value": null}}`, true, ""},
		{"is-false list", `{"op": "is-false", "args": {"value": []}}`, false, ""},
		{"node attribute", `{"op": "eq", "args": {"values": ["{node.driver_info[ipmi_address]}", "10.0.0.5"]}}`, true, ""},
		{"loop any", `{"op": "eq", "args": {"values": ["{inventory[system_vendor][manufacturer]}", "{item}"]}, "loop": ["Dell", "QEMU"]}`, true, ""},
		{"loop all", `{"op": "eq", "args": {"values": ["{inventory[system_vendor][manufacturer]}", "{item}"]}, "loop": ["Dell", "QEMU"], "multiple": "all"}`, false, ""},
		{"loop first", `{"op": "eq", "args": {"values": ["QEMU", "{item}"]}, "loop": ["Dell", "QEMU"], "multiple": "first"}`, true, ""}, // Ironic's code: the first that holds
		{"loop first none", `{"op": "eq", "args": {"values": ["QEMU", "{item}"]}, "loop": ["Dell", "HP"], "multiple": "first"}`, false, ""},
		{"loop last", `{"op": "eq", "args": {"values": ["QEMU", "{item}"]}, "loop": ["Dell", "QEMU"], "multiple": "last"}`, true, ""},
		{"loop force strings", `{"op": "eq", "args": {"values": ["{inventory[cpu][count]}", "{item}"]}, "loop": [1, 2]}`, true, ""},
		{"loop item fields", `{"op": "contains", "args": {"value": "{inventory[interfaces][0][name]}", "regex": "{item}"}, "loop": ["^eth"]}`, true, ""},
		{"loop item holds a field", `{"op": "eq", "args": {"values": ["{item}", "x86_64"]}, "loop": ["{inventory[cpu][architecture]}"]}`, true, ""},
		{"loop object once", `{"op": "eq", "args": {"values": ["{item[a]}", "1"]}, "loop": {"a": 1}}`, true, ""},
		{"loop inverted", `{"op": "!eq", "args": {"values": ["QEMU", "{item}"]}, "loop": ["QEMU"], "multiple": "all"}`, false, ""},
		{"masked secret", `{"op": "eq", "args": {"values": ["{inventory[bmc_password]}", "***"]}}`, true, ""},
		{"masked nested plugin data", `{"op": "eq", "args": {"values": ["{plugin_data[auth_token]}", "***"]}}`, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rule(t, `{"conditions": [`+tc.cond+`], "actions": [{"op": "set-attribute", "args": {"path": "/extra/hit", "value": true}}]}`)
			res, _ := run(t, r)
			if tc.failure != "" {
				if !strings.Contains(res.Failure, tc.failure) {
					t.Fatalf("failure = %q, want it to contain %q", res.Failure, tc.failure)
				}
				return
			}
			if res.Failure != "" {
				t.Fatalf("failure %q", res.Failure)
			}
			if got := res.Node.Extra["hit"] == true; got != tc.want {
				t.Errorf("condition held = %v, want %v", got, tc.want)
			}
		})
	}
}
