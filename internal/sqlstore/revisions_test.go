package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// TestNodeRevisionOfConcurrent has many readers ask for node revisions at once, by UUID (in
// either case), by name and for nodes that do not exist, some with contexts cancelled while
// they wait, while a writer keeps changing one node: every answer must be the node's own (id
// matching its identifier, or not found), and never older than a write that finished before
// the read began.
func TestNodeRevisionOfConcurrent(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		var nodes []*ironwork.Node
		for i := range 20 {
			n := &ironwork.Node{Name: fmt.Sprintf("batch-%02d", i), Driver: "fake-hardware", ProvisionState: ironwork.Enroll}
			if err := s.CreateNode(ctx, n); err != nil {
				t.Fatal(err)
			}
			nodes = append(nodes, n)
		}
		// The writer: after each write of node 0 it publishes the revision the write made.
		var (
			mu        sync.Mutex
			published int64
			stop      = make(chan struct{})
			writerErr error
			wg        sync.WaitGroup
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.UpdateNode(ctx, nodes[0].UUID, func(n *ironwork.Node) error {
					n.Description = fmt.Sprint("write ", i)
					return nil
				}); err != nil {
					writerErr = err
					return
				}
				raws, err := s.NodesRawByID(ctx, []int64{nodes[0].ID})
				if err != nil || len(raws) != 1 {
					writerErr = fmt.Errorf("read back: %v (%d rows)", err, len(raws))
					return
				}
				mu.Lock()
				published = max(published, raws[0].Revision)
				mu.Unlock()
			}
		}()
		errs := make(chan error, 64)
		var readers sync.WaitGroup
		for g := range 24 {
			readers.Add(1)
			go func() {
				defer readers.Done()
				for i := range 150 {
					k := (g*7 + i) % 23
					ident, want := "", int64(0)
					switch {
					case k >= 20:
						ident = fmt.Sprintf("no-such-node-%d", k) // not found
					case k%3 == 0:
						ident, want = nodes[k].Name, nodes[k].ID
					case k%3 == 1:
						ident, want = strings.ToUpper(nodes[k].UUID), nodes[k].ID
					default:
						ident, want = nodes[k].UUID, nodes[k].ID
					}
					rctx, cancel := context.WithCancel(ctx)
					if i%10 == 9 {
						// Gone while it waits, or before, or after: an error or an answer,
						// never a hang.
						go cancel()
					}
					mu.Lock()
					floor := published
					mu.Unlock()
					rev, err := s.NodeRevisionOf(rctx, ident)
					cancel()
					switch {
					case i%10 == 9 && errors.Is(err, context.Canceled):
					case want == 0:
						if ironwork.ErrorCode(err) != ironwork.ENOTFOUND {
							errs <- fmt.Errorf("%s: got %+v, %v; want not found", ident, rev, err)
							return
						}
					case err != nil:
						errs <- fmt.Errorf("%s: %v", ident, err)
						return
					case rev.ID != want:
						errs <- fmt.Errorf("%s: node id %d, want %d", ident, rev.ID, want)
						return
					case k == 0 && rev.Revision < floor:
						errs <- fmt.Errorf("%s: revision %d is older than %d, written before the read", ident, rev.Revision, floor)
						return
					}
				}
			}()
		}
		done := make(chan struct{})
		go func() { readers.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			t.Fatal("readers still waiting after 2 minutes: a batch was never answered")
		}
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if writerErr != nil {
			t.Fatal(writerErr)
		}
	})
}
