package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ironwork/ironwork"
)

func deployTemplateEntity() *entity[ironwork.DeployTemplate] {
	type D = ironwork.DeployTemplate
	return &entity[D]{
		table: "deploy_templates", alias: "d", kind: "Deploy template", byName: true,
		cols: []column[D]{
			{"uuid", func(d *D) any { return &d.UUID }},
			{"name", func(d *D) any { return &d.Name }},
			{"extra", func(d *D) any { return jsonCol[ironwork.JSONObject]{&d.Extra} }},
			{"created_at", func(d *D) any { return timeCol{&d.CreatedAt} }},
			{"updated_at", func(d *D) any { return nullTime{&d.UpdatedAt} }},
		},
		id:    func(d *D) *int64 { return &d.ID },
		uuid:  func(d *D) *string { return &d.UUID },
		times: func(d *D) (*time.Time, **time.Time) { return &d.CreatedAt, &d.UpdatedAt },
		conflict: func(col string, d *D) error {
			if col == "uuid" {
				return ironwork.Errorf(ironwork.ECONFLICT, "A deploy template with UUID %s already exists.", d.UUID)
			}
			return ironwork.Errorf(ironwork.ECONFLICT, "A deploy template with name %s already exists.", d.Name)
		},
		sortKeys: sortable{
			"id": "@.id", "uuid": "@.uuid", "name": "@.name", "created_at": "@.created_at",
			"updated_at": "COALESCE(@.updated_at, 0)",
		},
	}
}

// loadSteps fills the steps of templates, in the order they were written.
func (s *Store) loadSteps(ctx context.Context, q queryer, ts []*ironwork.DeployTemplate) error {
	if len(ts) == 0 {
		return nil
	}
	byID := map[int64]*ironwork.DeployTemplate{}
	args := make([]any, len(ts))
	for i, t := range ts {
		byID[t.ID], args[i] = t, t.ID
	}
	rows, err := q.QueryContext(ctx, s.rebind("SELECT deploy_template_id, interface, step, args, priority FROM deploy_template_steps WHERE deploy_template_id IN ("+
		placeholders(len(ts))+") ORDER BY id"), args...)
	if err != nil {
		return fmt.Errorf("load deploy template steps: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var st ironwork.DeployTemplateStep
		var iface string
		if err := rows.Scan(&id, &iface, &st.Step, jsonCol[ironwork.JSONObject]{&st.Args}, &st.Priority); err != nil {
			return fmt.Errorf("scan deploy template step: %w", err)
		}
		st.Interface = ironwork.InterfaceKind(iface)
		if st.Args == nil {
			st.Args = ironwork.JSONObject{}
		}
		byID[id].Steps = append(byID[id].Steps, st)
	}
	return rows.Err()
}

func (s *Store) writeSteps(ctx context.Context, tx *sql.Tx, t *ironwork.DeployTemplate) error {
	if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM deploy_template_steps WHERE deploy_template_id = ?"), t.ID); err != nil {
		return fmt.Errorf("clear deploy template steps: %w", err)
	}
	for _, st := range t.Steps {
		args := st.Args
		if args == nil {
			args = ironwork.JSONObject{}
		}
		if _, err := tx.ExecContext(ctx, s.rebind("INSERT INTO deploy_template_steps (deploy_template_id, interface, step, args, priority) VALUES (?, ?, ?, ?, ?)"),
			t.ID, string(st.Interface), st.Step, jsonCol[ironwork.JSONObject]{&args}, st.Priority); err != nil {
			return fmt.Errorf("write deploy template step: %w", err)
		}
	}
	return nil
}

// CreateDeployTemplate stores a new deploy template and its steps.
func (s *Store) CreateDeployTemplate(ctx context.Context, t *ironwork.DeployTemplate) error {
	e := deployTemplateEntity()
	if t.UUID == "" {
		t.UUID = uuid.NewString()
	}
	t.UUID = strings.ToLower(t.UUID)
	t.CreatedAt, t.UpdatedAt = s.nowUTC(), nil
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		names, args, err := e.values(ctx, s, tx, t)
		if err != nil {
			return err
		}
		q := fmt.Sprintf("INSERT INTO deploy_templates (%s) VALUES (%s) RETURNING id", strings.Join(names, ", "), placeholders(len(names)))
		if err := tx.QueryRowContext(ctx, s.rebind(q), args...).Scan(&t.ID); err != nil {
			return e.mapConflict(err, t)
		}
		return s.writeSteps(ctx, tx, t)
	})
}

// GetDeployTemplate returns a deploy template by UUID or name, with its steps.
func (s *Store) GetDeployTemplate(ctx context.Context, ident string) (*ironwork.DeployTemplate, error) {
	t, err := deployTemplateEntity().get(ctx, s, s.db, ident, false)
	if err != nil {
		return nil, err
	}
	return t, s.loadSteps(ctx, s.db, []*ironwork.DeployTemplate{t})
}

// UpdateDeployTemplate changes a deploy template and its steps with fn in one transaction.
func (s *Store) UpdateDeployTemplate(ctx context.Context, ident string, fn func(*ironwork.DeployTemplate) error) (*ironwork.DeployTemplate, error) {
	e := deployTemplateEntity()
	var out *ironwork.DeployTemplate
	err := s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		t, err := e.get(ctx, s, tx, ident, true)
		if err != nil {
			return err
		}
		if err := s.loadSteps(ctx, tx, []*ironwork.DeployTemplate{t}); err != nil {
			return err
		}
		id, created := t.ID, t.CreatedAt
		if err := fn(t); err != nil {
			return err
		}
		now := s.nowUTC()
		t.ID, t.CreatedAt, t.UpdatedAt = id, created, &now
		names, args, err := e.values(ctx, s, tx, t)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.rebind("UPDATE deploy_templates SET "+assignments(names)+" WHERE id = ?"), append(args, id)...); err != nil {
			return e.mapConflict(err, t)
		}
		out = t
		return s.writeSteps(ctx, tx, t)
	})
	return out, err
}

// DeleteDeployTemplate deletes a deploy template and its steps.
func (s *Store) DeleteDeployTemplate(ctx context.Context, ident string) error {
	return deployTemplateEntity().delete(ctx, s, ident, func(ctx context.Context, q queryer, t *ironwork.DeployTemplate) error {
		_, err := q.ExecContext(ctx, s.rebind("DELETE FROM deploy_template_steps WHERE deploy_template_id = ?"), t.ID)
		return err
	})
}

// DeployTemplateFilter selects deploy templates in a list.
type DeployTemplateFilter struct {
	// Names keeps the templates with one of these names; nil keeps all.
	Names []string
}

// ListDeployTemplates returns a page of deploy templates, with their steps.
func (s *Store) ListDeployTemplates(ctx context.Context, f DeployTemplateFilter, p Page) ([]*ironwork.DeployTemplate, error) {
	var w where
	if f.Names != nil {
		if len(f.Names) == 0 {
			return nil, nil
		}
		args := make([]any, len(f.Names))
		for i, n := range f.Names {
			args[i] = n
		}
		w.add("d.name IN ("+placeholders(len(f.Names))+")", args...)
	}
	ts, err := deployTemplateEntity().list(ctx, s, w, p)
	if err != nil {
		return nil, err
	}
	return ts, s.loadSteps(ctx, s.db, ts)
}
