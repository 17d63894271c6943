package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/inspection"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// vInspectionRules is the microversion of the inspection rules API (1.96).
const vInspectionRules = 96

func inspectionRuleFields() fieldTable[ironwork.InspectionRule] {
	type R = ironwork.InspectionRule
	const v = vInspectionRules
	// A sensitive rule's conditions and actions are never shown, as in Ironic.
	ops := func(conditions bool) func(r *R) any {
		return func(r *R) any {
			if r.Sensitive {
				return nil
			}
			if conditions {
				return inspection.OpsDocument(r.Conditions, true)
			}
			return inspection.OpsDocument(r.Actions, false)
		}
	}
	return fieldTable[R]{kind: "inspection_rule", fields: []field[R]{
		roField[R]("actions", v, ops(false)),
		roField[R]("conditions", v, ops(true)),
		roField[R]("created_at", v, func(r *R) any { return isoTime(r.CreatedAt) }),
		roField[R]("description", v, func(r *R) any { return nullString(r.Description) }),
		roField[R]("phase", v, func(r *R) any { return r.Phase }),
		roField[R]("priority", v, func(r *R) any { return r.Priority }),
		roField[R]("sensitive", v, func(r *R) any { return r.Sensitive }),
		roField[R]("updated_at", v, func(r *R) any { return optTime(r.UpdatedAt) }),
		roField[R]("uuid", v, func(r *R) any { return r.UUID }),
	}}
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Server) renderInspectionRule(r *http.Request, ir *ironwork.InspectionRule, fields []string) object {
	out := inspectionRuleFields().render(ir, versionOf(r.Context()), fields, nil)
	return append(out, kv{"links", links(s.baseURL(r), "inspection_rules/"+ir.UUID)})
}

func (s *Server) inspectionRuleSpec() listSpec[ironwork.InspectionRule] {
	return listSpec[ironwork.InspectionRule]{
		table: inspectionRuleFields(), path: "inspection_rules", key: "inspection_rules",
		defaults:    []string{"uuid", "priority", "phase", "description"},
		sortRefused: []string{"actions", "conditions"},
		uuid:        func(ir *ironwork.InspectionRule) string { return ir.UUID },
		render:      s.renderInspectionRule,
		filters:     map[string]int{"fields": vInspectionRules, "phase": vInspectionRules},
	}
}

func (s *Server) inspectionRuleRoutes() {
	s.resource("/v1/inspection_rules", resource{list: s.listInspectionRules, create: s.createInspectionRule,
		get: s.getInspectionRule, patch: s.patchInspectionRule, del: s.deleteInspectionRule})
}

// inspectionRulesAllowed answers below 1.96 as Ironic: 404 to reads, 405 to writes.
func inspectionRulesAllowed(r *http.Request) error {
	if versionOf(r.Context()) >= vInspectionRules {
		return nil
	}
	if r.Method == http.MethodGet {
		return ironwork.Errorf(ironwork.ENOTFOUND, "The API version does not allow inspection rules")
	}
	return errMethodNotAllowed
}

func (s *Server) listInspectionRules(w http.ResponseWriter, r *http.Request) error {
	if err := inspectionRulesAllowed(r); err != nil {
		return err
	}
	return serveList(s, w, r, s.inspectionRuleSpec(), false, func(p listParams) ([]*ironwork.InspectionRule, error) {
		return s.store.ListInspectionRules(r.Context(), sqlstore.InspectionRuleFilter{Phase: r.URL.Query().Get("phase")}, p.page)
	})
}

// loadInspectionRule reads the rule the path names: a UUID, or the identifier of a built-in
// rule (which may be any string, as in Ironic's built-in rules file).
func (s *Server) loadInspectionRule(r *http.Request) (*ironwork.InspectionRule, error) {
	id := r.PathValue("ident")
	ir, err := s.store.GetInspectionRule(r.Context(), id)
	if ironwork.ErrorCode(err) == ironwork.ENOTFOUND && !ironwork.IsUUID(id) {
		return nil, invalid("Schema error: %s is not a 'uuid'", pyRepr(id))
	}
	return ir, err
}

func (s *Server) getInspectionRule(w http.ResponseWriter, r *http.Request) error {
	if err := inspectionRulesAllowed(r); err != nil {
		return err
	}
	return serveOne(s, w, r, inspectionRuleFields(), s.loadInspectionRule, s.renderInspectionRule)
}

func (s *Server) createInspectionRule(w http.ResponseWriter, r *http.Request) error {
	if err := inspectionRulesAllowed(r); err != nil {
		return err
	}
	body, err := decodeBody(r, "inspection_rule")
	if err != nil {
		return err
	}
	ir, err := inspection.ParseRule(body, false)
	if err != nil {
		return err
	}
	if err := s.store.CreateInspectionRule(r.Context(), ir); err != nil {
		return err
	}
	w.Header().Set("Location", s.baseURL(r)+"/v1/inspection_rules/"+ir.UUID)
	return s.writeJSON(w, http.StatusCreated, s.renderInspectionRule(r, ir, nil))
}

// builtInRefused is the answer to a change of a built-in rule.
func builtInRefused(ir *ironwork.InspectionRule) error {
	return invalid("Inspection rule %s is a built-in rule: it comes from the built-in rules file and cannot be changed or deleted through the API.", ir.UUID)
}

// patchRepr is Python's repr of a JSON PATCH, as Ironic's PatchError shows it.
func patchRepr(ops []patchOp) string {
	parts := make([]string, len(ops))
	for i, op := range ops {
		p := fmt.Sprintf("{'op': %s, 'path': %s", pyRepr(op.Op), pyRepr(op.Path))
		if op.has {
			p += ", 'value': " + pyRepr(op.Value)
		}
		parts[i] = p + "}"
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func (s *Server) patchInspectionRule(w http.ResponseWriter, r *http.Request) error {
	if err := inspectionRulesAllowed(r); err != nil {
		return err
	}
	cur, err := s.loadInspectionRule(r)
	if err != nil {
		return err
	}
	if cur.BuiltIn {
		return builtInRefused(cur)
	}
	ops, err := readPatch(r)
	if err != nil {
		return err
	}
	allowed := []string{"actions", "conditions", "description", "phase", "priority", "sensitive"}
	for _, op := range ops {
		if !slices.Contains(allowed, op.root()) {
			return invalid("Cannot patch %s. Only the following can be updated: %s", op.Path, strings.Join(allowed, ", "))
		}
	}
	ir, err := s.store.UpdateInspectionRule(r.Context(), cur.UUID, func(ir *ironwork.InspectionRule) error {
		if ir.BuiltIn {
			return builtInRefused(ir)
		}
		for _, op := range ops {
			if op.Path == "/sensitive" && ir.Sensitive && (op.Op == "remove" || !truthyJSON(op.Value)) {
				return invalid("Couldn't apply patch '%s'. Reason: Inspection rules cannot have the sensitive flag unset.", patchRepr(ops))
			}
		}
		after, err := applyPatch(plainJSON(inspection.Document(ir)).(map[string]any), ops)
		if err != nil {
			return err
		}
		after["uuid"] = ir.UUID
		nr, err := inspection.ParseRule(after, false)
		if err != nil {
			return err
		}
		ir.Description, ir.Priority, ir.Phase, ir.Sensitive = nr.Description, nr.Priority, nr.Phase, nr.Sensitive
		ir.Conditions, ir.Actions = nr.Conditions, nr.Actions
		return nil
	})
	if err != nil {
		return err
	}
	return s.writeJSON(w, http.StatusOK, s.renderInspectionRule(r, ir, nil))
}

// truthyJSON is Python's bool() of a decoded JSON value.
func truthyJSON(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	s := fmt.Sprint(v)
	return strings.Trim(s, "0.-+eE") != "" || !strings.ContainsAny(s, "0123456789")
}

func (s *Server) deleteInspectionRule(w http.ResponseWriter, r *http.Request) error {
	if err := inspectionRulesAllowed(r); err != nil {
		return err
	}
	cur, err := s.loadInspectionRule(r)
	if err != nil {
		return err
	}
	if cur.BuiltIn {
		return builtInRefused(cur)
	}
	return noContent(w, s.store.DeleteInspectionRule(r.Context(), cur.UUID, func(ir *ironwork.InspectionRule) error {
		if ir.BuiltIn {
			return builtInRefused(ir)
		}
		return nil
	}))
}
