package sqlstore

import (
	"context"
	"time"

	"github.com/ironwork/ironwork"
)

// volumeNodeRef resolves the node a volume record belongs to; a record needs one.
func volumeNodeRef(ctx context.Context, s *Store, q queryer, nodeUUID string, nodeID *int64) ([]string, []any, error) {
	id, err := s.idOf(ctx, q, "nodes", "Node", nodeUUID)
	if err != nil {
		return nil, nil, err
	}
	if id == nil {
		return nil, nil, ironwork.Errorf(ironwork.EINVALID, "A volume record must belong to a node: node_uuid is required.")
	}
	*nodeID = id.(int64)
	return []string{"node_id"}, []any{id}, nil
}

func volumeConnectorEntity() *entity[ironwork.VolumeConnector] {
	type C = ironwork.VolumeConnector
	return &entity[C]{
		table: "volume_connectors", alias: "vc", kind: "Volume connector",
		cols: []column[C]{
			{"uuid", func(c *C) any { return &c.UUID }},
			{"type", func(c *C) any { return &c.Type }},
			{"connector_id", func(c *C) any { return &c.ConnectorID }},
			{"extra", func(c *C) any { return jsonCol[ironwork.JSONObject]{&c.Extra} }},
			{"created_at", func(c *C) any { return timeCol{&c.CreatedAt} }},
			{"updated_at", func(c *C) any { return nullTime{&c.UpdatedAt} }},
		},
		id:        func(c *C) *int64 { return &c.ID },
		uuid:      func(c *C) *string { return &c.UUID },
		times:     func(c *C) (*time.Time, **time.Time) { return &c.CreatedAt, &c.UpdatedAt },
		joins:     "JOIN nodes n ON n.id = vc.node_id",
		extra:     []string{"vc.node_id", "n.uuid"},
		extraRefs: func(c *C) []any { return []any{&c.NodeID, &c.NodeUUID} },
		refs: func(ctx context.Context, s *Store, q queryer, c *C) ([]string, []any, error) {
			return volumeNodeRef(ctx, s, q, c.NodeUUID, &c.NodeID)
		},
		conflict: func(col string, c *C) error {
			if col == "uuid" {
				return ironwork.Errorf(ironwork.ECONFLICT, "A volume connector with UUID %s already exists.", c.UUID)
			}
			return ironwork.Errorf(ironwork.ECONFLICT, "A volume connector with type %s and connector ID %s already exists.", c.Type, c.ConnectorID)
		},
		sortKeys: sortable{
			"id": "@.id", "uuid": "@.uuid", "type": "@.type", "connector_id": "@.connector_id",
			"node_id": "@.node_id", "created_at": "@.created_at", "updated_at": "COALESCE(@.updated_at, 0)",
		},
	}
}

func volumeTargetEntity() *entity[ironwork.VolumeTarget] {
	type T = ironwork.VolumeTarget
	return &entity[T]{
		table: "volume_targets", alias: "vt", kind: "Volume target",
		cols: []column[T]{
			{"uuid", func(t *T) any { return &t.UUID }},
			{"volume_type", func(t *T) any { return &t.VolumeType }},
			{"properties", func(t *T) any { return jsonCol[ironwork.JSONObject]{&t.Properties} }},
			{"boot_index", func(t *T) any { return &t.BootIndex }},
			{"volume_id", func(t *T) any { return &t.VolumeID }},
			{"extra", func(t *T) any { return jsonCol[ironwork.JSONObject]{&t.Extra} }},
			{"created_at", func(t *T) any { return timeCol{&t.CreatedAt} }},
			{"updated_at", func(t *T) any { return nullTime{&t.UpdatedAt} }},
		},
		id:        func(t *T) *int64 { return &t.ID },
		uuid:      func(t *T) *string { return &t.UUID },
		times:     func(t *T) (*time.Time, **time.Time) { return &t.CreatedAt, &t.UpdatedAt },
		joins:     "JOIN nodes n ON n.id = vt.node_id",
		extra:     []string{"vt.node_id", "n.uuid"},
		extraRefs: func(t *T) []any { return []any{&t.NodeID, &t.NodeUUID} },
		refs: func(ctx context.Context, s *Store, q queryer, t *T) ([]string, []any, error) {
			return volumeNodeRef(ctx, s, q, t.NodeUUID, &t.NodeID)
		},
		conflict: func(col string, t *T) error {
			if col == "uuid" {
				return ironwork.Errorf(ironwork.ECONFLICT, "A volume target with UUID %s already exists.", t.UUID)
			}
			return ironwork.Errorf(ironwork.ECONFLICT, "A volume target with boot index '%d' for the same node already exists.", t.BootIndex)
		},
		sortKeys: sortable{
			"id": "@.id", "uuid": "@.uuid", "volume_type": "@.volume_type", "volume_id": "@.volume_id",
			"boot_index": "@.boot_index", "node_id": "@.node_id", "created_at": "@.created_at",
			"updated_at": "COALESCE(@.updated_at, 0)",
		},
	}
}

// VolumeFilter selects volume connectors or targets in a list.
type VolumeFilter struct {
	NodeUUID string
	// Project keeps the volume connectors or targets of nodes this project owns or leases.
	Project string
}

// CreateVolumeConnector stores a new volume connector.
func (s *Store) CreateVolumeConnector(ctx context.Context, c *ironwork.VolumeConnector) error {
	return volumeConnectorEntity().create(ctx, s, c)
}

// GetVolumeConnector returns a volume connector by UUID.
func (s *Store) GetVolumeConnector(ctx context.Context, uuid string) (*ironwork.VolumeConnector, error) {
	return volumeConnectorEntity().get(ctx, s, s.db, uuid, false)
}

// UpdateVolumeConnector changes a volume connector with fn in one transaction.
func (s *Store) UpdateVolumeConnector(ctx context.Context, uuid string, fn func(*ironwork.VolumeConnector) error) (*ironwork.VolumeConnector, error) {
	return volumeConnectorEntity().update(ctx, s, uuid, fn)
}

// DeleteVolumeConnector deletes a volume connector.
func (s *Store) DeleteVolumeConnector(ctx context.Context, uuid string) error {
	return volumeConnectorEntity().delete(ctx, s, uuid, nil)
}

// ListVolumeConnectors returns a page of volume connectors matching f.
func (s *Store) ListVolumeConnectors(ctx context.Context, f VolumeFilter, p Page) ([]*ironwork.VolumeConnector, error) {
	var w where
	if f.NodeUUID != "" {
		w.add("n.uuid = ?", f.NodeUUID)
	}
	addProjectFilter(&w, f.Project)
	return volumeConnectorEntity().list(ctx, s, w, p)
}

// CreateVolumeTarget stores a new volume target.
func (s *Store) CreateVolumeTarget(ctx context.Context, t *ironwork.VolumeTarget) error {
	return volumeTargetEntity().create(ctx, s, t)
}

// GetVolumeTarget returns a volume target by UUID.
func (s *Store) GetVolumeTarget(ctx context.Context, uuid string) (*ironwork.VolumeTarget, error) {
	return volumeTargetEntity().get(ctx, s, s.db, uuid, false)
}

// UpdateVolumeTarget changes a volume target with fn in one transaction.
func (s *Store) UpdateVolumeTarget(ctx context.Context, uuid string, fn func(*ironwork.VolumeTarget) error) (*ironwork.VolumeTarget, error) {
	return volumeTargetEntity().update(ctx, s, uuid, fn)
}

// DeleteVolumeTarget deletes a volume target.
func (s *Store) DeleteVolumeTarget(ctx context.Context, uuid string) error {
	return volumeTargetEntity().delete(ctx, s, uuid, nil)
}

// ListVolumeTargets returns a page of volume targets matching f.
func (s *Store) ListVolumeTargets(ctx context.Context, f VolumeFilter, p Page) ([]*ironwork.VolumeTarget, error) {
	var w where
	if f.NodeUUID != "" {
		w.add("n.uuid = ?", f.NodeUUID)
	}
	addProjectFilter(&w, f.Project)
	return volumeTargetEntity().list(ctx, s, w, p)
}
