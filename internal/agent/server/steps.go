package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/agent"
)

// The hardware manager the steps are reported under, and its version: Ironic caches steps
// per version and restarts cleaning when an agent reports another one.
const (
	hardwareManager        = "GenericHardwareManager"
	hardwareManagerKey     = "generic_hardware_manager"
	hardwareManagerVersion = "1.1"
)

type step struct {
	Step            string `json:"step"`
	Priority        int    `json:"priority"`
	Interface       string `json:"interface"`
	RebootRequested bool   `json:"reboot_requested"`
	Abortable       bool   `json:"abortable"`
}

// cleanSteps are IPA's defaults: metadata erasure runs first in automated cleaning, the
// full erase after.
func cleanSteps() []step {
	return []step{
		{Step: "erase_devices", Priority: 10, Interface: "deploy", Abortable: true},
		{Step: "erase_devices_metadata", Priority: 99, Interface: "deploy", Abortable: true},
		// Software RAID (controller "software" in target_raid_config), for manual cleaning
		// as in IPA.
		{Step: "delete_configuration", Priority: 0, Interface: "raid", Abortable: true},
		{Step: "create_configuration", Priority: 0, Interface: "raid", Abortable: true},
	}
}

// deploySteps: IPA's in-band deploy steps have priority 0; Ironic's own write_image step
// (priority 80) proxies to the agent's by name.
func deploySteps() []step {
	return []step{
		{Step: "erase_devices_metadata", Priority: 0, Interface: "deploy"},
		{Step: "write_image", Priority: 0, Interface: "deploy"},
	}
}

func stepsAnswer(key string, steps []step) map[string]any {
	return map[string]any{
		key:                        map[string][]step{hardwareManager: steps},
		"hardware_manager_version": map[string]string{hardwareManagerKey: hardwareManagerVersion},
	}
}

func (m *Machine) getCleanSteps(context.Context, map[string]any, ProgressFunc) (any, error) {
	return stepsAnswer("clean_steps", cleanSteps()), nil
}

func (m *Machine) getDeploySteps(context.Context, map[string]any, ProgressFunc) (any, error) {
	return stepsAnswer("deploy_steps", deploySteps()), nil
}

// checkVersion refuses steps computed for another hardware manager version, as IPA does;
// Ironic sees the VersionMismatch type and fetches the steps again.
func checkVersion(v any) error {
	versions, ok := v.(map[string]any)
	if !ok || len(versions) == 0 {
		return nil
	}
	if got := str(versions[hardwareManagerKey]); got != "" && got != hardwareManagerVersion {
		return &Error{Type: "VersionMismatch", Code: http.StatusConflict, Message: "Hardware managers version mismatch",
			Details: fmt.Sprintf("agent has %s %s, request was for %s", hardwareManagerKey, hardwareManagerVersion, got)}
	}
	return nil
}

func parseStep(params map[string]any) (map[string]any, string, map[string]any, error) {
	st, ok := params["step"].(map[string]any)
	if !ok {
		return nil, "", nil, errors.New("step is required and must be an object")
	}
	name := str(st["step"])
	if name == "" {
		return nil, "", nil, errors.New("step.step (the step name) is required")
	}
	args, _ := st["args"].(map[string]any)
	if args == nil {
		args = map[string]any{}
	}
	return st, name, args, nil
}

func (m *Machine) executeCleanStep(ctx context.Context, params map[string]any, progress ProgressFunc) (any, error) {
	st, name, args, err := parseStep(params)
	if err != nil {
		return nil, err
	}
	if err := checkVersion(params["clean_version"]); err != nil {
		return nil, err
	}
	var result any
	switch iface := str(st["interface"]); {
	case iface == "raid" && name == "create_configuration":
		result, err = m.createRAID(ctx, params, args)
	case iface == "raid" && name == "delete_configuration":
		err = m.deleteRAID()
	case iface == "raid":
		err = unknownStep("clean", name)
	case name == "erase_devices_metadata":
		err = m.eraseMetadata(ctx)
	case name == "erase_devices":
		result, err = m.eraseDevices(ctx, progress)
	default:
		err = unknownStep("clean", name)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"clean_result": result, "clean_step": st}, nil
}

func (m *Machine) executeDeployStep(ctx context.Context, params map[string]any, progress ProgressFunc) (any, error) {
	st, name, args, err := parseStep(params)
	if err != nil {
		return nil, err
	}
	if err := checkVersion(params["deploy_version"]); err != nil {
		return nil, err
	}
	var result any
	switch name {
	case "write_image":
		result, err = m.prepareImage(ctx, args, progress, true)
	case "erase_devices_metadata":
		err = m.eraseMetadata(ctx)
	default:
		err = unknownStep("deploy", name)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"deploy_result": result, "deploy_step": st}, nil
}

func unknownStep(kind, name string) error {
	return &Error{Type: "HardwareManagerMethodNotFound", Code: http.StatusBadRequest, Message: "No HardwareManager found to handle method",
		Details: fmt.Sprintf("unknown %s step %q", kind, name)}
}

// cleanTargets are the disks cleaning touches: only --root-device when set, else every disk,
// a software RAID array rather than its members (whose RAID metadata stays: the array
// survives cleaning until raid.delete_configuration).
func (m *Machine) cleanTargets() ([]string, error) {
	if m.RootDevice != "" {
		return []string{m.RootDevice}, nil
	}
	m.assembleRAID()
	members := m.raidMembers()
	disks, err := agent.ListDisks(m.sysRoot())
	if err != nil {
		return nil, fmt.Errorf("list disks: %w", err)
	}
	names := make([]string, 0, len(disks))
	for _, d := range disks {
		if !members[d.Name] {
			names = append(names, d.Name)
		}
	}
	return names, nil
}

func (m *Machine) eraseMetadata(ctx context.Context) error {
	targets, err := m.cleanTargets()
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range targets {
		if err := agent.EraseMetadata(ctx, t); err != nil {
			errs = append(errs, err)
			continue
		}
		m.log().Info("disk metadata erased", logKeyDevice, t)
	}
	return errors.Join(errs...)
}

func (m *Machine) eraseDevices(ctx context.Context, progress ProgressFunc) (any, error) {
	targets, err := m.cleanTargets()
	if err != nil {
		return nil, err
	}
	methods := map[string]string{}
	for _, t := range targets {
		method, err := agent.EraseDevice(ctx, t, func(r agent.ProgressReport) {
			progress(api.Progress{BytesDone: r.Written, BytesTotal: r.Total, BytesPerSecond: r.BytesPerSecond})
		})
		if err != nil {
			return nil, err
		}
		methods[t] = string(method)
		m.log().Info("disk erased", logKeyDevice, t, "method", string(method))
	}
	return methods, nil
}
