package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// TestNodeKeysPagesAndAffinity reads node keys page by page (with and without a state, and of
// the nodes with a console), decodes a chosen few by id, in full and as the power sync does,
// and adopts unlocked deployed nodes in one statement.
func TestNodeKeysPagesAndAffinity(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		var ids []int64
		for i := range 7 {
			st := ironwork.Available
			if i%2 == 0 {
				st = ironwork.Active
			}
			n := &ironwork.Node{Name: fmt.Sprintf("k%d", i), Driver: "fake-hardware", ProvisionState: st, ConductorGroup: "g1",
				Maintenance: i == 3, Fault: map[bool]string{true: "power failure"}[i == 3], ConsoleEnabled: i == 5,
				DriverInfo: ironwork.JSONObject{"ipmi_address": fmt.Sprintf("10.0.0.%d", i)}, Properties: ironwork.JSONObject{"cpus": i + 1},
				PowerState: ironwork.PowerOn, Interfaces: map[ironwork.InterfaceKind]string{ironwork.PowerInterface: "ipmitool"}}
			if err := s.CreateNode(ctx, n); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, n.ID)
		}
		var all []sqlstore.NodeKey
		for after := int64(0); ; {
			page, err := s.NodeKeys(ctx, sqlstore.NodeKeyFilter{}, after, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			if len(page) > 3 {
				t.Fatalf("page of %d keys, limit 3", len(page))
			}
			all = append(all, page...)
			after = page[len(page)-1].ID
		}
		if len(all) != 7 {
			t.Fatalf("%d keys, want 7", len(all))
		}
		k3, k5 := all[3], all[5]
		if k3.ID != ids[3] || !k3.Maintenance || k3.Fault != "power failure" || k3.ConductorGroup != "g1" || k3.ProvisionState != ironwork.Available || !k5.ConsoleEnabled || k3.ConsoleEnabled {
			t.Fatalf("keys 3 and 5: %+v %+v", k3, k5)
		}
		active, err := s.NodeKeys(ctx, sqlstore.NodeKeyFilter{ProvisionState: string(ironwork.Active)}, 0, 100)
		if err != nil || len(active) != 4 {
			t.Fatalf("active keys: %d, %v; want 4", len(active), err)
		}
		consoles, err := s.NodeKeys(ctx, sqlstore.NodeKeyFilter{ConsoleEnabled: true}, 0, 100)
		if err != nil || len(consoles) != 1 || consoles[0].ID != ids[5] {
			t.Fatalf("keys of nodes with a console: %+v, %v; want k5's alone", consoles, err)
		}
		orphans, err := s.NodeKeys(ctx, sqlstore.NodeKeyFilter{Unadopted: true}, 0, 100)
		if err != nil || len(orphans) != 4 {
			t.Fatalf("keys of deployed nodes without affinity: %d, %v; want 4", len(orphans), err)
		}
		power, err := s.LightNodesByID(ctx, []int64{ids[3], ids[2], 99999})
		if err != nil || len(power) != 2 {
			t.Fatalf("LightNodesByID: %v %v", power, err)
		}
		if p := power[1]; p.ID != ids[3] || p.DriverInfo["ipmi_address"] != "10.0.0.3" || p.PowerState != ironwork.PowerOn ||
			p.Interfaces[ironwork.PowerInterface] != "ipmitool" || !p.Maintenance || p.Fault != "power failure" || p.Driver != "fake-hardware" ||
			p.ConductorGroup != "g1" || p.ProvisionState != ironwork.Available || p.UUID == "" {
			t.Errorf("power sync's node k3: %+v", p)
		}
		if p := power[0]; p.Name != "" || len(p.Properties) != 0 || p.Traits != nil {
			t.Errorf("power sync's node k2 has fields it does not read: name %q, properties %v, traits %v", p.Name, p.Properties, p.Traits)
		}
		nodes, err := s.NodesByID(ctx, []int64{ids[6], ids[1], 99999})
		if err != nil || len(nodes) != 2 || nodes[0].Name != "k1" || nodes[1].Name != "k6" {
			t.Fatalf("NodesByID: %v %v", nodes, err)
		}
		// Node k2 is locked: adoption leaves it; k1 is not deployed: left too.
		if _, err := s.ReserveNode(ctx, "k2", "other"); err != nil {
			t.Fatal(err)
		}
		n, err := s.SetConductorAffinity(ctx, []int64{ids[0], ids[1], ids[2], ids[4]}, string(ironwork.Active), 42)
		if err != nil || n != 2 {
			t.Fatalf("SetConductorAffinity changed %d nodes (%v), want 2", n, err)
		}
		orphans, err = s.NodeKeys(ctx, sqlstore.NodeKeyFilter{Unadopted: true}, 0, 100)
		if err != nil || len(orphans) != 2 || orphans[0].ID != ids[2] || orphans[1].ID != ids[6] {
			t.Fatalf("keys of deployed nodes without affinity after adoption: %+v, %v; want k2 and k6", orphans, err)
		}
		for i, want := range map[int]int64{0: 42, 1: 0, 2: 0, 4: 42, 6: 0} {
			got, err := s.GetNodeByID(ctx, ids[i])
			if err != nil || got.ConductorAffinity != want {
				t.Errorf("node k%d affinity %d (%v), want %d", i, got.ConductorAffinity, err, want)
			}
		}
	})
}

// TestNodeKeyFiltersUseTheirIndexes: the heartbeat's key reads (nodes with a console, deployed
// nodes without affinity) are planned on migration 0020's partial indexes, not as a scan of
// every node; a conductor's ring ranges and the nodes without a ring key on migration 0022's.
// PostgreSQL is told not to scan (a table this small would be scanned anyway); it still
// cannot use an index whose predicate the query does not imply. SQLite, without
// statistics, plans the second on the provision state's index, which it prefers for an
// equality: also an index search.
func TestNodeKeyFiltersUseTheirIndexes(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		conn, err := s.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		explain := "EXPLAIN QUERY PLAN "
		if s.Dialect() == sqlstore.Postgres {
			explain = "EXPLAIN "
			if _, err := conn.ExecContext(ctx, "SET enable_seqscan = off"); err != nil {
				t.Fatal(err)
			}
			defer conn.ExecContext(ctx, "RESET enable_seqscan")
		}
		unadopted := []string{"nodes_unadopted_idx"}
		if s.Dialect() == sqlstore.SQLite {
			unadopted = append(unadopted, "USING INDEX nodes_provision_state_idx (provision_state=? AND rowid>?)")
		}
		// A conductor's ring ranges (migration 0022), with and without a state and a cursor, on
		// the ring-key index.
		ring := sqlstore.KeyRange{Lo: -1 << 40, Hi: 1 << 40}
		active := sqlstore.NodeKeyFilter{ProvisionState: string(ironwork.Active)}
		for _, tc := range []struct {
			f     sqlstore.NodeKeyFilter
			after *sqlstore.RingCursor
			ring  bool
			plans []string // one of them
		}{
			{f: sqlstore.NodeKeyFilter{ConsoleEnabled: true}, plans: []string{"nodes_console_enabled_idx"}},
			{f: sqlstore.NodeKeyFilter{Unadopted: true}, plans: unadopted},
			{f: sqlstore.NodeKeyFilter{MissingRingKey: true}, plans: []string{"nodes_ring_key_missing_idx"}},
			{ring: true, plans: []string{"nodes_ring_key_idx"}},
			{ring: true, f: active, after: &sqlstore.RingCursor{RingKey: 5, ID: 7}, plans: []string{"nodes_ring_key_idx"}},
		} {
			f := tc.f
			q, args := s.NodeKeysQuery(f, 0, 5000)
			if tc.ring {
				q, args = s.NodeKeysInRangeQuery(f, "g1", ring, tc.after, 5000)
			}
			rows, err := conn.QueryContext(ctx, explain+q, args...)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			var plan []string
			for rows.Next() {
				cols, _ := rows.Columns()
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, fmt.Sprint(vals...))
			}
			rows.Close()
			text := strings.Join(plan, "\n")
			if !slices.ContainsFunc(tc.plans, func(p string) bool { return strings.Contains(text, p) }) {
				t.Errorf("%s is not planned on %q:\n%s", q, tc.plans, text)
			}
		}
	})
}
