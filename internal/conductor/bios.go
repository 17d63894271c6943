package conductor

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ironwork/ironwork"
)

// BIOS settings: the bios interface reads them (BIOSReader) and the conductor caches them in
// the store (bios_settings, shown at GET /v1/nodes/{node}/bios) when a node is verified, when
// cleaning starts and after every bios step. The bios steps' arguments are checked against
// the cached attribute registry before any work starts (CheckBIOSSettings), and again by the
// interface against the BMC's registry before it changes anything.

// BIOSReader reads a node's current BIOS settings and what its attribute registry says of
// them.
type BIOSReader interface {
	BIOSSettings(ctx context.Context, t *Task) ([]ironwork.BIOSSetting, error)
}

// BIOSValue is one setting of a bios.apply_configuration step: {"name": ..., "value": ...}.
type BIOSValue struct {
	Name  string
	Value any
}

// BIOS step names, as Ironic's.
const (
	StepApplyBIOS   = "apply_configuration"
	StepFactoryBIOS = "factory_reset"
)

// BIOSSettingsArg reads the "settings" argument of a bios.apply_configuration step.
func BIOSSettingsArg(args map[string]any) ([]BIOSValue, error) {
	raw, ok := args["settings"]
	if !ok {
		return nil, ironwork.Errorf(ironwork.EINVALID, "bios.apply_configuration needs the argument \"settings\": a list of {\"name\": ..., \"value\": ...}")
	}
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		return nil, ironwork.Errorf(ironwork.EINVALID, "bios.apply_configuration: \"settings\" must be a non-empty list of {\"name\": ..., \"value\": ...}")
	}
	var out []BIOSValue
	seen := map[string]bool{}
	for i, item := range list {
		m, _ := item.(map[string]any)
		name, _ := m["name"].(string)
		value, hasValue := m["value"]
		if name == "" || !hasValue || len(m) != 2 {
			return nil, ironwork.Errorf(ironwork.EINVALID, "bios.apply_configuration: setting %d must be {\"name\": ..., \"value\": ...}", i)
		}
		if seen[name] {
			return nil, ironwork.Errorf(ironwork.EINVALID, "bios.apply_configuration: setting %s is given twice", name)
		}
		seen[name] = true
		out = append(out, BIOSValue{Name: name, Value: value})
	}
	return out, nil
}

// BIOSValueString is how a BIOS value is stored and shown: Ironic's str() of it (a JSON
// number without a fraction as an integer, a boolean as True or False).
func BIOSValueString(v any) *string {
	var s string
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		s = x
	case bool:
		s = "False"
		if x {
			s = "True"
		}
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		s = strconv.Itoa(x)
	case int64:
		s = strconv.FormatInt(x, 10)
	default:
		s = fmt.Sprint(x)
	}
	return &s
}

// CheckBIOSSettings checks requested settings against known ones (with their registry
// fields): every name must be known, writable, and its value of the attribute's type, among
// its allowed values and within its bounds. It names every problem at once. A nil known list
// (never read) checks nothing.
func CheckBIOSSettings(known []ironwork.BIOSSetting, want []BIOSValue) error {
	if len(known) == 0 {
		return nil
	}
	byName := map[string]ironwork.BIOSSetting{}
	for _, k := range known {
		byName[k.Name] = k
	}
	var problems []string
	for _, w := range want {
		k, ok := byName[w.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is not a BIOS setting of this node", w.Name))
			continue
		}
		if p := checkBIOSValue(k, w.Value); p != "" {
			problems = append(problems, w.Name+": "+p)
		}
	}
	if len(problems) > 0 {
		return ironwork.Errorf(ironwork.EINVALID, "Invalid BIOS settings: %s", strings.Join(problems, "; "))
	}
	return nil
}

// checkBIOSValue says what is wrong with setting k to v, "" when nothing is.
func checkBIOSValue(k ironwork.BIOSSetting, v any) string {
	if k.ReadOnly != nil && *k.ReadOnly {
		return "the setting is read-only"
	}
	typ := ""
	if k.AttributeType != nil {
		typ = *k.AttributeType
	}
	s := BIOSValueString(v)
	if s == nil {
		return "a value is required"
	}
	switch typ {
	case "Enumeration":
		if len(k.AllowableValues) > 0 && !slices.Contains(k.AllowableValues, *s) {
			return fmt.Sprintf("%q is not one of the allowed values %s", *s, strings.Join(k.AllowableValues, ", "))
		}
	case "Integer":
		n, err := strconv.ParseInt(*s, 10, 64)
		if err != nil {
			return fmt.Sprintf("%q is not an integer", *s)
		}
		if k.LowerBound != nil && n < *k.LowerBound {
			return fmt.Sprintf("%d is below the lower bound %d", n, *k.LowerBound)
		}
		if k.UpperBound != nil && n > *k.UpperBound {
			return fmt.Sprintf("%d is above the upper bound %d", n, *k.UpperBound)
		}
	case "String", "Password":
		if _, ok := v.(string); !ok {
			return "the value must be a string"
		}
		if k.MinLength != nil && int64(len(*s)) < *k.MinLength {
			return fmt.Sprintf("the value is shorter than %d characters", *k.MinLength)
		}
		if k.MaxLength != nil && int64(len(*s)) > *k.MaxLength {
			return fmt.Sprintf("the value is longer than %d characters", *k.MaxLength)
		}
	case "Boolean":
		if _, err := strconv.ParseBool(*s); err != nil {
			return fmt.Sprintf("%q is not a boolean", *s)
		}
	}
	return ""
}

// cacheBIOS stores the settings the node's bios interface reads. As Ironic's, a failure is
// logged and changes nothing else: the cache is a view, not a condition of the operation.
func (c *Conductor) cacheBIOS(ctx context.Context, t *Task) {
	r, ok := t.Driver.Impl(ironwork.BIOSInterface).(BIOSReader)
	if !ok {
		return
	}
	settings, err := r.BIOSSettings(ctx, t)
	if err == nil {
		err = c.store.PutBIOSSettings(ctx, t.Node.ID, settings)
	}
	if err != nil {
		t.Log.Warn("cache bios settings", "error", err)
		return
	}
	t.Log.Info("bios settings cached", "settings", len(settings))
}

// checkSteps checks requested steps before any work starts: with disableRamdisk, no step may
// need the deploy ramdisk; bios.apply_configuration's settings must fit the cached registry,
// firmware.update's must be well formed.
func (c *Conductor) checkSteps(ctx context.Context, t *Task, kind StepKind, steps []Step, disableRamdisk bool) error {
	for _, s := range steps {
		if disableRamdisk && s.RequiresRamdisk {
			return ironwork.Errorf(ironwork.EINVALID, "The %s step %s.%s needs the deploy ramdisk and cannot run with disable_ramdisk; only out-of-band steps can.",
				kind, s.Interface, s.Name)
		}
		if err := checkFirmwareStep(s); err != nil {
			return err
		}
		if s.Interface != ironwork.BIOSInterface || s.Name != StepApplyBIOS {
			continue
		}
		want, err := BIOSSettingsArg(s.Args)
		if err != nil {
			return err
		}
		known, err := c.store.ListBIOSSettings(ctx, t.Node.ID)
		if err != nil {
			return err
		}
		if err := CheckBIOSSettings(known, want); err != nil {
			return err
		}
	}
	return nil
}
