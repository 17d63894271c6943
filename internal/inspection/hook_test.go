package inspection_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/inspection"
	"github.com/ironwork/ironwork/internal/sqlstore"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// conductorHook is the conductor's InspectionRules interface, as the inspect flow declares it.
type conductorHook interface {
	Apply(ctx context.Context, phase string, n *ironwork.Node, inventory, pluginData map[string]any) error
}

var _ conductorHook = (*inspection.Hook)(nil)

// TestHookInsideNodeSave runs stored rules the way the conductor does, inside the
// transaction that saves the node, on SQLite and PostgreSQL: node and plugin data change in
// place, the changed port is saved once the transaction ends, and a fail action fails.
func TestHookInsideNodeSave(t *testing.T) {
	for _, target := range sqlstoretest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			ctx := context.Background()
			store, err := sqlstore.Open(ctx, target.DSN(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			n := &ironwork.Node{Name: "n1", Driver: "fake-hardware", ProvisionState: ironwork.Inspecting}
			if err := store.CreateNode(ctx, n); err != nil {
				t.Fatal(err)
			}
			p := &ironwork.Port{Address: "52:54:00:12:34:56", NodeID: n.ID, NodeUUID: n.UUID, PXEEnabled: true}
			if err := store.CreatePort(ctx, p); err != nil {
				t.Fatal(err)
			}
			for _, doc := range []string{
				`{"priority": 10, "conditions": [{"op": "eq", "args": {"values": ["{inventory[cpu][architecture]}", "x86_64"]}}],
				  "actions": [{"op": "set-attribute", "args": {"path": "/properties/cpu_arch", "value": "{inventory[cpu][architecture]}"}},
				              {"op": "add-trait", "args": {"name": "CUSTOM_X86"}},
				              {"op": "set-plugin-data", "args": {"path": "seen", "value": true}},
				              {"op": "set-port-attribute", "args": {"port_id": "52:54:00:12:34:56", "path": "/physical_network", "value": "physnet1"}}]}`,
				`{"priority": 5, "conditions": [{"op": "lt", "args": {"values": ["{inventory[memory][physical_mb]}", 2048], "force_strings": true}}],
				  "actions": [{"op": "fail", "args": {"msg": "less than 2048 MiB"}}]}`,
			} {
				m, _ := inspection.DecodeDocument([]byte(doc))
				r, err := inspection.ParseRule(m, false)
				if err != nil {
					t.Fatal(err)
				}
				if err := store.CreateInspectionRule(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			hook := inspection.NewHook(store, store, &inspection.Engine{}, nil)
			inv := map[string]any{"cpu": map[string]any{"architecture": "x86_64"}, "memory": map[string]any{"physical_mb": 1536.0}}
			plugin := map[string]any{}
			var applyErr error
			if _, err := store.UpdateNode(ctx, n.UUID, func(n *ironwork.Node) error {
				applyErr = hook.Apply(ctx, "main", n, inv, plugin)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			hook.Wait()
			var fe *inspection.FailureError
			if !errors.As(applyErr, &fe) || fe.Reason != "Failed to inspect hardware. Reason: less than 2048 MiB" {
				t.Errorf("Apply = %v, want the fail action's failure", applyErr)
			}
			got, err := store.GetNode(ctx, n.UUID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Properties["cpu_arch"] != "x86_64" || len(got.Traits) != 1 || got.Traits[0] != "CUSTOM_X86" {
				t.Errorf("node after the rules: properties %v, traits %v", got.Properties, got.Traits)
			}
			if plugin["seen"] != true {
				t.Errorf("plugin data %v", plugin)
			}
			gp, err := store.GetPort(ctx, p.UUID)
			if err != nil || gp.PhysicalNetwork != "physnet1" || !gp.PXEEnabled {
				t.Errorf("port after the rules: %+v, %v", gp, err)
			}
		})
	}
}
