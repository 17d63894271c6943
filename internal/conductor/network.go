package conductor

import (
	"context"
	"fmt"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// TenantVIFKey is the internal_info key of a port or portgroup that holds the VIF attached to
// it, as Ironic's tenant_vif_port_id.
const TenantVIFKey = "tenant_vif_port_id"

// VIF is a virtual network interface to attach to a node (Ironic's vif_info): its id and,
// optionally, the port or portgroup it must go to.
type VIF struct {
	ID            string `json:"id"`
	PortUUID      string `json:"port_uuid,omitempty"`
	PortgroupUUID string `json:"portgroup_uuid,omitempty"`
}

// Network attaches virtual network interfaces to a node's ports and portgroups.
type Network interface {
	AttachVIF(ctx context.Context, t *Task, vif VIF) error
	DetachVIF(ctx context.Context, t *Task, id string) error
	VIFs(ctx context.Context, t *Task) ([]VIF, error)
}

// network returns the task's network interface.
func (c *Conductor) network(t *Task) (Network, error) {
	n, ok := t.Driver.Impl(ironwork.NetworkInterface).(Network)
	if !ok {
		return nil, ironwork.Errorf(ironwork.EINVALID, "Node %s: the network interface %q is not available on conductor %s.",
			t.Node.UUID, t.Node.Interfaces[ironwork.NetworkInterface], c.cfg.Hostname)
	}
	if v, ok := n.(Validator); ok {
		if err := v.Validate(context.Background(), t); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// AttachVIF attaches a VIF to a node under the node's lock.
func (c *Conductor) AttachVIF(ctx context.Context, req AttachVIFRequest) error {
	return c.withNetwork(ctx, req.Node, func(t *Task, nw Network) error {
		if err := nw.AttachVIF(ctx, t, req.VIF); err != nil {
			c.vifHistory(ctx, t, fmt.Sprintf("Failed to attach VIF %s to node %s. Error: %s", req.VIF.ID, t.Node.UUID, errText(err)))
			return err
		}
		t.Log.Info("VIF attached", "vif", req.VIF.ID)
		return nil
	})
}

// DetachVIF detaches a VIF from a node under the node's lock.
func (c *Conductor) DetachVIF(ctx context.Context, req DetachVIFRequest) error {
	return c.withNetwork(ctx, req.Node, func(t *Task, nw Network) error {
		if err := nw.DetachVIF(ctx, t, req.VIF); err != nil {
			c.vifHistory(ctx, t, fmt.Sprintf("Failed to detach VIF %s from node %s, Error: %s", req.VIF, t.Node.UUID, errText(err)))
			return err
		}
		t.Log.Info("VIF detached", "vif", req.VIF)
		return nil
	})
}

// withNetwork runs fn with a node's network interface, under the node's lock.
func (c *Conductor) withNetwork(ctx context.Context, ident string, fn func(t *Task, nw Network) error) error {
	return c.withLock(ctx, ident, func(t *Task) error {
		nw, err := c.network(t)
		if err != nil {
			return err
		}
		return fn(t, nw)
	})
}

// ListVIFs lists the VIFs attached to a node; it takes no lock, as Ironic's shared task.
func (c *Conductor) ListVIFs(ctx context.Context, req NodeRef) ([]VIF, error) {
	t, err := c.shared(ctx, req.Node)
	if err != nil {
		return nil, err
	}
	nw, err := c.network(t)
	if err != nil {
		return nil, err
	}
	vifs, err := nw.VIFs(ctx, t)
	if vifs == nil {
		vifs = []VIF{}
	}
	return vifs, err
}

// vifHistory records a failed VIF operation in the node's history, as Ironic does.
func (c *Conductor) vifHistory(ctx context.Context, t *Task, event string) {
	if err := c.store.AddNodeHistory(ctx, t.historyEvent(string(t.Node.ProvisionState), "ERROR", event)); err != nil {
		t.Log.Warn("record node history", "error", err)
	}
}

// Ports returns the task's node's ports, in the order they were created.
func (t *Task) Ports(ctx context.Context) ([]*ironwork.Port, error) {
	ps, err := t.c.store.ListPorts(ctx, sqlstore.PortFilter{NodeUUID: t.Node.UUID}, sqlstore.Page{SortKey: "id"})
	if err != nil {
		return nil, fmt.Errorf("list ports of node %s: %w", t.Node.UUID, err)
	}
	return ps, nil
}

// Portgroups returns the task's node's portgroups, in the order they were created.
func (t *Task) Portgroups(ctx context.Context) ([]*ironwork.Portgroup, error) {
	gs, err := t.c.store.ListPortgroups(ctx, sqlstore.PortgroupFilter{NodeUUID: t.Node.UUID}, sqlstore.Page{SortKey: "id"})
	if err != nil {
		return nil, fmt.Errorf("list portgroups of node %s: %w", t.Node.UUID, err)
	}
	return gs, nil
}

// SavePort applies fn to one port of the task's node and stores it.
func (t *Task) SavePort(ctx context.Context, uuid string, fn func(p *ironwork.Port)) error {
	return saveOfNode(ctx, t, "port", uuid, t.c.store.UpdatePort, func(p *ironwork.Port) int64 { return p.NodeID }, fn)
}

// SavePortgroup applies fn to one portgroup of the task's node and stores it.
func (t *Task) SavePortgroup(ctx context.Context, uuid string, fn func(g *ironwork.Portgroup)) error {
	return saveOfNode(ctx, t, "portgroup", uuid, t.c.store.UpdatePortgroup, func(g *ironwork.Portgroup) int64 { return g.NodeID }, fn)
}

// saveOfNode applies fn to the object (of kind port or portgroup) that update finds by uuid,
// refusing one that belongs to another node than the task's.
func saveOfNode[T any](ctx context.Context, t *Task, kind, uuid string, update func(context.Context, string, func(*T) error) (*T, error),
	nodeID func(*T) int64, fn func(*T)) error {
	_, err := update(ctx, uuid, func(v *T) error {
		if nodeID(v) != t.Node.ID {
			return ironwork.Errorf(ironwork.EINVALID, "%s%s %s does not belong to node %s.", strings.ToUpper(kind[:1]), kind[1:], uuid, t.Node.UUID)
		}
		fn(v)
		return nil
	})
	if err != nil {
		return fmt.Errorf("save %s %s: %w", kind, uuid, err)
	}
	return nil
}
