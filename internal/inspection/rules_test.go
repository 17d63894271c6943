package inspection

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
)

// TestPriorityOrder checks rules run highest priority first, in their given order among
// equals, and that rules of another phase do not run.
func TestPriorityOrder(t *testing.T) {
	mk := func(id string, prio int) *ironwork.InspectionRule {
		r := rule(t, `{"priority": `+itoa(prio)+`, "actions": [{"op": "extend-attribute", "args": {"path": "/extra/order", "value": "`+id+`"}}]}`)
		r.UUID = id
		return r
	}
	other := mk("other-phase", 100)
	other.Phase = "later"
	res, _ := run(t, mk("low", 1), mk("high", 50), mk("mid-a", 10), other, mk("mid-b", 10))
	if diff := cmp.Diff([]any{"high", "mid-a", "mid-b", "low"}, res.Node.Extra["order"]); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"high", "mid-a", "mid-b", "low"}, res.Applied); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
}

func itoa(n int) string { return strings.TrimSpace(pyStr(n, false)) }

// TestLaterRulesSeeEarlierChanges checks a rule reads the node as earlier rules left it.
func TestLaterRulesSeeEarlierChanges(t *testing.T) {
	first := rule(t, `{"priority": 2, "actions": [{"op": "set-attribute", "args": {"path": "/properties/cpu_arch", "value": "{inventory[cpu][architecture]}"}}]}`)
	second := rule(t, `{"priority": 1, "conditions": [{"op": "eq", "args": {"values": ["{node.properties[cpu_arch]}", "x86_64"]}}],
		"actions": [{"op": "add-trait", "args": {"name": "CUSTOM_X86"}}]}`)
	res, _ := run(t, second, first)
	if diff := cmp.Diff([]string{"CUSTOM_OLD", "CUSTOM_X86"}, res.Node.Traits); diff != "" {
		t.Errorf("traits (-want +got):\n%s", diff)
	}
}

// TestSensitiveRule checks a sensitive rule's values reach neither the logs nor the failure,
// and that the masking modes decide what rules read.
func TestSensitiveRule(t *testing.T) {
	r := rule(t, `{"sensitive": true, "actions": [
		{"op": "set-attribute", "args": {"path": "/driver_info/ipmi_password", "value": "s3cret-{inventory[hostname]}"}},
		{"op": "log", "args": {"msg": "password s3cret-{inventory[hostname]}", "level": "error"}},
		{"op": "set-attribute", "args": {"path": "/driver_info/ipmi_password/x", "value": "s3cret-again"}}]}`)
	res, logs := run(t, r)
	if res.Failure == "" || strings.Contains(res.Failure, "s3cret") || strings.Contains(logs, "s3cret") {
		t.Errorf("a sensitive rule's value leaked:\nfailure %q\nlogs %s", res.Failure, logs)
	}
	if !strings.Contains(res.Failure, "details withheld") {
		t.Errorf("failure = %q", res.Failure)
	}

	read := rule(t, `{"sensitive": true, "actions": [{"op": "set-plugin-data", "args": {"path": "pw", "value": "{inventory[bmc_password]}"}}]}`)
	for mode, want := range map[MaskMode]string{"": "***", MaskAlways: "***", MaskNever: "hunter2", MaskSensitive: "hunter2"} {
		e := &Engine{Mask: mode}
		got := e.Run(context.Background(), PhaseMain, []*ironwork.InspectionRule{read}, fixture(t)).PluginData["pw"]
		if got != want {
			t.Errorf("mask %q: sensitive rule read %v, want %v", mode, got, want)
		}
	}
	plain := rule(t, `{"actions": [{"op": "set-plugin-data", "args": {"path": "pw", "value": "{inventory}"}}]}`)
	e := &Engine{Mask: MaskSensitive}
	got := e.Run(context.Background(), PhaseMain, []*ironwork.InspectionRule{plain}, fixture(t)).PluginData["pw"].(string)
	if strings.Contains(got, "hunter2") || !strings.Contains(got, "'bmc_password': '***'") {
		t.Errorf("a plain rule read the secret: %s", got)
	}
}

// TestInterpolation checks str.format's corners that rules meet.
func TestInterpolation(t *testing.T) {
	in := fixture(t)
	sc := &scope{node: in.Node, inventory: in.Inventory, pluginData: in.PluginData, mask: true}
	for _, tc := range []struct{ in, want string }{
		{"{inventory[cpu][count]}", "2"},
		{"{inventory[memory]}", "{'physical_mb': 1536, 'total': 1570865152}"},
		{"{inventory[disks][0][rotational]} {inventory[interfaces][1][speed_mbps]}", "True None"},
		{"{inventory[cpu][flags]!r}", "['fpu', 'vme', 'sse2']"},
		{"{inventory[hostname]!r}", "'debian'"},
		{"{inventory[hostname][0]}", "d"},
		{"{{literal}} {node.name}", "{literal} node-1"},
		{"{node.uuid}", testNode},
		{"{node.traits}", "['CUSTOM_OLD']"},
		{"{node.instance_uuid}", "None"},
		{"{inventory[bmc_password]}", "***"},
		{"{plugin_data[nested][a]}", "1"},
	} {
		got, err := sc.format(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("format(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"{inventory[missing]}", "{inventory.cpu}", "{inventory[disks][5]}", "{node[x]}", "{x}", "{}", "{0}", "{",
		"}", "{inventory[cpu}", "{inventory[cpu]x}", "{inventory!z}", "{inventory:>10}", "{node.nope}", "{inventory[disks][x]}"} {
		if got, err := sc.format(bad); err == nil {
			t.Errorf("format(%q) = %q, want an error", bad, got)
		}
		if got := sc.interpolate(bad, "eq", 0); got != bad {
			t.Errorf("interpolate(%q) = %v, want it unchanged", bad, got)
		}
	}
	if got := sc.interpolate("{inventory[missing]}", "is-empty", 0); got != nil {
		t.Errorf("is-empty of a missing key = %v, want None", got)
	}
	for f, want := range map[float64]string{1.5: "1.5", 2: "2.0", 1e16: "1e+16", 1e-5: "1e-05", 123456.789: "123456.789", -0.25: "-0.25"} {
		if got := pyFloat(f); got != want {
			t.Errorf("pyFloat(%v) = %q, want %q", f, got, want)
		}
	}
	if got := pyRepr(map[string]any{"a'b": "it's", "c": []any{nil, true, "x\ny"}}, false); got != `{"a'b": "it's", 'c': [None, True, 'x\ny']}` {
		t.Errorf("repr = %s", got)
	}
}

// TestParseRule checks the validation the API answers 400 with, worded as Ironic.
func TestParseRule(t *testing.T) {
	ok := `"actions": [{"op": "log", "args": {"msg": "x"}}]`
	for _, tc := range []struct{ doc, want string }{
		{`{}`, "Schema error: 'actions' is a required property"},
		{`{"actions": []}`, "Schema error: [] is too short"},
		{`{"actions": {}}`, "Schema error: {} is not of type 'array'"},
		{`{"actions": [{"op": "nope", "args": {}}]}`, "Schema error: 'nope' is not one of ['fail', 'log', 'set-attribute'"},
		{`{"actions": [{"op": "log"}]}`, "Schema error: 'args' is a required property"},
		{`{"actions": [{"op": "log", "args": "x"}]}`, "Schema error: 'x' is not of type 'array', 'object'"},
		{`{"actions": [{"op": "log", "args": {}, "loop": 3}]}`, "Schema error: 3 is not of type 'array', 'object'"},
		{`{"actions": ["log"]}`, "Schema error: 'log' is not of type 'object'"},
		{`{` + ok + `, "conditions": [{"op": "!!eq", "args": {}}]}`, "Schema error: '!!eq' is not one of ['eq', 'lt'"},
		{`{` + ok + `, "conditions": [{"op": "eq", "args": {}, "multiple": "most"}]}`, "Schema error: 'most' is not one of ['any', 'all', 'first', 'last']"},
		{`{` + ok + `, "priority": -1}`, "Schema error: -1 is less than the minimum of 0"},
		{`{` + ok + `, "priority": "5"}`, "Schema error: '5' is not of type 'integer'"},
		{`{` + ok + `, "priority": true}`, "Schema error: True is not of type 'integer'"},
		{`{` + ok + `, "priority": 10000}`, "Priority must be between 0 and 9999 for user-defined rules."},
		{`{` + ok + `, "phase": "early"}`, "Invalid phase: early. Valid phases are: main"},
		{`{` + ok + `, "phase": null}`, "Invalid phase: None. Valid phases are: main"},
		{`{` + ok + `, "phase": "a-very-long-phase-name"}`, "Schema error: 'a-very-long-phase-name' is too long"},
		{`{` + ok + `, "description": 5}`, "Schema error: 5 is not of type 'string', 'null'"},
		{`{` + ok + `, "sensitive": "yes"}`, "Schema error: 'yes' is not of type 'boolean', 'null'"},
		{`{` + ok + `, "uuid": "not-a-uuid"}`, "Expected UUID for uuid: not-a-uuid"},
		{`{` + ok + `, "scope": "x", "built_in": true}`, "Schema error: Additional properties are not allowed ('built_in', 'scope' were unexpected)"},
		{`{"actions": [{"op": "log", "args": {}}]}`, "Invalid parameters for action operator log: missing required argument(s): msg"},
		{`{"actions": [{"op": "log", "args": {"msg": "x", "lvl": "info"}}]}`, "Invalid parameters for action operator log: unexpected argument(s): lvl"},
		{`{"actions": [{"op": "log", "args": {"msg": "x", "level": "loud"}}]}`, "Invalid log level: loud"},
		{`{"actions": [{"op": "set-attribute", "args": ["/extra/x"]}]}`, "Not enough arguments provided. Missing: value"},
		{`{"actions": [{"op": "set-attribute", "args": {"path": 5, "value": 1}}]}`, "path must be a string, not int"},
		{`{"actions": [{"op": "api-call", "args": {"url": "http://x"}}]}`, "Unsupported action operator: api-call"},
		{`{` + ok + `, "conditions": [{"op": "matches", "args": {"value": "x", "regex": "(?<=a)b"}}]}`, "invalid regular expression"},
		{`{` + ok + `, "conditions": [{"op": "eq", "args": {}}]}`, "Invalid parameters for condition operator eq: missing required argument(s): values"},
		{`{"actions": [{"op": "fail", "args": {}}], "conditions": [{"op": "is-true", "args": {"x": 1}}]}`,
			"Multiple validation errors occurred: Invalid parameters for condition operator is-true: missing required argument(s): value; unexpected argument(s): x; Invalid parameters for action operator fail: missing required argument(s): msg"},
	} {
		doc, err := DecodeDocument([]byte(tc.doc))
		if err != nil {
			t.Fatal(err)
		}
		_, err = ParseRule(doc, false)
		if err == nil || ironwork.ErrorCode(err) != ironwork.EINVALID || !strings.Contains(ironwork.ErrorMessage(err), tc.want) {
			t.Errorf("ParseRule(%s) = %v, want EINVALID %q", tc.doc, err, tc.want)
		}
	}
	doc, _ := DecodeDocument([]byte(`{"uuid": "8C5B9C0E-7F0C-4F5E-9F43-3B0E58F5C1AA", "description": "d", "priority": 20, "sensitive": true,
		"conditions": [{"op": "eq", "args": [[1, 1]], "loop": [], "multiple": "all", "field": "x"}],
		"actions": [{"op": "set-plugin-data", "args": {"path": "a", "value": 1}, "loop": [1]}]}`))
	r, err := ParseRule(doc, false)
	if err != nil {
		t.Fatal(err)
	}
	want := &ironwork.InspectionRule{UUID: "8c5b9c0e-7f0c-4f5e-9f43-3b0e58f5c1aa", Description: "d", Priority: 20, Phase: "main", Sensitive: true,
		Conditions: []ironwork.RuleOp{{Op: "eq", Args: []any{[]any{jsonNum("1"), jsonNum("1")}}}},
		Actions:    []ironwork.RuleOp{{Op: "set-plugin-data", Args: map[string]any{"path": "a", "value": jsonNum("1")}, Loop: []any{jsonNum("1")}}}}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("rule (-want +got):\n%s", diff)
	}
	back, err := ParseRule(Document(r), false)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, back); diff != "" {
		t.Errorf("Document does not round-trip (-want +got):\n%s", diff)
	}
}

// TestBuiltIn checks the built-in rules file: Ironic's synthetic UUIDs, any priority, and
// errors for a broken file.
func TestBuiltIn(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	os.WriteFile(path, []byte(`
- description: "Set properties"
  priority: 0
  actions:
    - op: set-attribute
      args: {path: /properties/cpus, value: "{inventory[cpu][count]}"}
- uuid: rule-dell-bmc-setup
  priority: 10000
  sensitive: true
  conditions:
    - op: contains
      args: {value: "{inventory[system_vendor][manufacturer]}", regex: "(?i)dell"}
  actions:
    - op: add-trait
      args: {name: CUSTOM_DELL}
- actions: [{op: log, args: {msg: "x", level: debug}}]
`), 0o644)
	rules, err := LoadBuiltIn(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rules {
		ids = append(ids, r.UUID)
		if !r.BuiltIn {
			t.Errorf("rule %s is not built-in", r.UUID)
		}
	}
	if diff := cmp.Diff([]string{"00000000-0000-0000-0000-000000000000", "rule-dell-bmc-setup", "00000000-0000-0000-0000-000000000001"}, ids); diff != "" {
		t.Errorf("uuids (-want +got):\n%s", diff)
	}
	if rules[0].Priority != 0 || rules[1].Priority != 10000 || !rules[1].Sensitive {
		t.Errorf("rules = %+v %+v", rules[0], rules[1])
	}
	res, _ := run(t, rules...)
	if res.Node.Properties["cpus"] != "2" || res.Failure != "" {
		t.Errorf("built-in rules did not run: %+v", res)
	}
	for _, bad := range []string{"{}", "- actions: []", "- {priority: -1, actions: [{op: log, args: {msg: x}}]}", "- actions: [{op: nope, args: {}}]", "- [1]", "- {actions: [{op: log, args: {msg: x}}], uuid: a}\n- {actions: [{op: log, args: {msg: x}}], uuid: a}", "{{"} {
		if _, err := ParseBuiltIn([]byte(bad)); err == nil {
			t.Errorf("ParseBuiltIn(%q) succeeded", bad)
		}
	}
	if _, err := LoadBuiltIn(filepath.Join(dir, "none.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func jsonNum(s string) any { return json.Number(s) }
