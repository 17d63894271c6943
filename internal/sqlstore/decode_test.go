package sqlstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// TestUndecodableRowsDoNotPoisonLists stores what older versions let through (a number beyond
// float64) and what no version writes (text that is not JSON), then checks that lists still
// work: the first row is read with its number kept exactly, the second is skipped.
func TestUndecodableRowsDoNotPoisonLists(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		huge := &ironwork.Node{Driver: "fake-hardware", ProvisionState: ironwork.Enroll, Extra: ironwork.JSONObject{"n": json.Number("1e400"), "m": 1.5}}
		broken := &ironwork.Node{Driver: "fake-hardware", ProvisionState: ironwork.Enroll}
		fine := &ironwork.Node{Driver: "fake-hardware", ProvisionState: ironwork.Enroll, Extra: ironwork.JSONObject{"k": "v"}}
		for _, n := range []*ironwork.Node{huge, broken, fine} {
			if err := s.CreateNode(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.DB().ExecContext(ctx, "UPDATE nodes SET extra = '{not json' WHERE uuid = '"+broken.UUID+"'"); err != nil {
			t.Fatal(err)
		}
		nodes, err := s.ListNodes(ctx, sqlstore.NodeFilter{}, sqlstore.Page{Limit: 10})
		if err != nil {
			t.Fatalf("list nodes: %v", err)
		}
		got := map[string]*ironwork.Node{}
		for _, n := range nodes {
			got[n.UUID] = n
		}
		if len(nodes) != 2 || got[huge.UUID] == nil || got[fine.UUID] == nil {
			t.Fatalf("listed %d nodes (%v), want the huge-number node and the fine node", len(nodes), got)
		}
		if v := got[huge.UUID].Extra["n"]; v != json.Number("1e400") {
			t.Errorf("extra.n = %#v, want json.Number 1e400", v)
		}
		if v := got[huge.UUID].Extra["m"]; v != 1.5 {
			t.Errorf("extra.m = %#v, want float64 1.5", v)
		}
		if _, err := s.GetNode(ctx, huge.UUID); err != nil {
			t.Errorf("get the huge-number node: %v", err)
		}
		if _, err := s.GetNode(ctx, broken.UUID); !errors.Is(err, sqlstore.ErrUndecodable) {
			t.Errorf("get the broken node: %v, want ErrUndecodable", err)
		}
	})
}
