package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ironwork/ironwork"
)

// ReserveNode takes the exclusive lock of a node for host, or returns an ELOCKED error naming
// the holder. The node is read (locked FOR UPDATE on PostgreSQL; SQLite's writes are
// serialized) and reserved in one transaction, so the holder named is the one that holds the
// lock at that moment, never one that let go between a refused UPDATE and a later read.
func (s *Store) ReserveNode(ctx context.Context, ident, host string) (*ironwork.Node, error) {
	var out *ironwork.Node
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		n, err := s.getNode(ctx, tx, ident, true)
		if err != nil {
			return err
		}
		if n.Reservation != "" {
			return ironwork.Errorf(ironwork.ELOCKED, "Node %s is locked by host %s, please retry after the current operation is completed.",
				n.UUID, n.Reservation)
		}
		res, err := s.execIn(ctx, tx, "UPDATE nodes SET reservation = ? WHERE id = ? AND reservation IS NULL", host, n.ID)
		if err != nil {
			return fmt.Errorf("reserve node %s: %w", ident, err)
		}
		if rows, _ := res.RowsAffected(); rows != 1 {
			return fmt.Errorf("reserve node %s: the row changed under its lock", ident)
		}
		n.Reservation = host
		out = n
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReleaseNode frees a node's lock if host holds it; it never frees another holder's lock.
func (s *Store) ReleaseNode(ctx context.Context, nodeID int64, host string) error {
	_, err := s.exec(ctx, "UPDATE nodes SET reservation = NULL WHERE id = ? AND reservation = ?", nodeID, host)
	if err != nil {
		return fmt.Errorf("release node %d: %w", nodeID, err)
	}
	return nil
}

// ClearReservations frees every lock held by host (a conductor that restarted or died) and
// returns the ids of the nodes it held.
func (s *Store) ClearReservations(ctx context.Context, host string) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind("SELECT id FROM nodes WHERE reservation = ?"), host)
	if err != nil {
		return nil, fmt.Errorf("find reservations of %s: %w", host, err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if _, err := s.exec(ctx, "UPDATE nodes SET reservation = NULL WHERE reservation = ?", host); err != nil {
		return nil, fmt.Errorf("clear reservations of %s: %w", host, err)
	}
	return ids, nil
}

// DeadConductors returns the hostnames of conductors whose last heartbeat is older than
// timeout, or that went offline, and that still hold node reservations.
func (s *Store) DeadConductors(ctx context.Context, timeout time.Duration) ([]string, error) {
	cutoff := s.nowUTC().Add(-timeout).UnixMicro()
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT DISTINCT n.reservation FROM nodes n
		LEFT JOIN conductors c ON c.hostname = n.reservation
		WHERE n.reservation IS NOT NULL AND (c.id IS NULL OR c.online = ? OR c.updated_at < ?)`), false, cutoff)
	if err != nil {
		return nil, fmt.Errorf("find dead conductors: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}
