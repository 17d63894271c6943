package sqlstore

import (
	"context"
	"errors"
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
// Writes made by other processes sharing the database are not seen here; NodesChangedSince
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

// NodesChangedSince returns the nodes created or updated at or after since (by the writers'
// clocks), at most limit of them, oldest change first. Polling it with an overlap finds the
// changes other processes made to a shared database.
func (s *Store) NodesChangedSince(ctx context.Context, since time.Time, limit int) ([]*ironwork.Node, error) {
	micros := since.UTC().UnixMicro()
	q := s.nodeSelect() + " WHERE COALESCE(n.updated_at, n.created_at) >= ? ORDER BY COALESCE(n.updated_at, n.created_at), n.id LIMIT ?"
	rows, err := s.query(ctx, s.db, q, micros, limit)
	if err != nil {
		return nil, fmt.Errorf("list changed nodes: %w", err)
	}
	defer rows.Close()
	var out []*ironwork.Node
	for rows.Next() {
		n, err := scanNode(rows)
		if errors.Is(err, ErrUndecodable) {
			s.log.ErrorContext(ctx, "skip undecodable node", "node", n.UUID, "error", err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("scan node: %w", err)
		}
		out = append(out, n)
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
