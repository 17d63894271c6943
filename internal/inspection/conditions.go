package inspection

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ironwork/ironwork"
)

// condition checks one condition, with its loop when it has one: any (the default) holds
// when an iteration holds, all when every one does, first and last take that iteration's
// result. The "!" inversion applies to each iteration, as in Ironic.
func (e *Engine) condition(sc *scope, c ironwork.RuleOp) (bool, error) {
	name, inverted, err := parseInverted(c.Op)
	if err != nil {
		return false, err
	}
	spec, ok := conditionSpec(name)
	if !ok {
		return false, fmt.Errorf("Unsupported operator: '%s'. Supported operators are: %s.", name, strings.Join(conditionNames, ", "))
	}
	once := func(s *scope) (bool, error) {
		args, err := processArgs(s, spec, name, c.Args)
		if err != nil {
			return false, err
		}
		if s.hasItem && len(spec.optional) > 0 && spec.optional[0] == "force_strings" {
			args["force_strings"] = true
		}
		r, err := check(name, args)
		return r != inverted, err
	}
	if !truthy(c.Loop) {
		return once(sc)
	}
	items := loopItems(c.Loop)
	multiple := c.Multiple
	if multiple == "" {
		multiple = "any"
	}
	var results []bool
	for _, item := range items {
		s := *sc
		s.item, s.hasItem = item, true
		r, err := once(&s)
		if err != nil {
			return false, err
		}
		results = append(results, r)
		if multiple == "first" && r {
			return true, nil
		}
		if multiple == "last" {
			results = []bool{r}
		}
	}
	switch multiple {
	case "any":
		for _, r := range results {
			if r {
				return true, nil
			}
		}
		return false, nil
	case "all":
		for _, r := range results {
			if !r {
				return false, nil
			}
		}
		return true, nil
	}
	return len(results) > 0 && results[0], nil
}

// check runs one operator on its interpolated arguments.
func check(name string, args map[string]any) (bool, error) {
	value := args["value"]
	switch name {
	case "eq", "lt", "gt":
		return compareAll(name, args["values"], truthy(args["force_strings"]))
	case "is-empty":
		switch pyStr(value, false) {
		case "", "None", "[]", "{}":
			return true, nil
		}
		return false, nil
	case "in-net":
		return inNet(args["address"], args["subnet"])
	case "matches", "contains":
		s, ok := args["regex"].(string)
		if !ok {
			return false, fmt.Errorf("regex must be a string, not %s", typeName(args["regex"]))
		}
		re, err := compileRegex(name, s)
		if err != nil {
			return false, executionFailure("%s", err)
		}
		return re.MatchString(pyStr(value, false)), nil
	case "one-of":
		values, ok := args["values"]
		if !ok {
			values = []any{}
		}
		return contains(values, value)
	case "is-none":
		return value == nil, nil
	case "is-true":
		if _, isBool := value.(bool); isBool || isNumber(value) {
			return truthy(value), nil
		}
		if s, ok := value.(string); ok {
			s = strings.ToLower(s)
			return s == "yes" || s == "true", nil
		}
		return false, nil
	case "is-false":
		if _, isBool := value.(bool); isBool || isNumber(value) {
			return !truthy(value), nil
		}
		if s, ok := value.(string); ok {
			s = strings.ToLower(s)
			return s == "no" || s == "false", nil
		}
		return value == nil, nil
	}
	return false, fmt.Errorf("unsupported operator %s", name)
}

// compareAll is Ironic's SimpleOperator: every neighbouring pair of values is in relation.
func compareAll(name string, v any, forceStrings bool) (bool, error) {
	values, ok := v.([]any)
	if !ok {
		return false, conditionFailure("Failed to check condition: '%s' on values: %s: Expected list for 'values', got: %s",
			name, pyStr(v, false), typeName(v))
	}
	if len(values) < 2 {
		return true, nil
	}
	if forceStrings {
		s := make([]any, len(values))
		for i, x := range values {
			s[i] = pyStr(x, false)
		}
		values = s
	}
	sym := map[string]string{"lt": "<", "gt": ">"}[name]
	for i := 0; i+1 < len(values); i++ {
		a, b := values[i], values[i+1]
		if name == "eq" {
			if !pyEqual(a, b) {
				return false, nil
			}
			continue
		}
		c, err := pyCompare(sym, a, b)
		if err != nil {
			return false, err
		}
		if name == "lt" && c >= 0 || name == "gt" && c <= 0 {
			return false, nil
		}
	}
	return true, nil
}

// inNet is netaddr's IPAddress(address) in IPNetwork(subnet).
func inNet(address, subnet any) (bool, error) {
	sub := pyStr(subnet, false)
	prefix, err := netip.ParsePrefix(sub)
	if err != nil {
		a, err2 := netip.ParseAddr(sub)
		if err2 != nil {
			return false, executionFailure("invalid value: invalid IPNetwork %s", sub)
		}
		prefix = netip.PrefixFrom(a, a.BitLen())
	}
	a, err := netip.ParseAddr(pyStr(address, false))
	if err != nil {
		return false, fmt.Errorf("failed to detect a valid IP address from %s", pyRepr(address, false))
	}
	return prefix.Contains(a.Unmap()) || prefix.Contains(a), nil
}

// contains is Python's value in values for a list, a string (substring) or an object (key).
func contains(values, value any) (bool, error) {
	switch x := values.(type) {
	case []any:
		for _, v := range x {
			if pyEqual(v, value) {
				return true, nil
			}
		}
		return false, nil
	case string:
		s, ok := value.(string)
		if !ok {
			return false, fmt.Errorf("'in <string>' requires string as left operand, not %s", typeName(value))
		}
		return strings.Contains(x, s), nil
	case map[string]any:
		s, ok := value.(string)
		if !ok {
			return false, nil
		}
		_, found := x[s]
		return found, nil
	}
	return false, fmt.Errorf("argument of type '%s' is not iterable", typeName(values))
}
