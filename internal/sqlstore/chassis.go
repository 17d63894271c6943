package sqlstore

import (
	"context"
	"time"

	"github.com/ironwork/ironwork"
)

func chassisEntity() *entity[ironwork.Chassis] {
	type C = ironwork.Chassis
	return &entity[C]{
		table: "chassis", alias: "c", kind: "Chassis",
		cols: []column[C]{
			{"uuid", func(c *C) any { return &c.UUID }},
			{"description", func(c *C) any { return nullStr[string]{&c.Description} }},
			{"extra", func(c *C) any { return jsonCol[ironwork.JSONObject]{&c.Extra} }},
			{"created_at", func(c *C) any { return timeCol{&c.CreatedAt} }},
			{"updated_at", func(c *C) any { return nullTime{&c.UpdatedAt} }},
		},
		id:    func(c *C) *int64 { return &c.ID },
		uuid:  func(c *C) *string { return &c.UUID },
		times: func(c *C) (*time.Time, **time.Time) { return &c.CreatedAt, &c.UpdatedAt },
		conflict: func(_ string, c *C) error {
			return ironwork.Errorf(ironwork.ECONFLICT, "A chassis with UUID %s already exists.", c.UUID)
		},
		sortKeys: sortable{
			"id": "@.id", "uuid": "@.uuid", "description": "COALESCE(@.description, '')",
			"created_at": "@.created_at", "updated_at": "COALESCE(@.updated_at, 0)",
		},
	}
}

// CreateChassis stores a new chassis.
func (s *Store) CreateChassis(ctx context.Context, c *ironwork.Chassis) error {
	return chassisEntity().create(ctx, s, c)
}

// GetChassis returns a chassis by UUID.
func (s *Store) GetChassis(ctx context.Context, ident string) (*ironwork.Chassis, error) {
	return chassisEntity().get(ctx, s, s.db, ident, false)
}

// UpdateChassis changes a chassis with fn in one transaction.
func (s *Store) UpdateChassis(ctx context.Context, ident string, fn func(*ironwork.Chassis) error) (*ironwork.Chassis, error) {
	return chassisEntity().update(ctx, s, ident, fn)
}

// DeleteChassis deletes a chassis that contains no nodes.
func (s *Store) DeleteChassis(ctx context.Context, ident string) error {
	return chassisEntity().delete(ctx, s, ident, func(ctx context.Context, q queryer, c *ironwork.Chassis) error {
		var n int
		if err := q.QueryRowContext(ctx, s.rebind("SELECT COUNT(*) FROM nodes WHERE chassis_id = ?"), c.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ironwork.Errorf(ironwork.EINVALID, "Cannot complete the requested action because chassis %s contains nodes.", c.UUID)
		}
		return nil
	})
}

// ListChassis returns a page of chassis.
func (s *Store) ListChassis(ctx context.Context, p Page) ([]*ironwork.Chassis, error) {
	return chassisEntity().list(ctx, s, where{}, p)
}
