package conductor_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// allocate creates an allocation, waits for its worker, and returns it as stored.
func (e *env) allocate(t *testing.T, a *ironwork.Allocation) *ironwork.Allocation {
	t.Helper()
	created, err := createAllocation(t, e.c, a, "")
	ok(t, err)
	if created.State != conductor.AllocationAllocating {
		t.Errorf("a new allocation is %q, want %q", created.State, conductor.AllocationAllocating)
	}
	e.c.Wait()
	got, err := e.store.GetAllocation(context.Background(), created.UUID)
	ok(t, err)
	return got
}

func TestAllocation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		alloc     ironwork.Allocation
		wantNode  string // name of the node it gets; "" for none
		wantError string
	}{
		{name: "by resource class", alloc: ironwork.Allocation{ResourceClass: "silver"}, wantNode: "silver-1"},
		{name: "by traits", alloc: ironwork.Allocation{ResourceClass: "gold", Traits: []string{"CUSTOM_GPU"}}, wantNode: "gold-gpu"},
		{name: "by capabilities in a string", alloc: ironwork.Allocation{ResourceClass: "gold", Capabilities: map[string]string{"disk": "ssd"}}, wantNode: "gold-gpu"},
		{name: "by capabilities in an object and cpu_arch", alloc: ironwork.Allocation{ResourceClass: "gold", Capabilities: map[string]string{"boot_mode": "uefi", "cpu_arch": "aarch64"}}, wantNode: "gold-arm"},
		{name: "by candidates", alloc: ironwork.Allocation{ResourceClass: "gold", CandidateNodes: []string{"gold-arm"}}, wantNode: "gold-arm"},
		{name: "name preferred", alloc: ironwork.Allocation{Name: "gold-arm", ResourceClass: "gold"}, wantNode: "gold-arm"},
		{name: "no node of the class", alloc: ironwork.Allocation{ResourceClass: "bronze"}, wantError: "no available nodes match the resource class bronze"},
		{name: "node in maintenance is not a candidate", alloc: ironwork.Allocation{ResourceClass: "platinum"}, wantError: "no available nodes match"},
		{name: "candidates do not match", alloc: ironwork.Allocation{ResourceClass: "silver", CandidateNodes: []string{"gold-arm"}}, wantError: "none of the requested nodes are available"},
		{name: "traits do not match", alloc: ironwork.Allocation{ResourceClass: "silver", Traits: []string{"CUSTOM_GPU"}}, wantError: "no suitable nodes have the requested traits CUSTOM_GPU"},
		{name: "capabilities do not match", alloc: ironwork.Allocation{ResourceClass: "gold", Capabilities: map[string]string{"disk": "hdd", "boot_mode": "bios"}}, wantError: "requested capabilities boot_mode:bios,disk:hdd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			names := map[int64]string{}
			for _, spec := range []struct {
				name, class string
				fn          func(n *ironwork.Node)
			}{
				{"silver-1", "silver", nil},
				{"gold-gpu", "gold", func(n *ironwork.Node) {
					n.Traits = []string{"CUSTOM_GPU"}
					n.Properties = ironwork.JSONObject{"capabilities": "disk:ssd, boot_mode:bios"}
				}},
				{"gold-arm", "gold", func(n *ironwork.Node) {
					n.Properties = ironwork.JSONObject{"capabilities": map[string]any{"boot_mode": "uefi"}, "cpu_arch": "aarch64"}
				}},
				{"platinum-1", "platinum", func(n *ironwork.Node) { n.Maintenance = true }},
			} {
				n := e.node(t, func(n *ironwork.Node) {
					n.Name, n.ResourceClass = spec.name, spec.class
					if spec.fn != nil {
						spec.fn(n)
					}
				})
				names[n.ID] = n.Name
			}
			a := tc.alloc
			if len(a.CandidateNodes) > 0 {
				for i, name := range a.CandidateNodes {
					a.CandidateNodes[i] = e.get(t, name).UUID
				}
			}
			got := e.allocate(t, &a)
			if tc.wantError != "" {
				if got.State != conductor.AllocationError || !strings.Contains(got.LastError, tc.wantError) || got.NodeUUID != "" {
					t.Errorf("allocation: state %q last_error %q node %q; want an error with %q", got.State, got.LastError, got.NodeUUID, tc.wantError)
				}
				return
			}
			if got.State != conductor.AllocationActive || got.LastError != "" {
				t.Fatalf("allocation: state %q last_error %q", got.State, got.LastError)
			}
			n := e.get(t, got.NodeUUID)
			if n.Name != tc.wantNode || n.AllocationUUID != got.UUID {
				t.Errorf("allocation got node %q (its allocation %q), want %q", n.Name, n.AllocationUUID, tc.wantNode)
			}
			if n.Reservation != "" {
				t.Errorf("allocated node still locked by %q", n.Reservation)
			}
		})
	}
}

func TestAllocationsDoNotShareANode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.node(t, func(n *ironwork.Node) { n.ResourceClass = "gold" })
	first := e.allocate(t, &ironwork.Allocation{ResourceClass: "gold"})
	second := e.allocate(t, &ironwork.Allocation{ResourceClass: "gold"})
	if first.State != conductor.AllocationActive || second.State != conductor.AllocationError {
		t.Errorf("two allocations for one node: %q and %q, want active and error", first.State, second.State)
	}
}

func TestBackfillAllocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name      string
		node      func(n *ironwork.Node)
		alloc     ironwork.Allocation
		wantCode  ironwork.Code
		wantError string
	}{
		{name: "active node", node: func(n *ironwork.Node) { n.ProvisionState = ironwork.Active }, alloc: ironwork.Allocation{ResourceClass: "gold"}},
		{name: "not active", node: nil, alloc: ironwork.Allocation{ResourceClass: "gold"}, wantCode: ironwork.EINVALID, wantError: `must be in the "active" state`},
		{name: "other resource class", node: func(n *ironwork.Node) { n.ProvisionState = ironwork.Active }, alloc: ironwork.Allocation{ResourceClass: "silver"},
			wantCode: ironwork.EINVALID, wantError: "does not match the requested resource class silver"},
		{name: "missing traits and capabilities", node: func(n *ironwork.Node) { n.ProvisionState = ironwork.Active },
			alloc:    ironwork.Allocation{Traits: []string{"CUSTOM_X"}, Capabilities: map[string]string{"disk": "ssd"}, CandidateNodes: []string{"f0f0f0f0-0000-4000-8000-000000000000"}},
			wantCode: ironwork.EINVALID, wantError: "CUSTOM_X"},
		{name: "node of another instance", node: func(n *ironwork.Node) {
			n.ProvisionState, n.InstanceUUID = ironwork.Active, "0d8c3b9e-2f64-4c5f-a2a4-7d8b1e3f6a90"
		}, alloc: ironwork.Allocation{ResourceClass: "gold"}, wantCode: ironwork.ECONFLICT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := e.node(t, func(n *ironwork.Node) {
				n.ResourceClass = "gold"
				if tc.node != nil {
					tc.node(n)
				}
			})
			a := tc.alloc
			got, err := createAllocation(t, e.c, &a, n.UUID)
			if tc.wantCode != "" {
				wantCode(t, err, tc.wantCode)
				if !strings.Contains(ironwork.ErrorMessage(err), tc.wantError) {
					t.Errorf("error %q does not contain %q", ironwork.ErrorMessage(err), tc.wantError)
				}
				stored, gerr := e.store.GetAllocation(context.Background(), a.UUID)
				ok(t, gerr)
				if stored.State != conductor.AllocationError || stored.LastError == "" {
					t.Errorf("refused backfill stored as %q with last_error %q", stored.State, stored.LastError)
				}
				if node := e.get(t, n.UUID); node.AllocationUUID != "" || node.Reservation != "" {
					t.Errorf("refused backfill left allocation %q lock %q on the node", node.AllocationUUID, node.Reservation)
				}
				return
			}
			ok(t, err)
			if got.State != conductor.AllocationActive || got.NodeUUID != n.UUID {
				t.Errorf("backfilled allocation: state %q node %q, want active on %s", got.State, got.NodeUUID, n.UUID)
			}
			e.settled(t, n.UUID, ironwork.Active)
		})
	}
}

func TestDeleteAllocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name  string
		state ironwork.ProvisionState
		maint bool
		want  ironwork.Code // "" when allowed
	}{
		{"available node", ironwork.Available, false, ""},
		{"active node", ironwork.Active, false, ironwork.ECONFLICT},
		{"active node in maintenance", ironwork.Active, true, ""},
		{"node deploying", ironwork.Deploying, false, ironwork.ECONFLICT},
		{"deploy failed", ironwork.DeployFailed, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := e.node(t, func(n *ironwork.Node) { n.ResourceClass = "gold" })
			a := e.allocate(t, &ironwork.Allocation{ResourceClass: "gold", CandidateNodes: []string{n.UUID}})
			if a.NodeUUID != n.UUID {
				t.Fatalf("allocation took %q, want %q (%s)", a.NodeUUID, n.UUID, a.LastError)
			}
			e.update(t, n.UUID, func(n *ironwork.Node) {
				n.ProvisionState, n.TargetProvisionState, n.Maintenance = tc.state, ironwork.TargetOf(tc.state), tc.maint
			})
			err := deleteAllocation(t, e.c, a.UUID)
			if tc.want != "" {
				wantCode(t, err, tc.want)
				if got := e.get(t, n.UUID); got.AllocationUUID != a.UUID {
					t.Errorf("refused delete freed the node (allocation %q)", got.AllocationUUID)
				}
				return
			}
			ok(t, err)
			if got := e.get(t, n.UUID); got.AllocationUUID != "" || got.InstanceUUID != "" {
				t.Errorf("deleted allocation left allocation %q instance %q on the node", got.AllocationUUID, got.InstanceUUID)
			}
		})
	}
	t.Run("node locked", func(t *testing.T) {
		n := e.node(t, func(n *ironwork.Node) { n.ResourceClass = "gold" })
		a := e.allocate(t, &ironwork.Allocation{ResourceClass: "gold", CandidateNodes: []string{n.UUID}})
		locked, err := e.store.ReserveNode(context.Background(), n.UUID, "other")
		ok(t, err)
		wantCode(t, deleteAllocation(t, e.c, a.UUID), ironwork.ELOCKED)
		ok(t, e.store.ReleaseNode(context.Background(), locked.ID, "other"))
	})
}

func TestUndeployDeletesAllocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := e.node(t, func(n *ironwork.Node) { n.ResourceClass = "gold" })
	a := e.allocate(t, &ironwork.Allocation{ResourceClass: "gold"})
	ok(t, provision(t, e.c, n.UUID, "active"))
	e.settled(t, n.UUID, ironwork.Active)
	ok(t, provision(t, e.c, n.UUID, "deleted"))
	if got := e.settled(t, n.UUID, ironwork.Available); got.AllocationUUID != "" {
		t.Errorf("node keeps allocation %q after undeploy", got.AllocationUUID)
	}
	if _, err := e.store.GetAllocation(context.Background(), a.UUID); ironwork.ErrorCode(err) != ironwork.ENOTFOUND {
		t.Errorf("allocation after undeploy: %v, want not found", err)
	}
}

func TestNodeCapabilities(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		props ironwork.JSONObject
		want  map[string]string
	}{
		{"none", nil, map[string]string{}},
		{"string", ironwork.JSONObject{"capabilities": " a:1 ,b:2,broken,:x"}, map[string]string{"a": "1", "b": "2"}},
		{"object", ironwork.JSONObject{"capabilities": map[string]any{"a": 1.0, "b": true}}, map[string]string{"a": "1", "b": "true"}},
		{"cpu_arch", ironwork.JSONObject{"cpu_arch": "x86_64"}, map[string]string{"cpu_arch": "x86_64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := conductor.NodeCapabilities(&ironwork.Node{Properties: tc.props})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("capabilities (-want +got):\n%s", diff)
			}
		})
	}
}
