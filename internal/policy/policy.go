// Package policy decides what an API caller may do, as Ironic's oslo.policy rules do: it owns
// the principal (who is calling: user, project, roles, scope), Ironic's default rules by their
// names, the parser of oslo.policy's check language and the loading of a policy file that
// overrides rules by name. It knows nothing of HTTP or of the store: callers give it the
// owner and lessee of the object at hand.
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Principal is the caller of a request, whatever authenticated it.
type Principal struct {
	UserID, UserName, UserDomainID          string
	ProjectID, ProjectName, ProjectDomainID string
	// Roles are the caller's roles, implied ones included (admin implies member, member
	// implies reader, as Keystone's bootstrap sets them up).
	Roles []string
	// System is true for a system-scoped caller (Keystone's system scope "all").
	System bool
	// Unrestricted callers (auth_strategy noauth) pass every authorization, as in Ironic, where
	// policy is enforced only with Keystone; the secret-revealing checks still apply.
	Unrestricted bool
}

// User is how the principal is named in node history and logs: its user id, or its name.
func (p Principal) User() string {
	if p.UserID != "" {
		return p.UserID
	}
	return p.UserName
}

// ProjectScoped is true for a caller acting within a project (Ironic then hides other
// projects' nodes with 404).
func (p Principal) ProjectScoped() bool { return !p.System && !p.Unrestricted && p.ProjectID != "" }

// ImplyRoles adds the roles Keystone's default role implications add: admin implies manager and
// member, manager implies member, member implies reader (as Ironic's own policy tests assume).
func ImplyRoles(roles []string) []string {
	out := slices.Clone(roles)
	add := func(r string) {
		if !slices.ContainsFunc(out, func(x string) bool { return strings.EqualFold(x, r) }) {
			out = append(out, r)
		}
	}
	for _, r := range roles {
		switch strings.ToLower(r) {
		case "admin":
			add("manager")
			add("member")
			add("reader")
		case "manager":
			add("member")
			add("reader")
		case "member":
			add("reader")
		}
	}
	return out
}

func (p Principal) creds() map[string]any {
	c := map[string]any{"roles": p.Roles}
	set := func(k, v string) {
		if v != "" {
			c[k] = v
		}
	}
	set("user_id", p.UserID)
	set("user", p.UserID)
	set("user_name", p.UserName)
	set("user_domain_id", p.UserDomainID)
	set("project_id", p.ProjectID)
	set("tenant", p.ProjectID)
	set("project_name", p.ProjectName)
	set("project_domain_id", p.ProjectDomainID)
	if p.System {
		c["system_scope"] = "all"
	}
	return c
}

// Target is the object a rule is checked against: a node's owner and lessee, or an
// allocation's owner. Empty values are absent (None in Ironic).
type Target struct {
	NodeOwner, NodeLessee string
	AllocationOwner       string
	RunbookOwner          string
	// Node, Allocation and Runbook say which of the above apply.
	Node, Allocation, Runbook bool
}

// Enforcer holds the rules in force: Ironic's defaults, overridden by a policy file.
type Enforcer struct {
	rules          map[string]check
	serviceProject string
}

// ErrUnknownRule is wrapped when a rule name is not one of Ironic's.
var ErrUnknownRule = errors.New("unknown policy rule")

// UnlistedRoute is Ironwork's own rule for an API route that has no Ironic rule mapped to it
// (system administrators only by default); it can be overridden like Ironic's rules.
const UnlistedRoute = "ironwork:unlisted_route"

// DefaultServiceProject is the project whose "service" role holders pass rule:service_role
// (Ironic's [DEFAULT]rbac_service_project_name).
const DefaultServiceProject = "service"

// New returns an enforcer of Ironic's default rules.
func New(serviceProject string) *Enforcer {
	if serviceProject == "" {
		serviceProject = DefaultServiceProject
	}
	e := &Enforcer{rules: map[string]check{}, serviceProject: serviceProject}
	for _, d := range ironicDefaults {
		c, err := parse(d.check, map[string]bool{})
		if err != nil {
			panic(fmt.Sprintf("default rule %s: %v", d.name, err)) // a bug in the table, caught by every test
		}
		e.rules[d.name] = c
	}
	return e
}

// Load returns an enforcer of Ironic's defaults overridden by the oslo.policy YAML (or JSON)
// file at path: a mapping from rule name to check string. A name that is neither one of
// Ironic's rules nor referenced by another rule ("rule:name", an alias the file defines), a
// check string that does not parse, a rule: reference to nothing and a loop of references are
// refused with the line.
func Load(path, serviceProject string) (*Enforcer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy file: %w", err)
	}
	e, err := Parse(data, serviceProject)
	if err != nil {
		return nil, fmt.Errorf("policy file %s: %w", path, err)
	}
	return e, nil
}

// Parse is Load on the file's contents.
func Parse(data []byte, serviceProject string) (*Enforcer, error) {
	e := New(serviceProject)
	if len(bytes.TrimSpace(data)) == 0 {
		return e, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return e, nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: %w: expected a mapping of rule names to check strings", m.Line, ErrSyntax)
	}
	defined := map[string]fileRule{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: %w: expected \"rule name\": \"check string\"", k.Line, ErrSyntax)
		}
		if _, dup := defined[k.Value]; dup {
			return nil, fmt.Errorf("line %d: %w: rule %q is defined twice", k.Line, ErrSyntax, k.Value)
		}
		refs := map[string]bool{}
		c, err := parse(v.Value, refs)
		if err != nil {
			return nil, fmt.Errorf("line %d: rule %q: %w", v.Line, k.Value, err)
		}
		e.rules[k.Value] = c
		defined[k.Value] = fileRule{k.Line, refs}
	}
	referenced := map[string]bool{}
	for _, d := range defined {
		for r := range d.refs {
			referenced[r] = true
		}
	}
	known := map[string]bool{}
	for _, d := range ironicDefaults {
		known[d.name] = true
	}
	names := make([]string, 0, len(defined))
	for n := range defined {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return defined[names[i]].line < defined[names[j]].line })
	for _, n := range names {
		d := defined[n]
		if !known[n] && !referenced[n] {
			return nil, fmt.Errorf("line %d: %w %q (not one of Ironic's rules, and no rule refers to it)", d.line, ErrUnknownRule, n)
		}
		for r := range d.refs {
			if _, ok := e.rules[r]; !ok {
				return nil, fmt.Errorf("line %d: rule %q: %w %q in rule:%s", d.line, n, ErrUnknownRule, r, r)
			}
		}
	}
	for _, n := range names {
		if e.loops(n, map[string]bool{}, defined) {
			return nil, fmt.Errorf("line %d: %w: rule %q refers to itself through rule: references", defined[n].line, ErrSyntax, n)
		}
	}
	return e, nil
}

// fileRule is a rule of a policy file: its line and the rules it refers to.
type fileRule struct {
	line int
	refs map[string]bool
}

// loops is true when following n's rule: references comes back to a rule on the path.
func (e *Enforcer) loops(n string, path map[string]bool, defined map[string]fileRule) bool {
	if path[n] {
		return true
	}
	path[n] = true
	defer delete(path, n)
	var refs map[string]bool
	if d, ok := defined[n]; ok {
		refs = d.refs
	} else {
		refs = map[string]bool{}
		for _, d := range ironicDefaults {
			if d.name == n {
				parse(d.check, refs)
			}
		}
	}
	for r := range refs {
		if e.loops(r, path, defined) {
			return true
		}
	}
	return false
}

// Check evaluates rule for p against t, with no exception for unrestricted principals (used for
// the rules that reveal secrets: show_password, show_instance_secrets). An unknown rule fails.
func (e *Enforcer) Check(rule string, p Principal, t Target) bool {
	c, ok := e.rules[rule]
	if !ok {
		return false
	}
	creds := p.creds()
	target := make(map[string]any, len(creds)+4)
	for k, v := range creds {
		target[k] = v
	}
	target["config.service_project_name"] = e.serviceProject
	opt := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	if t.Node {
		target["node.owner"] = opt(t.NodeOwner)
		target["node.lessee"] = opt(t.NodeLessee)
	}
	if t.Allocation {
		target["allocation.owner"] = opt(t.AllocationOwner)
	}
	if t.Runbook {
		target["runbook.owner"] = opt(t.RunbookOwner)
	}
	return c.eval(&evalCtx{rules: e.rules, creds: creds, target: target})
}

// Authorize is Check, except that an unrestricted principal always passes.
func (e *Enforcer) Authorize(rule string, p Principal, t Target) bool {
	return p.Unrestricted || e.Check(rule, p, t)
}

// Known reports whether rule is defined.
func (e *Enforcer) Known(rule string) bool {
	_, ok := e.rules[rule]
	return ok
}
