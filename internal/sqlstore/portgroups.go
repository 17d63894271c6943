package sqlstore

import (
	"context"
	"time"

	"github.com/ironwork/ironwork"
)

func portgroupEntity() *entity[ironwork.Portgroup] {
	type G = ironwork.Portgroup
	return &entity[G]{
		table: "portgroups", alias: "g", kind: "Portgroup", byName: true,
		cols: []column[G]{
			{"uuid", func(g *G) any { return &g.UUID }},
			{"name", func(g *G) any { return nullStr[string]{&g.Name} }},
			{"address", func(g *G) any { return nullStr[string]{&g.Address} }},
			{"mode", func(g *G) any { return nullStr[string]{&g.Mode} }},
			{"properties", func(g *G) any { return jsonCol[ironwork.JSONObject]{&g.Properties} }},
			{"standalone_ports_supported", func(g *G) any { return boolCol{&g.StandalonePortsSupported} }},
			{"physical_network", func(g *G) any { return nullStr[string]{&g.PhysicalNetwork} }},
			{"category", func(g *G) any { return nullStr[string]{&g.Category} }},
			{"dynamic_portgroup", func(g *G) any { return boolCol{&g.DynamicPortgroup} }},
			{"extra", func(g *G) any { return jsonCol[ironwork.JSONObject]{&g.Extra} }},
			{"internal_info", func(g *G) any { return jsonCol[ironwork.JSONObject]{&g.InternalInfo} }},
			{"created_at", func(g *G) any { return timeCol{&g.CreatedAt} }},
			{"updated_at", func(g *G) any { return nullTime{&g.UpdatedAt} }},
		},
		id:        func(g *G) *int64 { return &g.ID },
		uuid:      func(g *G) *string { return &g.UUID },
		times:     func(g *G) (*time.Time, **time.Time) { return &g.CreatedAt, &g.UpdatedAt },
		joins:     "JOIN nodes n ON n.id = g.node_id",
		extra:     []string{"g.node_id", "n.uuid"},
		extraRefs: func(g *G) []any { return []any{&g.NodeID, &g.NodeUUID} },
		refs: func(ctx context.Context, s *Store, q queryer, g *G) ([]string, []any, error) {
			nodeID, err := s.idOf(ctx, q, "nodes", "Node", g.NodeUUID)
			if err != nil {
				return nil, nil, err
			}
			if nodeID == nil {
				return nil, nil, ironwork.Errorf(ironwork.EINVALID, "A portgroup must belong to a node: node_uuid is required.")
			}
			g.NodeID = nodeID.(int64)
			return []string{"node_id"}, []any{nodeID}, nil
		},
		conflict: func(col string, g *G) error {
			switch col {
			case "name":
				return ironwork.Errorf(ironwork.ECONFLICT, "A portgroup with name %s already exists.", g.Name)
			case "uuid":
				return ironwork.Errorf(ironwork.ECONFLICT, "A portgroup with UUID %s already exists.", g.UUID)
			}
			return ironwork.Errorf(ironwork.ECONFLICT, "A portgroup with MAC address %s already exists.", g.Address)
		},
		sortKeys: sortable{
			"id": "@.id", "uuid": "@.uuid", "address": "COALESCE(@.address, '')", "name": "COALESCE(@.name, '')",
			"created_at": "@.created_at", "updated_at": "COALESCE(@.updated_at, 0)", "mode": "COALESCE(@.mode, '')",
			"node_id": "@.node_id",
		},
	}
}

// PortgroupFilter selects portgroups in a list.
type PortgroupFilter struct {
	NodeUUID       string
	Address        string
	Shards         []string
	ConductorGroup *string
	// Project keeps the portgroups of nodes this project owns or leases.
	Project string
}

// CreatePortgroup stores a new portgroup.
func (s *Store) CreatePortgroup(ctx context.Context, g *ironwork.Portgroup) error {
	return portgroupEntity().create(ctx, s, g)
}

// GetPortgroup returns a portgroup by UUID or name.
func (s *Store) GetPortgroup(ctx context.Context, ident string) (*ironwork.Portgroup, error) {
	return portgroupEntity().get(ctx, s, s.db, ident, false)
}

// UpdatePortgroup changes a portgroup with fn in one transaction.
func (s *Store) UpdatePortgroup(ctx context.Context, ident string, fn func(*ironwork.Portgroup) error) (*ironwork.Portgroup, error) {
	return portgroupEntity().update(ctx, s, ident, fn)
}

// DeletePortgroup deletes a portgroup that has no ports.
func (s *Store) DeletePortgroup(ctx context.Context, ident string) error {
	return portgroupEntity().delete(ctx, s, ident, func(ctx context.Context, q queryer, g *ironwork.Portgroup) error {
		var n int
		if err := q.QueryRowContext(ctx, s.rebind("SELECT COUNT(*) FROM ports WHERE portgroup_id = ?"), g.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ironwork.Errorf(ironwork.EINVALID, "Cannot complete the requested action because portgroup %s contains ports.", g.UUID)
		}
		return nil
	})
}

// ListPortgroups returns a page of portgroups matching f.
func (s *Store) ListPortgroups(ctx context.Context, f PortgroupFilter, p Page) ([]*ironwork.Portgroup, error) {
	var w where
	if f.NodeUUID != "" {
		w.add("n.uuid = ?", f.NodeUUID)
	}
	if f.Address != "" {
		w.add("g.address = ?", f.Address)
	}
	addShardFilter(&w, f.Shards, f.ConductorGroup)
	addProjectFilter(&w, f.Project)
	return portgroupEntity().list(ctx, s, w, p)
}
