package httpapi

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/ironwork/ironwork/internal/sqlstore"
)

// A client that enrols nodes usually lists or reads them next, and the first detailed page of
// a thousand new nodes would otherwise render every one of them while the client waits (a
// page of 1000 fresh nodes: about 30 ms against 4 ms from the cache). So once a node is
// created, its detailed view at the creating request's microversion is rendered in the
// background into the node cache, from the row as the store has it and at the revision read
// with it: exactly what a list would have rendered and cached. It is only a head start: a list
// still reads every revision and renders whatever changed since, and a node enrolled faster
// than the background keeps up with is rendered by the list as before.

// prerenderMaxPending bounds the nodes waiting to be rendered; beyond it, new ones are left
// for the lists to render (a bulk enrolment of a fleet larger than the cache gains nothing).
const prerenderMaxPending = 10_000

// prerenderBatch is how many nodes are read and rendered at a time.
const prerenderBatch = 500

// prerenderGather is how long the background waits before each batch, so that nodes created
// one after another are read in one query, not one each.
const prerenderGather = 20 * time.Millisecond

// prerenderTimeout bounds one batch's read.
const prerenderTimeout = 30 * time.Second

type prerenderItem struct {
	ver int
	id  int64
}

// prerenderQueue holds the nodes to render; one goroutine drains it and ends when it is empty.
type prerenderQueue struct {
	mu      sync.Mutex
	pending []prerenderItem
	running bool
}

// prerender queues node id for rendering into the cache in the detailed view at the version
// ctx carries, for callers that are served from the cache (see seesWholeNodes).
func (s *Server) prerender(ctx context.Context, id int64) {
	if s.cache == nil || id == 0 || !s.seesWholeNodes(ctx) {
		return
	}
	q := &s.pre
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) >= prerenderMaxPending {
		return
	}
	q.pending = append(q.pending, prerenderItem{ver: versionOf(ctx), id: id})
	if !q.running {
		q.running = true
		go s.drainPrerender(context.WithoutCancel(ctx))
	}
}

// drainPrerender renders the queued nodes, a batch at a time, until none is left. ctx is the
// first queuing request's, without its cancellation: the caller, whose view does not depend on
// who it is once it sees whole nodes.
func (s *Server) drainPrerender(ctx context.Context) {
	q := &s.pre
	for {
		time.Sleep(prerenderGather)
		q.mu.Lock()
		n := min(len(q.pending), prerenderBatch)
		if n == 0 {
			q.running = false
			q.pending = nil
			q.mu.Unlock()
			return
		}
		batch := slices.Clone(q.pending[:n])
		q.pending = slices.Delete(q.pending, 0, n)
		q.mu.Unlock()

		byVer := map[int][]int64{}
		for _, it := range batch {
			byVer[it.ver] = append(byVer[it.ver], it.id)
		}
		for ver, ids := range byVer {
			s.prerenderNodes(context.WithValue(ctx, versionKey{}, ver), ids)
		}
	}
}

// prerenderNodes reads the nodes ids and caches the detailed view of those not cached at their
// current revision. Errors are logged: the lists render what is missing.
func (s *Server) prerenderNodes(ctx context.Context, ids []int64) {
	rctx, cancel := context.WithTimeout(ctx, prerenderTimeout)
	defer cancel()
	raws, err := s.store.NodesRawByID(rctx, ids)
	if err != nil {
		s.log.WarnContext(ctx, "render new nodes ahead of the lists", "nodes", len(ids), "error", err)
		return
	}
	view := nodeView(versionOf(ctx), nil)
	ids, revs := make([]int64, len(raws)), make([]int64, len(raws))
	byID := make(map[int64]*sqlstore.RawNode, len(raws))
	for i, rn := range raws {
		ids[i], revs[i] = rn.Node.ID, rn.Revision
		byID[rn.Node.ID] = rn
	}
	entries := make([]*nodeCacheEntry, len(ids))
	s.cache.lookup(view, ids, revs, entries)
	if err := s.renderMissing(ctx, view, nil, ids, entries, byID); err != nil {
		s.log.WarnContext(ctx, "render new nodes ahead of the lists", "nodes", len(ids), "error", err)
	}
}
