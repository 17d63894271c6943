package inspection

import (
	"context"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
)

// fuzzSeeds are rule documents that reach every operator, action, loop form and failure.
var fuzzSeeds = []string{
	`{"actions": [{"op": "set-attribute", "args": {"path": "/properties/cpus", "value": "{inventory[cpu][count]}"}}]}`,
	`{"conditions": [{"op": "contains", "args": {"value": "{inventory[system_vendor][manufacturer]}", "regex": "(?i)qemu"}},
		{"op": "!eq", "args": {"values": ["{node.driver}", "x"]}}, {"op": "in-net", "args": {"address": "{inventory[bmc_address]}", "subnet": "192.168.0.0/16"}}],
		"actions": [{"op": "add-trait", "args": {"name": "CUSTOM_Q"}}, {"op": "set-capability", "args": {"name": "boot_mode", "value": "{inventory[boot][current_boot_mode]}"}}]}`,
	`{"conditions": [{"op": "eq", "args": {"values": ["{inventory[disks][0][name]}", "{item}"]}, "loop": ["/dev/vda", "/dev/sda"], "multiple": "all"}],
		"actions": [{"op": "set-attribute", "args": {"path": "{item[p]}", "value": "{item[v]}"}, "loop": [{"p": "/extra/a", "v": "{inventory[hostname]}"}]}]}`,
	`{"actions": [{"op": "extend-plugin-data", "args": {"path": "a.b", "value": 1, "unique": true}}, {"op": "unset-plugin-data", "args": {"path": "nested.a"}},
		{"op": "set-port-attribute", "args": {"port_id": "52:54:00:12:34:56", "path": "/extra/x", "value": "{plugin_data[nested]}"}}]}`,
	`{"conditions": [{"op": "is-empty", "args": {"value": "{inventory[x][y]}"}}, {"op": "one-of", "args": ["{inventory[cpu][architecture]}", ["x86_64"]]}],
		"actions": [{"op": "fail", "args": {"msg": "stop"}}]}`,
	`{"conditions": [{"op": "lt", "args": {"values": [1, "{inventory[memory][physical_mb]}"]}}], "actions": [{"op": "log", "args": ["{inventory}", "error"]}]}`,
	`{"actions": [{"op": "del-attribute", "args": {"path": "extra.tags"}}, {"op": "extend-attribute", "args": {"path": "/extra/tags", "value": {"k": "{node}"}}},
		{"op": "remove-trait", "args": {"name": "CUSTOM_OLD"}}, {"op": "unset-capability", "args": {"name": "boot_mode"}}]}`,
}

// FuzzParseRule feeds rule bodies to the validator the API uses: it must answer a rule or
// an EINVALID error, never panic, and a rule it accepts must survive Document and ParseRule.
func FuzzParseRule(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"actions": [], "priority": 1e400, "phase": null, "uuid": 5}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, err := DecodeDocument(body)
		if err != nil {
			return
		}
		r, err := ParseRule(doc, false)
		if err != nil {
			if ironwork.ErrorCode(err) != ironwork.EINVALID {
				t.Fatalf("ParseRule(%s): a non-400 error %v", body, err)
			}
			return
		}
		back, err := ParseRule(Document(r), false)
		if err != nil {
			t.Fatalf("an accepted rule does not parse back: %v", err)
		}
		if diff := cmp.Diff(r, back); diff != "" {
			t.Fatalf("Document does not round-trip (-want +got):\n%s", diff)
		}
	})
}

// FuzzRuleEngine runs fuzzed rules over fuzzed inventories: the engine must not panic, must
// not change its input, and must return a node.
func FuzzRuleEngine(f *testing.F) {
	inv, err := os.ReadFile("testdata/inventory.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), inv)
	}
	f.Add([]byte(fuzzSeeds[0]), []byte(`{"cpu": {"count": "{inventory[cpu][count]}"}, "a": [[[[[]]]]]}`))
	f.Fuzz(func(t *testing.T, body, inventory []byte) {
		doc, err := DecodeDocument(body)
		if err != nil {
			return
		}
		r, err := ParseRule(doc, false)
		if err != nil {
			return
		}
		r.UUID = "fuzz"
		in := fixture(t)
		if m, err := DecodeDocument(inventory); err == nil {
			in.Inventory = m
		}
		before := Input{Node: copyNode(in.Node), Inventory: copyObject(in.Inventory), PluginData: copyObject(in.PluginData)}
		for _, p := range in.Ports {
			before.Ports = append(before.Ports, copyPort(p))
		}
		e := &Engine{Mask: MaskSensitive}
		res := e.Run(context.Background(), PhaseMain, []*ironwork.InspectionRule{r, r}, in)
		if res.Node == nil || res.PluginData == nil || len(res.Ports) != len(in.Ports) {
			t.Fatalf("result %+v", res)
		}
		if diff := cmp.Diff(before, in); diff != "" {
			t.Fatalf("Run changed its input (-want +got):\n%s", diff)
		}
	})
}
