package httpapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// patchOp is one RFC 6902 operation; Ironic accepts add, replace and remove.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
	has   bool   // whether "value" was present
}

var patchPathRE = regexp.MustCompile(`^(/[\w-]+)+$`)

// decodePatch reads and validates a JSON PATCH document.
func decodePatch(body []byte) ([]patchOp, error) {
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, invalid("Invalid patch: a JSON array of operations is required (%s).", err.Error())
	}
	if len(raw) == 0 {
		return nil, invalid("Invalid patch: the list of operations is empty.")
	}
	ops := make([]patchOp, 0, len(raw))
	for _, m := range raw {
		var op patchOp
		for k, v := range m {
			var err error
			switch k {
			case "op":
				err = json.Unmarshal(v, &op.Op)
			case "path":
				err = json.Unmarshal(v, &op.Path)
			case "value":
				d := json.NewDecoder(strings.NewReader(string(v)))
				d.UseNumber()
				err = d.Decode(&op.Value)
				op.has = true
			default:
				return nil, invalid("Schema error for patch: Additional properties are not allowed ('%s' was unexpected)", k)
			}
			if err != nil {
				return nil, invalid("Schema error for patch: %s has the wrong type: %s", k, string(v))
			}
		}
		switch op.Op {
		case "add", "replace", "remove":
		case "":
			return nil, invalid("Schema error for patch: 'op' is a required property")
		default:
			return nil, invalid("Schema error for patch: '%s' is not one of ['add', 'replace', 'remove']", op.Op)
		}
		if op.Path == "" {
			return nil, invalid("Schema error for patch: 'path' is a required property")
		}
		if !patchPathRE.MatchString(op.Path) {
			return nil, invalid("Schema error for patch: '%s' does not match '^(/[\\\\w-]+)+$'", op.Path)
		}
		if op.Op != "remove" && !op.has {
			return nil, invalid("Couldn't apply patch '%s'. Reason: 'value' is a required member", op.Path)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// root returns the first segment of a patch path.
func (op patchOp) root() string {
	seg, _, _ := strings.Cut(strings.TrimPrefix(op.Path, "/"), "/")
	return unescapePointer(seg)
}

func unescapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}

// applyPatch applies ops to doc, a decoded JSON object, and returns the result.
func applyPatch(doc map[string]any, ops []patchOp) (map[string]any, error) {
	var root any = doc
	for _, op := range ops {
		parts := strings.Split(strings.TrimPrefix(op.Path, "/"), "/")
		for i := range parts {
			parts[i] = unescapePointer(parts[i])
		}
		var err error
		root, err = patchAt(root, parts, op)
		if err != nil {
			return nil, invalid("Couldn't apply patch '%s'. Reason: %s", opRepr(op), err.Error())
		}
	}
	m, ok := root.(map[string]any)
	if !ok {
		return nil, invalid("The patched document is not an object.")
	}
	return m, nil
}

func opRepr(op patchOp) string {
	if op.Op == "remove" {
		return fmt.Sprintf("{'op': 'remove', 'path': '%s'}", op.Path)
	}
	return fmt.Sprintf("{'op': '%s', 'path': '%s', 'value': %s}", op.Op, op.Path, pyRepr(op.Value))
}

// patchAt applies op at the path parts below container and returns the new container.
func patchAt(container any, parts []string, op patchOp) (any, error) {
	key := parts[0]
	last := len(parts) == 1
	switch c := container.(type) {
	case map[string]any:
		cur, exists := c[key]
		if !last {
			if !exists {
				return nil, fmt.Errorf("member '%s' not found in %s", key, pyRepr(c))
			}
			v, err := patchAt(cur, parts[1:], op)
			if err != nil {
				return nil, err
			}
			c[key] = v
			return c, nil
		}
		switch op.Op {
		case "add":
			c[key] = op.Value
		case "replace":
			if !exists {
				return nil, fmt.Errorf("can't replace a non-existent object '%s'", key)
			}
			c[key] = op.Value
		case "remove":
			if !exists {
				return nil, fmt.Errorf("can't remove a non-existent object '%s'", key)
			}
			delete(c, key)
		}
		return c, nil
	case []any:
		idx := len(c)
		if key != "-" {
			n, err := strconv.Atoi(key)
			if err != nil || n < 0 || n > len(c) {
				return nil, fmt.Errorf("invalid array index '%s'", key)
			}
			idx = n
		}
		if !last {
			if idx >= len(c) {
				return nil, fmt.Errorf("invalid array index '%s'", key)
			}
			v, err := patchAt(c[idx], parts[1:], op)
			if err != nil {
				return nil, err
			}
			c[idx] = v
			return c, nil
		}
		switch op.Op {
		case "add":
			return slices.Insert(c, idx, op.Value), nil
		case "replace", "remove":
			if idx >= len(c) {
				return nil, fmt.Errorf("can't %s outside of list", op.Op)
			}
			if op.Op == "replace" {
				c[idx] = op.Value
				return c, nil
			}
			return slices.Delete(c, idx, idx+1), nil
		}
	}
	return nil, fmt.Errorf("cannot apply '%s' to a scalar at '%s'", op.Op, key)
}

// patchObject applies a PATCH document to v through its field table: every path must start
// with a field patchable at version ver; changed fields are set through their setters.
func patchObject[T any](t fieldTable[T], v *T, ops []patchOp, ver int) (changed []string, err error) {
	allowed := t.patchable(ver)
	for _, op := range ops {
		root := op.root()
		if !slices.Contains(allowed, root) {
			if f, ok := t.lookup(root); ok && f.access&canPatch != 0 && f.since > ver {
				return nil, tooNew(f.since)
			}
			return nil, invalid("Cannot patch %s. Only the following can be updated: %s", op.Path, strings.Join(allowed, ", "))
		}
	}
	before := map[string]any{}
	doc := map[string]any{}
	for _, name := range allowed {
		f, _ := t.lookup(name)
		before[name] = plainJSON(f.rawValue(v))
		doc[name] = plainJSON(f.rawValue(v))
	}
	after, err := applyPatch(doc, ops)
	if err != nil {
		return nil, err
	}
	for k := range after {
		if !slices.Contains(allowed, k) {
			return nil, invalid("Adding a new attribute (/%s) to the root of the resource is not allowed", k)
		}
	}
	for _, name := range allowed {
		nv, present := after[name]
		if !present {
			nv = nil
		}
		if reflect.DeepEqual(nv, before[name]) {
			continue
		}
		f, _ := t.lookup(name)
		if f.check != nil {
			if err := f.check(nv); err != nil {
				return nil, err
			}
		}
		if err := f.set(v, nv); err != nil {
			return nil, err
		}
		changed = append(changed, name)
	}
	return changed, nil
}

// plainJSON converts a value to its generic decoded-JSON form (maps, slices, json.Number...).
func plainJSON(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	var out any
	if err := d.Decode(&out); err != nil {
		return v
	}
	return out
}
