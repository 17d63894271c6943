package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/ironwork/ironwork"
)

// A GET of one node served from the API's render cache reads nothing but the node's revision:
// one tiny query, whose cost is all round trip (on PostgreSQL, a wake-up of the backend
// process). Under many concurrent GETs, Store.revisions coalesces those reads: a read joins the
// batch that has not been sent yet, and one query answers the whole batch. A read never joins
// a batch already sent, so its answer is never older than the read itself: the node's revision
// at some moment after the request arrived, as a query of its own would give (batcher, in
// batch.go).

// maxRevisionBatch bounds the identifiers of one query; the sizes are padded to powers of two
// so that few statements are prepared.
const maxRevisionBatch = 32

// revisionBatchTimeout bounds one batch's queries.
const revisionBatchTimeout = 30 * time.Second

type revisionRead struct {
	ident string
	rev   NodeRevision
	err   error
}

// NodeRevisionOf returns the id and revision of the node with the given UUID or name, reading
// nothing else (see ListNodeRevisions). Concurrent calls share queries (see above).
func (s *Store) NodeRevisionOf(ctx context.Context, ident string) (NodeRevision, error) {
	r := &revisionRead{ident: ident}
	if err := s.revisions.do(ctx, r, func(batch []*revisionRead) {
		// A leader reads for others too: its own request's cancellation does not cut it short.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revisionBatchTimeout)
		defer cancel()
		for start := 0; start < len(batch); start += maxRevisionBatch {
			s.readRevisions(qctx, batch[start:min(start+maxRevisionBatch, len(batch))])
		}
	}); err != nil {
		return NodeRevision{}, err
	}
	return r.rev, r.err
}

// readRevisions answers every read of batch with one query.
func (s *Store) readRevisions(ctx context.Context, batch []*revisionRead) {
	var uuids, names []any
	for _, r := range batch {
		if ironwork.IsUUID(r.ident) {
			uuids = append(uuids, strings.ToLower(r.ident))
		} else {
			names = append(names, r.ident)
		}
	}
	var conds []string
	for _, c := range []struct {
		col  string
		args *[]any
	}{{"n.uuid", &uuids}, {"n.name", &names}} {
		if len(*c.args) == 0 {
			continue
		}
		// Padded with its last value to a power of two: a handful of statement shapes.
		size := 1
		for size < len(*c.args) {
			size *= 2
		}
		for len(*c.args) < size {
			*c.args = append(*c.args, (*c.args)[len(*c.args)-1])
		}
		if size == 1 {
			conds = append(conds, c.col+" = ?")
		} else {
			conds = append(conds, c.col+" IN ("+placeholders(size)+")")
		}
	}
	fail := func(err error) {
		for _, r := range batch {
			r.err = fmt.Errorf("get node revision %s: %w", r.ident, err)
		}
	}
	rows, err := s.query(ctx, s.db, "SELECT n.id, n.revision, n.uuid, n.name FROM nodes n WHERE "+
		strings.Join(conds, " OR "), append(uuids, names...)...)
	if err != nil {
		fail(err)
		return
	}
	defer rows.Close()
	found := make(map[string]NodeRevision, len(batch))
	for rows.Next() {
		var (
			r    NodeRevision
			uuid string
			name sql.NullString
		)
		if err := rows.Scan(&r.ID, &r.Revision, &uuid, &name); err != nil {
			fail(err)
			return
		}
		found[uuid] = r
		if name.Valid {
			found["name:"+name.String] = r
		}
	}
	if err := rows.Err(); err != nil {
		fail(err)
		return
	}
	for _, r := range batch {
		key := "name:" + r.ident
		if ironwork.IsUUID(r.ident) {
			key = strings.ToLower(r.ident)
		}
		var ok bool
		if r.rev, ok = found[key]; !ok {
			r.err = notFound("Node", r.ident)
		}
	}
}
