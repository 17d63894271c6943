package inspection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"

	"github.com/ironwork/ironwork"
)

// MaskMode says when rules read the inventory and plugin data with secrets masked, as
// Ironic's [inspection_rules]mask_secrets.
type MaskMode string

// Mask modes.
const (
	MaskAlways    MaskMode = "always"    // every rule reads "***" for password, auth_token, bmc_password
	MaskNever     MaskMode = "never"     // every rule reads the values
	MaskSensitive MaskMode = "sensitive" // only sensitive rules read the values
)

// Engine runs inspection rules. It has no state besides its settings; Run may be called
// concurrently.
type Engine struct {
	// Log receives the log action's messages and the engine's own records, which never hold
	// a sensitive rule's arguments or values. Nil discards them.
	Log *slog.Logger
	// Mask is when secrets are masked; empty means MaskAlways, Ironic's default.
	Mask MaskMode
}

// Input is what a rule reads and changes: the node, its ports, the inventory and the plugin
// data. Run changes none of them; it works on copies.
type Input struct {
	Node       *ironwork.Node
	Ports      []*ironwork.Port
	Inventory  map[string]any
	PluginData map[string]any
}

// Result is what the rules did. Node, Ports and PluginData are copies with every change the
// rules made up to the end or to a failure (Ironic saves each action at once, so a failing
// rule keeps the changes made before it).
type Result struct {
	Node        *ironwork.Node
	NodeChanged bool
	// Ports are copies of the input's ports, in its order; ChangedPorts the UUIDs of those an
	// action changed.
	Ports        []*ironwork.Port
	ChangedPorts []string
	PluginData   map[string]any
	// PluginDataChanged is whether a set-, extend- or unset-plugin-data action ran.
	PluginDataChanged bool
	// Applied are the UUIDs of the rules whose conditions held, in the order they ran.
	Applied []string
	// Failure, when not empty, is why inspection must fail: a fail action, or a rule that
	// could not be checked or applied. It is the node's last_error.
	Failure string
}

// state is the engine's working copy of one run.
type state struct {
	node         *ironwork.Node
	ports        []*ironwork.Port
	pluginData   map[string]any
	nodeChanged  bool
	portsChanged map[string]bool
	pdChanged    bool
}

// Sorted returns the rules of phase in the order they run: highest priority first, and in
// their given order among equal priorities.
func Sorted(rules []*ironwork.InspectionRule, phase string) []*ironwork.InspectionRule {
	var out []*ironwork.InspectionRule
	for _, r := range rules {
		p := r.Phase
		if p == "" {
			p = PhaseMain
		}
		if p == phase {
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Priority > out[j].Priority })
	return out
}

// Run applies the rules of phase to the input, in priority order, and returns the changes.
// It stops at the first rule that fails.
func (e *Engine) Run(ctx context.Context, phase string, rules []*ironwork.InspectionRule, in Input) Result {
	log := e.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st := &state{node: copyNode(in.Node), pluginData: copyObject(in.PluginData), portsChanged: map[string]bool{}}
	if st.pluginData == nil {
		st.pluginData = map[string]any{}
	}
	for _, p := range in.Ports {
		st.ports = append(st.ports, copyPort(p))
	}
	inventory := in.Inventory
	if inventory == nil {
		inventory = map[string]any{}
	}
	res := Result{}
	nodeID := st.node.UUID
	for _, r := range Sorted(rules, phase) {
		mask := e.Mask != MaskNever && !(e.Mask == MaskSensitive && r.Sensitive)
		sc := &scope{node: st.node, inventory: inventory, pluginData: st.pluginData, mask: mask}
		ok, err := e.conditions(sc, r)
		if err == nil && !ok {
			log.DebugContext(ctx, "inspection rule skipped: a condition does not hold", "rule", r.UUID, "node", nodeID)
			continue
		}
		if err == nil {
			log.InfoContext(ctx, "applying inspection rule", "rule", r.UUID, "node", nodeID)
			res.Applied = append(res.Applied, r.UUID)
			err = e.actions(ctx, log, sc, st, r)
		}
		if err != nil {
			res.Failure = failureOf(r, nodeID, err)
			if r.Sensitive {
				log.ErrorContext(ctx, "inspection rule failed", "rule", r.UUID, "node", nodeID)
			} else {
				log.ErrorContext(ctx, "inspection rule failed", "rule", r.UUID, "node", nodeID, "error", err)
			}
			break
		}
	}
	res.Node, res.NodeChanged = st.node, st.nodeChanged
	res.Ports, res.PluginData, res.PluginDataChanged = st.ports, st.pluginData, st.pdChanged
	for _, p := range st.ports {
		if st.portsChanged[p.UUID] {
			res.ChangedPorts = append(res.ChangedPorts, p.UUID)
		}
	}
	return res
}

// ruleError is a failure Ironic raises as one of its inspection exceptions; its message is
// the exception's.
type ruleError struct {
	msg string
	// own is set for the fail action: its message is the operator's, shown even for a
	// sensitive rule.
	own bool
}

func (e *ruleError) Error() string { return e.msg }

func conditionFailure(format string, args ...any) error {
	return &ruleError{msg: "Inspection rule condition check failed. Reason: " + fmt.Sprintf(format, args...)}
}

func executionFailure(format string, args ...any) error {
	return &ruleError{msg: "Inspection rule execution failed. Reason: " + fmt.Sprintf(format, args...)}
}

func actionFailure(format string, args ...any) error {
	return &ruleError{msg: "Inspection rule action execution failed. Reason: " + fmt.Sprintf(format, args...)}
}

// failureOf is the last_error for a rule that failed: Ironic's exception message for its own
// failures, or its wrapping of anything else. A sensitive rule's details are withheld, except
// the message of its fail action.
func failureOf(r *ironwork.InspectionRule, node string, err error) string {
	var re *ruleError
	if errors.As(err, &re) && re.own {
		return re.msg
	}
	if r.Sensitive {
		return fmt.Sprintf("Inspection rule %s failed on node %s (a sensitive rule: details withheld)", r.UUID, node)
	}
	if errors.As(err, &re) {
		return re.msg
	}
	return fmt.Sprintf("Failed to apply rule %s to node %s: %s", r.UUID, node, err)
}

// conditions reports whether every condition of r holds; a rule without conditions applies.
func (e *Engine) conditions(sc *scope, r *ironwork.InspectionRule) (bool, error) {
	for _, c := range r.Conditions {
		ok, err := e.condition(sc, c)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// processArgs names a condition's or action's arguments and interpolates those Ironic
// interpolates: the formatted ones, or all of them inside a loop.
func processArgs(sc *scope, spec opSpec, name string, args any) (map[string]any, error) {
	m, err := normalizeArgs(spec, args)
	if err != nil {
		return nil, executionFailure("%s", err)
	}
	for _, r := range spec.required {
		if _, ok := m[r]; !ok {
			return nil, executionFailure("%s is missing its argument %s", name, r)
		}
	}
	for k, v := range m {
		if sc.hasItem || slices.Contains(spec.formatted, k) {
			m[k] = sc.interpolate(v, name, 0)
		}
	}
	return m, nil
}

// loopItems returns the items of a loop: each element of a list, or an object once.
func loopItems(loop any) []any {
	switch l := loop.(type) {
	case []any:
		return l
	case map[string]any:
		return []any{l}
	}
	return nil
}

func copyNode(n *ironwork.Node) *ironwork.Node {
	if n == nil {
		return &ironwork.Node{}
	}
	c := *n
	c.DriverInfo, c.Extra, c.InstanceInfo = copyObject(n.DriverInfo), copyObject(n.Extra), copyObject(n.InstanceInfo)
	c.Properties, c.NetworkData = copyObject(n.Properties), copyObject(n.NetworkData)
	c.Traits = slices.Clone(n.Traits)
	c.Interfaces = maps.Clone(n.Interfaces)
	if n.AutomatedClean != nil {
		b := *n.AutomatedClean
		c.AutomatedClean = &b
	}
	return &c
}

func copyPort(p *ironwork.Port) *ironwork.Port {
	c := *p
	c.Extra, c.LocalLinkConnection = copyObject(p.Extra), copyObject(p.LocalLinkConnection)
	return &c
}

func copyObject(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	return deepCopy(m).(map[string]any)
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}
