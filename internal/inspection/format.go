package inspection

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ironwork/ironwork"
)

// Variable interpolation: Ironic formats rule arguments with Python's str.format over four
// names, node (an object: {node.driver}), inventory and plugin_data (dicts:
// {inventory[cpu][count]}) and, inside a loop, item. The result is always a string. A field
// that cannot be resolved leaves the argument as written; for is-empty a missing key makes
// the argument None.

// errKind classifies a formatting failure as Python's exception class would.
type errKind int

const (
	errValue errKind = iota // malformed format string
	errKey                  // a missing dict key or name
	errIndex                // a list index out of range, or a positional field
	errAttr                 // an attribute the object does not have
	errType                 // subscripting a value that cannot be
)

type formatError struct {
	kind errKind
	msg  string
}

func (e *formatError) Error() string { return e.msg }

// scope is what replacement fields can name.
type scope struct {
	node       *ironwork.Node
	inventory  map[string]any
	pluginData map[string]any
	item       any
	hasItem    bool
	mask       bool // show sensitive keys of the inventory and plugin data as "***"
}

// maskedValue is what a masked sensitive value reads as, as in Ironic.
const maskedValue = "***"

// sensitiveFields are the keys Ironic masks in the inventory and plugin data.
var sensitiveFields = []string{"password", "auth_token", "bmc_password"}

func sensitiveKey(k string) bool {
	for _, f := range sensitiveFields {
		if k == f {
			return true
		}
	}
	return false
}

// nodeObject marks the node in a field chain: it has attributes, not keys.
type nodeObject struct{ n *ironwork.Node }

// ref is a resolved value and whether it lies inside the masked inventory or plugin data.
type ref struct {
	v      any
	masked bool
}

// maxFormatLen bounds the strings interpolation produces and reads.
const maxFormatLen = 1 << 20

// format is Python's s.format(**scope).
func (sc *scope) format(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			b.WriteByte('{')
			i += 2
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			b.WriteByte('}')
			i += 2
		case c == '}':
			return "", &formatError{errValue, "Single '}' encountered in format string"}
		case c == '{':
			depth, j := 1, i+1
			for ; j < len(s) && depth > 0; j++ {
				switch s[j] {
				case '{':
					depth++
				case '}':
					depth--
				}
			}
			if depth > 0 {
				return "", &formatError{errValue, "expected '}' before end of string"}
			}
			out, err := sc.field(s[i+1 : j-1])
			if err != nil {
				return "", err
			}
			b.WriteString(out)
			if b.Len() > maxFormatLen {
				return "", &formatError{errValue, "formatted string too long"}
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

// field renders one replacement field: name, accessors, conversion and format spec.
func (sc *scope) field(f string) (string, error) {
	name, conv, spec := f, byte(0), ""
	bracket := false
	for i := 0; i < len(f); i++ {
		switch c := f[i]; {
		case c == '[':
			bracket = true
		case c == ']':
			bracket = false
		case !bracket && c == '!':
			name = f[:i]
			rest := f[i+1:]
			if rest == "" {
				return "", &formatError{errValue, "end of string while looking for conversion specifier"}
			}
			conv = rest[0]
			rest = rest[1:]
			if rest != "" {
				if rest[0] != ':' {
					return "", &formatError{errValue, "expected ':' after conversion specifier"}
				}
				spec = rest[1:]
			}
			i = len(f)
		case !bracket && c == ':':
			name, spec = f[:i], f[i+1:]
			i = len(f)
		}
	}
	if strings.ContainsAny(name, "{}") {
		return "", &formatError{errValue, "unexpected '{' in field name"}
	}
	r, err := sc.resolve(name)
	if err != nil {
		return "", err
	}
	mask := sc.mask && r.masked
	var out string
	switch conv {
	case 0, 's':
		out = strOf(r.v, mask)
	case 'r', 'a':
		out = reprOf(r.v, mask)
	default:
		return "", &formatError{errValue, fmt.Sprintf("Unknown conversion specifier %c", conv)}
	}
	if spec != "" {
		return "", &formatError{errValue, "format specifications are not supported"}
	}
	return out, nil
}

func strOf(v any, mask bool) string {
	if n, ok := v.(nodeObject); ok {
		return "Node(uuid=" + pyQuote(n.n.UUID) + ")"
	}
	return pyStr(v, mask)
}

func reprOf(v any, mask bool) string {
	if _, ok := v.(nodeObject); ok {
		return strOf(v, mask)
	}
	return pyRepr(v, mask)
}

// resolve follows a field name such as inventory[cpu][count] or node.properties[cpus].
func (sc *scope) resolve(name string) (ref, error) {
	end := strings.IndexAny(name, ".[")
	if end < 0 {
		end = len(name)
	}
	first := name[:end]
	var cur ref
	switch {
	case first == "" || strings.Trim(first, "0123456789") == "":
		return ref{}, &formatError{errIndex, "Replacement index 0 out of range for positional args tuple"}
	case first == "node" && sc.node != nil:
		cur = ref{v: nodeObject{sc.node}}
	case first == "inventory":
		cur = ref{v: sc.inventory, masked: true}
	case first == "plugin_data":
		cur = ref{v: sc.pluginData, masked: true}
	case first == "item" && sc.hasItem:
		cur = ref{v: sc.item}
	default:
		return ref{}, &formatError{errKey, pyQuote(first)}
	}
	rest := name[end:]
	for rest != "" {
		switch rest[0] {
		case '.':
			rest = rest[1:]
			e := strings.IndexAny(rest, ".[")
			if e < 0 {
				e = len(rest)
			}
			attr := rest[:e]
			rest = rest[e:]
			if attr == "" {
				return ref{}, &formatError{errValue, "Empty attribute in format string"}
			}
			n, ok := cur.v.(nodeObject)
			if !ok {
				return ref{}, &formatError{errAttr, fmt.Sprintf("'%s' object has no attribute %s", typeName(cur.v), pyQuote(attr))}
			}
			a, ok := nodeAttrs[attr]
			if !ok {
				return ref{}, &formatError{errAttr, fmt.Sprintf("'Node' object has no attribute %s", pyQuote(attr))}
			}
			cur = ref{v: a.get(n.n)}
		case '[':
			e := strings.IndexByte(rest, ']')
			if e < 0 {
				return ref{}, &formatError{errValue, "Missing ']' in format string"}
			}
			key := rest[1:e]
			rest = rest[e+1:]
			if key == "" {
				return ref{}, &formatError{errValue, "Empty attribute in format string"}
			}
			if rest != "" && rest[0] != '.' && rest[0] != '[' {
				return ref{}, &formatError{errValue, "Only '.' or '[' may follow ']' in format field specifier"}
			}
			next, err := index(cur, key, sc.mask)
			if err != nil {
				return ref{}, err
			}
			cur = next
		default:
			return ref{}, &formatError{errValue, "Only '.' or '[' may follow ']' in format field specifier"}
		}
	}
	return cur, nil
}

// index is Python's cur[key], where key is an int when it is all digits.
func index(cur ref, key string, mask bool) (ref, error) {
	isInt := strings.Trim(key, "0123456789") == ""
	idx := -1
	if isInt {
		idx = 0
		for _, c := range key {
			idx = idx*10 + int(c-'0')
			if idx > maxFormatLen {
				idx = maxFormatLen
			}
		}
	}
	switch x := cur.v.(type) {
	case map[string]any:
		if isInt {
			return ref{}, &formatError{errKey, key}
		}
		v, ok := x[key]
		if !ok {
			return ref{}, &formatError{errKey, pyQuote(key)}
		}
		if mask && cur.masked && sensitiveKey(key) {
			return ref{v: maskedValue}, nil
		}
		return ref{v: v, masked: cur.masked}, nil
	case []any:
		if !isInt {
			return ref{}, &formatError{errType, "list indices must be integers or slices, not str"}
		}
		if idx >= len(x) {
			return ref{}, &formatError{errIndex, "list index out of range"}
		}
		return ref{v: x[idx], masked: cur.masked}, nil
	case string:
		if !isInt {
			return ref{}, &formatError{errType, "string indices must be integers, not 'str'"}
		}
		if idx >= utf8.RuneCountInString(x) {
			return ref{}, &formatError{errIndex, "string index out of range"}
		}
		for i, r := range []rune(x) {
			if i == idx {
				return ref{v: string(r)}, nil
			}
		}
	case nodeObject:
		return ref{}, &formatError{errType, "'Node' object is not subscriptable"}
	}
	return ref{}, &formatError{errType, fmt.Sprintf("'%s' object is not subscriptable", typeName(cur.v))}
}

// interpolate formats every string in v, recursively through lists and objects (keys
// included), as Ironic's interpolate_variables. In a loop each string is formatted twice, so
// that an item may itself hold a field. A string that cannot be formatted stays as written,
// except that a missing key gives nil for is-empty.
func (sc *scope) interpolate(v any, op string, depth int) any {
	if depth > maxReprDepth {
		return v
	}
	switch x := v.(type) {
	case string:
		if sc.hasItem {
			y, ok := sc.safeFormat(x, op)
			if !ok {
				return nil
			}
			s, isStr := y.(string)
			if !isStr {
				return y
			}
			x = s
		}
		y, ok := sc.safeFormat(x, op)
		if !ok {
			return nil
		}
		return y
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			nk := k
			if y, ok := sc.safeFormat(k, op); ok {
				if s, isStr := y.(string); isStr {
					nk = s
				}
			}
			out[nk] = sc.interpolate(e, op, depth+1)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = sc.interpolate(e, op, depth+1)
		}
		return out
	}
	return v
}

// safeFormat formats s; ok is false when the result is None (a missing key under is-empty).
func (sc *scope) safeFormat(s, op string) (any, bool) {
	out, err := sc.format(s)
	if err == nil {
		return out, true
	}
	if fe, isFE := err.(*formatError); isFE && fe.kind == errKey && op == "is-empty" {
		return nil, false
	}
	return s, true
}
