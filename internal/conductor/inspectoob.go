package conductor

import (
	"context"
	"fmt"
	"time"

	"github.com/ironwork/ironwork"
)

// inspectOutOfBand inspects a node through its BMC (the redfish inspect interface): no boot,
// no agent. What the BMC reports sets the properties (cpus, cpu_arch, memory_mb, local_gb and
// the boot_mode capability, the others kept) and adds a port for every MAC address the node
// has none for, as Ironic's out-of-band inspection does; the node is manageable again.
func (c *Conductor) inspectOutOfBand(ctx context.Context, t *Task, hw HardwareInspector) {
	res, err := hw.InspectHardware(ctx, t)
	if err != nil {
		c.fail(ctx, t, fmt.Errorf("Failed to inspect hardware. Reason: %s", errText(err)))
		return
	}
	if err := c.addInspectedPorts(ctx, t.Node, res.MACs); err != nil {
		c.fail(ctx, t, fmt.Errorf("Failed to inspect hardware. Reason: %s", errText(err)))
		return
	}
	end := time.Now().UTC()
	if err := t.Save(ctx, func(n *ironwork.Node) {
		if n.Properties == nil {
			n.Properties = ironwork.JSONObject{}
		}
		for k, v := range outOfBandProperties(res, n.Properties) {
			n.Properties[k] = v
		}
		n.InspectionFinishedAt = &end
	}); err != nil {
		c.fail(ctx, t, err)
		return
	}
	t.Log.Info("out-of-band inspection done", "cpus", res.CPUs, "memory_mb", res.MemoryMB, "local_gb", res.LocalGB, "macs", len(res.MACs))
	c.transitionOrLog(ctx, t, ironwork.EventDone, "")
}

// outOfBandProperties are the node properties an out-of-band inspection sets; what the BMC did
// not report is left as it was.
func outOfBandProperties(res *InspectResult, props ironwork.JSONObject) ironwork.JSONObject {
	set := ironwork.JSONObject{"local_gb": res.LocalGB}
	if res.CPUs > 0 {
		set["cpus"] = res.CPUs
	}
	if res.CPUArch != "" {
		set["cpu_arch"] = res.CPUArch
	}
	if res.MemoryMB > 0 {
		set["memory_mb"] = res.MemoryMB
	}
	if res.BootMode == "uefi" || res.BootMode == "bios" {
		set["capabilities"] = withCapability(props["capabilities"], "boot_mode", res.BootMode)
	}
	return set
}

// addInspectedPorts creates a port for each MAC address the node has none for; a MAC that
// another node's port has is logged and skipped, as inventory ports are.
func (c *Conductor) addInspectedPorts(ctx context.Context, n *ironwork.Node, macs []string) error {
	existing, err := c.store.PortsOfNode(ctx, n.ID)
	if err != nil {
		return fmt.Errorf("list ports: %w", err)
	}
	have := map[string]bool{}
	for _, p := range existing {
		have[p.Address] = true
	}
	for _, mac := range macs {
		if have[mac] {
			continue
		}
		have[mac] = true
		p := &ironwork.Port{Address: mac, NodeID: n.ID, NodeUUID: n.UUID, PXEEnabled: true,
			LocalLinkConnection: ironwork.JSONObject{}, Extra: ironwork.JSONObject{}, InternalInfo: ironwork.JSONObject{}}
		if err := c.store.CreatePort(ctx, p); err != nil {
			if ironwork.ErrorCode(err) == ironwork.ECONFLICT {
				c.log.Warn("inspection found a MAC address another node's port has", "node", n.UUID, "mac", mac)
				continue
			}
			return fmt.Errorf("create port %s: %w", mac, err)
		}
	}
	return nil
}
