package ironwork

import "slices"

// Verb is a target of PUT /v1/nodes/{node}/states/provision: the event it sends to the state
// machine, the API microversion that introduced it, and the body fields it uses.
type Verb struct {
	Name  string
	Event Event
	// Since is the minor API version (1.Since) that introduced the verb.
	Since int
	// Fields are the body fields besides target that the verb uses; Required, when set, is
	// one of them that must be given and not empty.
	Fields   []string
	Required string
}

// Uses reports whether the verb uses a body field.
func (v Verb) Uses(field string) bool { return slices.Contains(v.Fields, field) }

// ProvisionField is a body field of a provision request besides target.
type ProvisionField struct {
	Name string
	// Since is the minor API version that introduced the field.
	Since int
	// Exclusive fields are refused with a verb that does not use them; others are accepted and
	// ignored, as Ironic does.
	Exclusive bool
}

// ProvisionVerbs lists the provision verbs, Ironic's names and aliases.
func ProvisionVerbs() []Verb {
	deploy := []string{"configdrive", "deploy_steps"}
	return []Verb{
		{Name: "active", Event: EventDeploy, Since: 1, Fields: deploy},
		{Name: "deploy", Event: EventDeploy, Since: 73, Fields: deploy},
		{Name: "rebuild", Event: EventRebuild, Since: 1, Fields: deploy},
		{Name: "deleted", Event: EventDelete, Since: 1},
		{Name: "undeploy", Event: EventDelete, Since: 73},
		{Name: "manage", Event: EventManage, Since: 4},
		{Name: "provide", Event: EventProvide, Since: 4},
		{Name: "inspect", Event: EventInspect, Since: 6},
		{Name: "abort", Event: EventAbort, Since: 13},
		{Name: "clean", Event: EventClean, Since: 15, Fields: []string{"clean_steps", "disable_ramdisk", "runbook"}, Required: "clean_steps"},
		{Name: "adopt", Event: EventAdopt, Since: 17},
		{Name: "rescue", Event: EventRescue, Since: 38, Fields: []string{"rescue_password"}},
		{Name: "unrescue", Event: EventUnrescue, Since: 38},
		{Name: "unhold", Event: EventUnhold, Since: 85},
		{Name: "service", Event: EventService, Since: 87, Fields: []string{"service_steps", "disable_ramdisk", "runbook"}, Required: "service_steps"},
	}
}

// LookupVerb returns the provision verb called name.
func LookupVerb(name string) (Verb, bool) {
	for _, v := range ProvisionVerbs() {
		if v.Name == name {
			return v, true
		}
	}
	return Verb{}, false
}

// ProvisionFields lists the body fields of a provision request besides target.
func ProvisionFields() []ProvisionField {
	return []ProvisionField{
		{Name: "configdrive", Since: 1},
		{Name: "clean_steps", Since: 15, Exclusive: true},
		{Name: "rescue_password", Since: 38},
		{Name: "deploy_steps", Since: 69},
		{Name: "disable_ramdisk", Since: 70},
		{Name: "service_steps", Since: 87},
		{Name: "runbook", Since: 92, Exclusive: true},
	}
}

// VerbsUsing lists the names of the verbs that use a body field.
func VerbsUsing(field string) []string {
	var out []string
	for _, v := range ProvisionVerbs() {
		if v.Uses(field) {
			out = append(out, v.Name)
		}
	}
	return out
}
