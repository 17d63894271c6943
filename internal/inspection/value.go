package inspection

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Rules are written for Ironic, whose engine is Python: str.format turns values into Python's
// str() of them, "eq" compares with Python's ==, "lt" with Python's <. The functions here give
// JSON values (nil, bool, json.Number, float64, int, string, []any, map[string]any) those
// meanings.

// number is a JSON number as Python sees it: an int or a float.
type number struct {
	isFloat bool
	i       int64
	f       float64
	big     string // an integer too large for int64, kept as its digits
}

func (n number) float() float64 {
	switch {
	case n.isFloat:
		return n.f
	case n.big != "":
		f, _ := strconv.ParseFloat(n.big, 64)
		return f
	}
	return float64(n.i)
}

// numberOf reports whether v is a number (bools count, as in Python) and its value.
func numberOf(v any) (number, bool) {
	switch x := v.(type) {
	case bool:
		if x {
			return number{i: 1}, true
		}
		return number{}, true
	case int:
		return number{i: int64(x)}, true
	case int64:
		return number{i: x}, true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return number{i: int64(x)}, true
		}
		return number{isFloat: true, f: x}, true
	case json.Number:
		s := x.String()
		if strings.ContainsAny(s, ".eE") {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return number{isFloat: true, f: math.Inf(1)}, true
			}
			return number{isFloat: true, f: f}, true
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return number{big: s}, true
		}
		return number{i: i}, true
	}
	return number{}, false
}

func isNumber(v any) bool {
	switch v.(type) {
	case bool, int, int64, float64, json.Number:
		return true
	}
	return false
}

// pyFloat formats f as Python's repr of a float.
func pyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, expS, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expS)
	if exp < -4 || exp >= 16 {
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		return fmt.Sprintf("%se%s%02d", mant, sign, exp)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// pyStr is Python's str() of a JSON value.
func pyStr(v any, mask bool) string {
	if s, ok := v.(string); ok {
		return s
	}
	return pyRepr(v, mask)
}

// pyRepr is Python's repr() of a JSON value. Object keys come out sorted (Python keeps the
// order of the document, which a Go map does not have). With mask, the values of sensitive
// keys are shown as Ironic's masking view shows them.
func pyRepr(v any, mask bool) string {
	var b strings.Builder
	writeRepr(&b, v, mask, 0)
	return b.String()
}

// maxReprDepth bounds the recursion of repr over hostile documents.
const maxReprDepth = 64

func writeRepr(b *strings.Builder, v any, mask bool, depth int) {
	if depth > maxReprDepth {
		b.WriteString("...")
		return
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		if x {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case string:
		b.WriteString(pyQuote(x))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, e, mask, depth+1)
		}
		b.WriteByte(']')
	case map[string]any:
		b.WriteByte('{')
		for i, k := range slices.Sorted(mapKeys(x)) {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pyQuote(k))
			b.WriteString(": ")
			if mask && sensitiveKey(k) {
				b.WriteString(pyQuote(maskedValue))
				continue
			}
			writeRepr(b, x[k], mask, depth+1)
		}
		b.WriteByte('}')
	default:
		if n, ok := numberOf(v); ok {
			switch {
			case n.isFloat:
				b.WriteString(pyFloat(n.f))
			case n.big != "":
				b.WriteString(n.big)
			default:
				b.WriteString(strconv.FormatInt(n.i, 10))
			}
			return
		}
		fmt.Fprint(b, v)
	}
}

func mapKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// pyQuote is Python's repr of a string: single quotes unless the string holds a single quote
// and no double quote, and escapes for backslashes, control and non-printable characters.
func pyQuote(s string) string {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\ufffd`)
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case !unicode.IsPrint(r) && r != ' ':
			switch {
			case r <= 0xff:
				fmt.Fprintf(&b, `\x%02x`, r)
			case r <= 0xffff:
				fmt.Fprintf(&b, `\u%04x`, r)
			default:
				fmt.Fprintf(&b, `\U%08x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// typeName is Python's name of a value's type, for error messages.
func typeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case string:
		return "str"
	case []any:
		return "list"
	case map[string]any:
		return "dict"
	default:
		if n, ok := numberOf(x); ok {
			if n.isFloat {
				return "float"
			}
			return "int"
		}
	}
	return fmt.Sprintf("%T", v)
}

// pyEqual is Python's == over JSON values.
func pyEqual(a, b any) bool {
	if na, ok := numberOf(a); ok {
		nb, ok := numberOf(b)
		if !ok {
			return false
		}
		if !na.isFloat && !nb.isFloat && na.big == "" && nb.big == "" {
			return na.i == nb.i
		}
		if na.big != "" && nb.big != "" {
			return na.big == nb.big
		}
		return na.float() == nb.float()
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !pyEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !pyEqual(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

// errUnorderable is Python's TypeError for < between values of unorderable types.
type errUnorderable struct {
	op   string
	a, b any
}

func (e *errUnorderable) Error() string {
	return fmt.Sprintf("'%s' not supported between instances of '%s' and '%s'", e.op, typeName(e.a), typeName(e.b))
}

// pyCompare orders a and b as Python's < does: -1, 0 or 1, or an error for types Python does
// not order (a string and a number, None, objects).
func pyCompare(op string, a, b any) (int, error) {
	if na, ok := numberOf(a); ok {
		if nb, ok := numberOf(b); ok {
			if !na.isFloat && !nb.isFloat && na.big == "" && nb.big == "" {
				return cmpInt(na.i, nb.i), nil
			}
			fa, fb := na.float(), nb.float()
			switch {
			case fa < fb:
				return -1, nil
			case fa > fb:
				return 1, nil
			}
			return 0, nil
		}
		return 0, &errUnorderable{op, a, b}
	}
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), nil
		}
	case []any:
		if y, ok := b.([]any); ok {
			for i := 0; i < len(x) && i < len(y); i++ {
				if pyEqual(x[i], y[i]) {
					continue
				}
				return pyCompare(op, x[i], y[i])
			}
			return cmpInt(int64(len(x)), int64(len(y))), nil
		}
	}
	return 0, &errUnorderable{op, a, b}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
