package conductor

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// Allocation states, as Ironic names them.
const (
	AllocationAllocating = "allocating"
	AllocationActive     = "active"
	AllocationError      = "error"
)

// CreateAllocation stores a new allocation and finds it a node. With backfillNode (a node UUID)
// the allocation records a node that is already deployed and the call returns when that is
// done; otherwise the allocation is returned in state allocating and a worker picks a node.
func (c *Conductor) CreateAllocation(ctx context.Context, req CreateAllocationRequest) (*ironwork.Allocation, error) {
	a, backfillNode := req.Allocation, req.BackfillNode
	if a == nil {
		return nil, ironwork.Errorf(ironwork.EINVALID, "create_allocation needs an allocation")
	}
	a.State, a.NodeID, a.NodeUUID, a.ConductorAffinity = AllocationAllocating, 0, "", c.id
	if backfillNode != "" {
		if err := c.store.CreateAllocation(ctx, a); err != nil {
			return nil, err
		}
		out, err := c.backfill(ctx, a, backfillNode)
		if err != nil {
			// The record outlives the request: a client that gave up still finds why.
			c.allocationFailed(context.WithoutCancel(ctx), a, err)
			return nil, err
		}
		return out, nil
	}
	done, err := c.acquireWorker()
	if err != nil {
		return nil, err
	}
	if err := c.store.CreateAllocation(ctx, a); err != nil {
		done()
		return nil, err
	}
	created := *a
	go func() {
		defer done()
		ctx, cancel := c.lifetime()
		defer cancel()
		c.allocate(ctx, &created)
	}()
	return a, nil
}

// allocationFailed records why an allocation found no node.
func (c *Conductor) allocationFailed(ctx context.Context, a *ironwork.Allocation, reason error) {
	msg := ironwork.ErrorMessage(reason)
	if ironwork.ErrorCode(reason) == ironwork.EINTERNAL {
		msg = "Unexpected exception during allocation: " + reason.Error()
	}
	_, err := c.store.UpdateAllocation(ctx, a.UUID, func(x *ironwork.Allocation) error {
		x.State, x.LastError = AllocationError, msg
		return nil
	})
	if err != nil && ironwork.ErrorCode(err) != ironwork.ENOTFOUND {
		c.log.Error("record failed allocation", "allocation", a.UUID, "error", err)
	}
	c.log.Warn("allocation failed", "allocation", a.UUID, "error", msg)
}

func allocationError(a *ironwork.Allocation, format string, args ...any) error {
	return ironwork.Errorf(ironwork.EINVALID, "Failed to process allocation %s: %s.", a.UUID, fmt.Sprintf(format, args...))
}

// allocate picks a matching node at random and reserves it with a conditional update, taking
// the next candidate when another allocation won a node first.
func (c *Conductor) allocate(ctx context.Context, a *ironwork.Allocation) {
	nodes, err := c.store.AllocationCandidates(ctx, a.ResourceClass, a.CandidateNodes, a.Owner)
	if err != nil {
		c.allocationFailed(ctx, a, err)
		return
	}
	if len(nodes) == 0 {
		if len(a.CandidateNodes) > 0 {
			c.allocationFailed(ctx, a, allocationError(a, "none of the requested nodes are available and match the resource class %s", a.ResourceClass))
		} else {
			c.allocationFailed(ctx, a, allocationError(a, "no available nodes match the resource class %s", a.ResourceClass))
		}
		return
	}
	nodes = slices.DeleteFunc(nodes, func(n *ironwork.Node) bool { return !hasTraits(n, a.Traits) })
	if len(nodes) == 0 {
		c.allocationFailed(ctx, a, allocationError(a, "no suitable nodes have the requested traits %s", strings.Join(a.Traits, ", ")))
		return
	}
	nodes = slices.DeleteFunc(nodes, func(n *ironwork.Node) bool { return !hasCapabilities(n, a.Capabilities) })
	if len(nodes) == 0 {
		c.allocationFailed(ctx, a, allocationError(a, "no suitable nodes have the requested capabilities %s", capabilityString(a.Capabilities)))
		return
	}
	rand.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	if a.Name != "" {
		if i := slices.IndexFunc(nodes, func(n *ironwork.Node) bool { return n.Name == a.Name }); i > 0 {
			nodes[0], nodes[i] = nodes[i], nodes[0]
		}
	}
	ids := make([]int64, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID
	}
	// One transaction takes the first node still free: allocations racing for the same nodes
	// do not try, one write at a time, every node that others took since the read above.
	got, err := c.store.ReserveForAllocation(ctx, a.UUID, ids, false, c.cfg.Hostname)
	switch {
	case err == nil:
		c.log.Info("node reserved for allocation", "allocation", a.UUID, "node", got.NodeUUID)
		*a = *got
		return
	case errors.Is(err, sqlstore.ErrNodeTaken):
	case ironwork.ErrorCode(err) == ironwork.ENOTFOUND:
		return // the allocation was deleted meanwhile
	default:
		c.allocationFailed(ctx, a, err)
		return
	}
	c.allocationFailed(ctx, a, allocationError(a, "all nodes were filtered out during reservation"))
}

// backfill records an allocation for a node that was deployed without one.
func (c *Conductor) backfill(ctx context.Context, a *ironwork.Allocation, nodeUUID string) (*ironwork.Allocation, error) {
	t, err := c.lock(ctx, nodeUUID)
	if err != nil {
		return nil, err
	}
	defer c.release(t.Node)
	n := t.Node
	var errs []string
	if n.ProvisionState != ironwork.Active {
		errs = append(errs, fmt.Sprintf("Node must be in the \"active\" state, but the current state is \"%s\"", n.ProvisionState))
	}
	if a.ResourceClass != "" && n.ResourceClass != a.ResourceClass {
		errs = append(errs, fmt.Sprintf("Resource class %s does not match the requested resource class %s", n.ResourceClass, a.ResourceClass))
	}
	if len(a.Traits) > 0 && !hasTraits(n, a.Traits) {
		errs = append(errs, fmt.Sprintf("List of traits %v does not match the requested traits %v", n.Traits, a.Traits))
	}
	if len(a.CandidateNodes) > 0 && !slices.Contains(a.CandidateNodes, n.UUID) {
		errs = append(errs, fmt.Sprintf("Candidate nodes must be empty or contain the target node, but got %v", a.CandidateNodes))
	}
	if !hasCapabilities(n, a.Capabilities) {
		errs = append(errs, fmt.Sprintf("Capabilities do not match the requested capabilities %s", capabilityString(a.Capabilities)))
	}
	if len(errs) > 0 {
		return nil, allocationError(a, "Cannot backfill an allocation for node %s: %s", n.UUID, strings.Join(errs, "; "))
	}
	if n.InstanceUUID != "" && n.InstanceUUID != a.UUID {
		return nil, ironwork.Errorf(ironwork.ECONFLICT, "Node %s is associated with instance %s.", n.UUID, n.InstanceUUID)
	}
	out, err := c.store.ReserveForAllocation(ctx, a.UUID, []int64{n.ID}, true, c.cfg.Hostname)
	if errors.Is(err, sqlstore.ErrNodeTaken) {
		return nil, ironwork.Errorf(ironwork.ECONFLICT, "Node %s is associated with instance or allocation already.", n.UUID)
	}
	return out, err
}

// DeleteAllocation removes an allocation and frees its node, refused as Ironic refuses it while
// the node is active or in a transition that forbids updates (unless in maintenance).
func (c *Conductor) DeleteAllocation(ctx context.Context, req DeleteAllocationRequest) error {
	return c.store.DeleteAllocation(ctx, req.Allocation, func(a *ironwork.Allocation, n *ironwork.Node) error {
		if n == nil || n.Maintenance {
			return nil
		}
		if n.Reservation != "" {
			return ironwork.Errorf(ironwork.ELOCKED, "Node %s is locked by host %s, please retry after the current operation is completed.", n.UUID, n.Reservation)
		}
		if n.TargetProvisionState != "" && !slices.Contains(updateAllowedStates, n.ProvisionState) {
			return ironwork.Errorf(ironwork.ECONFLICT, "Cannot remove allocation %s for node %s, because the node is in state %s where updates are not allowed (and maintenance mode is off)",
				a.UUID, n.UUID, n.ProvisionState)
		}
		if n.ProvisionState == ironwork.Active {
			return ironwork.Errorf(ironwork.ECONFLICT, "Cannot remove allocation %s for node %s, because the node is active (and maintenance mode is off)",
				a.UUID, n.UUID)
		}
		return nil
	})
}

// updateAllowedStates are Ironic's UPDATE_ALLOWED_STATES.
var updateAllowedStates = []ironwork.ProvisionState{
	ironwork.DeployFailed, ironwork.Inspecting, ironwork.InspectFailed, ironwork.InspectWait, ironwork.CleanFailed,
	ironwork.Verifying, ironwork.AdoptFailed, ironwork.RescueFailed, ironwork.UnrescueFailed, ironwork.ServiceFailed,
}

func hasTraits(n *ironwork.Node, want []string) bool {
	for _, t := range want {
		if !slices.Contains(n.Traits, t) {
			return false
		}
	}
	return true
}

// NodeCapabilities reads a node's capabilities: properties.capabilities ("k:v,k2:v2", or an
// object) plus cpu_arch from properties.cpu_arch.
func NodeCapabilities(n *ironwork.Node) map[string]string {
	out := map[string]string{}
	switch v := n.Properties["capabilities"].(type) {
	case string:
		for _, part := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(part), ":")
			if ok && k != "" {
				out[strings.TrimSpace(k)] = strings.TrimSpace(val)
			}
		}
	case map[string]any:
		for k, val := range v {
			out[k] = fmt.Sprint(val)
		}
	}
	if arch, ok := n.Properties["cpu_arch"].(string); ok && arch != "" {
		out["cpu_arch"] = arch
	}
	return out
}

func hasCapabilities(n *ironwork.Node, want map[string]string) bool {
	if len(want) == 0 {
		return true
	}
	have := NodeCapabilities(n)
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func capabilityString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + m[k]
	}
	return strings.Join(parts, ",")
}
