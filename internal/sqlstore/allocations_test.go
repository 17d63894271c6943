package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// availableNodes stores n available nodes outside maintenance, as an allocation wants them.
func availableNodes(t *testing.T, s *sqlstore.Store, prefix string, n int) []*ironwork.Node {
	t.Helper()
	out := make([]*ironwork.Node, n)
	for i := range out {
		out[i] = newNode(fmt.Sprintf("%s-%d", prefix, i))
		out[i].ProvisionState = ironwork.Available
		if err := s.CreateNode(context.Background(), out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func newAllocation(t *testing.T, s *sqlstore.Store, traits ...string) *ironwork.Allocation {
	t.Helper()
	a := &ironwork.Allocation{ResourceClass: "baremetal", Traits: traits, State: "allocating"}
	if err := s.CreateAllocation(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestReserveTakesTheFirstFreeNode: of the nodes it is given, ReserveForAllocation takes the
// first that is still free, in the order given, passing over nodes with an allocation, in
// maintenance, locked by another conductor or unknown, across more IDs than one query reads;
// when none is free it says ErrNodeTaken and leaves the allocation without a node.
func TestReserveTakesTheFirstFreeNode(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		nodes := availableNodes(t, s, "n", 5)
		first := newAllocation(t, s)
		if _, err := s.ReserveForAllocation(ctx, first.UUID, []int64{nodes[0].ID}, false, "me"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateNode(ctx, nodes[1].UUID, func(n *ironwork.Node) error { n.Maintenance = true; return nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ReserveNode(ctx, nodes[2].UUID, "another-conductor"); err != nil {
			t.Fatal(err)
		}
		// Unknown IDs first, more than one query's worth, then the four nodes that are not free
		// and the two that are, the later one first.
		var ids []int64
		for i := range int64(1200) {
			ids = append(ids, 1_000_000+i)
		}
		ids = append(ids, nodes[0].ID, nodes[1].ID, nodes[2].ID, nodes[4].ID, nodes[3].ID)
		a := newAllocation(t, s, "CUSTOM_A", "CUSTOM_B")
		got, err := s.ReserveForAllocation(ctx, a.UUID, ids, false, "me")
		if err != nil {
			t.Fatal(err)
		}
		if got.NodeUUID != nodes[4].UUID || got.State != "active" {
			t.Fatalf("allocation got node %s in state %s, want %s (the first free one given) and active", got.NodeUUID, got.State, nodes[4].UUID)
		}
		n, err := s.GetNode(ctx, nodes[4].UUID)
		if err != nil {
			t.Fatal(err)
		}
		if n.AllocationUUID != a.UUID || n.InstanceUUID != a.UUID || fmt.Sprint(n.InstanceInfo["traits"]) != "[CUSTOM_A CUSTOM_B]" {
			t.Fatalf("node: allocation %q instance %q traits %v, want %s twice and [CUSTOM_A CUSTOM_B]",
				n.AllocationUUID, n.InstanceUUID, n.InstanceInfo["traits"], a.UUID)
		}

		late := newAllocation(t, s)
		_, err = s.ReserveForAllocation(ctx, late.UUID, ids[:len(ids)-2], false, "me")
		if !errors.Is(err, sqlstore.ErrNodeTaken) {
			t.Fatalf("no free node among those given: %v, want ErrNodeTaken", err)
		}
		if after, err := s.GetAllocation(ctx, late.UUID); err != nil || after.NodeUUID != "" {
			t.Fatalf("allocation after ErrNodeTaken: %+v, %v; want no node", after, err)
		}
		// The lock holder itself may take a node it holds.
		got, err = s.ReserveForAllocation(ctx, late.UUID, []int64{nodes[2].ID, nodes[3].ID}, false, "another-conductor")
		if err != nil || got.NodeUUID != nodes[2].UUID {
			t.Fatalf("reserve by the lock's holder: %+v, %v; want node %s", got, err, nodes[2].UUID)
		}
	})
}

// TestReserveRaceGivesEachNodeOnce races 24 allocations for 8 nodes, each given every node in
// the same order (the worst case: all want the same node first): each node goes to exactly
// one allocation and the other 16 get ErrNodeTaken.
func TestReserveRaceGivesEachNodeOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		nodes := availableNodes(t, s, "r", 8)
		ids := make([]int64, len(nodes))
		for i, n := range nodes {
			ids[i] = n.ID
		}
		allocs := make([]*ironwork.Allocation, 24)
		for i := range allocs {
			allocs[i] = newAllocation(t, s)
		}
		got := make([]string, len(allocs))
		errs := make([]error, len(allocs))
		var wg sync.WaitGroup
		for i, a := range allocs {
			wg.Go(func() {
				out, err := s.ReserveForAllocation(ctx, a.UUID, ids, false, "me")
				if err == nil {
					got[i] = out.NodeUUID
				}
				errs[i] = err
			})
		}
		wg.Wait()
		var taken []string
		for i, err := range errs {
			switch {
			case err == nil:
				taken = append(taken, got[i])
			case !errors.Is(err, sqlstore.ErrNodeTaken):
				t.Fatalf("allocation %d: %v", i, err)
			}
		}
		slices.Sort(taken)
		var want []string
		for _, n := range nodes {
			want = append(want, n.UUID)
		}
		slices.Sort(want)
		if !slices.Equal(taken, want) {
			t.Fatalf("nodes given: %v, want each of %v once", taken, want)
		}
	})
}

// TestReserveSkipsANodeTakenAfterItsRead (PostgreSQL, whose writers run at once): a node that
// another transaction takes after ReserveForAllocation read it as free is passed over for the
// next one. The other transaction holds the node's row when ReserveForAllocation starts, so its
// read sees the node free and its UPDATE waits on the row; once the other commits, the UPDATE's
// conditions no longer hold and the next node is taken. (SQLite's writers run one at a time.)
func TestReserveSkipsANodeTakenAfterItsRead(t *testing.T) {
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, sqlstoretest.PostgresDSN(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	nodes := availableNodes(t, s, "w", 2)
	other, a := newAllocation(t, s), newAllocation(t, s)
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "UPDATE nodes SET allocation_id = $1, instance_uuid = $2 WHERE id = $3", other.ID, other.UUID, nodes[0].ID); err != nil {
		t.Fatal(err)
	}
	type result struct {
		a   *ironwork.Allocation
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := s.ReserveForAllocation(ctx, a.UUID, []int64{nodes[0].ID, nodes[1].ID}, false, "me")
		done <- result{got, err}
	}()
	// Wait until its UPDATE waits on the row (10 s at most), then let the other commit.
	for i := 0; ; i++ {
		var waiting int
		if err := s.DB().QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if i == 200 {
			t.Fatal("ReserveForAllocation never waited on the node another transaction holds")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.a.NodeUUID != nodes[1].UUID {
		t.Fatalf("reserve: %+v, %v; want node %s (the first was taken after the read)", r.a, r.err, nodes[1].UUID)
	}
	n, err := s.GetNode(ctx, nodes[0].UUID)
	if err != nil {
		t.Fatal(err)
	}
	if n.InstanceUUID != other.UUID {
		t.Fatalf("the node taken first has instance %q, want %q (the other transaction's)", n.InstanceUUID, other.UUID)
	}
}
