package sqlstore

import (
	"bytes"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The column types below each wrap a pointer to a domain field and act both as the scan target
// and as the query argument for it, so a table's columns are declared once.

// jsonCol stores any JSON-encodable value as text; NULL scans as the zero value.
type jsonCol[T any] struct{ p *T }

func (c jsonCol[T]) Value() (driver.Value, error) {
	b, err := json.Marshal(*c.p)
	if err != nil {
		return nil, fmt.Errorf("encode JSON column: %w", err)
	}
	if string(b) == "null" {
		return nil, nil
	}
	return string(b), nil
}

func (c jsonCol[T]) Scan(src any) error {
	var zero T
	*c.p = zero
	var b []byte
	switch v := src.(type) {
	case nil:
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scan JSON column from %T", src)
	}
	if err := decodeColumn(b, c.p); err != nil {
		*c.p = zero
		return fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	return nil
}

// ErrUndecodable marks a stored value that cannot be decoded (written by an older version or
// by hand). Lists skip such rows and log them rather than failing for every row.
var ErrUndecodable = errors.New("stored value cannot be decoded")

// decodeColumn decodes a JSON column into p. A free-form object holding a number that does not
// fit a float64 (the API refuses them, but older versions stored them) decodes with that number
// kept exactly as a json.Number, so that one value cannot make its whole row unreadable.
func decodeColumn[T any](b []byte, p *T) error {
	err := json.Unmarshal(b, p)
	if err == nil {
		return nil
	}
	m, ok := any(p).(*map[string]any)
	if !ok {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var out map[string]any
	if d.Decode(&out) != nil {
		return err
	}
	*m = floatNumbers(out).(map[string]any)
	return nil
}

// floatNumbers turns the json.Numbers of a decoded document into float64 where they fit, as
// json.Unmarshal would have, and keeps the others as they are.
func floatNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			return f
		}
	case map[string]any:
		for k, m := range x {
			x[k] = floatNumbers(m)
		}
	case []any:
		for i, m := range x {
			x[i] = floatNumbers(m)
		}
	}
	return v
}

// nullStr maps "" to NULL and back.
type nullStr[T ~string] struct{ p *T }

func (c nullStr[T]) Value() (driver.Value, error) {
	if *c.p == "" {
		return nil, nil
	}
	return string(*c.p), nil
}

func (c nullStr[T]) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.p = ""
	case string:
		*c.p = T(v)
	case []byte:
		*c.p = T(v)
	default:
		return fmt.Errorf("scan string column from %T", src)
	}
	return nil
}

// nullInt maps 0 to NULL and back (for optional foreign keys).
type nullInt struct{ p *int64 }

func (c nullInt) Value() (driver.Value, error) {
	if *c.p == 0 {
		return nil, nil
	}
	return *c.p, nil
}

func (c nullInt) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.p = 0
	case int64:
		*c.p = v
	default:
		return fmt.Errorf("scan integer column from %T", src)
	}
	return nil
}

// boolCol stores a bool; SQLite hands back integers.
type boolCol struct{ p *bool }

func (c boolCol) Value() (driver.Value, error) { return *c.p, nil }

func (c boolCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.p = false
	case bool:
		*c.p = v
	case int64:
		*c.p = v != 0
	default:
		return fmt.Errorf("scan boolean column from %T", src)
	}
	return nil
}

// nullBool stores an optional bool.
type nullBool struct{ p **bool }

func (c nullBool) Value() (driver.Value, error) {
	if *c.p == nil {
		return nil, nil
	}
	return **c.p, nil
}

func (c nullBool) Scan(src any) error {
	var b bool
	if src == nil {
		*c.p = nil
		return nil
	}
	if err := (boolCol{&b}).Scan(src); err != nil {
		return err
	}
	*c.p = &b
	return nil
}

// timeCol stores a time as microseconds since the epoch.
type timeCol struct{ p *time.Time }

func (c timeCol) Value() (driver.Value, error) { return c.p.UTC().UnixMicro(), nil }

func (c timeCol) Scan(src any) error {
	v, ok := src.(int64)
	if !ok {
		return fmt.Errorf("scan time column from %T", src)
	}
	*c.p = time.UnixMicro(v).UTC()
	return nil
}

// nullTime stores an optional time as microseconds since the epoch.
type nullTime struct{ p **time.Time }

func (c nullTime) Value() (driver.Value, error) {
	if *c.p == nil {
		return nil, nil
	}
	return (*c.p).UTC().UnixMicro(), nil
}

func (c nullTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.p = nil
	case int64:
		t := time.UnixMicro(v).UTC()
		*c.p = &t
	default:
		return fmt.Errorf("scan time column from %T", src)
	}
	return nil
}

// column binds a column name to the field of T it stores.
type column[T any] struct {
	name string
	ref  func(*T) any
}

func columnNames[T any](cols []column[T], prefix string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = prefix + c.name
	}
	return out
}

func columnRefs[T any](cols []column[T], v *T) []any {
	out := make([]any, len(cols))
	for i, c := range cols {
		out[i] = c.ref(v)
	}
	return out
}
