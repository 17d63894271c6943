package conductor

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// instanceTraits returns instance_info.traits, which must be a list of strings that are all
// traits of the node, as Ironic checks before a deploy.
func instanceTraits(n *ironwork.Node) ([]string, error) {
	raw, ok := n.InstanceInfo["traits"]
	if !ok || raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		if empty, isStr := raw.(string); isStr && empty == "" {
			return nil, nil
		}
		return nil, fmt.Errorf("Error parsing traits from Node %s instance_info field. A list of strings is expected.", n.UUID)
	}
	var out, missing []string
	for _, v := range list {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("Error parsing traits from Node %s instance_info field. A list of strings is expected.", n.UUID)
		}
		out = append(out, s)
		if !slices.Contains(n.Traits, s) && !slices.Contains(missing, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("Cannot specify instance traits that are not also set on the node. Node %s is missing traits %s",
			n.UUID, strings.Join(missing, ", "))
	}
	return out, nil
}

// templateSteps returns the steps of the deploy templates named by the node's instance traits.
// failure is not nil when a template names a step the node's driver does not offer: the deploy
// then fails with it, as Ironic's does once it validates the steps.
func (c *Conductor) templateSteps(ctx context.Context, t *Task, traits []string) (steps []Step, failure error, err error) {
	if len(traits) == 0 {
		return nil, nil, nil
	}
	templates, err := c.store.ListDeployTemplates(ctx, sqlstore.DeployTemplateFilter{Names: traits}, sqlstore.Page{SortKey: "id"})
	if err != nil {
		return nil, nil, fmt.Errorf("list deploy templates: %w", err)
	}
	offered := offeredSteps(t.Driver, DeploySteps)
	var names, errs []string
	for _, tpl := range templates {
		names = append(names, tpl.Name)
		for _, ts := range tpl.Steps {
			st := Step{Interface: ts.Interface, Name: ts.Step, Priority: ts.Priority, Args: ts.Args}
			if st.Args == nil {
				st.Args = map[string]any{}
			}
			found := reservedSteps[st.Name]
			for _, o := range offered {
				if o.Interface == st.Interface && o.Name == st.Name {
					st.Abortable, st.RequiresRamdisk, found = o.Abortable, o.RequiresRamdisk, true
				}
			}
			if !found {
				errs = append(errs, "node does not support this deploy step: "+pyStep(ts))
				continue
			}
			steps = append(steps, st)
		}
	}
	if len(errs) > 0 {
		failure = ironwork.Errorf(ironwork.EINVALID, "Validation of deploy steps from deploy templates matching this node's instance traits failed. Matching deploy templates: %s. Errors: %s",
			strings.Join(names, ","), strings.Join(errs, "; "))
	}
	return steps, failure, nil
}

// pyStep shows a template step as Ironic's messages do: a Python dict.
func pyStep(s ironwork.DeployTemplateStep) string {
	keys := make([]string, 0, len(s.Args))
	for k := range s.Args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var args []string
	for _, k := range keys {
		args = append(args, fmt.Sprintf("'%s': %s", k, pyValue(s.Args[k])))
	}
	return fmt.Sprintf("{'interface': '%s', 'step': '%s', 'args': {%s}, 'priority': %d}", s.Interface, s.Step, strings.Join(args, ", "), s.Priority)
}

func pyValue(v any) string {
	switch x := v.(type) {
	case string:
		return "'" + x + "'"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case nil:
		return "None"
	}
	return fmt.Sprint(v)
}

// mergeDeploySteps combines the driver's enabled deploy steps with overriding steps (user's
// first, then templates'): an override replaces the driver's step of the same interface and
// name, and runs only when its priority is positive.
func mergeDeploySteps(driver, user, templates []Step) []Step {
	key := func(s Step) string { return string(s.Interface) + "." + s.Name }
	overrides := slices.Clone(user)
	have := map[string]bool{}
	for _, s := range user {
		have[key(s)] = true
	}
	for _, s := range templates {
		if !have[key(s)] {
			overrides = append(overrides, s)
			have[key(s)] = true
		}
	}
	var out []Step
	for _, s := range driver {
		if !have[key(s)] {
			out = append(out, s)
		}
	}
	for _, s := range overrides {
		if s.Priority > 0 {
			out = append(out, s)
		}
	}
	sortSteps(out)
	return out
}
