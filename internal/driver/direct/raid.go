package direct

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/conductor"
)

// RAID is the agent raid interface (Ironic's AgentRAID, for software RAID): its clean steps
// create_configuration and delete_configuration are run by the deploy agent
// (clean.execute_clean_step with interface "raid"), which builds md arrays over whole disks
// from the node's target_raid_config. The agent's result becomes raid_config, and the root
// logical disk's md device the root device hint, so the deploy writes the image once, onto
// the mirror. The steps need the agent: a manual clean runs deploy.boot_agent first. Heartbeats
// go to the direct deploy interface, which shares the agent client, so the node's deploy
// interface must be direct.
type RAID struct{ deploy *Interface }

// NewRAID returns the agent raid interface that talks to agents through deploy.
func NewRAID(deploy *Interface) RAID { return RAID{deploy: deploy} }

var (
	_ conductor.StepProvider        = RAID{}
	_ conductor.StepRunner          = RAID{}
	_ conductor.RAIDConfigValidator = RAID{}
	_ conductor.Validator           = RAID{}
)

// Steps implements conductor.StepProvider: Ironic's agent raid clean steps, priority 0
// (manual cleaning), both needing the ramdisk.
func (RAID) Steps(kind conductor.StepKind) []conductor.Step {
	if kind != conductor.CleanSteps {
		return nil
	}
	return []conductor.Step{
		{Name: "delete_configuration", RequiresRamdisk: true, Abortable: true},
		{Name: "create_configuration", RequiresRamdisk: true, Abortable: true},
	}
}

// Validate implements conductor.Validator: heartbeats reach the agent's steps only through
// the direct deploy interface, and a target configuration must be one the agent builds.
func (r RAID) Validate(ctx context.Context, t *conductor.Task) error {
	if d := t.Node.Interfaces[ironwork.DeployInterface]; d != "" && d != "direct" {
		return fmt.Errorf("the agent raid interface needs the direct deploy interface, not %q", d)
	}
	if len(t.Node.TargetRAIDConfig) == 0 {
		return nil
	}
	disks, err := ironwork.ParseRAIDConfig(t.Node.TargetRAIDConfig)
	if err != nil {
		return err
	}
	return r.ValidateRAIDConfig(ctx, t, disks)
}

// ValidateRAIDConfig implements conductor.RAIDConfigValidator with IPA's software RAID rules
// (ironwork.CheckSoftwareRAID): the agent builds software RAID only.
func (RAID) ValidateRAIDConfig(_ context.Context, _ *conductor.Task, disks []ironwork.LogicalDisk) error {
	return ironwork.CheckSoftwareRAID(disks)
}

// RunStep implements conductor.StepRunner: the step goes to the agent; the node waits for
// its end (a heartbeat), when raid_config is recorded.
func (r RAID) RunStep(ctx context.Context, t *conductor.Task, step conductor.Step) (bool, error) {
	switch step.Name {
	case "create_configuration":
		disks, err := conductor.TargetRAID(t.Node)
		if err != nil {
			return false, err
		}
		if err := ironwork.CheckSoftwareRAID(disks); err != nil {
			return false, err
		}
	case "delete_configuration":
	default:
		return false, fmt.Errorf("the agent raid interface has no step %q", step.Name)
	}
	step.Interface = ironwork.RAIDInterface
	return r.deploy.start(ctx, t, step)
}

// raidCommand is the agent command of a raid step: the node goes with it, its
// target_raid_config among what the agent reads.
func raidCommand(n *ironwork.Node, step conductor.Step) (string, map[string]any, error) {
	switch step.Name {
	case "create_configuration", "delete_configuration":
	default:
		return "", nil, fmt.Errorf("the agent raid interface has no step %q", step.Name)
	}
	return "clean.execute_clean_step", map[string]any{
		"step": map[string]any{"interface": "raid", "step": step.Name, "priority": step.Priority, "args": step.Args},
		"node": map[string]any{"uuid": n.UUID, "properties": n.Properties, "instance_info": withoutSecrets(n.InstanceInfo),
			"target_raid_config": n.TargetRAIDConfig},
		"ports": []any{}}, nil
}

// cleanOutcome is the command_result of clean.execute_clean_step.
type cleanOutcome struct {
	Step struct {
		Interface string `json:"interface"`
		Step      string `json:"step"`
	} `json:"clean_step"`
	Result json.RawMessage `json:"clean_result"`
}

// raidOutcome reads the raid step and its result from a clean.execute_clean_step command
// record; ok is false for any other command. Agents name the command without its extension
// in their records ("execute_clean_step"), as IPA does.
func raidOutcome(res api.CommandResult) (step string, result json.RawMessage, ok bool) {
	if (res.CommandName != "execute_clean_step" && res.CommandName != "clean.execute_clean_step") || len(res.CommandResult) == 0 {
		return "", nil, false
	}
	var out cleanOutcome
	if err := json.Unmarshal(res.CommandResult, &out); err != nil || out.Step.Interface != "raid" {
		return "", nil, false
	}
	return out.Step.Step, out.Result, true
}

// finished acts on the result of an agent command that ended well: a raid step's result
// becomes the node's raid_config (as Ironic's update_raid_info).
func finished(ctx context.Context, t *conductor.Task, res api.CommandResult) error {
	step, result, ok := raidOutcome(res)
	if !ok {
		return nil
	}
	switch step {
	case "delete_configuration":
		if err := conductor.RecordRAID(ctx, t, nil, nil, nil); err != nil {
			return err
		}
		return t.Save(ctx, func(n *ironwork.Node) {
			if h, ok := n.Properties["root_device"].(map[string]any); ok && len(h) == 1 {
				if name, _ := h["name"].(string); strings.HasPrefix(name, "/dev/md") {
					delete(n.Properties, "root_device")
				}
			}
		})
	case "create_configuration":
		return recordSoftwareRAID(ctx, t, result)
	}
	return nil
}

// recordSoftwareRAID stores what the agent built: raid_config, and for the root logical disk
// (is_root_volume, else the first) local_gb, the raid_level capability and the root device
// hint {"name": its md device}.
func recordSoftwareRAID(ctx context.Context, t *conductor.Task, raw json.RawMessage) error {
	var built struct {
		LogicalDisks []map[string]any `json:"logical_disks"`
	}
	if err := json.Unmarshal(raw, &built); err != nil {
		return fmt.Errorf("read the agent's software RAID result: %w", err)
	}
	if len(built.LogicalDisks) == 0 {
		return fmt.Errorf("the agent built no software RAID volume")
	}
	volumes := make([]ironwork.JSONObject, 0, len(built.LogicalDisks))
	rootAt := 0
	for i, ld := range built.LogicalDisks {
		volumes = append(volumes, ironwork.JSONObject(ld))
		if r, _ := ld["is_root_volume"].(bool); r {
			rootAt = i
		}
	}
	rootObj := built.LogicalDisks[rootAt]
	root := &ironwork.LogicalDisk{RAIDLevel: fmt.Sprint(rootObj["raid_level"])}
	switch v := rootObj["size_gb"].(type) {
	case float64:
		root.SizeGB = int64(v)
	default:
		root.SizeMax = true
	}
	var hint map[string]any
	if dev, _ := rootObj["device"].(string); dev != "" {
		hint = map[string]any{"name": dev}
	}
	return conductor.RecordRAID(ctx, t, volumes, root, hint)
}
