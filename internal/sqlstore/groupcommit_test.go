package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// TestGroupCommitIsolatesFailures has many writers create nodes at once, a third of them with
// a name already taken, some with contexts cancelled before they start and some cancelled at a
// random moment while they wait or run, so that on SQLite their transactions are committed in
// groups: every write that succeeded must be there, whole, with the id it was given; every one
// that failed must have left nothing and got its own error (a name conflict, or the
// cancellation), never another write's. A write cancelled while it runs is carried through
// (its node then whole) or was never started (nothing stored).
func TestGroupCommitIsolatesFailures(t *testing.T) {
	t.Run("traits", func(t *testing.T) { groupCommitIsolatesFailures(t, true) })
	t.Run("bare", func(t *testing.T) { groupCommitIsolatesFailures(t, false) })
}

// groupCommitIsolatesFailures is TestGroupCommitIsolatesFailures with nodes that have traits
// (a transaction each, grouped on SQLite) or none (on PostgreSQL, one multi-row insert for the
// nodes created at the same time: createbatch.go). Nodes without traits also come in twins
// that ask for the same new name at the same moment, often in one insert: one of each pair
// must be stored and the other refused.
func groupCommitIsolatesFailures(t *testing.T, withTraits bool) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		wantTraits := 0
		if withTraits {
			wantTraits = 2
		}
		for i := range 10 {
			if err := s.CreateNode(ctx, &ironwork.Node{Name: fmt.Sprintf("taken-%d", i), Driver: "fake-hardware",
				ProvisionState: ironwork.Enroll}); err != nil {
				t.Fatal(err)
			}
		}
		type result struct {
			n                 *ironwork.Node
			err               error
			dup, gone, racing bool
			twin              string
		}
		const writers = 300
		results := make([]result, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := result{n: &ironwork.Node{Name: fmt.Sprintf("group-%03d", i), Driver: "fake-hardware",
					ProvisionState: ironwork.Enroll}}
				if withTraits {
					r.n.Traits = []string{"CUSTOM_G", fmt.Sprintf("CUSTOM_%d", i)}
				}
				wctx, cancel := context.WithCancel(ctx)
				defer cancel()
				switch {
				case i%3 == 1:
					r.n.Name, r.dup = fmt.Sprintf("taken-%d", i%10), true
				case i%20 == 0:
					cancel()
					r.gone = true
				case i%5 == 0:
					time.AfterFunc(time.Duration(rand.IntN(1500))*time.Millisecond, cancel)
					r.racing = true
				case !withTraits && i%3 == 2:
					r.twin = fmt.Sprintf("twin-%d", i/6)
					r.n.Name = r.twin
				}
				r.err = s.CreateNode(wctx, r.n)
				results[i] = r
			}()
		}
		wg.Wait()
		created, raced := 0, 0
		twins := map[string]int{}
		for i, r := range results {
			switch {
			case r.twin != "":
				if _, ok := twins[r.twin]; !ok {
					twins[r.twin] = 0 // checked below even if neither twin was stored
				}
				if r.err == nil {
					twins[r.twin]++
					created++
				} else if ironwork.ErrorCode(r.err) != ironwork.ECONFLICT {
					t.Errorf("writer %d (name %s, asked for twice): got %v, want success or a conflict", i, r.twin, r.err)
				}
			case r.dup:
				if ironwork.ErrorCode(r.err) != ironwork.ECONFLICT {
					t.Errorf("writer %d (name %s, taken): got %v, want a conflict", i, r.n.Name, r.err)
				}
			case r.gone:
				if !errors.Is(r.err, context.Canceled) {
					t.Errorf("writer %d (cancelled): got %v", i, r.err)
				}
			case r.racing:
				got, err := s.GetNode(ctx, r.n.Name)
				switch {
				case r.err != nil && !errors.Is(r.err, context.Canceled):
					t.Errorf("writer %d (cancelled while it ran): got %v", i, r.err)
				case r.err == nil && err != nil:
					t.Errorf("writer %d (cancelled while it ran): succeeded but not stored: %v", i, err)
				case err == nil && (got.ID != r.n.ID || len(got.Traits) != wantTraits):
					t.Errorf("writer %d (cancelled while it ran): stored id %d traits %v; the writer was given id %d",
						i, got.ID, got.Traits, r.n.ID)
				}
				if err == nil {
					created++
					raced++
				}
			case r.err != nil:
				t.Errorf("writer %d: %v", i, r.err)
			default:
				created++
				got, err := s.GetNode(ctx, r.n.Name)
				if err != nil {
					t.Errorf("writer %d: node %s not stored: %v", i, r.n.Name, err)
					continue
				}
				if got.ID != r.n.ID || got.UUID != r.n.UUID || len(got.Traits) != wantTraits {
					t.Errorf("writer %d: stored id %d uuid %s traits %v; the writer was given id %d uuid %s",
						i, got.ID, got.UUID, got.Traits, r.n.ID, r.n.UUID)
				}
			}
		}
		nodes, err := s.ListNodes(ctx, sqlstore.NodeFilter{}, sqlstore.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) != 10+created {
			t.Errorf("%d nodes stored, want %d: a failed write left rows, or a good one was lost", len(nodes), 10+created)
		}
		for _, n := range nodes {
			if strings.HasPrefix(n.Name, "group-") && len(n.Traits) != wantTraits {
				t.Errorf("node %s stored with traits %v: half a write", n.Name, n.Traits)
			}
			if strings.HasPrefix(n.Name, "twin-") {
				if got, err := s.GetNode(ctx, n.UUID); err != nil || got.ID != n.ID {
					t.Errorf("node %s: stored with id %d, read back %v %v", n.Name, n.ID, got, err)
				}
			}
		}
		for name, k := range twins {
			if k != 1 {
				t.Errorf("name %s asked for twice: %d nodes stored with it", name, k)
			}
		}
		if !withTraits && s.Dialect() == sqlstore.Postgres {
			// Rows written by one statement share its transaction id: fewer transactions
			// than nodes means some nodes were inserted together.
			var nodesN, txs int
			if err := s.DB().QueryRowContext(ctx, "SELECT count(*), count(DISTINCT xmin::text) FROM nodes").Scan(&nodesN, &txs); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d nodes written by %d transactions", nodesN, txs)
			if txs >= nodesN {
				t.Errorf("%d nodes written by %d transactions: no creation was batched", nodesN, txs)
			}
		}
		t.Logf("%d created (%d of them cancelled while they ran), %d conflicts, %d cancelled before",
			created, raced, writers/3, writers/20)
	})
}
