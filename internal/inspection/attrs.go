package inspection

import (
	"encoding/json"
	"fmt"

	"github.com/ironwork/ironwork"
)

// attrKind is how an attribute coerces a value set on it, as the oslo field types of Ironic's
// objects do.
type attrKind int

const (
	kString     attrKind = iota // str() of a number or bool; None empties a nullable field
	kStringReq                  // a string that may not be None
	kDict                       // an object; a string must hold a JSON object
	kBool                       // Python truthiness
	kBoolNull                   // truthiness, or None
	kStringList                 // read only
	kReadOnly                   // read only
)

// attr is one attribute of a node or port that rules can read and, unless read only, set.
type attr[T any] struct {
	kind attrKind
	get  func(*T) any
	set  func(*T, any)
}

func strAttr[T any](p func(*T) *string, req bool) attr[T] {
	k := kString
	if req {
		k = kStringReq
	}
	return attr[T]{kind: k,
		get: func(v *T) any {
			if s := *p(v); s != "" || req {
				return s
			}
			return nil
		},
		set: func(v *T, x any) { *p(v), _ = x.(string) }}
}

func dictAttr[T any](p func(*T) *ironwork.JSONObject) attr[T] {
	return attr[T]{kind: kDict,
		get: func(v *T) any {
			if *p(v) == nil {
				return map[string]any{}
			}
			return map[string]any(*p(v))
		},
		set: func(v *T, x any) { m, _ := x.(map[string]any); *p(v) = m }}
}

func boolAttr[T any](p func(*T) *bool) attr[T] {
	return attr[T]{kind: kBool, get: func(v *T) any { return *p(v) }, set: func(v *T, x any) { *p(v), _ = x.(bool) }}
}

func roAttr[T any](get func(*T) any) attr[T] { return attr[T]{kind: kReadOnly, get: get} }

type node = ironwork.Node

// nodeAttrs are the node attributes rules read ({node.x}) and set (set-attribute /x), by
// Ironic's names. Those a rule may not set (the state machine's, the identity) are read only.
var nodeAttrs = buildNodeAttrs()

func buildNodeAttrs() map[string]attr[node] {
	a := map[string]attr[node]{
		"uuid":                   roAttr(func(n *node) any { return n.UUID }),
		"provision_state":        roAttr(func(n *node) any { return string(n.ProvisionState) }),
		"target_provision_state": roAttr(func(n *node) any { return nullStr(string(n.TargetProvisionState)) }),
		"power_state":            roAttr(func(n *node) any { return nullStr(string(n.PowerState)) }),
		"last_error":             roAttr(func(n *node) any { return nullStr(n.LastError) }),
		"instance_uuid":          roAttr(func(n *node) any { return nullStr(n.InstanceUUID) }),
		"boot_mode":              roAttr(func(n *node) any { return nullStr(n.BootMode) }),
		"traits": {kind: kStringList, get: func(n *node) any {
			out := make([]any, len(n.Traits))
			for i, t := range n.Traits {
				out[i] = t
			}
			return out
		}},
		"name":               strAttr(func(n *node) *string { return &n.Name }, false),
		"description":        strAttr(func(n *node) *string { return &n.Description }, false),
		"driver":             strAttr(func(n *node) *string { return &n.Driver }, true),
		"resource_class":     strAttr(func(n *node) *string { return &n.ResourceClass }, false),
		"owner":              strAttr(func(n *node) *string { return &n.Owner }, false),
		"lessee":             strAttr(func(n *node) *string { return &n.Lessee }, false),
		"conductor_group":    strAttr(func(n *node) *string { return &n.ConductorGroup }, true),
		"shard":              strAttr(func(n *node) *string { return &n.Shard }, false),
		"maintenance_reason": strAttr(func(n *node) *string { return &n.MaintenanceReason }, false),
		"retired_reason":     strAttr(func(n *node) *string { return &n.RetiredReason }, false),
		"driver_info":        dictAttr(func(n *node) *ironwork.JSONObject { return &n.DriverInfo }),
		"extra":              dictAttr(func(n *node) *ironwork.JSONObject { return &n.Extra }),
		"instance_info":      dictAttr(func(n *node) *ironwork.JSONObject { return &n.InstanceInfo }),
		"properties":         dictAttr(func(n *node) *ironwork.JSONObject { return &n.Properties }),
		"network_data":       dictAttr(func(n *node) *ironwork.JSONObject { return &n.NetworkData }),
		"maintenance":        boolAttr(func(n *node) *bool { return &n.Maintenance }),
		"retired":            boolAttr(func(n *node) *bool { return &n.Retired }),
		"disable_power_off":  boolAttr(func(n *node) *bool { return &n.DisablePowerOff }),
		"automated_clean": {kind: kBoolNull,
			get: func(n *node) any {
				if n.AutomatedClean == nil {
					return nil
				}
				return *n.AutomatedClean
			},
			set: func(n *node, x any) {
				if b, ok := x.(bool); ok {
					n.AutomatedClean = &b
				} else {
					n.AutomatedClean = nil
				}
			}},
	}
	for _, k := range ironwork.InterfaceKinds {
		a[k.Field()] = attr[node]{kind: kString,
			get: func(n *node) any { return nullStr(n.Interfaces[k]) },
			set: func(n *node, x any) {
				s, _ := x.(string)
				if n.Interfaces == nil {
					n.Interfaces = map[ironwork.InterfaceKind]string{}
				}
				if s == "" {
					delete(n.Interfaces, k)
				} else {
					n.Interfaces[k] = s
				}
			}}
	}
	return a
}

type port = ironwork.Port

// portAttrs are the port attributes set-port-attribute and friends change.
var portAttrs = map[string]attr[port]{
	"uuid":                  roAttr(func(p *port) any { return p.UUID }),
	"address":               roAttr(func(p *port) any { return p.Address }),
	"name":                  strAttr(func(p *port) *string { return &p.Name }, false),
	"description":           strAttr(func(p *port) *string { return &p.Description }, false),
	"physical_network":      strAttr(func(p *port) *string { return &p.PhysicalNetwork }, false),
	"vendor":                strAttr(func(p *port) *string { return &p.Vendor }, false),
	"category":              strAttr(func(p *port) *string { return &p.Category }, false),
	"extra":                 dictAttr(func(p *port) *ironwork.JSONObject { return &p.Extra }),
	"local_link_connection": dictAttr(func(p *port) *ironwork.JSONObject { return &p.LocalLinkConnection }),
	"pxe_enabled":           boolAttr(func(p *port) *bool { return &p.PXEEnabled }),
	"is_smartnic":           boolAttr(func(p *port) *bool { return &p.IsSmartNIC }),
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// coerce converts v for an attribute of kind k as the oslo field would, or explains why not.
func coerce(k attrKind, name string, v any) (any, error) {
	switch k {
	case kReadOnly, kStringList:
		return nil, fmt.Errorf("attribute %s cannot be changed by a rule", name)
	case kString, kStringReq:
		switch x := v.(type) {
		case nil:
			if k == kStringReq {
				return nil, fmt.Errorf("field `%s' cannot be None", name)
			}
			return "", nil
		case string:
			return x, nil
		}
		if isNumber(v) {
			return pyStr(v, false), nil
		}
		return nil, fmt.Errorf("a string is required for %s, not %s", name, typeName(v))
	case kDict:
		switch x := v.(type) {
		case nil:
			return nil, nil
		case map[string]any:
			return x, nil
		case string:
			var m map[string]any
			if err := json.Unmarshal([]byte(x), &m); err == nil && m != nil {
				return m, nil
			}
		}
		return nil, fmt.Errorf("a dictionary is required for %s, not %s", name, typeName(v))
	case kBool:
		return truthy(v), nil
	case kBoolNull:
		if v == nil {
			return nil, nil
		}
		return truthy(v), nil
	}
	return nil, fmt.Errorf("unknown attribute %s", name)
}

// truthy is Python's bool() of a JSON value.
func truthy(v any) bool {
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
	if n, ok := numberOf(v); ok {
		return n.isFloat && n.f != 0 || !n.isFloat && (n.i != 0 || n.big != "")
	}
	return true
}
