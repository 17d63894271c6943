package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ironwork/ironwork"
)

// BIOS settings and firmware components of nodes (migration 0008): each replaced as a whole
// by the node's interface reading them, keeping when a setting or component was first seen.

const biosColumns = "name, value, attribute_type, allowable_values, lower_bound, upper_bound, min_length, max_length, read_only, reset_required, is_unique, created_at, updated_at"

// PutBIOSSettings replaces a node's cached BIOS settings. A setting seen before keeps its
// created_at and gets updated_at; one no longer reported is removed.
func (s *Store) PutBIOSSettings(ctx context.Context, nodeID int64, settings []ironwork.BIOSSetting) error {
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		created := map[string]int64{}
		rows, err := tx.QueryContext(ctx, s.rebind("SELECT name, created_at FROM bios_settings WHERE node_id = ?"), nodeID)
		if err != nil {
			return fmt.Errorf("read bios settings of node %d: %w", nodeID, err)
		}
		for rows.Next() {
			var name string
			var at int64
			if err := rows.Scan(&name, &at); err != nil {
				rows.Close()
				return fmt.Errorf("read bios settings of node %d: %w", nodeID, err)
			}
			created[name] = at
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read bios settings of node %d: %w", nodeID, err)
		}
		if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM bios_settings WHERE node_id = ?"), nodeID); err != nil {
			return fmt.Errorf("replace bios settings of node %d: %w", nodeID, err)
		}
		now := s.nowUTC().UnixMicro()
		q := s.rebind("INSERT INTO bios_settings (node_id, " + biosColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		for _, b := range settings {
			var allowed any
			if b.AllowableValues != nil {
				raw, _ := json.Marshal(b.AllowableValues)
				allowed = string(raw)
			}
			createdAt, updated := now, any(nil)
			if at, ok := created[b.Name]; ok {
				createdAt, updated = at, now
			}
			if _, err := tx.ExecContext(ctx, q, nodeID, b.Name, b.Value, b.AttributeType, allowed, b.LowerBound, b.UpperBound,
				b.MinLength, b.MaxLength, b.ReadOnly, b.ResetRequired, b.Unique, createdAt, updated); err != nil {
				return fmt.Errorf("store bios setting %s of node %d: %w", b.Name, nodeID, err)
			}
		}
		return nil
	})
}

func scanBIOS(sc interface{ Scan(...any) error }) (ironwork.BIOSSetting, error) {
	var b ironwork.BIOSSetting
	var value, typ, allowed sql.NullString
	var lower, upper, minLen, maxLen, updated sql.NullInt64
	var ro, rr, uniq sql.NullBool
	var created int64
	if err := sc.Scan(&b.Name, &value, &typ, &allowed, &lower, &upper, &minLen, &maxLen, &ro, &rr, &uniq, &created, &updated); err != nil {
		return b, err
	}
	str := func(v sql.NullString) *string {
		if !v.Valid {
			return nil
		}
		return &v.String
	}
	num := func(v sql.NullInt64) *int64 {
		if !v.Valid {
			return nil
		}
		return &v.Int64
	}
	flag := func(v sql.NullBool) *bool {
		if !v.Valid {
			return nil
		}
		return &v.Bool
	}
	b.Value, b.AttributeType = str(value), str(typ)
	if allowed.Valid {
		if err := json.Unmarshal([]byte(allowed.String), &b.AllowableValues); err != nil {
			return b, fmt.Errorf("decode allowable values of %s: %w", b.Name, err)
		}
	}
	b.LowerBound, b.UpperBound, b.MinLength, b.MaxLength = num(lower), num(upper), num(minLen), num(maxLen)
	b.ReadOnly, b.ResetRequired, b.Unique = flag(ro), flag(rr), flag(uniq)
	b.CreatedAt = time.UnixMicro(created).UTC()
	if updated.Valid {
		t := time.UnixMicro(updated.Int64).UTC()
		b.UpdatedAt = &t
	}
	return b, nil
}

// ListBIOSSettings returns a node's cached BIOS settings by name.
func (s *Store) ListBIOSSettings(ctx context.Context, nodeID int64) ([]ironwork.BIOSSetting, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind("SELECT "+biosColumns+" FROM bios_settings WHERE node_id = ? ORDER BY name"), nodeID)
	if err != nil {
		return nil, fmt.Errorf("list bios settings of node %d: %w", nodeID, err)
	}
	defer rows.Close()
	var out []ironwork.BIOSSetting
	for rows.Next() {
		b, err := scanBIOS(rows)
		if err != nil {
			return nil, fmt.Errorf("list bios settings of node %d: %w", nodeID, err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// GetBIOSSetting returns one cached BIOS setting; ENOTFOUND (Ironic's message) when the node
// has no such setting.
func (s *Store) GetBIOSSetting(ctx context.Context, nodeID int64, nodeUUID, name string) (ironwork.BIOSSetting, error) {
	b, err := scanBIOS(s.db.QueryRowContext(ctx, s.rebind("SELECT "+biosColumns+" FROM bios_settings WHERE node_id = ? AND name = ?"), nodeID, name))
	if errors.Is(err, sql.ErrNoRows) {
		return b, ironwork.Errorf(ironwork.ENOTFOUND, "Node %s doesn't have a BIOS setting '%s'", nodeUUID, name)
	}
	if err != nil {
		return b, fmt.Errorf("read bios setting %s of node %s: %w", name, nodeUUID, err)
	}
	return b, nil
}

// PutFirmwareComponents records the firmware components a node's firmware interface read. A
// component seen before keeps its initial version and created_at; one whose version changed
// gets it as last_version_flashed too (as Ironic's sync). Components no longer reported are
// removed.
func (s *Store) PutFirmwareComponents(ctx context.Context, nodeID int64, comps []ironwork.FirmwareComponent) error {
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		old := map[string]ironwork.FirmwareComponent{}
		rows, err := tx.QueryContext(ctx, s.rebind("SELECT component, initial_version, current_version, last_version_flashed, created_at FROM firmware_information WHERE node_id = ?"), nodeID)
		if err != nil {
			return fmt.Errorf("read firmware of node %d: %w", nodeID, err)
		}
		for rows.Next() {
			var c ironwork.FirmwareComponent
			var last sql.NullString
			var at int64
			if err := rows.Scan(&c.Component, &c.InitialVersion, &c.CurrentVersion, &last, &at); err != nil {
				rows.Close()
				return fmt.Errorf("read firmware of node %d: %w", nodeID, err)
			}
			if last.Valid {
				c.LastVersionFlashed = &last.String
			}
			c.CreatedAt = time.UnixMicro(at)
			old[c.Component] = c
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read firmware of node %d: %w", nodeID, err)
		}
		if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM firmware_information WHERE node_id = ?"), nodeID); err != nil {
			return fmt.Errorf("replace firmware of node %d: %w", nodeID, err)
		}
		now := s.nowUTC().UnixMicro()
		for _, c := range comps {
			initial, last, created, updated := c.CurrentVersion, (*string)(nil), now, any(nil)
			if o, ok := old[c.Component]; ok {
				initial, last, created, updated = o.InitialVersion, o.LastVersionFlashed, o.CreatedAt.UnixMicro(), now
				if o.CurrentVersion != c.CurrentVersion {
					v := c.CurrentVersion
					last = &v
				}
			}
			if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO firmware_information (node_id, component, initial_version, current_version, last_version_flashed, vendor, model, serial_number, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
				nodeID, c.Component, initial, c.CurrentVersion, last, nullString(c.Vendor), nullString(c.Model), nullString(c.SerialNumber), created, updated); err != nil {
				return fmt.Errorf("store firmware component %s of node %d: %w", c.Component, nodeID, err)
			}
		}
		return nil
	})
}

// ListFirmwareComponents returns a node's recorded firmware components by name.
func (s *Store) ListFirmwareComponents(ctx context.Context, nodeID int64) ([]ironwork.FirmwareComponent, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind("SELECT component, initial_version, current_version, last_version_flashed, vendor, model, serial_number, created_at, updated_at FROM firmware_information WHERE node_id = ? ORDER BY component"), nodeID)
	if err != nil {
		return nil, fmt.Errorf("list firmware of node %d: %w", nodeID, err)
	}
	defer rows.Close()
	var out []ironwork.FirmwareComponent
	for rows.Next() {
		var c ironwork.FirmwareComponent
		var last, vendor, model, serial sql.NullString
		var created int64
		var updated sql.NullInt64
		if err := rows.Scan(&c.Component, &c.InitialVersion, &c.CurrentVersion, &last, &vendor, &model, &serial, &created, &updated); err != nil {
			return nil, fmt.Errorf("list firmware of node %d: %w", nodeID, err)
		}
		if last.Valid {
			c.LastVersionFlashed = &last.String
		}
		c.Vendor, c.Model, c.SerialNumber = vendor.String, model.String, serial.String
		c.CreatedAt = time.UnixMicro(created).UTC()
		if updated.Valid {
			t := time.UnixMicro(updated.Int64).UTC()
			c.UpdatedAt = &t
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// nullString stores "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
