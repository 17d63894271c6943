package sqlstore_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// TestNodeCountsAreSharedForTheirInterval: two stores on one database (two processes of a
// deployment) count the nodes once per interval between them; the other reads the stored
// count, which shows its age; a count from a clock far ahead is not trusted; interval 0 counts
// every time.
func TestNodeCountsAreSharedForTheirInterval(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := target.DSN(t)
			open := func(now *time.Time) *sqlstore.Store {
				s, err := sqlstore.Open(ctx, dsn, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				s.SetClock(func() time.Time { return *now })
				return s
			}
			t0 := time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)
			now1, now2 := t0, t0
			s1, s2 := open(&now1), open(&now2)
			create := func(i int, st ironwork.ProvisionState) {
				if err := s1.CreateNode(ctx, &ironwork.Node{Name: fmt.Sprintf("c%d", i), Driver: "fake-hardware", ProvisionState: st}); err != nil {
					t.Fatal(err)
				}
			}
			counts := func(s *sqlstore.Store, maxAge time.Duration, wantTotal, wantActive int, wantAt time.Time) {
				t.Helper()
				cs, at, err := s.NodeCounts(ctx, maxAge)
				if err != nil {
					t.Fatal(err)
				}
				total, active := 0, 0
				for _, c := range cs {
					total += c.Count
					if c.ProvisionState == ironwork.Active {
						active += c.Count
					}
				}
				if total != wantTotal || active != wantActive || !at.Equal(wantAt) {
					t.Fatalf("counts %+v at %v: %d nodes, %d active; want %d, %d at %v", cs, at, total, active, wantTotal, wantActive, wantAt)
				}
			}
			const every = 10 * time.Second
			create(0, ironwork.Enroll)
			create(1, ironwork.Active)
			counts(s1, every, 2, 1, t0) // nothing stored: counted, and stored
			create(2, ironwork.Active)
			now2 = t0.Add(5 * time.Second)
			counts(s2, every, 2, 1, t0) // the other process's count, 5 s old
			counts(s2, 0, 3, 2, now2)   // interval 0: counted now (and not stored)
			counts(s1, every, 2, 1, t0) // still the stored one
			now2 = t0.Add(every)        // as old as the interval: counted again
			counts(s2, every, 3, 2, now2)
			now1 = t0.Add(12 * time.Second)
			counts(s1, every, 3, 2, now2)

			// A count made by a clock an hour ahead is not trusted, and the next replaces it.
			now1 = t0.Add(time.Hour)
			counts(s1, every, 3, 2, now1)
			create(3, ironwork.Enroll)
			now2 = t0.Add(13 * time.Second)
			counts(s2, every, 4, 2, now2)
			now1 = t0.Add(14 * time.Second)
			counts(s1, every, 4, 2, now2)

			// Every field of every group comes back from the stored count as counted.
			if err := s1.CreateNode(ctx, &ironwork.Node{Name: "c-broken", Driver: "fake-hardware", ProvisionState: ironwork.Active,
				PowerState: ironwork.PowerOn, Maintenance: true, Fault: "power failure"}); err != nil {
				t.Fatal(err)
			}
			now1 = t0.Add(30 * time.Second)
			stored, _, err := s1.NodeCounts(ctx, every)
			if err != nil {
				t.Fatal(err)
			}
			now2 = t0.Add(31 * time.Second)
			read, at, err := s2.NodeCounts(ctx, every)
			if err != nil {
				t.Fatal(err)
			}
			direct, err := s2.CountNodes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !at.Equal(now1) || !reflect.DeepEqual(read, stored) || !reflect.DeepEqual(read, direct) {
				t.Fatalf("stored count at %v:\n%+v\nread back:\n%+v\ncounted:\n%+v", at, stored, read, direct)
			}
			if !slices.ContainsFunc(read, func(c sqlstore.NodeCount) bool {
				return c.Maintenance && c.Fault == "power failure" && c.PowerState == ironwork.PowerOn && c.Count == 1
			}) {
				t.Fatalf("no group for the node in maintenance: %+v", read)
			}
		})
	}
}

// TestCountNodesLeavesItsConnectionAsItWas: on PostgreSQL the count runs without parallel
// workers, set for its own transaction only: the pooled connection it ran on answers the next
// query with the server's setting.
func TestCountNodesLeavesItsConnectionAsItWas(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		if s.Dialect() != sqlstore.Postgres {
			t.Skip("a PostgreSQL setting")
		}
		ctx := context.Background()
		s.DB().SetMaxOpenConns(1) // the count's connection is the next query's
		var before, after string
		if err := s.DB().QueryRowContext(ctx, "SHOW max_parallel_workers_per_gather").Scan(&before); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CountNodes(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.DB().QueryRowContext(ctx, "SHOW max_parallel_workers_per_gather").Scan(&after); err != nil {
			t.Fatal(err)
		}
		if before == "0" || after != before {
			t.Fatalf("max_parallel_workers_per_gather %q before the count, %q after", before, after)
		}
	})
}
