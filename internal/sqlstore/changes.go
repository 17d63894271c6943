package sqlstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ironwork/ironwork"
)

// nodeObservers are the functions told of every node this process writes, after the write
// commits: the events stream's in-process feed.
type nodeObservers struct {
	mu  sync.Mutex
	fns []func(*ironwork.Node)
}

// ObserveNodes has fn called with a copy of every node this store creates or updates, after
// the transaction commits, in the writer's goroutine: fn must be quick and must not block.
// Writes made by other processes sharing the database are not seen here; NodeChangesSince
// finds them.
func (s *Store) ObserveNodes(fn func(*ironwork.Node)) {
	s.observers.mu.Lock()
	defer s.observers.mu.Unlock()
	s.observers.fns = append(s.observers.fns, fn)
}

func (s *Store) notifyNode(n *ironwork.Node) {
	s.observers.mu.Lock()
	fns := s.observers.fns
	s.observers.mu.Unlock()
	for _, fn := range fns {
		c := *n
		fn(&c)
	}
}

// NodeChange is one node's latest change, as NodeChangesSince reads it.
type NodeChange struct {
	ID       int64
	Revision int64     // see ListNodeRevisions: it moves with every write of the node
	At       time.Time // the node's updated_at, or its created_at when it was never updated
}

// NodeChangesSince returns the nodes created or updated at or after since (by the writers'
// clocks), at most limit of them, oldest change first: only their ids, revisions and times,
// so that a poller can read in full only the nodes whose revision it has not seen
// (NodesRawByID). Polling it with an overlap finds the changes other processes made to a
// shared database.
func (s *Store) NodeChangesSince(ctx context.Context, since time.Time, limit int) ([]NodeChange, error) {
	rows, err := s.query(ctx, s.db, `SELECT id, revision, COALESCE(updated_at, created_at) FROM nodes
		WHERE COALESCE(updated_at, created_at) >= ? ORDER BY COALESCE(updated_at, created_at), id LIMIT ?`,
		since.UTC().UnixMicro(), limit)
	if err != nil {
		return nil, fmt.Errorf("list changed nodes: %w", err)
	}
	defer rows.Close()
	var out []NodeChange
	for rows.Next() {
		var (
			c  NodeChange
			at int64
		)
		if err := rows.Scan(&c.ID, &c.Revision, &at); err != nil {
			return nil, fmt.Errorf("scan changed node: %w", err)
		}
		c.At = time.UnixMicro(at).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list changed nodes: %w", err)
	}
	return out, nil
}

// NodeUUIDs returns the UUID of every node, to find the nodes deleted since the last look.
func (s *Store) NodeUUIDs(ctx context.Context) (map[string]bool, error) {
	rows, err := s.query(ctx, s.db, "SELECT uuid FROM nodes")
	if err != nil {
		return nil, fmt.Errorf("list node uuids: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("scan node uuid: %w", err)
		}
		out[u] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list node uuids: %w", err)
	}
	return out, nil
}
