package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/ironwork/ironwork/internal/agent"
)

// SoftwareRAID is the md layer the raid clean steps drive: agent.KernelMD in a ramdisk, a
// fake in tests.
type SoftwareRAID interface {
	// Arrays lists the running arrays.
	Arrays() ([]agent.MDArray, error)
	// Assemble starts the arrays found on the disks that are not running yet.
	Assemble() ([]agent.MDArray, error)
	Create(minor, level int, members []string) (string, error)
	Stop(minor int) error
	// Wipe removes a member's RAID metadata.
	Wipe(device string) error
	// Superblock says whether a device carries RAID metadata.
	Superblock(device string) (agent.MDSuperblock, bool, error)
}

// raidError is a software RAID configuration the agent refuses or cannot build, as IPA's
// SoftwareRAIDError.
func raidError(err error) error {
	return &Error{Type: "SoftwareRAIDError", Code: http.StatusBadRequest, Message: "Software RAID configuration failed", Details: err.Error()}
}

// assembleRAID starts the software RAID arrays found on the disks (they do not start by
// themselves: md_mod is a module, without autodetection), so that root device hints, the
// inventory and cleaning see /dev/mdN. Without a SoftwareRAID (an agent run on a
// workstation) it does nothing.
func (m *Machine) assembleRAID() {
	if m.SoftwareRAID == nil {
		return
	}
	started, err := m.SoftwareRAID.Assemble()
	for _, a := range started {
		m.log().Info("software RAID assembled", logKeyDevice, a.Device(), "level", a.Level, "members", a.Members)
	}
	if err != nil {
		m.log().Warn("assemble software RAID", "error", err)
	}
}

// raidMembers are the disks in running arrays: they are written and erased only through
// their array.
func (m *Machine) raidMembers() map[string]bool {
	members := map[string]bool{}
	if m.SoftwareRAID == nil {
		return members
	}
	arrays, err := m.SoftwareRAID.Arrays()
	if err != nil {
		m.log().Warn("list software RAID arrays", "error", err)
	}
	for _, a := range arrays {
		for _, d := range a.Members {
			members[d] = true
		}
	}
	return members
}

// nodeRAIDConfig is the target_raid_config of the node the conductor sent with the step (or
// of the node from lookup).
func (m *Machine) nodeRAIDConfig(params map[string]any) map[string]any {
	if n, ok := params["node"].(map[string]any); ok {
		if c, ok := n["target_raid_config"].(map[string]any); ok {
			return c
		}
	}
	c, _ := m.Node["target_raid_config"].(map[string]any)
	return c
}

// createRAID is the raid.create_configuration clean step (IPA's for controller "software"):
// the node's target_raid_config is checked and placed on the disks before anything changes;
// with delete_existing the running arrays go first. The result is the configuration as
// built: each logical disk with its member disks as physical_disks and its md device.
func (m *Machine) createRAID(_ context.Context, params, args map[string]any) (any, error) {
	if m.SoftwareRAID == nil {
		return nil, raidError(errors.New("this agent has no md layer (it does not run in the deploy ramdisk)"))
	}
	cfg := m.nodeRAIDConfig(params)
	if len(cfg) == 0 {
		return nil, raidError(errors.New("the node has no target_raid_config"))
	}
	logical, err := agent.ParseSoftwareRAID(cfg)
	if err != nil {
		return nil, raidError(err)
	}
	raw, _ := cfg["logical_disks"].([]any)
	root, nonRoot := boolArg(args, "create_root_volume", true), boolArg(args, "create_nonroot_volumes", true)
	if boolArg(args, "delete_existing", false) {
		if err := m.deleteRAID(); err != nil {
			return nil, err
		}
	}
	m.assembleRAID()
	arrays, err := m.SoftwareRAID.Arrays()
	if err != nil {
		return nil, raidError(err)
	}
	if len(arrays) > 0 {
		return nil, raidError(fmt.Errorf("%s already exists: delete the software RAID configuration first (raid.delete_configuration, or delete_existing: true)", arrays[0].Device()))
	}
	disks, err := agent.ListDisks(m.sysRoot())
	if err != nil {
		return nil, fmt.Errorf("list disks: %w", err)
	}
	plan, err := agent.PlanSoftwareRAID(logical, disks)
	if err != nil {
		return nil, raidError(err)
	}
	var built []any
	for _, a := range plan {
		ld, _ := raw[a.Logical].(map[string]any)
		isRoot, _ := ld["is_root_volume"].(bool)
		if a.Logical == 0 && !isRoot && !hasRoot(raw) {
			isRoot = true // IPA: without is_root_volume, the first logical disk is the root
		}
		if (isRoot && !root) || (!isRoot && !nonRoot) {
			continue
		}
		for _, d := range a.Members {
			if err := m.SoftwareRAID.Wipe(d); err != nil {
				return nil, fmt.Errorf("wipe the RAID metadata of %s: %w", d, err)
			}
		}
		dev, err := m.SoftwareRAID.Create(a.Minor, a.Level, a.Members)
		if err != nil {
			return nil, raidError(err)
		}
		m.log().Info("software RAID created", logKeyDevice, dev, "level", a.Level, "members", a.Members, "bytes", a.Size)
		out := map[string]any{}
		for k, v := range ld {
			out[k] = v
		}
		members := make([]any, len(a.Members))
		for i, d := range a.Members {
			members[i] = d
		}
		out["controller"], out["physical_disks"], out["device"] = "software", members, dev
		built = append(built, out)
	}
	return map[string]any{"logical_disks": built}, nil
}

func hasRoot(raw []any) bool {
	return slices.ContainsFunc(raw, func(v any) bool {
		ld, _ := v.(map[string]any)
		r, _ := ld["is_root_volume"].(bool)
		return r
	})
}

// deleteRAID is the raid.delete_configuration clean step: every running array is stopped
// and the RAID metadata of every disk that has some is wiped (arrays not running included).
func (m *Machine) deleteRAID() error {
	if m.SoftwareRAID == nil {
		return raidError(errors.New("this agent has no md layer (it does not run in the deploy ramdisk)"))
	}
	arrays, err := m.SoftwareRAID.Arrays()
	if err != nil {
		return raidError(err)
	}
	for _, a := range arrays {
		if err := m.SoftwareRAID.Stop(a.Minor); err != nil {
			return fmt.Errorf("stop %s: %w", a.Device(), err)
		}
		m.log().Info("software RAID stopped", logKeyDevice, a.Device())
	}
	disks, err := agent.ListDisks(m.sysRoot())
	if err != nil {
		return fmt.Errorf("list disks: %w", err)
	}
	for _, d := range disks {
		_, ok, err := m.SoftwareRAID.Superblock(d.Name)
		if err != nil || !ok {
			continue
		}
		if err := m.SoftwareRAID.Wipe(d.Name); err != nil {
			return fmt.Errorf("wipe the RAID metadata of %s: %w", d.Name, err)
		}
		m.log().Info("software RAID metadata wiped", logKeyDevice, d.Name)
	}
	return nil
}

// stopRAID stops the running arrays before the node powers off, so their metadata says clean:
// the next assembly starts no resync (which would compete with the next image write).
// Failures are logged: powering off goes on.
func (m *Machine) stopRAID() {
	if m.SoftwareRAID == nil {
		return
	}
	arrays, err := m.SoftwareRAID.Arrays()
	if err != nil {
		m.log().Warn("list software RAID arrays", "error", err)
	}
	for _, a := range arrays {
		if err := m.SoftwareRAID.Stop(a.Minor); err != nil {
			m.log().Warn("stop software RAID before powering off", logKeyDevice, a.Device(), "error", err)
		}
	}
}

func boolArg(args map[string]any, key string, def bool) bool {
	switch v := args[key].(type) {
	case bool:
		return v
	case string:
		switch v {
		case "true", "True", "1", "yes":
			return true
		case "false", "False", "0", "no":
			return false
		}
	}
	return def
}
