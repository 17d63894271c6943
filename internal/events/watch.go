package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// Store is what Watch reads; *sqlstore.Store implements it.
type Store interface {
	ListNodes(ctx context.Context, f sqlstore.NodeFilter, p sqlstore.Page) ([]*ironwork.Node, error)
	NodeChangesSince(ctx context.Context, since time.Time, limit int) ([]sqlstore.NodeChange, error)
	NodesRawByID(ctx context.Context, ids []int64) ([]*sqlstore.RawNode, error)
	NodeUUIDs(ctx context.Context) (map[string]bool, error)
}

// WatchConfig tunes Watch.
type WatchConfig struct {
	// Interval between two looks at the store (default 1 s): the delay with which changes made
	// by other processes reach subscribers.
	Interval time.Duration
	// Overlap is how far back each look reaches before the newest change seen (default 5 s):
	// it covers transactions that commit after a later one and writers whose clocks lag.
	Overlap time.Duration
	// DeleteEvery is how many looks pass between two searches for deleted nodes (default 10).
	DeleteEvery int
	// Batch caps the nodes read in one look (default 500); the rest come at the next.
	Batch int
}

func (c *WatchConfig) fill() {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.Overlap <= 0 {
		c.Overlap = 5 * time.Second
	}
	if c.DeleteEvery <= 0 {
		c.DeleteEvery = 10
	}
	if c.Batch <= 0 {
		c.Batch = 500
	}
}

// Watcher feeds a Hub with the changes found in a store.
type Watcher struct {
	hub   *Hub
	store Store
	cfg   WatchConfig
	mark  time.Time // the newest change seen
	looks int
	// read holds the revision at which each node changed within the overlap was last read in
	// full, so that the looks that meet it again, in the overlap, read only its revision.
	read map[int64]readAt
}

type readAt struct {
	revision int64
	at       time.Time
}

// NewWatcher returns a Watcher of store for hub.
func NewWatcher(hub *Hub, store Store, cfg WatchConfig) *Watcher {
	cfg.fill()
	return &Watcher{hub: hub, store: store, cfg: cfg, read: map[int64]readAt{}}
}

// Seed reads every node into the hub without publishing, so that only later changes are
// events.
func (w *Watcher) Seed(ctx context.Context) error {
	marker := ""
	for {
		page, err := w.store.ListNodes(ctx, sqlstore.NodeFilter{}, sqlstore.Page{Limit: 1000, Marker: marker, SortKey: "id", SortDir: "asc"})
		if err != nil {
			return fmt.Errorf("seed node events: %w", err)
		}
		w.hub.Seed(page)
		for _, n := range page {
			w.advance(n)
		}
		if len(page) < 1000 {
			return nil
		}
		marker = page[len(page)-1].UUID
	}
}

func (w *Watcher) advance(n *ironwork.Node) {
	t := n.CreatedAt
	if n.UpdatedAt != nil {
		t = *n.UpdatedAt
	}
	if t.After(w.mark) {
		w.mark = t
	}
}

// Look reads the nodes changed since the newest change seen (less the overlap) and hands
// them to the hub; every DeleteEvery looks it also publishes the nodes that are gone. Of the
// changed nodes it reads in full only those whose revision it has not read yet.
func (w *Watcher) Look(ctx context.Context) error {
	var since time.Time
	if !w.mark.IsZero() {
		since = w.mark.Add(-w.cfg.Overlap)
	}
	for k, r := range w.read {
		if r.at.Before(since) {
			delete(w.read, k) // out of the overlap: no look meets it again unless it changes
		}
	}
	for {
		changes, err := w.store.NodeChangesSince(ctx, since, w.cfg.Batch)
		if err != nil {
			return err
		}
		var ids []int64
		for _, c := range changes {
			if r, ok := w.read[c.ID]; !ok || r.revision != c.Revision {
				ids = append(ids, c.ID)
			}
		}
		if err := w.readNodes(ctx, ids); err != nil {
			return err
		}
		for _, c := range changes {
			if c.At.After(w.mark) {
				w.mark = c.At
			}
		}
		if len(changes) < w.cfg.Batch {
			break
		}
		// A full batch: go on from the last one (the overlap repeats none that changed no more).
		next := changes[len(changes)-1].At
		if !next.After(since) {
			break // a batch of nodes all changed at one instant: the rest come at the next look
		}
		since = next
	}
	w.looks++
	if w.looks%w.cfg.DeleteEvery == 0 {
		live, err := w.store.NodeUUIDs(ctx)
		if err != nil {
			return err
		}
		for _, u := range w.hub.known() {
			if !live[u] {
				w.hub.Deleted(u)
			}
		}
	}
	return nil
}

// readNodes reads the nodes of ids in full and hands them to the hub. A node whose stored JSON
// cannot be decoded is logged and left out, as a listing leaves it out.
func (w *Watcher) readNodes(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	raws, err := w.store.NodesRawByID(ctx, ids)
	if err != nil {
		return fmt.Errorf("read changed nodes: %w", err)
	}
	for _, r := range raws {
		n := r.Node
		if err := errors.Join(r.Decode("deploy_step"), r.Decode("clean_step"), r.Decode("driver_internal_info")); err != nil {
			w.hub.log.ErrorContext(ctx, "skip undecodable node", "node", n.UUID, "error", err)
			continue
		}
		w.hub.Observe(n)
		at := n.CreatedAt
		if n.UpdatedAt != nil {
			at = *n.UpdatedAt
		}
		w.read[n.ID] = readAt{revision: r.Revision, at: at}
	}
	return nil
}

// Run seeds the hub and looks at the store every interval until ctx ends. Errors are logged
// and the next look tries again.
func (w *Watcher) Run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := w.Seed(ctx); err == nil {
			break
		} else if ctx.Err() == nil {
			w.hub.log.Warn("seed node events", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.cfg.Interval):
		}
	}
	tick := time.NewTicker(w.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := w.Look(ctx); err != nil && ctx.Err() == nil {
				w.hub.log.Warn("look for node changes", "error", err)
			}
		}
	}
}
