package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/ironwork/ironwork"
)

func inspectionRuleEntity() *entity[ironwork.InspectionRule] {
	type R = ironwork.InspectionRule
	return &entity[R]{
		table: "inspection_rules", alias: "r", kind: "Rule",
		cols: []column[R]{
			{"uuid", func(r *R) any { return &r.UUID }},
			{"description", func(r *R) any { return nullStr[string]{&r.Description} }},
			{"priority", func(r *R) any { return &r.Priority }},
			{"phase", func(r *R) any { return &r.Phase }},
			{"sensitive", func(r *R) any { return boolCol{&r.Sensitive} }},
			{"built_in", func(r *R) any { return boolCol{&r.BuiltIn} }},
			{"conditions", func(r *R) any { return jsonCol[[]ironwork.RuleOp]{&r.Conditions} }},
			{"actions", func(r *R) any { return jsonCol[[]ironwork.RuleOp]{&r.Actions} }},
			{"created_at", func(r *R) any { return timeCol{&r.CreatedAt} }},
			{"updated_at", func(r *R) any { return nullTime{&r.UpdatedAt} }},
		},
		id:    func(r *R) *int64 { return &r.ID },
		uuid:  func(r *R) *string { return &r.UUID },
		times: func(r *R) (*time.Time, **time.Time) { return &r.CreatedAt, &r.UpdatedAt },
		conflict: func(_ string, r *R) error {
			return ironwork.Errorf(ironwork.ECONFLICT, "A rule with UUID %s already exists.", r.UUID)
		},
		sortKeys: sortable{
			"id": "@.id", "uuid": "@.uuid", "description": "COALESCE(@.description, '')", "priority": "@.priority",
			"phase": "@.phase", "sensitive": "@.sensitive", "created_at": "@.created_at",
			"updated_at": "COALESCE(@.updated_at, 0)",
		},
	}
}

// CreateInspectionRule stores a new inspection rule; an empty UUID gets a new one.
func (s *Store) CreateInspectionRule(ctx context.Context, r *ironwork.InspectionRule) error {
	return inspectionRuleEntity().create(ctx, s, r)
}

// GetInspectionRule returns an inspection rule by UUID (a built-in rule by its identifier).
func (s *Store) GetInspectionRule(ctx context.Context, ident string) (*ironwork.InspectionRule, error) {
	return s.getInspectionRule(ctx, s.db, ident, false)
}

func (s *Store) getInspectionRule(ctx context.Context, q queryer, ident string, forUpdate bool) (*ironwork.InspectionRule, error) {
	e := inspectionRuleEntity()
	if ironwork.IsUUID(ident) {
		return e.get(ctx, s, q, ident, forUpdate)
	}
	// Built-in rules may have identifiers that are not UUIDs.
	query := e.selectSQL() + " WHERE r.uuid = ? AND r.built_in = ?"
	r, err := e.scan(q.QueryRowContext(ctx, s.rebind(query), ident, true))
	if err == sql.ErrNoRows {
		return nil, notFound(e.kind, ident)
	}
	if err != nil {
		return nil, fmt.Errorf("get rule %s: %w", ident, err)
	}
	return r, nil
}

// UpdateInspectionRule changes an inspection rule with fn in one transaction.
func (s *Store) UpdateInspectionRule(ctx context.Context, ident string, fn func(*ironwork.InspectionRule) error) (*ironwork.InspectionRule, error) {
	return inspectionRuleEntity().update(ctx, s, ident, fn)
}

// DeleteInspectionRule deletes an inspection rule; check may refuse it.
func (s *Store) DeleteInspectionRule(ctx context.Context, ident string, check func(*ironwork.InspectionRule) error) error {
	return inspectionRuleEntity().delete(ctx, s, ident, func(_ context.Context, _ queryer, r *ironwork.InspectionRule) error {
		if check != nil {
			return check(r)
		}
		return nil
	})
}

// InspectionRuleFilter selects inspection rules in a list.
type InspectionRuleFilter struct {
	// Phase keeps the rules of one phase; empty keeps all.
	Phase string
}

// ListInspectionRules returns a page of inspection rules, built-in ones included.
func (s *Store) ListInspectionRules(ctx context.Context, f InspectionRuleFilter, p Page) ([]*ironwork.InspectionRule, error) {
	var w where
	if f.Phase != "" {
		w.add("r.phase = ?", f.Phase)
	}
	return inspectionRuleEntity().list(ctx, s, w, p)
}

// RulesForPhase returns every inspection rule of a phase, built-in and user rules, in the
// order they were created. It is what the engine runs.
func (s *Store) RulesForPhase(ctx context.Context, phase string) ([]*ironwork.InspectionRule, error) {
	e := inspectionRuleEntity()
	rows, err := s.db.QueryContext(ctx, s.rebind(e.selectSQL()+" WHERE r.phase = ? ORDER BY r.id"), phase)
	if err != nil {
		return nil, fmt.Errorf("list inspection rules: %w", err)
	}
	defer rows.Close()
	var out []*ironwork.InspectionRule
	for rows.Next() {
		r, err := e.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("scan inspection rule: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ReplaceBuiltInRules replaces the built-in inspection rules with rules, in one transaction:
// what the built-in rules file says on this server's start is what every server runs. A
// built-in rule whose identifier a user rule already has is refused.
func (s *Store) ReplaceBuiltInRules(ctx context.Context, rules []*ironwork.InspectionRule) error {
	e := inspectionRuleEntity()
	return s.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.rebind("DELETE FROM inspection_rules WHERE built_in = ?"), true); err != nil {
			return fmt.Errorf("clear built-in inspection rules: %w", err)
		}
		now := s.nowUTC()
		for _, r := range rules {
			r.BuiltIn, r.CreatedAt, r.UpdatedAt = true, now, nil
			if ironwork.IsUUID(r.UUID) {
				r.UUID = strings.ToLower(r.UUID)
			}
			names, args, err := e.values(ctx, s, tx, r)
			if err != nil {
				return err
			}
			q := fmt.Sprintf("INSERT INTO inspection_rules (%s) VALUES (%s) RETURNING id", strings.Join(names, ", "), placeholders(len(names)))
			if err := tx.QueryRowContext(ctx, s.rebind(q), args...).Scan(&r.ID); err != nil {
				return e.mapConflict(err, r)
			}
		}
		return nil
	})
}
