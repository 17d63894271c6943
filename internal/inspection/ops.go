package inspection

// opSpec is the signature of a condition operator or an action, as Ironic derives it from the
// plugin's __call__: the arguments it requires, those it may take, those interpolated outside
// loops, and whether the engine passes it the plugin data.
type opSpec struct {
	required, optional []string
	formatted          []string
	pluginData         bool
}

// conditionNames are Ironic's condition operators, in Ironic's order.
var conditionNames = []string{"eq", "lt", "gt", "is-empty", "in-net", "matches", "contains", "one-of", "is-none", "is-true", "is-false"}

// actionNames are Ironic's actions, in Ironic's order. api-call is left out: the engine makes
// no network calls (see docs/inspection-rules.md).
var actionNames = []string{"fail", "log", "set-attribute", "extend-attribute", "del-attribute", "set-capability",
	"unset-capability", "add-trait", "remove-trait", "set-plugin-data", "extend-plugin-data", "unset-plugin-data",
	"set-port-attribute", "extend-port-attribute", "del-port-attribute", "api-call"}

// unsupportedActions are Ironic actions Ironwork refuses with a clear message.
var unsupportedActions = map[string]string{
	"api-call": "Ironwork's rule engine makes no network calls",
}

func conditionSpec(op string) (opSpec, bool) {
	value := opSpec{required: []string{"value"}, formatted: []string{"value"}}
	regex := opSpec{required: []string{"value", "regex"}, formatted: []string{"value"}}
	switch op {
	case "eq", "lt", "gt":
		return opSpec{required: []string{"values"}, optional: []string{"force_strings"}, formatted: []string{"values"}}, true
	case "is-empty", "is-none", "is-true", "is-false":
		return value, true
	case "in-net":
		return opSpec{required: []string{"address", "subnet"}, formatted: []string{"address", "subnet"}}, true
	case "matches", "contains":
		return regex, true
	case "one-of":
		return opSpec{required: []string{"value"}, optional: []string{"values"}, formatted: []string{"value"}}, true
	}
	return opSpec{}, false
}

func actionSpec(op string) (opSpec, bool) {
	value := []string{"value"}
	switch op {
	case "fail":
		return opSpec{required: []string{"msg"}}, true
	case "log":
		return opSpec{required: []string{"msg"}, optional: []string{"level"}, formatted: []string{"msg"}}, true
	case "set-attribute":
		return opSpec{required: []string{"path", "value"}, formatted: value}, true
	case "extend-attribute":
		return opSpec{required: []string{"path", "value"}, optional: []string{"unique"}, formatted: value}, true
	case "del-attribute":
		return opSpec{required: []string{"path"}}, true
	case "set-capability":
		return opSpec{required: []string{"name", "value"}, formatted: value}, true
	case "unset-capability", "add-trait", "remove-trait":
		return opSpec{required: []string{"name"}}, true
	case "set-plugin-data":
		return opSpec{required: []string{"path", "value"}, formatted: value, pluginData: true}, true
	case "extend-plugin-data":
		return opSpec{required: []string{"path", "value"}, optional: []string{"unique"}, formatted: value, pluginData: true}, true
	case "unset-plugin-data":
		return opSpec{required: []string{"path"}, pluginData: true}, true
	case "set-port-attribute":
		return opSpec{required: []string{"port_id", "path", "value"}, formatted: value}, true
	case "extend-port-attribute":
		return opSpec{required: []string{"port_id", "path", "value"}, optional: []string{"unique"}, formatted: value}, true
	case "del-port-attribute":
		return opSpec{required: []string{"port_id", "path"}}, true
	}
	return opSpec{}, false
}
