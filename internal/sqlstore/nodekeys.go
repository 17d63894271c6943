package sqlstore

import (
	"context"
	"fmt"

	"github.com/ironwork/ironwork"
)

// NodeKey is the little a conductor reads of every node to find its own: enough to hash it
// onto the ring and to tell whether a periodic task has anything to do with it, without
// decoding the node's JSON fields. At fleet size (100,000 nodes, four conductors) each
// conductor reads every key but decodes only the quarter of the nodes it manages.
type NodeKey struct {
	ID             int64
	UUID           string
	ConductorGroup string
	ProvisionState ironwork.ProvisionState
	Reservation    string
	Affinity       int64 // conductor_affinity; 0 for none
	Maintenance    bool
	Fault          string
	ConsoleEnabled bool
}

// NodeKeys returns up to limit keys of the nodes whose id is above afterID (0: from the first),
// by id; with provisionState set, only of nodes in that state.
func (s *Store) NodeKeys(ctx context.Context, provisionState string, afterID int64, limit int) ([]NodeKey, error) {
	q := "SELECT id, uuid, conductor_group, provision_state, COALESCE(reservation, ''), COALESCE(conductor_affinity, 0)," +
		" maintenance, COALESCE(fault, ''), console_enabled FROM nodes WHERE id > ?"
	args := []any{afterID}
	if provisionState != "" {
		q += " AND provision_state = ?"
		args = append(args, provisionState)
	}
	q += " ORDER BY id LIMIT ?"
	args = append(args, limit)
	rows, err := s.query(ctx, s.db, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list node keys: %w", err)
	}
	defer rows.Close()
	var out []NodeKey
	for rows.Next() {
		var k NodeKey
		if err := rows.Scan(&k.ID, &k.UUID, &k.ConductorGroup, &k.ProvisionState, &k.Reservation, &k.Affinity,
			&k.Maintenance, &k.Fault, &k.ConsoleEnabled); err != nil {
			return nil, fmt.Errorf("scan node key: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list node keys: %w", err)
	}
	return out, nil
}

// NodesByID returns the nodes with the given ids that still exist, in id order; nodes that
// cannot be decoded are logged and skipped, as ListNodes does.
func (s *Store) NodesByID(ctx context.Context, ids []int64) ([]*ironwork.Node, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return s.queryNodes(ctx, "get nodes by id", s.nodeSelect()+" WHERE n.id IN ("+placeholders(len(ids))+") ORDER BY n.id", args...)
}

// SetConductorAffinity records affinity as the conductor of the nodes among ids that are
// unlocked and in state: a conductor's adoption of a dead one's deployed nodes in one
// statement per batch, for nodes whose take-over has nothing to do but that. It returns how
// many nodes it changed; their updated_at stays (the affinity is not shown by the API).
func (s *Store) SetConductorAffinity(ctx context.Context, ids []int64, state string, affinity int64) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	args := []any{affinity, state}
	for _, id := range ids {
		args = append(args, id)
	}
	res, err := s.exec(ctx, "UPDATE nodes SET conductor_affinity = ? WHERE reservation IS NULL AND provision_state = ? AND id IN ("+
		placeholders(len(ids))+")", args...)
	if err != nil {
		return 0, fmt.Errorf("set conductor affinity: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("set conductor affinity: %w", err)
	}
	return n, nil
}
