package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ironwork/ironwork"
)

func allocationEntity() *entity[ironwork.Allocation] {
	type A = ironwork.Allocation
	return &entity[A]{
		table: "allocations", alias: "a", kind: "Allocation", byName: true,
		cols: []column[A]{
			{"uuid", func(a *A) any { return &a.UUID }},
			{"name", func(a *A) any { return nullStr[string]{&a.Name} }},
			{"state", func(a *A) any { return &a.State }},
			{"last_error", func(a *A) any { return nullStr[string]{&a.LastError} }},
			{"resource_class", func(a *A) any { return nullStr[string]{&a.ResourceClass} }},
			{"traits", func(a *A) any { return jsonCol[[]string]{&a.Traits} }},
			{"candidate_nodes", func(a *A) any { return jsonCol[[]string]{&a.CandidateNodes} }},
			{"owner", func(a *A) any { return nullStr[string]{&a.Owner} }},
			{"extra", func(a *A) any { return jsonCol[ironwork.JSONObject]{&a.Extra} }},
			{"capabilities", func(a *A) any { return jsonCol[map[string]string]{&a.Capabilities} }},
			{"conductor_affinity", func(a *A) any { return nullInt{&a.ConductorAffinity} }},
			{"created_at", func(a *A) any { return timeCol{&a.CreatedAt} }},
			{"updated_at", func(a *A) any { return nullTime{&a.UpdatedAt} }},
		},
		id:    func(a *A) *int64 { return &a.ID },
		uuid:  func(a *A) *string { return &a.UUID },
		times: func(a *A) (*time.Time, **time.Time) { return &a.CreatedAt, &a.UpdatedAt },
		joins: "LEFT JOIN nodes n ON n.id = a.node_id",
		extra: []string{"a.node_id", "n.uuid"},
		extraRefs: func(a *A) []any {
			return []any{nullInt{&a.NodeID}, nullStr[string]{&a.NodeUUID}}
		},
		conflict: func(col string, a *A) error {
			switch col {
			case "name":
				return ironwork.Errorf(ironwork.ECONFLICT, "An allocation with name %s already exists.", a.Name)
			case "node_id":
				return ironwork.Errorf(ironwork.ECONFLICT, "Node %s already has an allocation.", a.NodeUUID)
			}
			return ironwork.Errorf(ironwork.ECONFLICT, "An allocation with UUID %s already exists.", a.UUID)
		},
		sortKeys: sortable{
			"id": "@.id", "uuid": "@.uuid", "name": "COALESCE(@.name, '')", "state": "@.state",
			"resource_class": "COALESCE(@.resource_class, '')", "created_at": "@.created_at",
			"updated_at": "COALESCE(@.updated_at, 0)", "owner": "COALESCE(@.owner, '')",
			"node_id": "COALESCE(@.node_id, 0)", "last_error": "COALESCE(@.last_error, '')",
		},
	}
}

// AllocationFilter selects allocations in a list.
type AllocationFilter struct {
	NodeUUID      string
	ResourceClass string
	State         string
	Owner         string
}

// CreateAllocation stores a new allocation without a node; the conductor assigns one with
// ReserveForAllocation.
func (s *Store) CreateAllocation(ctx context.Context, a *ironwork.Allocation) error {
	return allocationEntity().create(ctx, s, a)
}

// GetAllocation returns an allocation by UUID or name.
func (s *Store) GetAllocation(ctx context.Context, ident string) (*ironwork.Allocation, error) {
	return allocationEntity().get(ctx, s, s.db, ident, false)
}

// UpdateAllocation changes an allocation's own fields (not its node) with fn in one transaction.
func (s *Store) UpdateAllocation(ctx context.Context, ident string, fn func(*ironwork.Allocation) error) (*ironwork.Allocation, error) {
	return allocationEntity().update(ctx, s, ident, fn)
}

// ListAllocations returns a page of allocations matching f.
func (s *Store) ListAllocations(ctx context.Context, f AllocationFilter, p Page) ([]*ironwork.Allocation, error) {
	var w where
	for col, v := range map[string]string{"n.uuid": f.NodeUUID, "a.resource_class": f.ResourceClass,
		"a.state": f.State, "a.owner": f.Owner} {
		if v != "" {
			w.add(col+" = ?", v)
		}
	}
	return allocationEntity().list(ctx, s, w, p)
}

// ErrNodeTaken is returned by ReserveForAllocation when none of the nodes it was given still
// qualifies: another allocation or instance got them first, or they left the available state.
var ErrNodeTaken = ironwork.Errorf(ironwork.ECONFLICT, "The node is no longer free for an allocation.")

// ReserveForAllocation gives the allocation the first of nodeIDs that is still free, in one
// transaction: it reads which of them still qualify (no allocation, no instance, no lock by
// another conductor, and unless backfill the available state outside maintenance) and takes
// the first in the order given with a conditional UPDATE under the same conditions, trying the
// next if another party's write came between the two. The node's instance_uuid becomes the
// allocation's UUID and instance_info.traits its traits, as in Ironic. With backfill the nodes
// must be active and may already carry the allocation's UUID as their instance_uuid.
// ErrNodeTaken means no node could be had. Many allocations racing for the same nodes thus
// cost one transaction each, not one per node tried.
func (s *Store) ReserveForAllocation(ctx context.Context, allocUUID string, nodeIDs []int64, backfill bool, lockHolder string) (*ironwork.Allocation, error) {
	var out *ironwork.Allocation
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		a, err := allocationEntity().get(ctx, s, tx, allocUUID, true)
		if err != nil {
			return err
		}
		if a.NodeID != 0 {
			return ironwork.Errorf(ironwork.ECONFLICT, "Allocation %s already has a node.", a.UUID)
		}
		// The conditions a node must still meet, for the read and again for the UPDATE.
		free := " AND allocation_id IS NULL"
		var freeArgs []any
		if backfill {
			free += " AND (instance_uuid IS NULL OR instance_uuid = ?) AND provision_state = ?"
			freeArgs = append(freeArgs, a.UUID, string(ironwork.Active))
		} else {
			free += " AND instance_uuid IS NULL AND provision_state = ? AND maintenance = ?"
			freeArgs = append(freeArgs, string(ironwork.Available), false)
		}
		free += " AND (reservation IS NULL OR reservation = ?)"
		freeArgs = append(freeArgs, lockHolder)
		traits := make([]any, len(a.Traits))
		for i, t := range a.Traits {
			traits[i] = t
		}
		for batch := range slices.Chunk(nodeIDs, maxInList) {
			infos, err := s.freeNodeInfos(ctx, tx, batch, free, freeArgs)
			if err != nil {
				return err
			}
			for _, id := range batch {
				info, ok := infos[id]
				if !ok {
					continue
				}
				if info == nil {
					info = ironwork.JSONObject{}
				}
				info["traits"] = traits
				now := s.nowUTC()
				res, err := tx.ExecContext(ctx, s.rebind("UPDATE nodes SET allocation_id = ?, instance_uuid = ?, instance_info = ?, updated_at = ? WHERE id = ?"+free),
					append([]any{a.ID, a.UUID, jsonCol[ironwork.JSONObject]{&info}, now.UnixMicro(), id}, freeArgs...)...)
				if err != nil {
					if _, dup := uniqueViolation(err); dup {
						return ErrNodeTaken // and on PostgreSQL the transaction is no longer usable
					}
					return fmt.Errorf("reserve node %d for allocation %s: %w", id, a.UUID, err)
				}
				if n, _ := res.RowsAffected(); n != 1 {
					continue // taken since the read (PostgreSQL; SQLite's writes are serial)
				}
				if _, err := tx.ExecContext(ctx, s.rebind("UPDATE allocations SET node_id = ?, state = ?, last_error = NULL, updated_at = ? WHERE id = ?"),
					id, "active", now.UnixMicro(), a.ID); err != nil {
					if _, dup := uniqueViolation(err); dup {
						return ErrNodeTaken
					}
					return fmt.Errorf("activate allocation %s: %w", a.UUID, err)
				}
				out, err = allocationEntity().get(ctx, s, tx, a.UUID, false)
				return err
			}
		}
		return ErrNodeTaken
	})
	return out, err
}

// freeNodeInfos returns the instance_info of each of ids that meets the conditions free (SQL
// beginning with AND, with its arguments args).
func (s *Store) freeNodeInfos(ctx context.Context, tx *sql.Tx, ids []int64, free string, args []any) (map[int64]ironwork.JSONObject, error) {
	q := "SELECT id, instance_info FROM nodes WHERE id IN (" + placeholders(len(ids)) + ")" + free
	all := make([]any, 0, len(ids)+len(args))
	for _, id := range ids {
		all = append(all, id)
	}
	rows, err := tx.QueryContext(ctx, s.rebind(q), append(all, args...)...)
	if err != nil {
		return nil, fmt.Errorf("read free nodes: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]ironwork.JSONObject, len(ids))
	for rows.Next() {
		var (
			id   int64
			info ironwork.JSONObject
		)
		if err := rows.Scan(&id, jsonCol[ironwork.JSONObject]{&info}); err != nil {
			return nil, fmt.Errorf("read free nodes: %w", err)
		}
		out[id] = info
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read free nodes: %w", err)
	}
	return out, nil
}

// DeleteAllocation deletes an allocation after check allows it, and frees its node: the node's
// allocation_id goes, and its instance_uuid too when the allocation set it.
func (s *Store) DeleteAllocation(ctx context.Context, ident string, check func(*ironwork.Allocation, *ironwork.Node) error) error {
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		a, err := allocationEntity().get(ctx, s, tx, ident, true)
		if err != nil {
			return err
		}
		return s.deleteAllocationTx(ctx, tx, a, check)
	})
}

func (s *Store) deleteAllocationTx(ctx context.Context, tx *sql.Tx, a *ironwork.Allocation, check func(*ironwork.Allocation, *ironwork.Node) error) error {
	var n *ironwork.Node
	if a.NodeID != 0 {
		var err error
		if n, err = s.getNode(ctx, tx, a.NodeUUID, true); err != nil {
			return err
		}
	}
	if check != nil {
		if err := check(a, n); err != nil {
			return err
		}
	}
	for _, q := range []string{
		"UPDATE nodes SET instance_uuid = NULL WHERE allocation_id = ? AND instance_uuid = ?",
		"UPDATE nodes SET allocation_id = NULL WHERE allocation_id = ? AND ? <> ''",
		"DELETE FROM allocations WHERE id = ? AND ? <> ''",
	} {
		if _, err := tx.ExecContext(ctx, s.rebind(q), a.ID, a.UUID); err != nil {
			return fmt.Errorf("delete allocation %s: %w", a.UUID, err)
		}
	}
	return nil
}

// DeleteNodeAllocation deletes the allocation of a node, if it has one, as Ironic does when a
// node is torn down.
func (s *Store) DeleteNodeAllocation(ctx context.Context, nodeID int64) error {
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var allocID sql.NullInt64
		if err := tx.QueryRowContext(ctx, s.rebind("SELECT allocation_id FROM nodes WHERE id = ?"), nodeID).Scan(&allocID); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			return fmt.Errorf("read allocation of node %d: %w", nodeID, err)
		}
		if !allocID.Valid {
			return nil
		}
		var w where
		w.add("a.id = ?", allocID.Int64)
		e := allocationEntity()
		a, err := e.scan(tx.QueryRowContext(ctx, s.rebind(e.selectSQL()+w.sql()), w.args...))
		if err != nil {
			return fmt.Errorf("read allocation %d: %w", allocID.Int64, err)
		}
		return s.deleteAllocationTx(ctx, tx, a, nil)
	})
}

// AllocationCandidates returns the ids of the nodes an allocation may take: available, not in
// maintenance, with a power state, no instance and no allocation, of the resource class, among
// candidates when given, owned by or leased to owner when given. The caller checks traits and
// capabilities, and ReserveForAllocation settles races.
func (s *Store) AllocationCandidates(ctx context.Context, resourceClass string, candidates []string, owner string) ([]*ironwork.Node, error) {
	f := NodeFilter{ProvisionState: string(ironwork.Available), ResourceClass: resourceClass, Project: owner}
	no := false
	f.Maintenance, f.Associated = &no, &no
	nodes, err := s.ListNodes(ctx, f, Page{})
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, c := range candidates {
		want[c] = true
	}
	out := nodes[:0]
	for _, n := range nodes {
		if n.AllocationUUID != "" || n.PowerState == "" || n.ResourceClass != resourceClass {
			continue
		}
		if len(want) > 0 && !want[n.UUID] {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}
