package inspection

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/ironwork/ironwork"
)

// maxBuiltInFile bounds the size of a built-in rules file.
const maxBuiltInFile = 4 << 20

// LoadBuiltIn reads built-in rules from a YAML (or JSON) file holding a list of rules, as
// Ironic's [inspection_rules]built_in_rules. A rule without a uuid gets Ironic's synthetic one,
// 00000000-0000-0000-0000-<index in hexadecimal>; every rule is validated as a user rule
// would be, except that any priority and any identifier are allowed.
func LoadBuiltIn(path string) ([]*ironwork.InspectionRule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read built-in inspection rules: %w", err)
	}
	if len(b) > maxBuiltInFile {
		return nil, fmt.Errorf("read built-in inspection rules %s: larger than %d bytes", path, maxBuiltInFile)
	}
	return ParseBuiltIn(b)
}

// ParseBuiltIn parses the contents of a built-in rules file.
func ParseBuiltIn(b []byte) ([]*ironwork.InspectionRule, error) {
	var raw any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("parse built-in inspection rules: %w", err)
	}
	list, ok := jsonLike(raw, 0).([]any)
	if !ok {
		return nil, fmt.Errorf("parse built-in inspection rules: the file should contain a list of rules")
	}
	var out []*ironwork.InspectionRule
	seen := map[string]bool{}
	synthetic := 0
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("built-in inspection rule %d: not a mapping", i)
		}
		doc := map[string]any{"actions": []any{}, "conditions": []any{}}
		for k, v := range m {
			doc[k] = v
		}
		if doc["uuid"] == nil {
			doc["uuid"] = fmt.Sprintf("00000000-0000-0000-0000-%012x", synthetic)
			synthetic++
		}
		r, err := ParseRule(doc, true)
		if err != nil {
			return nil, fmt.Errorf("built-in inspection rule %d: %w", i, err)
		}
		if seen[r.UUID] {
			return nil, fmt.Errorf("built-in inspection rule %d: uuid %s is used twice", i, r.UUID)
		}
		seen[r.UUID] = true
		out = append(out, r)
	}
	return out, nil
}

// jsonLike turns a decoded YAML document into the values a JSON decoder with UseNumber gives.
func jsonLike(v any, depth int) any {
	if depth > 100 {
		return nil
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonLike(e, depth+1)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonLike(e, depth+1)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonLike(e, depth+1)
		}
		return out
	case int:
		return json.Number(strconv.Itoa(x))
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case uint64:
		return json.Number(strconv.FormatUint(x, 10))
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return pyFloat(x)
		}
		return json.Number(pyFloat(x))
	case nil, bool, string:
		return x
	}
	return fmt.Sprint(v)
}
