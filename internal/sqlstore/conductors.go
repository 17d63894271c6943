package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ironwork/ironwork"
)

func scanConductor(sc interface{ Scan(...any) error }) (*ironwork.Conductor, error) {
	c := &ironwork.Conductor{}
	err := sc.Scan(&c.ID, &c.Hostname, &c.ConductorGroup, boolCol{&c.Online}, jsonCol[[]string]{&c.Drivers},
		timeCol{&c.CreatedAt}, nullTime{&c.UpdatedAt}, nullStr[string]{&c.RPCURL})
	return c, err
}

const conductorSelect = "SELECT id, hostname, conductor_group, online, drivers, created_at, updated_at, rpc_url FROM conductors"

// RegisterConductor creates or refreshes the record of a conductor and marks it online.
func (s *Store) RegisterConductor(ctx context.Context, c *ironwork.Conductor) error {
	now := s.nowUTC()
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.rebind("UPDATE conductors SET conductor_group = ?, online = ?, drivers = ?, updated_at = ?, rpc_url = ? WHERE hostname = ?"),
			c.ConductorGroup, true, jsonCol[[]string]{&c.Drivers}, now.UnixMicro(), nullStr[string]{&c.RPCURL}, c.Hostname)
		if err != nil {
			return fmt.Errorf("register conductor %s: %w", c.Hostname, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO conductors (hostname, conductor_group, online, drivers, created_at, updated_at, rpc_url) VALUES (?, ?, ?, ?, ?, ?, ?)"),
				c.Hostname, c.ConductorGroup, true, jsonCol[[]string]{&c.Drivers}, now.UnixMicro(), now.UnixMicro(), nullStr[string]{&c.RPCURL}); err != nil {
				return fmt.Errorf("register conductor %s: %w", c.Hostname, err)
			}
		}
		return nil
	})
}

// TouchConductor records a heartbeat of a conductor.
func (s *Store) TouchConductor(ctx context.Context, hostname string) error {
	res, err := s.exec(ctx, "UPDATE conductors SET updated_at = ?, online = ? WHERE hostname = ?",
		s.nowUTC().UnixMicro(), true, hostname)
	if err != nil {
		return fmt.Errorf("conductor heartbeat: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("Conductor", hostname)
	}
	return nil
}

// UnregisterConductor marks a conductor offline.
func (s *Store) UnregisterConductor(ctx context.Context, hostname string) error {
	_, err := s.exec(ctx, "UPDATE conductors SET online = ? WHERE hostname = ?", false, hostname)
	if err != nil {
		return fmt.Errorf("unregister conductor %s: %w", hostname, err)
	}
	return nil
}

// GetConductor returns a conductor by hostname.
func (s *Store) GetConductor(ctx context.Context, hostname string) (*ironwork.Conductor, error) {
	c, err := scanConductor(s.db.QueryRowContext(ctx, s.rebind(conductorSelect+" WHERE hostname = ?"), hostname))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("Conductor", hostname)
	}
	if err != nil {
		return nil, fmt.Errorf("get conductor %s: %w", hostname, err)
	}
	return c, nil
}

// ListConductors returns the conductors in hostname order, after the marker hostname.
func (s *Store) ListConductors(ctx context.Context, marker string, limit int) ([]*ironwork.Conductor, error) {
	q := conductorSelect + " WHERE hostname > ? ORDER BY hostname"
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	rows, err := s.db.QueryContext(ctx, s.rebind(q), marker)
	if err != nil {
		return nil, fmt.Errorf("list conductors: %w", err)
	}
	defer rows.Close()
	var out []*ironwork.Conductor
	for rows.Next() {
		c, err := scanConductor(rows)
		if err != nil {
			return nil, fmt.Errorf("scan conductor: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ConductorAlive reports whether the conductor's last heartbeat is within timeout.
func ConductorAlive(c *ironwork.Conductor, now time.Time, timeout time.Duration) bool {
	return c.Online && c.UpdatedAt != nil && now.Sub(*c.UpdatedAt) <= timeout
}

// AddNodeHistory appends an event to a node's history.
func (s *Store) AddNodeHistory(ctx context.Context, e *ironwork.NodeHistoryEvent) error {
	if s.writer == nil {
		return s.insertNodeHistory(ctx, s.db, e)
	}
	// SQLite: on the writer connection, in turn.
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error { return s.insertNodeHistory(ctx, tx, e) })
}

// NodeHistory returns a node's history, oldest first.
func (s *Store) NodeHistory(ctx context.Context, nodeID int64) ([]*ironwork.NodeHistoryEvent, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT id, uuid, node_id, conductor, event_type, severity, event, user_id,
		project, state, target_provision_state, duration_seconds, created_at
		FROM node_history WHERE node_id = ? ORDER BY created_at, id`), nodeID)
	if err != nil {
		return nil, fmt.Errorf("node history: %w", err)
	}
	defer rows.Close()
	var out []*ironwork.NodeHistoryEvent
	for rows.Next() {
		e := &ironwork.NodeHistoryEvent{}
		var duration sql.NullInt64
		if err := rows.Scan(&e.ID, &e.UUID, &e.NodeID, nullStr[string]{&e.Conductor}, nullStr[string]{&e.EventType},
			nullStr[string]{&e.Severity}, nullStr[string]{&e.Event}, nullStr[string]{&e.User}, nullStr[string]{&e.Project},
			nullStr[ironwork.ProvisionState]{&e.State}, nullStr[ironwork.ProvisionState]{&e.TargetProvisionState}, &duration,
			timeCol{&e.CreatedAt}); err != nil {
			return nil, fmt.Errorf("scan node history: %w", err)
		}
		if duration.Valid {
			d := int(duration.Int64)
			e.Duration = &d
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
