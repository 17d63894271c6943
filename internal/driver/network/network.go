// Package network implements the network interfaces: flat, which binds each attached VIF to
// one free port or portgroup of the node and records it in that port's internal_info, and
// noop, which accepts every VIF call and records nothing, as Ironic's. Ironwork runs without
// Neutron: no VIF has network segments, so physical networks never exclude a port. The package
// changes ports and portgroups only through the conductor's task; it must not talk to hardware.
package network

import (
	"context"
	"slices"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// Flat is the flat network interface.
type Flat struct{}

var _ conductor.Network = Flat{}

// Noop is the noop network interface.
type Noop struct{}

var _ conductor.Network = Noop{}

// Register adds flat and noop to a registry.
func Register(r conductor.Registry) {
	r.Add(ironwork.NetworkInterface, "flat", Flat{})
	r.Add(ironwork.NetworkInterface, "noop", Noop{})
}

// AttachVIF implements conductor.Network: it does nothing.
func (Noop) AttachVIF(context.Context, *conductor.Task, conductor.VIF) error { return nil }

// DetachVIF implements conductor.Network: it does nothing, whatever the VIF.
func (Noop) DetachVIF(context.Context, *conductor.Task, string) error { return nil }

// VIFs implements conductor.Network: noop records no VIF, so it lists none.
func (Noop) VIFs(context.Context, *conductor.Task) ([]conductor.VIF, error) {
	return []conductor.VIF{}, nil
}

// candidate is a port or a portgroup a VIF may be bound to.
type candidate struct {
	port  *ironwork.Port
	group *ironwork.Portgroup
}

func (c candidate) physnet() string {
	if c.group != nil {
		return c.group.PhysicalNetwork
	}
	return c.port.PhysicalNetwork
}

func vifOf(info ironwork.JSONObject) string {
	id, _ := info[conductor.TenantVIFKey].(string)
	return id
}

// attached reports whether a VIF other than id is bound to a port or portgroup; id itself
// being bound is Ironic's VifAlreadyAttached conflict.
func attached(info ironwork.JSONObject, kind, uuid, id string) (bool, error) {
	got := vifOf(info)
	if got == id {
		return false, ironwork.Errorf(ironwork.ECONFLICT, "Unable to attach VIF because VIF %s is already attached to Ironic %s %s", id, kind, uuid)
	}
	return got != "", nil
}

// freeCandidates lists the ports and portgroups vif may be bound to, as Ironic chooses them:
// ports outside portgroups, then non-empty portgroups none of whose ports holds a VIF (the
// free ports of a portgroup that has a busy port instead), restricted to the port or portgroup
// the request names.
func freeCandidates(ports []*ironwork.Port, groups []*ironwork.Portgroup, vif conductor.VIF, physnets []string) ([]candidate, error) {
	var free []candidate
	byGroup := map[int64][]*ironwork.Port{}
	busyGroups := map[int64]bool{}
	for _, p := range ports {
		if vif.PortUUID != "" && vif.PortUUID != p.UUID {
			continue
		}
		busy, err := attached(p.InternalInfo, "Port", p.UUID, vif.ID)
		if err != nil {
			return nil, err
		}
		if busy {
			busyGroups[p.PortgroupID] = true
			continue
		}
		if len(physnets) > 0 && p.PhysicalNetwork != "" && !slices.Contains(physnets, p.PhysicalNetwork) {
			continue
		}
		if p.PortgroupID == 0 && vif.PortgroupUUID == "" {
			free = append(free, candidate{port: p})
		} else {
			byGroup[p.PortgroupID] = append(byGroup[p.PortgroupID], p)
		}
	}
	if vif.PortUUID != "" {
		return free, nil
	}
	for _, g := range groups {
		if vif.PortgroupUUID != "" && vif.PortgroupUUID != g.UUID {
			continue
		}
		busy, err := attached(g.InternalInfo, "Portgroup", g.UUID, vif.ID)
		if err != nil {
			return nil, err
		}
		switch {
		case busy:
		case busyGroups[g.ID]:
			if vif.PortgroupUUID == "" {
				for _, p := range byGroup[g.ID] {
					free = append(free, candidate{port: p})
				}
			}
		case len(byGroup[g.ID]) > 0:
			free = append(free, candidate{group: g})
		}
	}
	return free, nil
}

// best picks among free candidates as Ironic does: a physical network among the VIF's first,
// then portgroups before ports, then PXE-enabled ports; ties keep the listing order.
func best(free []candidate, physnets []string) candidate {
	key := func(c candidate) [3]bool {
		return [3]bool{slices.Contains(physnets, c.physnet()), c.group != nil, c.group != nil || c.port.PXEEnabled}
	}
	less := func(a, b [3]bool) int {
		for i := range a {
			if a[i] != b[i] {
				if a[i] {
					return -1
				}
				return 1
			}
		}
		return 0
	}
	slices.SortStableFunc(free, func(a, b candidate) int { return less(key(a), key(b)) })
	return free[0]
}

// AttachVIF implements conductor.Network: it binds the VIF to the best free port or portgroup.
func (Flat) AttachVIF(ctx context.Context, t *conductor.Task, vif conductor.VIF) error {
	ports, err := t.Ports(ctx)
	if err != nil {
		return err
	}
	groups, err := t.Portgroups(ctx)
	if err != nil {
		return err
	}
	free, err := freeCandidates(ports, groups, vif, nil)
	if err != nil {
		return err
	}
	if len(free) == 0 {
		return ironwork.Errorf(ironwork.EINVALID, "Unable to attach VIF %s, not enough free physical ports.", vif.ID)
	}
	c := best(free, nil)
	if c.group != nil {
		return t.SavePortgroup(ctx, c.group.UUID, func(g *ironwork.Portgroup) { g.InternalInfo = withVIF(g.InternalInfo, vif.ID) })
	}
	return t.SavePort(ctx, c.port.UUID, func(p *ironwork.Port) { p.InternalInfo = withVIF(p.InternalInfo, vif.ID) })
}

func withVIF(info ironwork.JSONObject, id string) ironwork.JSONObject {
	if info == nil {
		info = ironwork.JSONObject{}
	}
	info[conductor.TenantVIFKey] = id
	return info
}

// DetachVIF implements conductor.Network: it clears the VIF from the port or portgroup that
// holds it (portgroups first, as Ironic looks), and the legacy extra.vif_port_id with it.
func (Flat) DetachVIF(ctx context.Context, t *conductor.Task, id string) error {
	groups, err := t.Portgroups(ctx)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if vifOf(g.InternalInfo) == id {
			return t.SavePortgroup(ctx, g.UUID, func(g *ironwork.Portgroup) {
				delete(g.InternalInfo, conductor.TenantVIFKey)
				delete(g.Extra, "vif_port_id")
			})
		}
	}
	ports, err := t.Ports(ctx)
	if err != nil {
		return err
	}
	for _, p := range ports {
		if vifOf(p.InternalInfo) == id {
			return t.SavePort(ctx, p.UUID, func(p *ironwork.Port) {
				delete(p.InternalInfo, conductor.TenantVIFKey)
				delete(p.Extra, "vif_port_id")
			})
		}
	}
	return ironwork.Errorf(ironwork.EINVALID, "Unable to detach VIF %s from node %s because it is not attached to it.", id, t.Node.UUID)
}

// VIFs implements conductor.Network: the VIFs of the ports, then of the portgroups.
func (Flat) VIFs(ctx context.Context, t *conductor.Task) ([]conductor.VIF, error) {
	ports, err := t.Ports(ctx)
	if err != nil {
		return nil, err
	}
	groups, err := t.Portgroups(ctx)
	if err != nil {
		return nil, err
	}
	out := []conductor.VIF{}
	for _, p := range ports {
		if id := vifOf(p.InternalInfo); id != "" {
			out = append(out, conductor.VIF{ID: id})
		}
	}
	for _, g := range groups {
		if id := vifOf(g.InternalInfo); id != "" {
			out = append(out, conductor.VIF{ID: id})
		}
	}
	return out, nil
}
