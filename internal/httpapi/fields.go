package httpapi

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ironwork/ironwork"
)

// access says how a field may be written.
type access int

const (
	readOnly  access = 0
	canCreate access = 1 << iota
	canPatch
	readWrite = canCreate | canPatch
)

// field describes one member of an API object: the version that introduced it, how to render
// it, and how to set it from a decoded JSON value.
type field[T any] struct {
	name   string
	since  int
	access access
	get    func(*T) any        // the value as shown to users (secrets masked)
	raw    func(*T) any        // the real value, the base of PATCH; defaults to get
	set    func(*T, any) error // decodes and stores a JSON value; nil for read-only fields
	check  func(v any) error   // extra validation before set
}

func (f field[T]) rawValue(v *T) any {
	if f.raw != nil {
		return f.raw(v)
	}
	return f.get(v)
}

// fieldTable is the ordered list of an object's fields, with the resource name used in errors.
type fieldTable[T any] struct {
	kind   string // "node", "port", ...
	fields []field[T]
}

func (t fieldTable[T]) lookup(name string) (field[T], bool) {
	for _, f := range t.fields {
		if f.name == name {
			return f, true
		}
	}
	return field[T]{}, false
}

// render returns the visible fields of v at version ver, restricted to want when it is not nil.
// over, when not nil, gives the value of the field at index i instead of its get (ok true).
func (t fieldTable[T]) render(v *T, ver int, want []string, over func(i int) (any, bool)) object {
	out := make(object, 0, len(t.fields)+4)
	for i, f := range t.fields {
		if f.since > ver || (want != nil && !slices.Contains(want, f.name)) {
			continue
		}
		if over != nil {
			if val, ok := over(i); ok {
				out = append(out, kv{f.name, val})
				continue
			}
		}
		out = append(out, kv{f.name, f.get(v)})
	}
	return out
}

// schemaError builds the message Ironic's JSON schema validation gives.
func schemaError(kind, format string, args ...any) error {
	return invalid("Schema error for %s: %s", kind, fmt.Sprintf(format, args...))
}

// apply sets the members of body on v, as for a create request: unknown members, members that
// may not be set and members newer than ver are refused.
func (t fieldTable[T]) apply(v *T, body map[string]any, ver int, allowed access) error {
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f, ok := t.lookup(k)
		if !ok || f.access&allowed == 0 || f.set == nil {
			return schemaError(t.kind, "Additional properties are not allowed ('%s' was unexpected)", k)
		}
		if f.since > ver && body[k] != nil {
			return tooNew(f.since)
		}
	}
	for _, k := range keys {
		f, _ := t.lookup(k)
		if f.check != nil {
			if err := f.check(body[k]); err != nil {
				return err
			}
		}
		if err := f.set(v, body[k]); err != nil {
			return err
		}
	}
	return nil
}

// patchable lists the names of the fields that may be patched at version ver.
func (t fieldTable[T]) patchable(ver int) []string {
	var out []string
	for _, f := range t.fields {
		if f.access&canPatch != 0 && f.since <= ver {
			out = append(out, f.name)
		}
	}
	return out
}

// Field constructors. kind is the resource name used in schema errors.

func strField[T any](kind, name string, since int, a access, p func(*T) *string, maxLen int) field[T] {
	return field[T]{name: name, since: since, access: a,
		get: func(v *T) any { return optStr(*p(v)) },
		set: func(v *T, val any) error {
			s, err := asString(kind, val, maxLen)
			if err != nil {
				return err
			}
			*p(v) = s
			return nil
		}}
}

func boolField[T any](kind, name string, since int, a access, p func(*T) *bool) field[T] {
	return field[T]{name: name, since: since, access: a,
		get: func(v *T) any { return *p(v) },
		set: setBool(kind, func(v *T, b *bool) { *p(v) = b != nil && *b })}
}

func optBoolField[T any](kind, name string, since int, a access, p func(*T) **bool) field[T] {
	return field[T]{name: name, since: since, access: a,
		get: func(v *T) any { return optBool(*p(v)) },
		set: setBool(kind, func(v *T, b *bool) { *p(v) = b })}
}

// setBool is the setter of a boolean field: null stores nil, anything else must read as a
// boolean (asBool).
func setBool[T any](kind string, store func(v *T, b *bool)) func(*T, any) error {
	return func(v *T, val any) error {
		if val == nil {
			store(v, nil)
			return nil
		}
		b, err := asBool(kind, val)
		if err != nil {
			return err
		}
		store(v, &b)
		return nil
	}
}

func objField[T any](kind, name string, since int, a access, p func(*T) *ironwork.JSONObject, mask bool) field[T] {
	f := field[T]{name: name, since: since, access: a,
		get: func(v *T) any { return obj(*p(v)) },
		set: func(v *T, val any) error {
			if val == nil {
				*p(v) = ironwork.JSONObject{}
				return nil
			}
			m, ok := val.(map[string]any)
			if !ok {
				return schemaError(kind, "%s is not of type 'object', 'null'", pyRepr(val))
			}
			*p(v) = normalizeJSON(m)
			return nil
		}}
	if mask {
		f.raw = f.get
		f.get = func(v *T) any { return maskSecrets(obj(*p(v))) }
	}
	return f
}

func timeField[T any](name string, p func(*T) *time.Time) field[T] {
	return field[T]{name: name, since: 1, get: func(v *T) any { return isoTime(*p(v)) }}
}

func optTimeField[T any](name string, since int, p func(*T) **time.Time) field[T] {
	return field[T]{name: name, since: since, get: func(v *T) any { return optTime(*p(v)) }}
}

func roField[T any](name string, since int, get func(*T) any) field[T] {
	return field[T]{name: name, since: since, get: get}
}

func uuidField[T any](kind, name string, since int, a access, p func(*T) *string) field[T] {
	return field[T]{name: name, since: since, access: a,
		get: func(v *T) any { return optStr(*p(v)) },
		set: func(v *T, val any) error {
			if val == nil {
				*p(v) = ""
				return nil
			}
			s, ok := val.(string)
			if !ok || !ironwork.IsUUID(s) {
				return invalid("Expected UUID for %s: %v", name, val)
			}
			*p(v) = canonicalUUID(s)
			return nil
		}}
}

// canonicalUUID returns a UUID in lower case with hyphens.
func canonicalUUID(s string) string {
	s = strings.ToLower(strings.ReplaceAll(s, "-", ""))
	if len(s) != 32 {
		return s
	}
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

func asString(kind string, val any, maxLen int) (string, error) {
	if val == nil {
		return "", nil
	}
	s, ok := val.(string)
	if !ok {
		return "", schemaError(kind, "%s is not of type 'string', 'null'", pyRepr(val))
	}
	if maxLen > 0 && len(s) > maxLen {
		return "", schemaError(kind, "'%s' is too long", s)
	}
	return s, nil
}

func asBool(kind string, val any) (bool, error) {
	switch x := val.(type) {
	case bool:
		return x, nil
	case string:
		b, err := parseBool(kind, x)
		if err != nil {
			return false, schemaError(kind, "%s is not of type 'boolean'", pyRepr(val))
		}
		return b, nil
	}
	return false, schemaError(kind, "%s is not of type 'boolean'", pyRepr(val))
}

// normalizeJSON turns decoded numbers into plain JSON values for storage.
func normalizeJSON(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		return m
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return m
	}
	return out
}

// parseFields reads ?fields= (comma-separated, lower-cased, de-duplicated) and checks each
// name against the table at version ver. extra names are valid too.
func parseFields[T any](t fieldTable[T], q string, ver int, extra ...string) ([]string, error) {
	if q == "" {
		return nil, nil
	}
	if ver < vFields {
		return nil, notAcceptable("Request not acceptable.")
	}
	var out []string
	for _, f := range strings.Split(q, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" || slices.Contains(out, f) {
			continue
		}
		fd, ok := t.lookup(f)
		if !ok && !slices.Contains(extra, f) {
			return nil, invalid("Field(s) \"%s\" are not valid", f)
		}
		if ok && fd.since > ver {
			return nil, notAcceptable("Request not acceptable.")
		}
		out = append(out, f)
	}
	return out, nil
}
