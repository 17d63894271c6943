package conductor

import (
	"context"
	"time"

	"github.com/ironwork/ironwork"
)

// RAIDConfigValidator is a raid interface that can build RAID: it checks a target RAID
// configuration (already checked against Ironic's schema) against what it can build, before
// the configuration is stored. A raid interface without it ("no-raid") refuses every target.
type RAIDConfigValidator interface {
	ValidateRAIDConfig(ctx context.Context, t *Task, disks []ironwork.LogicalDisk) error
}

// SetTargetRAID records the RAID configuration the next cleaning applies. An empty
// configuration clears it; any other is checked against Ironic's schema and the node's raid
// interface before anything is stored.
func (c *Conductor) SetTargetRAID(ctx context.Context, req SetTargetRAIDRequest) error {
	cfg := req.Config
	var disks []ironwork.LogicalDisk
	if len(cfg) > 0 {
		var err error
		if disks, err = ironwork.ParseRAIDConfig(cfg); err != nil {
			return err
		}
	}
	return c.withLock(ctx, req.Node, func(t *Task) error {
		if len(cfg) > 0 {
			v, ok := t.Driver.Impl(ironwork.RAIDInterface).(RAIDConfigValidator)
			if !ok {
				return ironwork.Errorf(ironwork.EINVALID, "Driver %s does not support raid (disabled or not implemented).", t.Node.Driver)
			}
			if err := v.ValidateRAIDConfig(ctx, t, disks); err != nil {
				return asInvalid(err)
			}
		} else {
			cfg = ironwork.JSONObject{}
		}
		return t.Save(ctx, func(n *ironwork.Node) { n.TargetRAIDConfig = cfg })
	})
}

// asInvalid gives an error without a kind the kind EINVALID: a configuration a driver refuses
// is the caller's to fix.
func asInvalid(err error) error {
	if ironwork.ErrorCode(err) == ironwork.EINTERNAL {
		return &ironwork.Error{Code: ironwork.EINVALID, Message: err.Error(), Err: err}
	}
	return err
}

// TargetRAID reads a node's target_raid_config; an error when it has none, as Ironic's
// "Node X has no target RAID configuration.".
func TargetRAID(n *ironwork.Node) ([]ironwork.LogicalDisk, error) {
	if len(n.TargetRAIDConfig) == 0 {
		return nil, ironwork.Errorf(ironwork.EINVALID, "Node %s has no target RAID configuration.", n.UUID)
	}
	return ironwork.ParseRAIDConfig(n.TargetRAIDConfig)
}

// RecordRAID stores the RAID configuration a raid interface built in raid_config, and, as
// Ironic's update_raid_info, points the node at its root volume: local_gb, the root device
// hint the interface found for it and the raid_level capability. No volumes clears raid_config.
// volumes are the logical disks as built (rendered with LogicalDisk.Object, plus whatever the
// interface adds); rootHint is the root device hint of the root volume, or nil.
func RecordRAID(ctx context.Context, t *Task, volumes []ironwork.JSONObject, root *ironwork.LogicalDisk, rootHint map[string]any) error {
	return t.Save(ctx, func(n *ironwork.Node) {
		if len(volumes) == 0 {
			n.RAIDConfig = ironwork.JSONObject{}
			return
		}
		list := make([]any, len(volumes))
		for i, v := range volumes {
			list[i] = v
		}
		n.RAIDConfig = ironwork.JSONObject{"logical_disks": list,
			"last_updated": time.Now().UTC().Format("2006-01-02 15:04:05.000000")}
		if root == nil {
			return
		}
		if n.Properties == nil {
			n.Properties = ironwork.JSONObject{}
		}
		if !root.SizeMax {
			n.Properties["local_gb"] = root.SizeGB
		}
		if rootHint != nil {
			n.Properties["root_device"] = rootHint
		}
		n.Properties["capabilities"] = withCapability(n.Properties["capabilities"], "raid_level", root.RAIDLevel)
	})
}
