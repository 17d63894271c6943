package httpapi

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// A node list sends each node's JSON objects (driver_info, properties, ...) from the stored
// text to the response without decoding them into maps and encoding them again: the stored text
// is walked once and written out as appendJSON would write the decoded object (keys in order,
// numbers and strings in appendJSON's form), with secrets masked on the way by the same
// functions (ironwork.IsSecretKey, ironwork.MaskString) on the same member names and strings. Text that is not in that form (keys out of order or
// repeated, escapes in keys, anything but an object) makes appendStored give up, and the caller
// decodes and encodes as before, so both ways always give the same bytes.

// rawJSON is JSON text that appendJSON copies as it is.
type rawJSON []byte

// maskMode says which secrets appendStored hides.
type maskMode int

const (
	maskNone maskMode = iota
	// maskAll hides secrets as ironwork.MaskSecrets does: the value of every member whose name
	// is secret (ironwork.IsSecretKey), at any depth, and secrets inside strings
	// (ironwork.MaskString).
	maskAll
	// maskInstance is maskAll plus instance_info's rule: a top-level configdrive or
	// image_url that is neither null nor "" is hidden.
	maskInstance
)

// appendStored appends the JSON object stored as raw to b as appendJSON would append the
// decoded object, masked by mode as the field's get would mask it. ok is false when raw is
// not in a form it can copy; b is then unspecified.
func appendStored(b []byte, raw string, mode maskMode) (_ []byte, ok bool) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return b, false
	}
	b, i, ok = appendStoredValue(b, raw, i, 0, mode)
	if !ok || skipSpace(raw, i) != len(raw) {
		return b, false
	}
	return b, true
}

// maxStoredDepth bounds the nesting appendStored follows (stored values come through the API's
// input checks, which bound nesting far below this).
const maxStoredDepth = 64

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// appendStoredValue appends the value starting at raw[i] and returns the index after it.
// With a mask mode, secret members and secrets in strings are hidden at every depth.
func appendStoredValue(b []byte, raw string, i, depth int, mode maskMode) ([]byte, int, bool) {
	i = skipSpace(raw, i)
	if i >= len(raw) || depth > maxStoredDepth {
		return b, i, false
	}
	switch c := raw[i]; {
	case c == '{':
		b = append(b, '{')
		i = skipSpace(raw, i+1)
		if i < len(raw) && raw[i] == '}' {
			return append(b, '}'), i + 1, true
		}
		prev, first := "", true
		for {
			i = skipSpace(raw, i)
			key, next, ok := plainString(raw, i)
			// appendMap writes the keys sorted; a key out of order or repeated needs the decode.
			if !ok || (!first && key <= prev) {
				return b, i, false
			}
			if !first {
				b = append(b, ',')
			}
			b = append(b, raw[i:next]...)
			prev, first = key, false
			i = skipSpace(raw, next)
			if i >= len(raw) || raw[i] != ':' {
				return b, i, false
			}
			b = append(b, ':')
			mark := len(b)
			// The value of a secret member is replaced whole: masking inside it is wasted.
			valMode := mode
			if mode != maskNone && ironwork.IsSecretKey(key) {
				valMode = maskNone
			}
			if b, i, ok = appendStoredValue(b, raw, i+1, depth+1, valMode); !ok {
				return b, i, false
			}
			if mode != maskNone && hideMember(key, b[mark:], mode == maskInstance && depth == 0) {
				b = appendString(b[:mark], Masked)
			}
			i = skipSpace(raw, i)
			if i >= len(raw) {
				return b, i, false
			}
			if raw[i] == '}' {
				return append(b, '}'), i + 1, true
			}
			if raw[i] != ',' {
				return b, i, false
			}
			i++
		}
	case c == '[':
		b = append(b, '[')
		i = skipSpace(raw, i+1)
		if i < len(raw) && raw[i] == ']' {
			return append(b, ']'), i + 1, true
		}
		for n := 0; ; n++ {
			if n > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, i, ok = appendStoredValue(b, raw, i, depth+1, mode); !ok {
				return b, i, false
			}
			i = skipSpace(raw, i)
			if i >= len(raw) {
				return b, i, false
			}
			if raw[i] == ']' {
				return append(b, ']'), i + 1, true
			}
			if raw[i] != ',' {
				return b, i, false
			}
			i++
		}
	case c == '"':
		s, next, ok := plainString(raw, i)
		if !ok {
			if next, ok = stringEnd(raw, i); !ok || json.Unmarshal([]byte(raw[i:next]), &s) != nil {
				return b, i, false
			}
			if mode != maskNone {
				s = ironwork.MaskString(s)
			}
			return appendString(b, s), next, true
		}
		if mode != maskNone {
			if m := ironwork.MaskString(s); m != s {
				return appendString(b, m), next, true
			}
		}
		return append(b, raw[i:next]...), next, true
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(raw)-i >= len(lit) && raw[i:i+len(lit)] == lit {
				return append(b, lit...), i + len(lit), true
			}
		}
		return b, i, false
	case c == '-' || (c >= '0' && c <= '9'):
		end := i
		for end < len(raw) && (raw[end] == '-' || raw[end] == '+' || raw[end] == '.' || raw[end] == 'e' ||
			raw[end] == 'E' || (raw[end] >= '0' && raw[end] <= '9')) {
			end++
		}
		num := raw[i:end]
		if plainInteger(num) {
			return append(b, num...), end, true
		}
		if !validNumber(num) {
			return b, i, false
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			// Out of float64's range: a stored document keeps such a number as it is written
			// (decodeColumn's json.Number), and appendJSON writes it as it is.
			return append(b, num...), end, true
		}
		return appendFloat(b, f), end, true
	}
	return b, i, false
}

// hideMember reports whether the member key, whose value was written as val, is hidden:
// its name is secret, or (top-level instance_info) it is configdrive or image_url and val is
// neither null nor "".
func hideMember(key string, val []byte, instanceInfo bool) bool {
	if ironwork.IsSecretKey(key) {
		return true
	}
	if instanceInfo && (key == "configdrive" || key == "image_url") {
		v := string(val)
		return v != "null" && v != `""`
	}
	return false
}

// appendFloat writes a decoded JSON number as appendJSON does.
func appendFloat(b []byte, x float64) []byte {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		enc, _ := json.Marshal(x) // an error, as appendJSON's fallback gives; cannot come from a parsed number
		return append(b, enc...)
	}
	if x == math.Trunc(x) && math.Abs(x) < 1e15 {
		return strconv.AppendInt(b, int64(x), 10)
	}
	return strconv.AppendFloat(b, x, 'g', -1, 64)
}

// plainInteger reports whether num is an integer that appendJSON writes with the same digits:
// no sign but "-", no leading zero, not -0, at most 15 digits (below 1e15).
func plainInteger(num string) bool {
	d := num
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 15 || (d[0] == '0' && (len(d) > 1 || len(num) != len(d))) {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}

// validNumber reports whether num is a number as JSON's grammar writes it.
func validNumber(num string) bool {
	i := 0
	if i < len(num) && num[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(num) && num[i] >= '0' && num[i] <= '9' {
			i++
			n++
		}
		return n
	}
	start := i
	n := digits()
	if n == 0 || (n > 1 && num[start] == '0') {
		return false
	}
	if i < len(num) && num[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(num) && (num[i] == 'e' || num[i] == 'E') {
		i++
		if i < len(num) && (num[i] == '+' || num[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(num)
}

// plainString reads the string starting at raw[i] when appendString would write its decoded
// value with the same bytes: no escape, no control character, none of < > & and U+2028/U+2029,
// valid UTF-8. It returns the decoded value and the index after the closing quote.
func plainString(raw string, i int) (string, int, bool) {
	if i >= len(raw) || raw[i] != '"' {
		return "", i, false
	}
	ascii := true
	for j := i + 1; j < len(raw); j++ {
		c := raw[j]
		switch {
		case c == '"':
			s := raw[i+1 : j]
			if !ascii && !utf8.ValidString(s) {
				return "", i, false
			}
			return s, j + 1, true
		case c < 0x20 || c == '\\' || c == '<' || c == '>' || c == '&':
			return "", i, false
		case c == 0xe2 && j+2 < len(raw) && raw[j+1] == 0x80 && (raw[j+2] == 0xa8 || raw[j+2] == 0xa9):
			return "", i, false
		case c >= 0x80:
			ascii = false
		}
	}
	return "", i, false
}

// stringEnd returns the index after the closing quote of the string starting at raw[i].
func stringEnd(raw string, i int) (int, bool) {
	for j := i + 1; j < len(raw); j++ {
		switch raw[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// storedSlots maps each field of the node table to its index in sqlstore.NodeJSONFields, or -1.
func storedSlots(t fieldTable[ironwork.Node]) []int {
	out := make([]int, len(t.fields))
	for i, f := range t.fields {
		out[i] = slices.Index(sqlstore.NodeJSONFields[:], f.name)
	}
	return out
}

// storedNode holds the JSON objects of one listed node, rendered from their stored text, for
// renderNodeWith. It is reused from node to node of a page; its buffer keeps growing, and the
// values of earlier nodes stay valid (they are never written again).
type storedNode struct {
	slots []int
	vals  [len(sqlstore.NodeJSONFields)]any // nil: render the decoded field (get)
	buf   []byte
	mode  [len(sqlstore.NodeJSONFields)]maskMode
}

// load prepares the JSON objects of rn, masked as their fields' get masks them. A field that
// appendStored cannot copy is decoded into rn.Node instead and rendered from there as a full
// read would render it. Fields outside show are checked all the same: a node with a field that cannot be
// decoded is left out of a list whatever its fields, and the error (wrapping
// sqlstore.ErrUndecodable) says so.
func (st *storedNode) load(s *Server, rn *sqlstore.RawNode, show []string) error {
	if st.slots == nil {
		st.slots = s.nodeStored
		for i, j := range st.slots {
			switch f := s.nodeTable.fields[i]; {
			case j < 0:
			case f.name == "instance_info":
				st.mode[j] = maskInstance
			case f.raw != nil: // a masked objField
				st.mode[j] = maskAll
			}
		}
	}
	for j, name := range sqlstore.NodeJSONFields {
		st.vals[j] = nil
		raw, ok := rn.JSON(name)
		if !ok {
			st.vals[j] = rawJSON("{}")
			continue
		}
		visible := show == nil || slices.Contains(show, name)
		start := len(st.buf)
		b, ok := appendStored(st.buf, raw, st.mode[j])
		if ok {
			if visible {
				st.buf = b
				st.vals[j] = rawJSON(b[start:len(b):len(b)])
			} else {
				st.buf = b[:start]
			}
			continue
		}
		st.buf = st.buf[:start]
		if err := rn.Decode(name); err != nil {
			return err
		}
	}
	return nil
}

// value is the over function of renderNodeWith for the loaded node.
func (st *storedNode) value(i int) (any, bool) {
	if j := st.slots[i]; j >= 0 && st.vals[j] != nil {
		return st.vals[j], true
	}
	return nil, false
}
