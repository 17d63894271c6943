package sqlstore_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// TestLockedErrorNamesTheHolder: a node another conductor holds is refused with ELOCKED, and
// the message names that conductor.
func TestLockedErrorNamesTheHolder(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		n := newNode("held")
		if err := s.CreateNode(ctx, n); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ReserveNode(ctx, n.UUID, "conductor-a"); err != nil {
			t.Fatal(err)
		}
		_, err := s.ReserveNode(ctx, "held", "conductor-b")
		wantCode(t, err, ironwork.ELOCKED)
		want := "Node " + n.UUID + " is locked by host conductor-a, please retry"
		if !strings.Contains(ironwork.ErrorMessage(err), want) {
			t.Fatalf("message %q does not say %q", ironwork.ErrorMessage(err), want)
		}
		if err := s.ReleaseNode(ctx, n.ID, "conductor-a"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ReserveNode(ctx, n.UUID, "conductor-b"); err != nil || got.Reservation != "conductor-b" {
			t.Fatalf("reserve after release: %v, %v", got, err)
		}
	})
}

// TestLockedErrorNeverNamesNobody races a holder that takes and frees a node's lock against
// another that tries to take it: every refusal names a holder (before, a lock freed between
// the refused UPDATE and the read of the holder gave "locked by host ,").
func TestLockedErrorNeverNamesNobody(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		n := newNode("contended")
		if err := s.CreateNode(ctx, n); err != nil {
			t.Fatal(err)
		}
		const rounds = 300
		var wg sync.WaitGroup
		wg.Go(func() {
			for range rounds {
				if _, err := s.ReserveNode(ctx, n.UUID, "holder"); err == nil {
					_ = s.ReleaseNode(ctx, n.ID, "holder")
				}
			}
		})
		var refused, taken int
		for range rounds {
			_, err := s.ReserveNode(ctx, n.UUID, "other")
			switch ironwork.ErrorCode(err) {
			case "":
				taken++
				if err := s.ReleaseNode(ctx, n.ID, "other"); err != nil {
					t.Fatal(err)
				}
			case ironwork.ELOCKED:
				refused++
				if msg := ironwork.ErrorMessage(err); !strings.Contains(msg, "locked by host holder,") {
					t.Errorf("refusal does not name the holder: %q", msg)
				}
			default:
				t.Fatal(err)
			}
		}
		wg.Wait()
		t.Logf("%d reservations taken, %d refused (each naming the holder)", taken, refused)
	})
}
