package ironwork

import (
	"bytes"
	"encoding/json"
	"time"
)

// InspectionRule is a rule run on every inventory that inspection stores: when all its
// conditions hold, its actions change the node, its ports or the plugin data. Built-in rules
// come from a file named in the configuration and cannot be changed through the API.
type InspectionRule struct {
	ID          int64
	UUID        string
	Description string
	Priority    int
	Phase       string
	Sensitive   bool
	BuiltIn     bool
	Conditions  []RuleOp
	Actions     []RuleOp
	CreatedAt   time.Time
	UpdatedAt   *time.Time
}

// RuleOp is one condition or action of an inspection rule, as Ironic spells it: an operator,
// its arguments (an object, or a list in Ironic's deprecated positional form), an optional
// loop and, for conditions, how the loop's results combine. Numbers are json.Number so that
// 2 and 2.0 stay apart, as they do in Ironic.
type RuleOp struct {
	Op       string `json:"op"`
	Args     any    `json:"args"`
	Loop     any    `json:"loop,omitempty"`
	Multiple string `json:"multiple,omitempty"`
}

// UnmarshalJSON decodes an operation keeping numbers as json.Number.
func (o *RuleOp) UnmarshalJSON(b []byte) error {
	var raw struct {
		Op       string `json:"op"`
		Args     any    `json:"args"`
		Loop     any    `json:"loop"`
		Multiple string `json:"multiple"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&raw); err != nil {
		return err
	}
	*o = RuleOp{Op: raw.Op, Args: raw.Args, Loop: raw.Loop, Multiple: raw.Multiple}
	return nil
}
