package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/ironwork/ironwork"
)

func portEntity() *entity[ironwork.Port] {
	type P = ironwork.Port
	return &entity[P]{
		table: "ports", alias: "p", kind: "Port", byName: true,
		cols: []column[P]{
			{"uuid", func(p *P) any { return &p.UUID }},
			{"name", func(p *P) any { return nullStr[string]{&p.Name} }},
			{"address", func(p *P) any { return &p.Address }},
			{"local_link_connection", func(p *P) any { return jsonCol[ironwork.JSONObject]{&p.LocalLinkConnection} }},
			{"pxe_enabled", func(p *P) any { return boolCol{&p.PXEEnabled} }},
			{"physical_network", func(p *P) any { return nullStr[string]{&p.PhysicalNetwork} }},
			{"is_smartnic", func(p *P) any { return boolCol{&p.IsSmartNIC} }},
			{"extra", func(p *P) any { return jsonCol[ironwork.JSONObject]{&p.Extra} }},
			{"internal_info", func(p *P) any { return jsonCol[ironwork.JSONObject]{&p.InternalInfo} }},
			{"description", func(p *P) any { return nullStr[string]{&p.Description} }},
			{"vendor", func(p *P) any { return nullStr[string]{&p.Vendor} }},
			{"category", func(p *P) any { return nullStr[string]{&p.Category} }},
			{"not_for_dynamic_portgroup", func(p *P) any { return boolCol{&p.NotForDynamicPortgroup} }},
			{"created_at", func(p *P) any { return timeCol{&p.CreatedAt} }},
			{"updated_at", func(p *P) any { return nullTime{&p.UpdatedAt} }},
		},
		id:    func(p *P) *int64 { return &p.ID },
		uuid:  func(p *P) *string { return &p.UUID },
		times: func(p *P) (*time.Time, **time.Time) { return &p.CreatedAt, &p.UpdatedAt },
		joins: "JOIN nodes n ON n.id = p.node_id LEFT JOIN portgroups g ON g.id = p.portgroup_id",
		extra: []string{"p.node_id", "n.uuid", "p.portgroup_id", "g.uuid"},
		extraRefs: func(p *P) []any {
			return []any{&p.NodeID, &p.NodeUUID, nullInt{&p.PortgroupID}, nullStr[string]{&p.PortgroupUUID}}
		},
		refs: func(ctx context.Context, s *Store, q queryer, p *P) ([]string, []any, error) {
			nodeID, err := s.idOf(ctx, q, "nodes", "Node", p.NodeUUID)
			if err != nil {
				return nil, nil, err
			}
			if nodeID == nil {
				return nil, nil, ironwork.Errorf(ironwork.EINVALID, "A port must belong to a node: node_uuid is required.")
			}
			pgID, err := s.idOf(ctx, q, "portgroups", "Portgroup", p.PortgroupUUID)
			if err != nil {
				return nil, nil, err
			}
			if pgID != nil {
				var owner int64
				if err := q.QueryRowContext(ctx, s.rebind("SELECT node_id FROM portgroups WHERE id = ?"), pgID).Scan(&owner); err != nil {
					return nil, nil, err
				}
				if owner != nodeID.(int64) {
					return nil, nil, ironwork.Errorf(ironwork.EINVALID, "Port can not be added to a portgroup belonging to a different node.")
				}
			}
			p.NodeID = nodeID.(int64)
			return []string{"node_id", "portgroup_id"}, []any{nodeID, pgID}, nil
		},
		conflict: func(col string, p *P) error {
			switch col {
			case "name":
				return ironwork.Errorf(ironwork.ECONFLICT, "A port with name %s already exists.", p.Name)
			case "uuid":
				return ironwork.Errorf(ironwork.ECONFLICT, "A port with UUID %s already exists.", p.UUID)
			}
			return ironwork.Errorf(ironwork.ECONFLICT, "A port with MAC address %s already exists.", p.Address)
		},
		sortKeys: sortable{
			"id": "@.id", "uuid": "@.uuid", "address": "@.address", "created_at": "@.created_at",
			"updated_at": "COALESCE(@.updated_at, 0)", "name": "COALESCE(@.name, '')",
			"pxe_enabled": "@.pxe_enabled", "physical_network": "COALESCE(@.physical_network, '')",
			"is_smartnic": "@.is_smartnic", "node_id": "@.node_id",
		},
	}
}

// PortFilter selects ports in a list.
type PortFilter struct {
	NodeUUID       string
	PortgroupUUID  string
	Address        string
	Shards         []string
	ConductorGroup *string
	// Project keeps the ports of nodes this project owns or leases.
	Project string
}

// CreatePort stores a new port.
func (s *Store) CreatePort(ctx context.Context, p *ironwork.Port) error {
	return portEntity().create(ctx, s, p)
}

// GetPort returns a port by UUID or name.
func (s *Store) GetPort(ctx context.Context, ident string) (*ironwork.Port, error) {
	return portEntity().get(ctx, s, s.db, ident, false)
}

// UpdatePort changes a port with fn in one transaction.
func (s *Store) UpdatePort(ctx context.Context, ident string, fn func(*ironwork.Port) error) (*ironwork.Port, error) {
	return portEntity().update(ctx, s, ident, fn)
}

// DeletePort deletes a port after check allows it.
func (s *Store) DeletePort(ctx context.Context, ident string, check func(*ironwork.Port) error) error {
	return portEntity().delete(ctx, s, ident, func(_ context.Context, _ queryer, p *ironwork.Port) error {
		if check != nil {
			return check(p)
		}
		return nil
	})
}

// ListPorts returns a page of ports matching f.
func (s *Store) ListPorts(ctx context.Context, f PortFilter, p Page) ([]*ironwork.Port, error) {
	var w where
	if f.NodeUUID != "" {
		w.add("n.uuid = ?", f.NodeUUID)
	}
	if f.PortgroupUUID != "" {
		w.add("g.uuid = ?", f.PortgroupUUID)
	}
	if f.Address != "" {
		w.add("p.address = ?", f.Address)
	}
	addShardFilter(&w, f.Shards, f.ConductorGroup)
	addProjectFilter(&w, f.Project)
	return portEntity().list(ctx, s, w, p)
}

// addProjectFilter keeps the rows whose node (n) the project owns or leases.
func addProjectFilter(w *where, project string) {
	if project != "" {
		w.add("(n.owner = ? OR n.lessee = ?)", project, project)
	}
}

func addShardFilter(w *where, shards []string, group *string) {
	if len(shards) > 0 {
		args := make([]any, len(shards))
		for i, sh := range shards {
			args[i] = sh
		}
		w.add("n.shard IN ("+placeholders(len(args))+")", args...)
	}
	if group != nil {
		w.add("LOWER(n.conductor_group) = LOWER(?)", *group)
	}
}

// PortsOfNode lists every port of a node, in address order.
func (s *Store) PortsOfNode(ctx context.Context, nodeID int64) ([]*ironwork.Port, error) {
	var w where
	w.add("p.node_id = ?", nodeID)
	return portEntity().list(ctx, s, w, Page{SortKey: "address"})
}

// NodeByPortAddress returns the node owning a port with one of the given MAC addresses.
func (s *Store) NodeByPortAddress(ctx context.Context, macs []string) (*ironwork.Node, error) {
	if len(macs) == 0 {
		return nil, notFound("Node", "with no MAC address")
	}
	args := make([]any, len(macs))
	for i, m := range macs {
		args[i] = m
	}
	var id int64
	err := s.db.QueryRowContext(ctx, s.rebind("SELECT DISTINCT node_id FROM ports WHERE address IN ("+placeholders(len(macs))+")"), args...).Scan(&id)
	if err == sql.ErrNoRows {
		return nil, notFound("Node", "with addresses "+strings.Join(macs, ", "))
	}
	if err != nil {
		return nil, err
	}
	return s.GetNodeByID(ctx, id)
}
