package events

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

func open(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestWatcherSeesAnotherStoresWrites: two stores on one database stand for two processes. The
// hub of the first sees its own writes at once (the write observer) and the second's at its
// next look, deletions included.
func TestWatcherSeesAnotherStoresWrites(t *testing.T) {
	for _, tg := range sqlstoretest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := tg.DSN(t)
			mine, other := open(t, dsn), open(t, dsn)
			before := &ironwork.Node{Name: "before", Driver: "fake-hardware", ProvisionState: ironwork.Enroll}
			if err := other.CreateNode(ctx, before); err != nil {
				t.Fatal(err)
			}
			h := NewHub(nil)
			mine.ObserveNodes(h.Observe)
			w := NewWatcher(h, mine, WatchConfig{DeleteEvery: 1})
			if err := w.Seed(ctx); err != nil {
				t.Fatal(err)
			}
			sub := h.Subscribe(0)
			if err := w.Look(ctx); err != nil {
				t.Fatal(err)
			}
			if len(sub.C()) != 0 {
				t.Fatalf("a seeded node was published: %+v", <-sub.C())
			}

			// This process's write: published by the observer, before any look.
			own := &ironwork.Node{Name: "own", Driver: "fake-hardware", ProvisionState: ironwork.Enroll}
			if err := mine.CreateNode(ctx, own); err != nil {
				t.Fatal(err)
			}
			if ev := recv(t, sub); ev.Node.UUID != own.UUID || ev.Node.ProvisionState != "enroll" {
				t.Errorf("own create: %+v", ev)
			}

			// The other process's writes: found by the next look.
			if _, err := other.UpdateNode(ctx, before.UUID, func(n *ironwork.Node) error {
				n.ProvisionState, n.TargetProvisionState = ironwork.Verifying, ironwork.Manageable
				n.PowerState = ironwork.PowerOff
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(sub.C()) != 0 {
				t.Fatal("another store's write was published without a look")
			}
			if err := w.Look(ctx); err != nil {
				t.Fatal(err)
			}
			ev := recv(t, sub)
			if ev.Node.UUID != before.UUID || ev.Node.ProvisionState != "verifying" ||
				ev.Node.TargetProvisionState != "manageable" || ev.Node.PowerState != "power off" {
				t.Errorf("other's update: %+v", ev.Node)
			}
			// The overlap reads it again at the next look: no second event.
			if err := w.Look(ctx); err != nil {
				t.Fatal(err)
			}
			if len(sub.C()) != 0 {
				t.Errorf("an unchanged node was published again: %+v", <-sub.C())
			}
			if err := other.DeleteNode(ctx, before.UUID, nil); err != nil {
				t.Fatal(err)
			}
			if err := w.Look(ctx); err != nil {
				t.Fatal(err)
			}
			if ev := recv(t, sub); ev.Type != TypeDeleted || ev.Node.UUID != before.UUID {
				t.Errorf("other's delete: %+v", ev)
			}
		})
	}
}

// countingStore counts the nodes a Watcher reads in full.
type countingStore struct {
	*sqlstore.Store
	full int
}

func (c *countingStore) NodesRawByID(ctx context.Context, ids []int64) ([]*sqlstore.RawNode, error) {
	c.full += len(ids)
	return c.Store.NodesRawByID(ctx, ids)
}

// TestWatcherReadsEachChangeOnce: a look meets every node changed within the overlap, but
// reads in full only those whose revision it has not read, so a fleet being enrolled or
// deployed is not read again at every look for as long as its changes stay in the overlap.
// Another process's second write of a node already read is read (and published) again.
func TestWatcherReadsEachChangeOnce(t *testing.T) {
	for _, tg := range sqlstoretest.Targets() {
		t.Run(tg.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := tg.DSN(t)
			mine, other := open(t, dsn), open(t, dsn)
			h := NewHub(nil)
			mine.ObserveNodes(h.Observe)
			cs := &countingStore{Store: mine}
			w := NewWatcher(h, cs, WatchConfig{})
			if err := w.Seed(ctx); err != nil {
				t.Fatal(err)
			}
			sub := h.Subscribe(0)
			var nodes []*ironwork.Node
			for i := range 30 {
				n := &ironwork.Node{Name: fmt.Sprintf("n%d", i), Driver: "fake-hardware", ProvisionState: ironwork.Enroll}
				if err := other.CreateNode(ctx, n); err != nil {
					t.Fatal(err)
				}
				nodes = append(nodes, n)
			}
			look := func(wantFull int) {
				t.Helper()
				cs.full = 0
				if err := w.Look(ctx); err != nil {
					t.Fatal(err)
				}
				if cs.full != wantFull {
					t.Errorf("look read %d nodes in full, want %d", cs.full, wantFull)
				}
			}
			look(30)
			for range 30 {
				recv(t, sub)
			}
			look(0)
			look(0)
			if _, err := other.UpdateNode(ctx, nodes[7].UUID, func(n *ironwork.Node) error {
				n.PowerState = ironwork.PowerOn
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			look(1)
			if ev := recv(t, sub); ev.Node.UUID != nodes[7].UUID || ev.Node.PowerState != "power on" {
				t.Errorf("second write: %+v", ev.Node)
			}
			look(0)
			if len(sub.C()) != 0 {
				t.Errorf("an unchanged node was published again: %+v", <-sub.C())
			}
		})
	}
}
