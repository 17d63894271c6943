package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/ironwork/ironwork"
)

// On PostgreSQL, every INSERT is a round trip and a commit of its own: a fleet enrolled by
// many clients at once costs the database one transaction per node. Nodes whose creation is
// one row referring to no other (no traits, chassis or allocation) are instead gathered, while
// an insert is running, into the next one: a single INSERT of all their rows, one statement
// and one commit. A row that would take a name or UUID already taken (by a stored node or
// another of the batch) is skipped by the statement (ON CONFLICT DO NOTHING) and inserted
// alone afterwards, which gives its caller the conflict it would have had without batching.
// The statement is atomic: when it fails for any other reason nothing of it was written, and
// every node of the batch is inserted alone.

// maxCreateBatch bounds the rows of one insert (PostgreSQL takes at most 65,535 parameters
// in a statement: about fifty per node).
const maxCreateBatch = 64

type createReq struct {
	n      *ironwork.Node
	insert func(context.Context, queryer) error // the node's own insert, for a batch of one
	err    error
}

// createBatched creates n with insert, in a multi-row insert with the nodes created at the
// same moment. Like inStatement: a caller that gave up before its node was taken into a
// batch gets its context's error and nothing is written; once taken, the write is carried
// through.
func (s *Store) createBatched(ctx context.Context, n *ironwork.Node, insert func(context.Context, queryer) error) error {
	r := &createReq{n: n, insert: insert}
	if err := s.creates.do(ctx, r, func(batch []*createReq) {
		wctx, cancel := writeContext(ctx)
		defer cancel()
		s.runCreates(wctx, batch)
	}); err != nil {
		return err
	}
	return r.err
}

// runCreates answers every request of batch, maxCreateBatch rows at a time.
func (s *Store) runCreates(ctx context.Context, batch []*createReq) {
	for len(batch) > 0 {
		k := min(len(batch), maxCreateBatch)
		part := batch[:k]
		batch = batch[k:]
		if len(part) > 1 {
			if err := s.insertNodes(ctx, part); err != nil {
				s.log.DebugContext(ctx, "batched node insert failed; inserting one by one", "nodes", len(part), "error", err)
				for _, r := range part {
					r.n.ID = 0 // nothing was written, whatever ids came back before the error
				}
			}
		}
		for _, r := range part {
			if r.n.ID == 0 { // alone, or not inserted by the batch
				r.err = r.insert(ctx, s.db)
			}
		}
	}
}

// insertNodes inserts the nodes of batch in one statement and sets the ids of those it
// inserted. A node that would take a name, UUID or instance UUID already taken (by a stored
// node or one before it in the batch) is left out, with id 0. An error means nothing was
// written.
func (s *Store) insertNodes(ctx context.Context, batch []*createReq) error {
	names := nodeInsertColumns()
	row := "(" + placeholders(len(names)) + ")"
	var q strings.Builder
	fmt.Fprintf(&q, "INSERT INTO nodes (%s) VALUES ", strings.Join(names, ", "))
	args := make([]any, 0, len(batch)*len(names))
	byUUID := make(map[string]*ironwork.Node, len(batch))
	for i, r := range batch {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString(row)
		args = append(args, columnRefs(nodeColumns(), r.n)...)
		args = append(args, nil, nil, RingKey(r.n.UUID)) // chassis_id, allocation_id: batched nodes have neither
		byUUID[r.n.UUID] = r.n
		r.n.ID = 0
	}
	q.WriteString(" ON CONFLICT DO NOTHING RETURNING id, uuid")
	rows, err := s.db.QueryContext(ctx, s.rebind(q.String()), args...)
	if err != nil {
		return fmt.Errorf("insert %d nodes: %w", len(batch), err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var u string
		if err := rows.Scan(&id, &u); err != nil {
			return fmt.Errorf("insert %d nodes: %w", len(batch), err)
		}
		if n := byUUID[u]; n != nil {
			n.ID = id
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("insert %d nodes: %w", len(batch), err)
	}
	return nil
}
