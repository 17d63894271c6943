package sqlstore_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// TestInspectionRules stores, lists, pages, updates and deletes rules, and replaces the
// built-in ones, on every database; numbers in arguments keep their int or float kind.
func TestInspectionRules(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		r := &ironwork.InspectionRule{Description: "memory", Priority: 50, Phase: "main", Sensitive: true,
			Conditions: []ironwork.RuleOp{{Op: "gt", Args: map[string]any{"values": []any{json.Number("2"), json.Number("1.0")}},
				Loop: []any{"a"}, Multiple: "all"}},
			Actions: []ironwork.RuleOp{{Op: "set-attribute", Args: []any{"/properties/cpus", "{inventory[cpu][count]}"}}}}
		if err := s.CreateInspectionRule(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetInspectionRule(ctx, r.UUID)
		if err != nil {
			t.Fatal(err)
		}
		ignore := cmpopts.IgnoreFields(ironwork.InspectionRule{}, "CreatedAt", "UpdatedAt")
		if diff := cmp.Diff(r, got, ignore); diff != "" {
			t.Errorf("stored rule (-want +got):\n%s", diff)
		}
		dup := &ironwork.InspectionRule{UUID: r.UUID, Phase: "main", Actions: r.Actions}
		wantCode(t, s.CreateInspectionRule(ctx, dup), ironwork.ECONFLICT)

		up, err := s.UpdateInspectionRule(ctx, r.UUID, func(x *ironwork.InspectionRule) error { x.Priority = 7; return nil })
		if err != nil || up.Priority != 7 || up.UpdatedAt == nil {
			t.Fatalf("update: %+v, %v", up, err)
		}

		builtIn := []*ironwork.InspectionRule{
			{UUID: "rule-dell", Priority: 100, Phase: "main", Actions: r.Actions},
			{UUID: "00000000-0000-0000-0000-000000000000", Phase: "main", Actions: r.Actions},
		}
		for range 2 { // a restart replaces them
			if err := s.ReplaceBuiltInRules(ctx, builtIn); err != nil {
				t.Fatal(err)
			}
		}
		all, err := s.ListInspectionRules(ctx, sqlstore.InspectionRuleFilter{}, sqlstore.Page{SortKey: "priority", SortDir: "desc"})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, x := range all {
			ids = append(ids, x.UUID)
		}
		if diff := cmp.Diff([]string{"rule-dell", r.UUID, "00000000-0000-0000-0000-000000000000"}, ids); diff != "" {
			t.Errorf("list by priority (-want +got):\n%s", diff)
		}
		if b, err := s.GetInspectionRule(ctx, "rule-dell"); err != nil || !b.BuiltIn {
			t.Errorf("built-in rule: %+v, %v", b, err)
		}
		wantCode(t, s.ReplaceBuiltInRules(ctx, []*ironwork.InspectionRule{{UUID: r.UUID, Phase: "main", Actions: r.Actions}}), ironwork.ECONFLICT)
		if n, err := s.RulesForPhase(ctx, "main"); err != nil || len(n) != 3 {
			t.Errorf("rules for main: %d, %v", len(n), err)
		}
		if n, err := s.ListInspectionRules(ctx, sqlstore.InspectionRuleFilter{Phase: "other"}, sqlstore.Page{}); err != nil || len(n) != 0 {
			t.Errorf("rules for other: %d, %v", len(n), err)
		}
		if err := s.DeleteInspectionRule(ctx, r.UUID, nil); err != nil {
			t.Fatal(err)
		}
		_, err = s.GetInspectionRule(ctx, r.UUID)
		wantCode(t, err, ironwork.ENOTFOUND)
		_, err = s.GetInspectionRule(ctx, "not-there")
		wantCode(t, err, ironwork.ENOTFOUND)
	})
}
