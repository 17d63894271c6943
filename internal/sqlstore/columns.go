package sqlstore

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
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
	switch v := src.(type) {
	case nil:
		return nil
	case string:
		return json.Unmarshal([]byte(v), c.p)
	case []byte:
		return json.Unmarshal(v, c.p)
	}
	return fmt.Errorf("scan JSON column from %T", src)
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
