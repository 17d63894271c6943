package inspection

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"
)

// TestInterpolationMatchesPython checks interpolation, str() of values, == and < against
// Python itself, Ironic's engine's language: every template and pair below is given to
// python3 (testdata/pyformat.py) and to the engine, and the answers must agree.
func TestInterpolationMatchesPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed (scripts/deps.sh installs it)")
	}
	in := fixture(t)
	templates := []string{
		"{inventory[cpu][count]}", "{inventory[cpu]}", "{inventory[cpu][flags]}", "{inventory[disks][0]}",
		"{inventory[memory][physical_mb]} MiB", "{inventory[interfaces][1][speed_mbps]}", "{inventory[disks][1][rotational]}",
		"{inventory[system_vendor][product_name]!r}", "{inventory[hostname][2]}", "{{x}} {inventory[bmc_address]}",
		"{plugin_data[nested]}", "{plugin_data}", "{node.name} {node.driver}", "{node.properties[capabilities]}",
		"{node.driver_info}", "{inventory[missing]}", "{inventory.cpu}", "{inventory[disks][9]}", "{node.nothing}",
		"{inventory[cpu][count][0]}", "{}", "{0}", "{inventory", "}", "{nothing}", "{inventory[cpu]]}", "{inventory[cpu]x}",
		"{inventory!x}", "quote's \"both\" {inventory[system_vendor][firmware]}",
	}
	compare := [][2]any{
		{jsonNum("2"), jsonNum("2.0")}, {jsonNum("2"), "2"}, {true, jsonNum("1")}, {"16", "2"}, {jsonNum("16"), jsonNum("2")},
		{jsonNum("1.5"), jsonNum("2")}, {nil, nil}, {nil, jsonNum("1")}, {[]any{jsonNum("1"), "a"}, []any{jsonNum("1"), "b"}},
		{[]any{jsonNum("1")}, []any{jsonNum("1"), jsonNum("0")}}, {map[string]any{"a": jsonNum("1")}, map[string]any{"a": jsonNum("1.0")}},
		{map[string]any{"a": jsonNum("1")}, map[string]any{"b": jsonNum("1")}}, {"a", []any{"a"}}, {jsonNum("1e16"), jsonNum("1e16")},
		{jsonNum("0.1"), jsonNum("1e-05")}, {false, jsonNum("0")}, {[]any{"x", nil}, []any{"x", jsonNum("1")}},
	}
	node := map[string]any{}
	for name, a := range nodeAttrs {
		node[name] = a.get(in.Node)
	}
	req, err := json.Marshal(map[string]any{"inventory": in.Inventory, "plugin_data": in.PluginData, "node": node,
		"templates": templates, "compare": compare})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "testdata/pyformat.py")
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.String())
	}
	var got struct {
		Format []struct {
			OK    bool
			Value string
			Error string
		}
		Compare []struct {
			Eq, Lt bool
			Error  string
			Str    string
		}
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("python3 answered %s: %v", raw, err)
	}
	sc := &scope{node: in.Node, inventory: in.Inventory, pluginData: in.PluginData, mask: false}
	kinds := map[errKind]string{errKey: "KeyError", errIndex: "IndexError", errAttr: "AttributeError", errType: "TypeError", errValue: "ValueError"}
	for i, tpl := range templates {
		want := got.Format[i]
		out, err := sc.format(tpl)
		switch {
		case want.OK && (err != nil || out != want.Value):
			t.Errorf("%q: Python gives %q, the engine %q (%v)", tpl, want.Value, out, err)
		case !want.OK && err == nil:
			t.Errorf("%q: Python raises %s, the engine gives %q", tpl, want.Error, out)
		case !want.OK && kinds[err.(*formatError).kind] != want.Error:
			t.Errorf("%q: Python raises %s, the engine %s (%v)", tpl, want.Error, kinds[err.(*formatError).kind], err)
		}
	}
	for i, p := range compare {
		want := got.Compare[i]
		c, err := pyCompare("<", p[0], p[1])
		gotErr := ""
		if err != nil {
			gotErr = "TypeError"
		}
		if eq := pyEqual(p[0], p[1]); eq != want.Eq || (c < 0) != want.Lt || gotErr != want.Error || pyStr(p[0], false) != want.Str {
			t.Errorf("%v vs %v: Python ==%v <%v %q str %q; the engine ==%v <%v %q str %q", p[0], p[1], want.Eq, want.Lt, want.Error, want.Str,
				eq, c < 0, gotErr, pyStr(p[0], false))
		}
	}
}
