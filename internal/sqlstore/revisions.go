package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ironwork/ironwork"
)

// A GET of one node served from the API's render cache reads nothing but the node's revision:
// one tiny query, whose cost is all round trip (on PostgreSQL, a wake-up of the backend
// process). Under many concurrent GETs, revisionReads coalesces those reads: a read joins the
// batch that has not been sent yet, and one query answers the whole batch. A read never joins
// a batch already sent, so its answer is never older than the read itself: the node's revision
// at some moment after the request arrived, as the query of its own would give.
//
// Whoever finds no batch running leads: it reads its batch, then hands what joined meanwhile
// to the first reader of it, who leads the next one. Nobody waits behind more than one batch
// before its own.

// maxRevisionBatch bounds the identifiers of one query; the sizes are padded to powers of two
// so that few statements are prepared.
const maxRevisionBatch = 32

// revisionBatchTimeout bounds one batch's query: a leader reads for others too, so its own
// request's cancellation does not cut it short.
const revisionBatchTimeout = 30 * time.Second

type revisionReads struct {
	mu      sync.Mutex
	waiting []*revisionRead // joined, not sent
	running bool            // a batch is being read
}

type revisionRead struct {
	ident string
	rev   NodeRevision
	err   error
	// done is closed when rev and err are set, or when this reader is to lead batch.
	done  chan struct{}
	batch []*revisionRead // set on the reader chosen to lead the next batch
}

// NodeRevisionOf returns the id and revision of the node with the given UUID or name, reading
// nothing else (see ListNodeRevisions). Concurrent calls share queries (see revisionReads).
func (s *Store) NodeRevisionOf(ctx context.Context, ident string) (NodeRevision, error) {
	if err := ctx.Err(); err != nil {
		return NodeRevision{}, err
	}
	b := &s.revisions
	r := &revisionRead{ident: ident, done: make(chan struct{})}
	b.mu.Lock()
	if !b.running {
		b.running = true
		b.mu.Unlock()
		s.leadRevisionReads(ctx, []*revisionRead{r})
		return r.rev, r.err
	}
	b.waiting = append(b.waiting, r)
	b.mu.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
		b.mu.Lock()
		if i := slices.Index(b.waiting, r); i >= 0 {
			b.waiting = slices.Delete(b.waiting, i, i+1)
			b.mu.Unlock()
			return NodeRevision{}, ctx.Err()
		}
		b.mu.Unlock()
		<-r.done // taken into a batch: answered, or chosen to lead it, soon
	}
	if r.batch != nil {
		s.leadRevisionReads(ctx, r.batch)
	}
	return r.rev, r.err
}

// leadRevisionReads reads batch (whose readers are all waiting, but the leader), answers it,
// and hands the next batch on, or ends the run when nobody joined.
func (s *Store) leadRevisionReads(ctx context.Context, batch []*revisionRead) {
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revisionBatchTimeout)
	for start := 0; start < len(batch); start += maxRevisionBatch {
		s.readRevisions(qctx, batch[start:min(start+maxRevisionBatch, len(batch))])
	}
	cancel()
	b := &s.revisions
	b.mu.Lock()
	next := b.waiting
	b.waiting = nil
	if len(next) == 0 {
		b.running = false
	}
	b.mu.Unlock()
	for _, r := range batch {
		if r.batch == nil || r.batch[0] != r { // the leader's own done may be closed already
			close(r.done)
		}
	}
	if len(next) > 0 {
		next[0].batch = next
		close(next[0].done)
	}
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
