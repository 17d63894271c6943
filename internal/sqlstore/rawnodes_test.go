package sqlstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// TestNodeRevisions checks migration 0016's triggers: every write of a node's row or its
// traits, whoever makes it, gives the node a new revision; reads do not; ListNodeRevisions
// pages as ListNodesRaw does and NodesRawByID reads the same revisions.
func TestNodeRevisions(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		var nodes []*ironwork.Node
		for i := range 4 {
			n := &ironwork.Node{Name: fmt.Sprintf("rev-%d", i), Driver: "fake-hardware", ProvisionState: ironwork.Enroll}
			if err := s.CreateNode(ctx, n); err != nil {
				t.Fatal(err)
			}
			nodes = append(nodes, n)
		}
		revOf := func(i int) int64 {
			t.Helper()
			raws, err := s.NodesRawByID(ctx, []int64{nodes[i].ID})
			if err != nil || len(raws) != 1 {
				t.Fatalf("read node %d: %v (%d rows)", i, err, len(raws))
			}
			return raws[0].Revision
		}
		last := revOf(0)
		step := func(what string, write func() error) {
			t.Helper()
			if err := write(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			now := revOf(0)
			if now <= last {
				t.Fatalf("%s: revision %d, was %d: unchanged", what, now, last)
			}
			last = now
		}
		step("update", func() error {
			_, err := s.UpdateNode(ctx, nodes[0].UUID, func(n *ironwork.Node) error { n.Description = "x"; return nil })
			return err
		})
		step("traits added", func() error {
			_, err := s.UpdateNode(ctx, nodes[0].UUID, func(n *ironwork.Node) error { n.Traits = []string{"CUSTOM_A", "CUSTOM_B"}; return nil })
			return err
		})
		step("traits removed", func() error {
			_, err := s.UpdateNode(ctx, nodes[0].UUID, func(n *ironwork.Node) error { n.Traits = []string{"CUSTOM_B"}; return nil })
			return err
		})
		step("lock", func() error { _, err := s.ReserveNode(ctx, nodes[0].UUID, "c1"); return err })
		step("release", func() error { return s.ReleaseNode(ctx, nodes[0].ID, "c1") })
		step("raw SQL", func() error {
			_, err := s.DB().ExecContext(ctx, "UPDATE nodes SET reservation = NULL")
			return err
		})
		if _, err := s.GetNode(ctx, nodes[0].UUID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ListNodesRaw(ctx, sqlstore.NodeFilter{}, sqlstore.Page{Limit: 10}); err != nil {
			t.Fatal(err)
		}
		if now := revOf(0); now != last {
			t.Fatalf("reads changed the revision: %d, was %d", now, last)
		}

		for _, pg := range []sqlstore.Page{{Limit: 2}, {Limit: 10, SortKey: "name", SortDir: "desc"}, {Limit: 2, Marker: nodes[1].UUID}, {Limit: 2, Marker: nodes[2].UUID, SortDir: "desc"}} {
			revs, err := s.ListNodeRevisions(ctx, sqlstore.NodeFilter{}, pg)
			if err != nil {
				t.Fatal(err)
			}
			raws, err := s.ListNodesRaw(ctx, sqlstore.NodeFilter{}, pg)
			if err != nil {
				t.Fatal(err)
			}
			if len(revs) != len(raws) || len(revs) == 0 {
				t.Fatalf("page %+v: %d revisions, %d nodes", pg, len(revs), len(raws))
			}
			for i := range revs {
				if revs[i].ID != raws[i].Node.ID || revs[i].Revision != raws[i].Revision {
					t.Fatalf("page %+v, row %d: revision read %+v, node read id %d revision %d", pg, i, revs[i], raws[i].Node.ID, raws[i].Revision)
				}
			}
		}
		// The marker is read inside the revisions' query: past the last node the page is
		// empty, and a marker naming no node is "not found", as for the other lists.
		if revs, err := s.ListNodeRevisions(ctx, sqlstore.NodeFilter{}, sqlstore.Page{Limit: 2, Marker: nodes[3].UUID}); err != nil || len(revs) != 0 {
			t.Fatalf("page after the last node: %v, %d revisions", err, len(revs))
		}
		_, err := s.ListNodeRevisions(ctx, sqlstore.NodeFilter{}, sqlstore.Page{Limit: 2, Marker: "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"})
		wantCode(t, err, ironwork.ENOTFOUND)
		if err := s.DeleteNode(ctx, nodes[3].UUID, nil); err != nil {
			t.Fatal(err)
		}
		raws, err := s.NodesRawByID(ctx, []int64{nodes[3].ID, nodes[2].ID})
		if err != nil || len(raws) != 1 || raws[0].Node.ID != nodes[2].ID {
			t.Fatalf("NodesRawByID with a deleted node: %v, %d rows", err, len(raws))
		}
	})
}
