package sqlstore_test

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// TestRingKeys: every node is stored with its ring key (alone or in a batched insert), which
// on PostgreSQL is the hash migration 0022 computes in SQL; NodeKeysInRange pages through a
// group's range in ring-key order and finds exactly the group's nodes whose key is in it, with
// and without a state; nodes stored without a key are found by MissingRingKey and not by a
// range, and get their key when the store opens again.
func TestRingKeys(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := target.DSN(t)
			s, err := sqlstore.Open(ctx, dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { s.Close() }()
			// 60 nodes, created 6 at a time (the store batches concurrent creations), in two
			// groups, one in three deployed.
			var wg sync.WaitGroup
			errs := make(chan error, 60)
			for w := range 6 {
				wg.Go(func() {
					for i := w; i < 60; i += 6 {
						st := ironwork.Available
						if i%3 == 0 {
							st = ironwork.Active
						}
						n := &ironwork.Node{Driver: "fake-hardware", ProvisionState: st, ConductorGroup: []string{"", "g1"}[i%2]}
						if err := s.CreateNode(ctx, n); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			all, err := s.NodeKeys(ctx, sqlstore.NodeKeyFilter{}, 0, 1000)
			if err != nil || len(all) != 60 {
				t.Fatalf("%d keys (%v), want 60", len(all), err)
			}
			for _, k := range all {
				if k.RingKey != sqlstore.RingKey(k.UUID) {
					t.Errorf("node %s: ring key %d, want %d", k.UUID, k.RingKey, sqlstore.RingKey(k.UUID))
				}
			}
			if s.Dialect() == sqlstore.Postgres {
				var differ int
				if err := s.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM nodes WHERE ring_key <> ('x' || substr(md5(uuid), 1, 16))::bit(64)::bigint").Scan(&differ); err != nil || differ != 0 {
					t.Errorf("%d nodes whose ring key is not migration 0022's hash (%v)", differ, err)
				}
			}

			keys := make([]int64, 0, len(all))
			for _, k := range all {
				keys = append(keys, k.RingKey)
			}
			slices.Sort(keys)
			mid := keys[len(keys)/2]
			ranges := []sqlstore.KeyRange{{Lo: math.MinInt64, Hi: math.MaxInt64}, {Lo: math.MinInt64, Hi: -1}, {Lo: 0, Hi: math.MaxInt64},
				{Lo: keys[10], Hi: mid}, {Lo: mid, Hi: mid}, {Lo: mid + 1, Hi: mid}}
			for _, r := range ranges {
				for _, f := range []sqlstore.NodeKeyFilter{{}, {ProvisionState: string(ironwork.Active)}} {
					var want []string
					for _, k := range all {
						if k.ConductorGroup == "g1" && k.RingKey >= r.Lo && k.RingKey <= r.Hi && (f.ProvisionState == "" || string(k.ProvisionState) == f.ProvisionState) {
							want = append(want, k.UUID)
						}
					}
					got := readRange(ctx, t, s, f, "g1", r, 4)
					slices.Sort(want)
					slices.Sort(got)
					if !slices.Equal(got, want) {
						t.Errorf("range %+v, filter %+v: %d nodes, want %d", r, f, len(got), len(want))
					}
				}
			}

			// Five nodes without a key, as an older version writes them.
			var missing []string
			for _, k := range all[:5] {
				missing = append(missing, k.UUID)
				if _, err := s.DB().ExecContext(ctx, rebind(s, "UPDATE nodes SET ring_key = NULL WHERE id = ?"), k.ID); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			nokey, err := s.NodeKeys(ctx, sqlstore.NodeKeyFilter{MissingRingKey: true}, 0, 100)
			for _, k := range nokey {
				got = append(got, k.UUID)
			}
			if err != nil || !slices.Equal(got, missing) {
				t.Fatalf("nodes without a ring key: %v (%v), want %v", got, err, missing)
			}
			n := len(readRange(ctx, t, s, sqlstore.NodeKeyFilter{}, "", ranges[0], 100)) + len(readRange(ctx, t, s, sqlstore.NodeKeyFilter{}, "g1", ranges[0], 100))
			if n != 55 {
				t.Errorf("the whole ring finds %d nodes, want the 55 with a key", n)
			}
			s.Close()
			if s, err = sqlstore.Open(ctx, dsn, nil); err != nil {
				t.Fatal(err)
			}
			if nokey, err := s.NodeKeys(ctx, sqlstore.NodeKeyFilter{MissingRingKey: true}, 0, 100); err != nil || len(nokey) != 0 {
				t.Errorf("after the store opened again, %d nodes without a ring key (%v)", len(nokey), err)
			}
			again, err := s.NodeKeys(ctx, sqlstore.NodeKeyFilter{}, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range again {
				if k.RingKey != sqlstore.RingKey(k.UUID) {
					t.Errorf("node %s after the fill: ring key %d, want %d", k.UUID, k.RingKey, sqlstore.RingKey(k.UUID))
				}
			}
		})
	}
}

// readRange reads the UUIDs of a group's range a page of limit keys at a time, checking the
// pages' order and size.
func readRange(ctx context.Context, t *testing.T, s *sqlstore.Store, f sqlstore.NodeKeyFilter, group string, r sqlstore.KeyRange, limit int) []string {
	t.Helper()
	var out []string
	var after *sqlstore.RingCursor
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatalf("range %+v: more than 100 pages", r)
		}
		page, err := s.NodeKeysInRange(ctx, f, group, r, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > limit {
			t.Fatalf("page of %d keys, limit %d", len(page), limit)
		}
		for i, k := range page {
			prev := after
			if i > 0 {
				prev = &sqlstore.RingCursor{RingKey: page[i-1].RingKey, ID: page[i-1].ID}
			}
			if prev != nil && (k.RingKey < prev.RingKey || k.RingKey == prev.RingKey && k.ID <= prev.ID) {
				t.Fatalf("range %+v: key (%d, %d) after (%d, %d)", r, k.RingKey, k.ID, prev.RingKey, prev.ID)
			}
			out = append(out, k.UUID)
		}
		if len(page) == 0 {
			return out
		}
		last := page[len(page)-1]
		after = &sqlstore.RingCursor{RingKey: last.RingKey, ID: last.ID}
	}
}
