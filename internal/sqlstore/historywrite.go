package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/ironwork/ironwork"
)

// UpdateNodeWithHistory is UpdateNode that also appends the history event history returns for
// the changed node (nil: none), in the same transaction: a provision state change and its
// history entry are one commit, so neither is ever stored without the other, and a deploy
// costs one write less per transition.
func (s *Store) UpdateNodeWithHistory(ctx context.Context, ident string, fn func(n *ironwork.Node) error,
	history func(n *ironwork.Node) *ironwork.NodeHistoryEvent) (*ironwork.Node, error) {
	var out *ironwork.Node
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		n, err := s.getNode(ctx, tx, ident, true)
		if err != nil {
			return err
		}
		oldTraits := slices.Clone(n.Traits)
		id, created := n.ID, n.CreatedAt
		if err := fn(n); err != nil {
			return err
		}
		n.ID, n.CreatedAt = id, created
		now := s.nowUTC()
		n.UpdatedAt = &now
		args, err := s.nodeArgs(ctx, tx, n)
		if err != nil {
			return err
		}
		if _, err := s.execIn(ctx, tx, nodeUpdate(), append(args, n.ID)...); err != nil {
			return nodeConflict(err, n)
		}
		if err := s.writeTraits(ctx, tx, n.ID, oldTraits, n.Traits); err != nil {
			return err
		}
		if history != nil {
			if e := history(n); e != nil {
				if err := s.insertNodeHistory(ctx, tx, e); err != nil {
					return err
				}
			}
		}
		out = n
		return nil
	})
	if err == nil {
		s.notifyNode(out)
	}
	return out, err
}

// insertNodeHistory appends an event to a node's history through q (the database or a
// transaction); the caller holds the SQLite write lock.
func (s *Store) insertNodeHistory(ctx context.Context, q queryer, e *ironwork.NodeHistoryEvent) error {
	if e.UUID == "" {
		return errors.New("add node history: event has no UUID")
	}
	e.CreatedAt = s.nowUTC()
	var duration any
	if e.Duration != nil {
		duration = int64(*e.Duration)
	}
	err := s.queryRow(ctx, q, `INSERT INTO node_history (uuid, node_id, conductor, event_type, severity, event, user_id,
		project, state, target_provision_state, duration_seconds, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, e.UUID, e.NodeID, nullStr[string]{&e.Conductor}, e.EventType, e.Severity, e.Event,
		nullStr[string]{&e.User}, nullStr[string]{&e.Project}, nullStr[ironwork.ProvisionState]{&e.State},
		nullStr[ironwork.ProvisionState]{&e.TargetProvisionState}, duration, e.CreatedAt.UnixMicro()).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("add node history: %w", err)
	}
	return nil
}
