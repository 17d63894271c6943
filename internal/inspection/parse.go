package inspection

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/ironwork/ironwork"
)

// PhaseMain is the one inspection phase Ironic has.
const PhaseMain = "main"

// MaxPriority is the highest priority a user rule may have; built-in rules may have any.
const MaxPriority = 9999

// invalid is a 400 for a bad rule.
func invalid(format string, args ...any) error {
	return ironwork.Errorf(ironwork.EINVALID, format, args...)
}

// schemaError is a 400 for a rule that breaks Ironic's JSON schema, worded as jsonschema.
func schemaError(format string, args ...any) error {
	return invalid("Schema error: %s", fmt.Sprintf(format, args...))
}

// ruleFields are the members of a rule document, in the order Ironic's schema checks them.
var ruleFields = []string{"actions", "conditions", "description", "phase", "priority", "sensitive", "uuid"}

// ParseRule validates a rule document (a create body, a patched rule or a built-in rule) as
// Ironic's schema and validate_rule do, and returns the rule. Numbers in doc should be
// json.Number. A built-in rule may have any priority and any identifier.
func ParseRule(doc map[string]any, builtIn bool) (*ironwork.InspectionRule, error) {
	for _, k := range ruleFields {
		v, ok := doc[k]
		if !ok {
			continue
		}
		if err := checkMember(k, v); err != nil {
			return nil, err
		}
	}
	if _, ok := doc["actions"]; !ok {
		return nil, schemaError("'actions' is a required property")
	}
	var extra []string
	for k := range doc {
		if !slices.Contains(ruleFields, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		q := make([]string, len(extra))
		for i, k := range extra {
			q[i] = pyQuote(k)
		}
		verb := "was"
		if len(q) > 1 {
			verb = "were"
		}
		return nil, schemaError("Additional properties are not allowed (%s %s unexpected)", strings.Join(q, ", "), verb)
	}

	r := &ironwork.InspectionRule{Phase: PhaseMain, BuiltIn: builtIn}
	var errs []string
	if v, ok := doc["phase"]; ok {
		s, _ := v.(string)
		if s != PhaseMain {
			errs = append(errs, fmt.Sprintf("Invalid phase: %s. Valid phases are: %s", pyStr(v, false), PhaseMain))
		}
	}
	if v, ok := doc["priority"]; ok {
		n, _ := numberOf(v)
		if n.isFloat {
			n.i = int64(n.f)
		}
		if n.big != "" || n.i > 1<<31-1 || n.i < -(1<<31) {
			errs = append(errs, "Priority must be between 0 and 9999 for user-defined rules.")
		} else {
			r.Priority = int(n.i)
			if r.Priority < 0 && !builtIn {
				errs = append(errs, "Priority cannot be negative for user-defined rules.")
			}
			if r.Priority > MaxPriority && !builtIn {
				errs = append(errs, "Priority must be between 0 and 9999 for user-defined rules.")
			}
		}
	}
	r.Description, _ = doc["description"].(string)
	r.Sensitive, _ = doc["sensitive"].(bool)
	if u, ok := doc["uuid"].(string); ok && u != "" {
		if !builtIn && !ironwork.IsUUID(u) || len(u) > 255 {
			return nil, invalid("Expected UUID for uuid: %s", u)
		}
		r.UUID = u
		if ironwork.IsUUID(u) {
			r.UUID = canonicalUUID(u)
		}
	}

	conds, _ := doc["conditions"].([]any)
	for _, c := range conds {
		op := opOf(c.(map[string]any), true)
		name, _, err := parseInverted(op.Op)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		spec, _ := conditionSpec(name)
		if err := checkArgs(spec, op.Args); err != nil {
			errs = append(errs, fmt.Sprintf("Invalid parameters for condition operator %s: %s", name, err))
		} else if err := checkLiterals(name, spec, op.Args); err != nil {
			errs = append(errs, fmt.Sprintf("Invalid parameters for condition operator %s: %s", name, err))
		}
		r.Conditions = append(r.Conditions, op)
	}
	for _, a := range doc["actions"].([]any) {
		op := opOf(a.(map[string]any), false)
		if why, ok := unsupportedActions[op.Op]; ok {
			errs = append(errs, fmt.Sprintf("Unsupported action operator: %s (%s)", op.Op, why))
			continue
		}
		spec, _ := actionSpec(op.Op)
		if err := checkArgs(spec, op.Args); err != nil {
			errs = append(errs, fmt.Sprintf("Invalid parameters for action operator %s: %s", op.Op, err))
		} else if err := checkLiterals(op.Op, spec, op.Args); err != nil {
			errs = append(errs, fmt.Sprintf("Invalid parameters for action operator %s: %s", op.Op, err))
		}
		r.Actions = append(r.Actions, op)
	}
	switch len(errs) {
	case 0:
		return r, nil
	case 1:
		return nil, invalid("%s", errs[0])
	}
	return nil, invalid("Multiple validation errors occurred: %s", strings.Join(errs, "; "))
}

func canonicalUUID(u string) string {
	u = strings.ToLower(strings.ReplaceAll(u, "-", ""))
	return u[0:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:]
}

// opOf keeps the members of a condition or action that Ironic shows: op, args, loop and, for
// a condition with a loop, multiple (default "any").
func opOf(m map[string]any, condition bool) ironwork.RuleOp {
	op := ironwork.RuleOp{Args: m["args"]}
	op.Op, _ = m["op"].(string)
	if truthy(m["loop"]) {
		op.Loop = m["loop"]
		if condition {
			op.Multiple, _ = m["multiple"].(string)
			if op.Multiple == "" {
				op.Multiple = "any"
			}
		}
	}
	return op
}

// checkMember checks one member of a rule document against Ironic's schema.
func checkMember(k string, v any) error {
	switch k {
	case "actions", "conditions":
		return checkOps(k, v)
	case "description", "phase":
		if v == nil {
			return nil
		}
		s, ok := v.(string)
		if !ok {
			return schemaError("%s is not of type 'string', 'null'", pyRepr(v, false))
		}
		limit := 255
		if k == "phase" {
			limit = 16
		}
		if utf8.RuneCountInString(s) > limit {
			return schemaError("%s is too long", pyRepr(v, false))
		}
	case "priority":
		n, ok := numberOf(v)
		if _, isBool := v.(bool); !ok || isBool || n.isFloat && n.f != float64(int64(n.f)) {
			return schemaError("%s is not of type 'integer'", pyRepr(v, false))
		}
		if n.isFloat && n.f < 0 || !n.isFloat && n.big == "" && n.i < 0 || strings.HasPrefix(n.big, "-") {
			return schemaError("%s is less than the minimum of 0", pyRepr(v, false))
		}
	case "sensitive":
		if _, ok := v.(bool); !ok && v != nil {
			return schemaError("%s is not of type 'boolean', 'null'", pyRepr(v, false))
		}
	case "uuid":
		if _, ok := v.(string); !ok && v != nil {
			return schemaError("%s is not of type 'string', 'null'", pyRepr(v, false))
		}
	}
	return nil
}

// checkOps checks the conditions or actions list against Ironic's schema.
func checkOps(k string, v any) error {
	list, ok := v.([]any)
	if !ok {
		return schemaError("%s is not of type 'array'", pyRepr(v, false))
	}
	if k == "actions" && len(list) == 0 {
		return schemaError("[] is too short")
	}
	var names []string
	if k == "actions" {
		names = actionNames
	} else {
		names = append(names, conditionNames...)
		for _, n := range conditionNames {
			names = append(names, "!"+n)
		}
	}
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return schemaError("%s is not of type 'object'", pyRepr(item, false))
		}
		for _, req := range []string{"op", "args"} {
			if _, ok := m[req]; !ok {
				return schemaError("%s is a required property", pyQuote(req))
			}
		}
		if s, ok := m["op"].(string); !ok || !slices.Contains(names, s) {
			q := make([]string, len(names))
			for i, n := range names {
				q[i] = pyQuote(n)
			}
			return schemaError("%s is not one of [%s]", pyRepr(m["op"], false), strings.Join(q, ", "))
		}
		for _, f := range []string{"args", "loop"} {
			if x, ok := m[f]; ok {
				switch x.(type) {
				case []any, map[string]any:
				default:
					return schemaError("%s is not of type 'array', 'object'", pyRepr(x, false))
				}
			}
		}
		if x, ok := m["multiple"]; ok && k == "conditions" {
			if s, _ := x.(string); !slices.Contains([]string{"any", "all", "first", "last"}, s) {
				return schemaError("%s is not one of ['any', 'all', 'first', 'last']", pyRepr(x, false))
			}
		}
	}
	return nil
}

// parseInverted splits a leading "!" (with optional spaces) off a condition operator.
func parseInverted(op string) (string, bool, error) {
	op = strings.TrimSpace(op)
	if strings.Count(op, "!") > 1 {
		return "", false, fmt.Errorf("Multiple exclamation marks are not allowed. To apply the invert of an operation, simply add an exclamation mark (with an optional space) before the operator, e.g. eq - !eq.")
	}
	inv := strings.HasPrefix(op, "!")
	return strings.TrimSpace(strings.TrimLeft(op, "!")), inv, nil
}

// normalizeArgs turns args into named arguments: an object as it is, a list by position over
// the required then the optional arguments (Ironic's deprecated form).
func normalizeArgs(spec opSpec, args any) (map[string]any, error) {
	switch a := args.(type) {
	case map[string]any:
		out := make(map[string]any, len(a))
		for k, v := range a {
			out[k] = v
		}
		return out, nil
	case []any:
		if len(a) < len(spec.required) {
			return nil, fmt.Errorf("Not enough arguments provided. Missing: %s", strings.Join(spec.required[len(a):], ", "))
		}
		out := map[string]any{}
		names := append(slices.Clone(spec.required), spec.optional...)
		for i, v := range a {
			if i < len(names) {
				out[names[i]] = v
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("args must be either a list or dictionary")
}

// checkArgs checks that args name every required argument and nothing unknown.
func checkArgs(spec opSpec, args any) error {
	m, err := normalizeArgs(spec, args)
	if err != nil {
		return err
	}
	var missing, unexpected []string
	for _, r := range spec.required {
		if _, ok := m[r]; !ok {
			missing = append(missing, r)
		}
	}
	for k := range m {
		if !slices.Contains(spec.required, k) && !slices.Contains(spec.optional, k) && !(spec.pluginData && k == "plugin_data") {
			unexpected = append(unexpected, k)
		}
	}
	sort.Strings(unexpected)
	var msg []string
	if len(missing) > 0 {
		msg = append(msg, "missing required argument(s): "+strings.Join(missing, ", "))
	}
	if len(unexpected) > 0 {
		msg = append(msg, "unexpected argument(s): "+strings.Join(unexpected, ", "))
	}
	if len(msg) > 0 {
		return fmt.Errorf("%s", strings.Join(msg, "; "))
	}
	return nil
}

// checkLiterals refuses, when the rule is created, arguments that can only fail when it runs:
// a regular expression that does not compile, an unknown log level, a path that is not a
// string. Values with replacement fields are checked when the rule runs.
func checkLiterals(op string, spec opSpec, args any) error {
	m, _ := normalizeArgs(spec, args)
	literal := func(k string) (string, bool) {
		s, ok := m[k].(string)
		return s, ok && !strings.ContainsAny(s, "{}")
	}
	switch op {
	case "matches", "contains":
		s, ok := m["regex"].(string)
		if !ok {
			return fmt.Errorf("regex must be a string, not %s", typeName(m["regex"]))
		}
		if _, err := compileRegex(op, s); err != nil {
			return err
		}
	case "log":
		if s, ok := literal("level"); ok && !validLevel(s) {
			return fmt.Errorf("Invalid log level: %s. Choose from debug, info, warning, error, critical", s)
		}
	}
	for _, k := range []string{"path", "name", "port_id"} {
		if v, ok := m[k]; ok && slices.Contains(spec.required, k) {
			if _, isStr := v.(string); !isStr {
				return fmt.Errorf("%s must be a string, not %s", k, typeName(v))
			}
		}
	}
	return nil
}

// compileRegex compiles a Python regular expression for matches (anchored at the start, and
// at the end unless it ends with "$" already) or contains (anywhere). Go's RE2 syntax is
// Python's less backreferences and lookarounds.
func compileRegex(op, s string) (*regexp.Regexp, error) {
	if op == "matches" {
		if !strings.HasSuffix(s, "$") {
			s += "$"
		}
		s = "^(?:" + s + ")"
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression: %w", err)
	}
	return re, nil
}

func validLevel(s string) bool {
	return slices.Contains([]string{"debug", "info", "warning", "error", "critical"}, strings.ToLower(s))
}

// DecodeDocument decodes a JSON rule document keeping numbers as json.Number.
func DecodeDocument(b []byte) (map[string]any, error) {
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	var doc map[string]any
	if err := d.Decode(&doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// Document is a rule as the document a JSON PATCH applies to and ParseRule reads back.
func Document(r *ironwork.InspectionRule) map[string]any {
	doc := map[string]any{
		"uuid": nullStr(r.UUID), "priority": json.Number(fmt.Sprint(r.Priority)), "phase": r.Phase,
		"sensitive": r.Sensitive, "description": nullStr(r.Description),
		"conditions": OpsDocument(r.Conditions, true), "actions": OpsDocument(r.Actions, false),
	}
	return doc
}

// OpsDocument renders conditions or actions as Ironic shows them: op and args, and loop (with
// multiple, for conditions) when there is a loop.
func OpsDocument(ops []ironwork.RuleOp, conditions bool) []any {
	out := make([]any, 0, len(ops))
	for _, op := range ops {
		m := map[string]any{"op": op.Op, "args": op.Args}
		if truthy(op.Loop) {
			m["loop"] = op.Loop
			if conditions {
				mult := op.Multiple
				if mult == "" {
					mult = "any"
				}
				m["multiple"] = mult
			}
		}
		out = append(out, m)
	}
	return out
}
