package conductor

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ironwork/ironwork"
)

// StepKind says which kind of steps: clean, deploy or service.
type StepKind string

// Step kinds.
const (
	CleanSteps   StepKind = "clean"
	DeploySteps  StepKind = "deploy"
	ServiceSteps StepKind = "service"
)

// Step is one clean, deploy or service step, as Ironic shows it in clean_step and deploy_step.
type Step struct {
	Interface       ironwork.InterfaceKind `json:"interface"`
	Name            string                 `json:"step"`
	Priority        int                    `json:"priority"`
	Args            map[string]any         `json:"args"`
	Abortable       bool                   `json:"abortable"`
	RequiresRamdisk bool                   `json:"requires_ramdisk,omitempty"`
}

// Object returns the step as a node field value.
func (s Step) Object() ironwork.JSONObject {
	args := s.Args
	if args == nil {
		args = map[string]any{}
	}
	return ironwork.JSONObject{"interface": string(s.Interface), "step": s.Name, "priority": s.Priority,
		"args": args, "abortable": s.Abortable}
}

// interfaceOrder breaks priority ties between interfaces, as Ironic's step ordering does.
var interfaceOrder = map[ironwork.InterfaceKind]int{
	ironwork.FirmwareInterface:   7,
	ironwork.VendorInterface:     6,
	ironwork.PowerInterface:      5,
	ironwork.ManagementInterface: 4,
	ironwork.DeployInterface:     3,
	ironwork.BIOSInterface:       2,
	ironwork.RAIDInterface:       1,
}

// offeredSteps lists the steps of a kind that the node's interfaces offer.
func offeredSteps(d *Driver, kind StepKind) []Step {
	var out []Step
	for _, k := range ironwork.InterfaceKinds {
		if p, ok := d.impl[k].(StepProvider); ok {
			for _, s := range p.Steps(kind) {
				s.Interface = k
				out = append(out, s)
			}
		}
	}
	return out
}

// sortSteps orders steps by priority, highest first, then by interface.
func sortSteps(steps []Step) {
	sort.SliceStable(steps, func(i, j int) bool {
		if steps[i].Priority != steps[j].Priority {
			return steps[i].Priority > steps[j].Priority
		}
		return interfaceOrder[steps[i].Interface] > interfaceOrder[steps[j].Interface]
	})
}

// automaticSteps returns the offered steps with a positive priority, in execution order.
func automaticSteps(d *Driver, kind StepKind) []Step {
	var out []Step
	for _, s := range offeredSteps(d, kind) {
		if s.Priority > 0 {
			out = append(out, s)
		}
	}
	sortSteps(out)
	return out
}

// reservedSteps are steps the conductor itself runs, whatever the driver offers.
var reservedSteps = map[string]bool{"hold": true, "wait": true, "power_on": true, "power_off": true, "reboot": true}

// manualSteps checks requested steps ({"interface", "step", "args"}) against what the node's
// interfaces offer, and returns them in the order given.
func manualSteps(d *Driver, kind StepKind, requested []StepRequest) ([]Step, error) {
	if len(requested) == 0 {
		return nil, ironwork.Errorf(ironwork.EINVALID, "No %s steps were given.", kind)
	}
	offered := offeredSteps(d, kind)
	var out []Step
	for i, r := range requested {
		iface, name := r.Interface, r.Step
		if iface == "" || name == "" {
			return nil, ironwork.Errorf(ironwork.EINVALID, "%s step %d needs 'interface' and 'step'", kind, i)
		}
		step := Step{Interface: ironwork.InterfaceKind(iface), Name: name, Args: r.Args}
		if r.Priority != nil {
			step.Priority = *r.Priority
		}
		found := reservedSteps[name]
		for _, o := range offered {
			if string(o.Interface) == iface && o.Name == name {
				step.Abortable, step.RequiresRamdisk = o.Abortable, o.RequiresRamdisk
				found = true
			}
		}
		if !found {
			var names []string
			for _, o := range offered {
				names = append(names, string(o.Interface)+"."+o.Name)
			}
			return nil, ironwork.Errorf(ironwork.EINVALID, "%s step %s.%s is not supported by the driver of this node. Supported: %s",
				kind, iface, name, strings.Join(names, ", "))
		}
		out = append(out, step)
	}
	return out, nil
}

// stepsFromInfo reads steps stored in driver_internal_info by stepsToInfo.
func stepsFromInfo(v any) []Step {
	raw, _ := v.([]any)
	var out []Step
	for _, r := range raw {
		m, _ := r.(map[string]any)
		if m == nil {
			continue
		}
		s := Step{Interface: ironwork.InterfaceKind(fmt.Sprint(m["interface"])), Name: fmt.Sprint(m["step"])}
		if p, ok := m["priority"].(float64); ok {
			s.Priority = int(p)
		}
		if p, ok := m["priority"].(int); ok {
			s.Priority = p
		}
		s.Args, _ = m["args"].(map[string]any)
		s.Abortable, _ = m["abortable"].(bool)
		out = append(out, s)
	}
	return out
}

func stepsToInfo(steps []Step) []any {
	out := make([]any, len(steps))
	for i, s := range steps {
		out[i] = map[string]any(s.Object())
	}
	return out
}
