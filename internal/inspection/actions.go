package inspection

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/ironwork/ironwork"
)

// maxTraits is how many traits a node may have, as Ironic's MAX_TRAITS_PER_NODE.
const maxTraits = 50

// actions runs every action of r, each over its loop when it has one.
func (e *Engine) actions(ctx context.Context, log *slog.Logger, sc *scope, st *state, r *ironwork.InspectionRule) error {
	for _, a := range r.Actions {
		spec, ok := actionSpec(a.Op)
		if !ok {
			return fmt.Errorf("Unsupported action: '%s'.", a.Op)
		}
		run := func(s *scope) error {
			args, err := processArgs(s, spec, a.Op, a.Args)
			if err != nil {
				return err
			}
			return e.action(ctx, log, st, r, a.Op, args)
		}
		if !truthy(a.Loop) {
			if err := run(sc); err != nil {
				return err
			}
			continue
		}
		for _, item := range loopItems(a.Loop) {
			s := *sc
			s.item, s.hasItem = item, true
			if err := run(&s); err != nil {
				return err
			}
		}
	}
	return nil
}

// action runs one action on the working state.
func (e *Engine) action(ctx context.Context, log *slog.Logger, st *state, r *ironwork.InspectionRule, op string, args map[string]any) error {
	path, _ := args["path"].(string)
	value := args["value"]
	switch op {
	case "fail":
		return &ruleError{msg: "Failed to inspect hardware. Reason: " + pyStr(args["msg"], false), own: true}
	case "log":
		level := "info"
		if l, ok := args["level"]; ok {
			level = strings.ToLower(pyStr(l, false))
		}
		if !validLevel(level) {
			return executionFailure("Invalid log level: %s. Choose from debug, info, warning, error, critical", level)
		}
		lv := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warning": slog.LevelWarn,
			"error": slog.LevelError, "critical": slog.LevelError}[level]
		msg := pyStr(args["msg"], false)
		if r.Sensitive {
			msg = "(the message of a sensitive rule is not logged)"
		}
		log.Log(ctx, lv, msg, "rule", r.UUID, "node", st.node.UUID)
		return nil
	case "set-attribute", "extend-attribute", "del-attribute":
		if err := pathArg(args); err != nil {
			return actionFailure("Failed to change attribute: %s", err)
		}
		if err := changeAttr(nodeAttrs, st.node, op, path, value, truthy(args["unique"])); err != nil {
			return actionFailure("Failed to %s attribute %s: %s", verbOf(op), path, err)
		}
		st.nodeChanged = true
	case "set-port-attribute", "extend-port-attribute", "del-port-attribute":
		id := pyStr(args["port_id"], false)
		p := st.port(id)
		if p == nil {
			return &ruleError{msg: fmt.Sprintf("Port %s could not be found.", id)}
		}
		if err := pathArg(args); err != nil {
			return actionFailure("Failed to change attribute for port %s: %s", id, err)
		}
		if err := changeAttr(portAttrs, p, strings.Replace(op, "-port", "", 1), path, value, truthy(args["unique"])); err != nil {
			return actionFailure("Failed to %s attribute %s for port %s: %s", verbOf(op), path, id, err)
		}
		st.portsChanged[p.UUID] = true
	case "set-capability":
		name, ok1 := args["name"].(string)
		v, ok2 := value.(string)
		if !ok1 || !ok2 {
			return actionFailure("Failed to set capability %s: the name and value must be strings, not %s and %s",
				pyStr(args["name"], false), typeName(args["name"]), typeName(value))
		}
		caps, err := capabilities(st.node)
		if err != nil {
			return actionFailure("Failed to set capability %s: %s", name, err)
		}
		if caps != "" {
			caps += ","
		}
		setCapabilities(st, caps+name+":"+v)
	case "unset-capability":
		name := pyStr(args["name"], false)
		caps, err := capabilities(st.node)
		if err != nil {
			return actionFailure("Failed to unset capability %s: %s", name, err)
		}
		var keep []string
		for _, c := range strings.Split(caps, ",") {
			if !strings.HasPrefix(c, name+":") {
				keep = append(keep, c)
			}
		}
		setCapabilities(st, strings.Join(keep, ","))
	case "add-trait":
		name, ok := args["name"].(string)
		if !ok || name == "" || len(name) > 255 {
			return actionFailure("Failed to add new trait %s: a trait is a string of 1 to 255 characters", pyStr(args["name"], false))
		}
		for _, t := range st.node.Traits {
			if t == name {
				return nil
			}
		}
		if len(st.node.Traits) >= maxTraits {
			return actionFailure("Failed to add new trait %s: a node may have at most %d traits", name, maxTraits)
		}
		st.node.Traits = append(st.node.Traits, name)
		st.nodeChanged = true
	case "remove-trait":
		name := pyStr(args["name"], false)
		for i, t := range st.node.Traits {
			if t == name {
				st.node.Traits = append(st.node.Traits[:i:i], st.node.Traits[i+1:]...)
				st.nodeChanged = true
				return nil
			}
		}
		log.WarnContext(ctx, "inspection rule removes a trait the node does not have", "rule", r.UUID, "node", st.node.UUID, "trait", name)
	case "set-plugin-data", "extend-plugin-data", "unset-plugin-data":
		keys, err := pluginPath(args["path"])
		if err == nil {
			err = changePluginData(st.pluginData, op, keys, value, truthy(args["unique"]))
		}
		if err != nil {
			return actionFailure("Failed to %s plugin data at %s: %s", verbOf(op), pyStr(args["path"], false), err)
		}
		st.pdChanged = true
	default:
		return fmt.Errorf("Unsupported action: '%s'.", op)
	}
	return nil
}

func verbOf(op string) string {
	switch {
	case strings.HasPrefix(op, "extend"):
		return "extend"
	case strings.HasPrefix(op, "del"), strings.HasPrefix(op, "unset"):
		return "delete"
	}
	return "set"
}

func pathArg(args map[string]any) error {
	if _, ok := args["path"].(string); !ok {
		return fmt.Errorf("the path must be a string, not %s", typeName(args["path"]))
	}
	return nil
}

// port finds a port by UUID or MAC address.
func (st *state) port(id string) *ironwork.Port {
	for _, p := range st.ports {
		if strings.EqualFold(p.UUID, id) || strings.EqualFold(p.Address, id) {
			return p
		}
	}
	return nil
}

// capabilities reads properties/capabilities, Ironic's "k1:v1,k2:v2" string.
func capabilities(n *ironwork.Node) (string, error) {
	v, ok := n.Properties["capabilities"]
	if !ok || !truthy(v) {
		return "", nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", fmt.Errorf("capabilities must be a string, not %s", typeName(v))
	}
	return s, nil
}

func setCapabilities(st *state, caps string) {
	if st.node.Properties == nil {
		st.node.Properties = ironwork.JSONObject{}
	}
	st.node.Properties["capabilities"] = caps
	st.nodeChanged = true
}

// splitPath splits an attribute path in slash (/driver_info/x) or dot (driver_info.x)
// notation, as Ironic's normalize_path.
func splitPath(path string) []string {
	if strings.Contains(path, "/") {
		return strings.Split(strings.Trim(path, "/"), "/")
	}
	return strings.Split(path, ".")
}

// changeAttr sets, extends or deletes the attribute at path of v (a node or a port).
func changeAttr[T any](attrs map[string]attr[T], v *T, op, path string, value any, unique bool) error {
	parts := splitPath(path)
	a, ok := attrs[parts[0]]
	if !ok {
		return fmt.Errorf("object has no attribute %s", pyQuote(parts[0]))
	}
	if len(parts) == 1 {
		switch op {
		case "set-attribute":
			c, err := coerce(a.kind, parts[0], value)
			if err != nil {
				return err
			}
			a.set(v, c)
			return nil
		case "del-attribute":
			if a.kind == kStringReq {
				return fmt.Errorf("attribute %s cannot be deleted", parts[0])
			}
			c, err := coerce(a.kind, parts[0], nil)
			if err != nil {
				return err
			}
			a.set(v, c)
			return nil
		}
		return fmt.Errorf("Cannot extend non-list attribute %s with value %s", path, pyStr(value, false))
	}
	if a.kind != kDict {
		return fmt.Errorf("'%s' object has no attribute 'setdefault'", typeName(a.get(v)))
	}
	base := a.get(v).(map[string]any)
	cur := base
	for _, p := range parts[1 : len(parts)-1] {
		next, ok := cur[p]
		if !ok {
			if op == "del-attribute" {
				return nil
			}
			next = map[string]any{}
			cur[p] = next
		}
		m, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("'%s' object has no attribute 'setdefault'", typeName(next))
		}
		cur = m
	}
	last := parts[len(parts)-1]
	switch op {
	case "set-attribute":
		cur[last] = value
	case "del-attribute":
		delete(cur, last)
	case "extend-attribute":
		existing, ok := cur[last]
		if !ok {
			existing = []any{}
		}
		list, ok := existing.([]any)
		if !ok {
			return fmt.Errorf("Cannot extend non-list attribute %s with value %s", path, pyStr(value, false))
		}
		if !unique || !listHas(list, value) {
			list = append(list, value)
		}
		cur[last] = list
	}
	a.set(v, base)
	return nil
}

func listHas(list []any, v any) bool {
	for _, x := range list {
		if pyEqual(x, v) {
			return true
		}
	}
	return false
}

// pluginPath splits a plugin data path: dots in a string, or a list of keys.
func pluginPath(p any) ([]string, error) {
	switch x := p.(type) {
	case string:
		return strings.Split(x, "."), nil
	case []any:
		keys := make([]string, len(x))
		for i, k := range x {
			s, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("a path's keys must be strings, not %s", typeName(k))
			}
			keys[i] = s
		}
		if len(keys) > 0 {
			return keys, nil
		}
	}
	return nil, fmt.Errorf("the path must be a string or a list of keys, not %s", pyRepr(p, false))
}

// changePluginData sets, extends or unsets the value at keys of the plugin data. Unsetting
// a key removes its parent too when the key was the parent's last (as Ironic does).
func changePluginData(pd map[string]any, op string, keys []string, value any, unique bool) error {
	cur := pd
	var parents []map[string]any
	for _, k := range keys[:len(keys)-1] {
		next, ok := cur[k]
		if !ok {
			if op == "unset-plugin-data" {
				return nil
			}
			next = map[string]any{}
			cur[k] = next
		}
		m, ok := next.(map[string]any)
		if !ok {
			if op == "unset-plugin-data" {
				return nil
			}
			return fmt.Errorf("'%s' object does not support item assignment", typeName(next))
		}
		parents = append(parents, cur)
		cur = m
	}
	last := keys[len(keys)-1]
	switch op {
	case "set-plugin-data":
		cur[last] = value
	case "extend-plugin-data":
		existing := cur[last]
		if !truthy(existing) {
			existing = []any{}
		}
		list, ok := existing.([]any)
		if !ok {
			return fmt.Errorf("'%s' object has no attribute 'append'", typeName(existing))
		}
		if !unique || !listHas(list, value) {
			list = append(list, value)
		}
		cur[last] = list
	case "unset-plugin-data":
		if _, ok := cur[last]; !ok {
			return nil
		}
		delete(cur, last)
		if len(cur) == 0 && len(parents) > 0 {
			delete(parents[len(parents)-1], keys[len(keys)-2])
		}
	}
	return nil
}
