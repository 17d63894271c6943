package sqlstore

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

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
	RingKey        int64 // RingKey(UUID); 0 when the store has none yet (NodeKeyFilter.MissingRingKey)
}

// NodeKeyFilter narrows NodeKeys in the database. The zero value keeps every node.
type NodeKeyFilter struct {
	// ProvisionState keeps only the nodes in this state.
	ProvisionState string
	// ConsoleEnabled keeps only the nodes whose console is enabled.
	ConsoleEnabled bool
	// Unadopted keeps only the deployed (active) nodes no conductor has adopted
	// (conductor_affinity unset).
	Unadopted bool
	// MissingRingKey keeps only the nodes stored without a ring key (written by an older
	// version beside this one; the store fills them when it opens), which NodeKeysInRange
	// cannot find.
	MissingRingKey bool
}

// nodeKeysQuery is NodeKeys' query and its arguments ('?' placeholders).
func nodeKeysQuery(f NodeKeyFilter, afterID int64, limit int) (string, []any) {
	q := nodeKeyColumns + " FROM nodes WHERE id > ?"
	args := []any{afterID}
	q, args = f.where(q, args)
	q += " ORDER BY id LIMIT ?"
	args = append(args, limit)
	return q, args
}

// nodeKeyColumns selects what a NodeKey holds, in scanNodeKey's order.
const nodeKeyColumns = "SELECT id, uuid, conductor_group, provision_state, COALESCE(reservation, ''), COALESCE(conductor_affinity, 0)," +
	" maintenance, COALESCE(fault, ''), console_enabled, COALESCE(ring_key, 0)"

// where adds f's conditions to query q and its arguments.
func (f NodeKeyFilter) where(q string, args []any) (string, []any) {
	if f.ProvisionState != "" {
		q += " AND provision_state = ?"
		args = append(args, f.ProvisionState)
	}
	// Written as the predicates of migration 0020's partial indexes, literals and all: a
	// database uses a partial index only for a query that implies its predicate.
	if f.ConsoleEnabled {
		q += " AND console_enabled = TRUE"
	}
	if f.Unadopted {
		q += " AND provision_state = 'active' AND COALESCE(conductor_affinity, 0) = 0"
	}
	if f.MissingRingKey {
		q += " AND ring_key IS NULL"
	}
	return q, args
}

// NodeKeys returns up to limit keys of the nodes matching f whose id is above afterID (0: from
// the first), by id.
func (s *Store) NodeKeys(ctx context.Context, f NodeKeyFilter, afterID int64, limit int) ([]NodeKey, error) {
	q, args := nodeKeysQuery(f, afterID, limit)
	return s.nodeKeys(ctx, q, args)
}

// RingCursor is where a page of NodeKeysInRange ends: the last key's ring key and id.
type RingCursor struct {
	RingKey, ID int64
}

// nodeKeysInRangeQuery is NodeKeysInRange's query and its arguments ('?' placeholders).
func (s *Store) nodeKeysInRangeQuery(f NodeKeyFilter, group string, r KeyRange, after *RingCursor, limit int) (string, []any) {
	from := " FROM nodes"
	if s.dialect == SQLite {
		// SQLite keeps no statistics: with a state in the filter it would as soon read the
		// provision-state index, every node in that state for each range.
		from += " INDEXED BY nodes_ring_key_idx"
	}
	// A page after the first starts at the cursor's key: the index is searched from there, not
	// from the range's start (an OR alone bounds no index search, and every page would read
	// the range again up to its place). Keys are unique but for md5 collisions, which the id
	// orders.
	lo := r.Lo
	if after != nil {
		lo = after.RingKey
	}
	q := nodeKeyColumns + from + " WHERE conductor_group = ? AND ring_key >= ? AND ring_key <= ?"
	args := []any{group, lo, r.Hi}
	if after != nil {
		q += " AND (ring_key > ? OR id > ?)"
		args = append(args, after.RingKey, after.ID)
	}
	q, args = f.where(q, args)
	q += " ORDER BY ring_key, id LIMIT ?"
	args = append(args, limit)
	return q, args
}

// NodeKeysInRange returns up to limit keys of the nodes of conductor group group matching f
// whose ring key is in r, ordered by ring key and id, from after (nil: from the range's
// start). A conductor reads the ranges its hash ring points own this way, through the index on
// (conductor_group, ring_key, id), and so only its own share of the fleet.
func (s *Store) NodeKeysInRange(ctx context.Context, f NodeKeyFilter, group string, r KeyRange, after *RingCursor, limit int) ([]NodeKey, error) {
	q, args := s.nodeKeysInRangeQuery(f, group, r, after, limit)
	return s.nodeKeys(ctx, q, args)
}

func (s *Store) nodeKeys(ctx context.Context, q string, args []any) ([]NodeKey, error) {
	rows, err := s.query(ctx, s.db, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list node keys: %w", err)
	}
	defer rows.Close()
	var out []NodeKey
	for rows.Next() {
		var k NodeKey
		if err := rows.Scan(&k.ID, &k.UUID, &k.ConductorGroup, &k.ProvisionState, &k.Reservation, &k.Affinity,
			&k.Maintenance, &k.Fault, &k.ConsoleEnabled, &k.RingKey); err != nil {
			return nil, fmt.Errorf("scan node key: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list node keys: %w", err)
	}
	return out, nil
}

// fillRingKeys gives their ring key to the nodes stored without one: on SQLite every node
// stored before migration 0022; anywhere, those an older version wrote beside a newer one. A
// thousand at a time, each batch in a transaction of its own.
func (s *Store) fillRingKeys(ctx context.Context) error {
	const batch = 1000
	var after int64
	filled := 0
	for {
		rows, err := s.db.QueryContext(ctx, s.rebind("SELECT id, uuid FROM nodes WHERE ring_key IS NULL AND id > ? ORDER BY id LIMIT ?"), after, batch)
		if err != nil {
			return fmt.Errorf("fill ring keys: %w", err)
		}
		type row struct {
			id   int64
			uuid string
		}
		var todo []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.uuid); err != nil {
				rows.Close()
				return fmt.Errorf("fill ring keys: %w", err)
			}
			todo = append(todo, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("fill ring keys: %w", err)
		}
		if len(todo) == 0 {
			break
		}
		after = todo[len(todo)-1].id
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("fill ring keys: %w", err)
		}
		for _, r := range todo {
			if _, err := tx.ExecContext(ctx, s.rebind("UPDATE nodes SET ring_key = ? WHERE id = ? AND ring_key IS NULL"), RingKey(r.uuid), r.id); err != nil {
				tx.Rollback()
				return fmt.Errorf("fill the ring key of node %s: %w", r.uuid, err)
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("fill ring keys: %w", err)
		}
		filled += len(todo)
	}
	if filled > 0 {
		s.log.InfoContext(ctx, "ring keys filled for nodes stored without one", "nodes", filled)
	}
	return nil
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

// lightColumns are the columns LightNodesByID reads.
func lightColumns() []column[ironwork.Node] {
	want := []string{"uuid", "driver", "driver_info", "driver_internal_info", "power_state", "provision_state",
		"maintenance", "fault", "reservation", "conductor_group", "conductor_affinity"}
	for _, k := range ironwork.InterfaceKinds {
		want = append(want, k.Field())
	}
	var cols []column[ironwork.Node]
	for _, c := range nodeColumns() {
		if slices.Contains(want, c.name) {
			cols = append(cols, c)
		}
	}
	return cols
}

// LightNodesByID is NodesByID for the conductor's passes over its share of the fleet (the power
// sync, the take-over): of each node it reads only its id and lightColumns (UUID, driver,
// driver_info, driver_internal_info, power and provision state, maintenance, fault, lock,
// conductor group and affinity, interfaces), what a power interface's PowerState and the
// choice of a take-over read. Every other field
// is left empty: such a node must not be written back or shown.
func (s *Store) LightNodesByID(ctx context.Context, ids []int64) ([]*ironwork.Node, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cols := lightColumns()
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.query(ctx, s.db, "SELECT id, "+strings.Join(columnNames(cols, ""), ", ")+" FROM nodes WHERE id IN ("+
		placeholders(len(ids))+") ORDER BY id", args...)
	if err != nil {
		return nil, fmt.Errorf("get light nodes by id: %w", err)
	}
	defer rows.Close()
	var out []*ironwork.Node
	for rows.Next() {
		n := &ironwork.Node{}
		err := rows.Scan(append([]any{&n.ID}, columnRefs(cols, n)...)...)
		if errors.Is(err, ErrUndecodable) {
			s.log.ErrorContext(ctx, "skip undecodable node", "node", n.UUID, "error", err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("scan light node: %w", err)
		}
		if n.Interfaces == nil {
			n.Interfaces = map[ironwork.InterfaceKind]string{}
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get light nodes by id: %w", err)
	}
	return out, nil
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

// RingKey is where the conductors' hash ring places key (a node's UUID): the first 8 bytes of
// its MD5, big-endian, as a signed number. The store keeps it of every node (column ring_key)
// so that a conductor can read the nodes of the hash ranges it owns (NodeKeysInRange) instead
// of every node's key.
func RingKey(key string) int64 {
	sum := md5.Sum([]byte(key))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// KeyRange is an inclusive range of ring keys.
type KeyRange struct{ Lo, Hi int64 }
