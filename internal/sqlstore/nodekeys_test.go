package sqlstore_test

import (
	"context"
	"fmt"
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
		orphans, err := s.NodeKeys(ctx, sqlstore.NodeKeyFilter{ProvisionState: string(ironwork.Active), NoAffinity: true}, 0, 100)
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
		orphans, err = s.NodeKeys(ctx, sqlstore.NodeKeyFilter{ProvisionState: string(ironwork.Active), NoAffinity: true}, 0, 100)
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
