package sqlstore

import (
	"context"
	"time"

	"github.com/ironwork/ironwork"
)

func runbookEntity() *entity[ironwork.Runbook] {
	type R = ironwork.Runbook
	return &entity[R]{
		table: "runbooks", alias: "rb", kind: "Runbook", byName: true,
		cols: []column[R]{
			{"uuid", func(r *R) any { return &r.UUID }},
			{"name", func(r *R) any { return &r.Name }},
			{"description", func(r *R) any { return nullStr[string]{&r.Description} }},
			{"steps", func(r *R) any { return jsonCol[[]ironwork.RunbookStep]{&r.Steps} }},
			{"traits", func(r *R) any { return jsonCol[[]string]{&r.Traits} }},
			{"disable_ramdisk", func(r *R) any { return boolCol{&r.DisableRamdisk} }},
			{"public", func(r *R) any { return boolCol{&r.Public} }},
			{"owner", func(r *R) any { return nullStr[string]{&r.Owner} }},
			{"extra", func(r *R) any { return jsonCol[ironwork.JSONObject]{&r.Extra} }},
			{"created_at", func(r *R) any { return timeCol{&r.CreatedAt} }},
			{"updated_at", func(r *R) any { return nullTime{&r.UpdatedAt} }},
		},
		id:    func(r *R) *int64 { return &r.ID },
		uuid:  func(r *R) *string { return &r.UUID },
		times: func(r *R) (*time.Time, **time.Time) { return &r.CreatedAt, &r.UpdatedAt },
		conflict: func(col string, r *R) error {
			if col == "uuid" {
				return ironwork.Errorf(ironwork.ECONFLICT, "A runbook with UUID %s already exists.", r.UUID)
			}
			return ironwork.Errorf(ironwork.ECONFLICT, "A runbook with name %s already exists.", r.Name)
		},
		sortKeys: sortable{
			"id": "@.id", "uuid": "@.uuid", "name": "@.name", "created_at": "@.created_at",
			"updated_at": "COALESCE(@.updated_at, 0)", "public": "@.public", "owner": "COALESCE(@.owner, '')",
		},
	}
}

// RunbookFilter selects runbooks in a list.
type RunbookFilter struct {
	// Project keeps the runbooks this project owns and the public ones; "" keeps all.
	Project string
}

// CreateRunbook stores a new runbook.
func (s *Store) CreateRunbook(ctx context.Context, r *ironwork.Runbook) error {
	return runbookEntity().create(ctx, s, r)
}

// GetRunbook returns a runbook by UUID or name.
func (s *Store) GetRunbook(ctx context.Context, ident string) (*ironwork.Runbook, error) {
	return runbookEntity().get(ctx, s, s.db, ident, false)
}

// UpdateRunbook changes a runbook with fn in one transaction.
func (s *Store) UpdateRunbook(ctx context.Context, ident string, fn func(*ironwork.Runbook) error) (*ironwork.Runbook, error) {
	return runbookEntity().update(ctx, s, ident, fn)
}

// DeleteRunbook deletes a runbook.
func (s *Store) DeleteRunbook(ctx context.Context, ident string) error {
	return runbookEntity().delete(ctx, s, ident, nil)
}

// ListRunbooks returns a page of runbooks matching f.
func (s *Store) ListRunbooks(ctx context.Context, f RunbookFilter, p Page) ([]*ironwork.Runbook, error) {
	var w where
	if f.Project != "" {
		w.add("(rb.owner = ? OR rb.public = ?)", f.Project, true)
	}
	return runbookEntity().list(ctx, s, w, p)
}
