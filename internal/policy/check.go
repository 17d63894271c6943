package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrSyntax is wrapped by every error about a check string that cannot be parsed.
var ErrSyntax = errors.New("policy syntax")

// check is one node of a parsed check string.
type check interface {
	eval(e *evalCtx) bool
}

type evalCtx struct {
	rules  map[string]check
	creds  map[string]any
	target map[string]any
	depth  int
}

type (
	trueCheck  struct{}
	falseCheck struct{}
	notCheck   struct{ c check }
	andCheck   []check
	orCheck    []check
	ruleCheck  string
	roleCheck  struct{ match string }
	// genericCheck compares a credential (kind, a dotted path into the credentials, or a
	// literal such as 'x' or True) with match, which may name target values as %(key)s.
	genericCheck struct{ kind, match string }
)

func (trueCheck) eval(*evalCtx) bool    { return true }
func (falseCheck) eval(*evalCtx) bool   { return false }
func (c notCheck) eval(e *evalCtx) bool { return !c.c.eval(e) }
func (c andCheck) eval(e *evalCtx) bool {
	for _, x := range c {
		if !x.eval(e) {
			return false
		}
	}
	return true
}

func (c orCheck) eval(e *evalCtx) bool {
	for _, x := range c {
		if x.eval(e) {
			return true
		}
	}
	return false
}

// maxDepth bounds rule references (a loop of rule: references is refused at load; this is a
// second guard).
const maxDepth = 32

func (c ruleCheck) eval(e *evalCtx) bool {
	r, ok := e.rules[string(c)]
	if !ok || e.depth >= maxDepth {
		return false
	}
	e.depth++
	defer func() { e.depth-- }()
	return r.eval(e)
}

func (c roleCheck) eval(e *evalCtx) bool {
	want, ok := interpolate(c.match, e.target)
	if !ok {
		return false
	}
	roles, _ := e.creds["roles"].([]string)
	for _, r := range roles {
		if strings.EqualFold(r, want) {
			return true
		}
	}
	return false
}

func (c genericCheck) eval(e *evalCtx) bool {
	match, ok := interpolate(c.match, e.target)
	if !ok {
		return false
	}
	if lit, ok := literal(c.kind); ok {
		return match == lit
	}
	v, ok := e.creds[c.kind]
	if !ok || v == nil {
		// An absent credential (a system-scoped token's project) never matches, not even a
		// target value that is itself absent ("None" in Python).
		return false
	}
	switch x := v.(type) {
	case []string:
		for _, s := range x {
			if s == match {
				return true
			}
		}
		return false
	default:
		s, _ := str(v)
		return s == match
	}
}

// literal reads a generic check's kind when it is a constant: a quoted string, a number, True
// or False (oslo.policy evaluates it as a Python literal).
func literal(kind string) (string, bool) {
	if len(kind) >= 2 && (kind[0] == '\'' || kind[0] == '"') && kind[len(kind)-1] == kind[0] {
		return kind[1 : len(kind)-1], true
	}
	switch kind {
	case "True", "False", "None":
		return kind, true
	}
	if _, err := strconv.ParseFloat(kind, 64); err == nil {
		return kind, true
	}
	return "", false
}

// str is a value as Python's str() shows it, for comparisons.
func str(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "None", true
	case string:
		return x, true
	case bool:
		if x {
			return "True", true
		}
		return "False", true
	}
	return fmt.Sprint(v), true
}

// interpolate replaces every %(key)s in s by the target's value; false when a key is absent.
func interpolate(s string, target map[string]any) (string, bool) {
	if !strings.Contains(s, "%(") {
		return s, true
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "%(")
		if i < 0 {
			b.WriteString(s)
			return b.String(), true
		}
		b.WriteString(s[:i])
		end := strings.Index(s[i:], ")s")
		if end < 0 {
			return "", false
		}
		key := s[i+2 : i+end]
		v, ok := target[key]
		if !ok {
			return "", false
		}
		t, _ := str(v)
		b.WriteString(t)
		s = s[i+end+2:]
	}
}

// parse reads a check string in oslo.policy's language: checks "kind:match" (role:,
// rule:, project_id:%(node.owner)s, system_scope:all ...), "@" (always), "!" (never),
// combined with "and", "or", "not" and parentheses ("not" binds tighter than "and", "and"
// than "or"). The empty string always passes. refs collects the rule names it references.
func parse(s string, refs map[string]bool) (check, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return trueCheck{}, nil
	}
	p := &parser{toks: toks, refs: refs}
	c, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("%w: unexpected %q", ErrSyntax, p.toks[p.pos])
	}
	return c, nil
}

// tokenize splits a check string: parentheses are tokens of their own, the rest splits at
// white space.
func tokenize(s string) ([]string, error) {
	var toks []string
	for _, w := range strings.Fields(s) {
		for strings.HasPrefix(w, "(") {
			toks = append(toks, "(")
			w = w[1:]
		}
		var closing int
		for strings.HasSuffix(w, ")") && !strings.HasSuffix(w, ")s") {
			closing++
			w = w[:len(w)-1]
		}
		if w != "" {
			toks = append(toks, w)
		}
		for range closing {
			toks = append(toks, ")")
		}
	}
	if len(toks) > 10000 {
		return nil, fmt.Errorf("%w: check string too long", ErrSyntax)
	}
	return toks, nil
}

type parser struct {
	toks  []string
	pos   int
	depth int
	refs  map[string]bool
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *parser) or() (check, error) {
	c, err := p.and()
	if err != nil {
		return nil, err
	}
	alts := orCheck{c}
	for strings.EqualFold(p.peek(), "or") {
		p.pos++
		c, err := p.and()
		if err != nil {
			return nil, err
		}
		alts = append(alts, c)
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return alts, nil
}

func (p *parser) and() (check, error) {
	c, err := p.not()
	if err != nil {
		return nil, err
	}
	all := andCheck{c}
	for strings.EqualFold(p.peek(), "and") {
		p.pos++
		c, err := p.not()
		if err != nil {
			return nil, err
		}
		all = append(all, c)
	}
	if len(all) == 1 {
		return all[0], nil
	}
	return all, nil
}

func (p *parser) not() (check, error) {
	if strings.EqualFold(p.peek(), "not") {
		p.pos++
		c, err := p.not()
		if err != nil {
			return nil, err
		}
		return notCheck{c}, nil
	}
	return p.atom()
}

func (p *parser) atom() (check, error) {
	t := p.peek()
	switch {
	case t == "":
		return nil, fmt.Errorf("%w: the check string ends too early", ErrSyntax)
	case t == "(":
		p.pos++
		p.depth++
		if p.depth > 100 {
			return nil, fmt.Errorf("%w: parentheses nested too deep", ErrSyntax)
		}
		c, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("%w: missing \")\"", ErrSyntax)
		}
		p.pos++
		p.depth--
		return c, nil
	case t == ")" || strings.EqualFold(t, "and") || strings.EqualFold(t, "or"):
		return nil, fmt.Errorf("%w: unexpected %q", ErrSyntax, t)
	case t == "@":
		p.pos++
		return trueCheck{}, nil
	case t == "!":
		p.pos++
		return falseCheck{}, nil
	}
	p.pos++
	kind, match, ok := strings.Cut(t, ":")
	if !ok || kind == "" || match == "" {
		return nil, fmt.Errorf("%w: %q is not a check (kind:match, @ or !)", ErrSyntax, t)
	}
	if strings.Count(match, "%(") != strings.Count(match, ")s") {
		return nil, fmt.Errorf("%w: %q has an unterminated %%(name)s", ErrSyntax, t)
	}
	switch kind {
	case "rule":
		p.refs[match] = true
		return ruleCheck(match), nil
	case "role":
		return roleCheck{match: match}, nil
	case "http", "https":
		return nil, fmt.Errorf("%w: %q: remote http checks are not supported", ErrSyntax, t)
	}
	return genericCheck{kind: kind, match: match}, nil
}
