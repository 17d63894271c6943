package conductor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// In-band inspection: the inspect interface boots the deploy ramdisk with
// ipa-inspection-callback-url and the node waits in "inspect wait"; the agent posts its
// inventory to /v1/continue_inspection and ContinueInspection stores it, sets the node's
// properties and ports from it, powers the node off and makes it manageable.

// InspectionConfig tunes inspection (Ironic's [inspector] and [auto_discovery] options).
type InspectionConfig struct {
	// AddPorts says which interfaces get ports: pxe (default), active, all or disabled.
	AddPorts string
	// KeepPorts says which existing ports stay: all (default), present (in the inventory) or
	// added (those this inspection would add).
	KeepPorts string
	// WaitTimeout fails a node that waits longer for its inventory (Ironic's [conductor]
	// inspect_wait_timeout, 1800 s).
	WaitTimeout time.Duration
	// Discovery enrols machines nobody enrolled that send an inventory.
	Discovery DiscoveryConfig
	// Rules runs inspection rules on every inventory; nil runs none.
	Rules InspectionRules
}

// DiscoveryConfig is Ironic's [auto_discovery]: the driver and driver_info of discovered nodes.
type DiscoveryConfig struct {
	Enabled bool
	// Driver is the hardware type of discovered nodes (default ipmi).
	Driver string
	// DriverInfo is copied into every discovered node's driver_info (credentials); the BMC
	// address of the inventory is added under the driver's address key.
	DriverInfo map[string]any
}

// InspectionRules applies inspection rules to a node being inspected: it may change the node
// (properties, traits, driver_info...), which is saved afterwards, or fail the inspection.
// The inspection rules engine implements it; the conductor only calls it.
type InspectionRules interface {
	Apply(ctx context.Context, phase string, n *ironwork.Node, inventory, pluginData map[string]any) error
}

// InspectionPhaseMain is the phase rules run in once the inventory is processed.
const InspectionPhaseMain = "main"

func (c *InspectionConfig) fill() {
	if c.AddPorts == "" {
		c.AddPorts = AddPortsPXE
	}
	if c.KeepPorts == "" {
		c.KeepPorts = KeepPortsAll
	}
	orDefault(&c.WaitTimeout, 30*time.Minute)
	if c.Discovery.Driver == "" {
		c.Discovery.Driver = "ipmi"
	}
}

// Validate checks the policies' names.
func (c InspectionConfig) Validate() error {
	switch c.AddPorts {
	case "", AddPortsPXE, AddPortsActive, AddPortsAll, AddPortsDisabled:
	default:
		return fmt.Errorf("add_ports must be pxe, active, all or disabled, not %q", c.AddPorts)
	}
	switch c.KeepPorts {
	case "", KeepPortsAll, KeepPortsPresent, KeepPortsAdded:
	default:
		return fmt.Errorf("keep_ports must be all, present or added, not %q", c.KeepPorts)
	}
	return nil
}

// ContinueInspectionRequest carries what an agent sent to /v1/continue_inspection: its
// inventory and the rest of the body (plugin data), as JSON objects.
type ContinueInspectionRequest struct {
	NodeRef
	Inventory  json.RawMessage `json:"inventory"`
	PluginData json.RawMessage `json:"plugin_data,omitempty"`
}

// InspectionResult is the node an inventory was for.
type InspectionResult struct {
	UUID string `json:"uuid"`
}

// errNodeNotFound is what the ramdisk endpoints answer for a node they will not act on.
func errNodeNotFound() error { return ironwork.Errorf(ironwork.ENOTFOUND, "Node could not be found.") }

// ContinueInspection takes a node's inventory while it waits in "inspect wait": the node
// resumes inspecting and a worker processes the inventory. A node in any other state is not
// found, as in Ironic, and nothing changes.
func (c *Conductor) ContinueInspection(ctx context.Context, req ContinueInspectionRequest) (InspectionResult, error) {
	inv, err := ParseInventory(req.Inventory)
	if err != nil {
		return InspectionResult{}, err
	}
	plugin, err := pluginObject(req.PluginData)
	if err != nil {
		return InspectionResult{}, err
	}
	t, err := c.lock(ctx, req.Node)
	if ironwork.ErrorCode(err) == ironwork.ENOTFOUND {
		return InspectionResult{}, errNodeNotFound()
	}
	if err != nil {
		return InspectionResult{}, err
	}
	if t.Node.ProvisionState != ironwork.InspectWait {
		c.log.Warn("inventory for a node that is not waiting for one", "node", t.Node.UUID, "state", t.Node.ProvisionState)
		c.release(t.Node)
		return InspectionResult{}, errNodeNotFound()
	}
	done, err := c.acquireWorker()
	if err != nil {
		c.release(t.Node)
		return InspectionResult{}, err
	}
	if err := c.transition(ctx, t, ironwork.EventResume, "", ""); err != nil {
		done()
		c.release(t.Node)
		return InspectionResult{}, err
	}
	uuid := t.Node.UUID
	c.background(t, done, func(ctx context.Context, t *Task) {
		if err := c.processInventory(ctx, t, inv, req.Inventory, plugin); err != nil {
			c.failInspection(ctx, t, fmt.Errorf("Failed to process the inventory of node %s: %s", t.Node.UUID, errText(err)))
			return
		}
		c.finishInspection(ctx, t)
	})
	return InspectionResult{UUID: uuid}, nil
}

// pluginObject reads the plugin data, an object or nothing.
func pluginObject(raw json.RawMessage) (map[string]any, error) {
	plugin := map[string]any{}
	if len(raw) == 0 || string(raw) == "null" {
		return plugin, nil
	}
	if err := json.Unmarshal(raw, &plugin); err != nil {
		return nil, ironwork.Errorf(ironwork.EINVALID, "Invalid plugin data: it must be an object.")
	}
	return plugin, nil
}

// processInventory stores a node's inventory and sets its properties and ports from it, then
// runs the inspection rules.
func (c *Conductor) processInventory(ctx context.Context, t *Task, inv Inventory, rawInv json.RawMessage, plugin map[string]any) error {
	pluginRaw, err := json.Marshal(plugin)
	if err != nil {
		return fmt.Errorf("encode plugin data: %w", err)
	}
	if err := c.store.PutNodeInventory(ctx, t.Node.ID, sqlstore.NodeInventory{Inventory: rawInv, PluginData: pluginRaw}); err != nil {
		return err
	}
	props, warning := inspectedProperties(inv, t.Node.Properties)
	if warning != "" {
		t.Log.Warn("inspection sets local_gb to 0", "error", warning)
	}
	if err := c.syncPorts(ctx, t.Node, inv, plugin); err != nil {
		return err
	}
	if err := t.Save(ctx, func(n *ironwork.Node) {
		if n.Properties == nil {
			n.Properties = ironwork.JSONObject{}
		}
		for k, v := range props {
			n.Properties[k] = v
		}
	}); err != nil {
		return err
	}
	ruled, err := c.applyRules(ctx, t.Node.UUID, rawInv, plugin)
	if err != nil {
		return err
	}
	// Rules may change the plugin data (set-plugin-data and the like): store what they left.
	if after, err := json.Marshal(plugin); err == nil && !bytes.Equal(after, pluginRaw) {
		if err := c.store.PutNodeInventory(ctx, t.Node.ID, sqlstore.NodeInventory{Inventory: rawInv, PluginData: after}); err != nil {
			return err
		}
	}
	if ruled != nil {
		if err := t.Save(ctx, ruled); err != nil {
			return err
		}
	}
	t.Log.Info("inventory processed", "cpus", props["cpus"], "memory_mb", props["memory_mb"], "local_gb", props["local_gb"])
	return nil
}

// applyRules runs the inspection rules on a copy of a node, outside any transaction (the
// rules may read the store), and returns the change to save: the node as the rules left it,
// with its identity, lock and states as they are. Nil when no rules are configured.
func (c *Conductor) applyRules(ctx context.Context, uuid string, rawInv json.RawMessage, plugin map[string]any) (func(n *ironwork.Node), error) {
	if c.cfg.Inspection.Rules == nil {
		return nil, nil
	}
	cp, err := c.store.GetNode(ctx, uuid)
	if err != nil {
		return nil, err
	}
	if cp.Properties == nil {
		cp.Properties = ironwork.JSONObject{}
	}
	if err := c.cfg.Inspection.Rules.Apply(ctx, InspectionPhaseMain, cp, inventoryObject(rawInv), plugin); err != nil {
		return nil, fmt.Errorf("inspection rules: %w", err)
	}
	return func(n *ironwork.Node) {
		keep := *n
		*n = *cp
		n.ID, n.UUID, n.Reservation, n.CreatedAt = keep.ID, keep.UUID, keep.Reservation, keep.CreatedAt
		n.ProvisionState, n.TargetProvisionState, n.ProvisionUpdatedAt = keep.ProvisionState, keep.TargetProvisionState, keep.ProvisionUpdatedAt
		n.PowerState, n.TargetPowerState, n.DriverInternalInfo = keep.PowerState, keep.TargetPowerState, keep.DriverInternalInfo
	}, nil
}

// inventoryObject decodes an inventory already parsed once into a generic object for rules.
func inventoryObject(raw json.RawMessage) map[string]any {
	m := map[string]any{}
	_ = json.Unmarshal(raw, &m)
	return m
}

// syncPorts creates the ports add_ports asks for, deletes those keep_ports does not keep, and
// updates pxe_enabled and local_link_connection of the node's ports from the inventory.
func (c *Conductor) syncPorts(ctx context.Context, n *ironwork.Node, inv Inventory, plugin map[string]any) error {
	cfg := c.cfg.Inspection
	existing, err := c.store.PortsOfNode(ctx, n.ID)
	if err != nil {
		return fmt.Errorf("list ports: %w", err)
	}
	have := map[string]*ironwork.Port{}
	for _, p := range existing {
		have[strings.ToLower(p.Address)] = p
	}
	nics := map[string]nic{}
	for _, x := range inventoryNICs(inv) {
		nics[x.mac] = x
	}
	boot := pxeMAC(inv)
	added := map[string]bool{}
	for _, x := range portsToAdd(inv, cfg.AddPorts) {
		added[x.mac] = true
		if have[x.mac] != nil {
			continue
		}
		p := &ironwork.Port{Address: x.mac, NodeID: n.ID, NodeUUID: n.UUID, PXEEnabled: boot == "" || boot == x.mac,
			LocalLinkConnection: localLinkConnection(x.InventoryInterface, plugin), Extra: ironwork.JSONObject{}, InternalInfo: ironwork.JSONObject{}}
		if err := c.store.CreatePort(ctx, p); err != nil {
			if ironwork.ErrorCode(err) == ironwork.ECONFLICT {
				c.log.Warn("inspection found a MAC address another node's port has", "node", n.UUID, "mac", x.mac)
				continue
			}
			return fmt.Errorf("create port %s: %w", x.mac, err)
		}
	}
	for mac, p := range have {
		x, present := nics[mac]
		drop := (cfg.KeepPorts == KeepPortsPresent && !present) || (cfg.KeepPorts == KeepPortsAdded && !added[mac])
		if drop {
			if err := c.store.DeletePort(ctx, p.UUID, nil); err != nil && ironwork.ErrorCode(err) != ironwork.ENOTFOUND {
				return fmt.Errorf("delete port %s: %w", mac, err)
			}
			continue
		}
		if !present {
			continue
		}
		llc := localLinkConnection(x.InventoryInterface, plugin)
		pxeOn := p.PXEEnabled
		if boot != "" {
			pxeOn = boot == mac
		}
		if len(llc) == 0 && pxeOn == p.PXEEnabled {
			continue
		}
		if _, err := c.store.UpdatePort(ctx, p.UUID, func(p *ironwork.Port) error {
			if p.LocalLinkConnection == nil {
				p.LocalLinkConnection = ironwork.JSONObject{}
			}
			for k, v := range llc {
				p.LocalLinkConnection[k] = v
			}
			p.PXEEnabled = pxeOn
			return nil
		}); err != nil {
			return fmt.Errorf("update port %s: %w", mac, err)
		}
	}
	return nil
}

// finishInspection powers an inspected node off, stops it network-booting the ramdisk and
// makes it manageable.
func (c *Conductor) finishInspection(ctx context.Context, t *Task) {
	if err := c.leaveRamdisk(ctx, t); err != nil {
		c.failInspection(ctx, t, fmt.Errorf("Failed to power off node %s after inspection: %s", t.Node.UUID, errText(err)))
		return
	}
	end := time.Now().UTC()
	if err := c.transitionWith(ctx, t, ironwork.EventDone, "", "", func(n *ironwork.Node) {
		n.InspectionFinishedAt = &end
		ForgetAgent(n)
	}); err != nil {
		t.Log.Error("finish inspection", "error", err)
	}
}

// leaveRamdisk powers a node off and removes its ramdisk boot.
func (c *Conductor) leaveRamdisk(ctx context.Context, t *Task) error {
	if err := c.doPower(ctx, t, ironwork.PowerOff, c.cfg.PowerActionTimeout); err != nil {
		return err
	}
	if b, ok := t.Driver.Impl(ironwork.BootInterface).(Boot); ok {
		if err := b.CleanUpRamdisk(ctx, t); err != nil {
			return fmt.Errorf("remove the ramdisk boot: %w", err)
		}
	}
	return nil
}

// failInspection moves a node to "inspect failed" with reason, after trying to power it off
// and remove its ramdisk boot (what fails there is added to the reason).
func (c *Conductor) failInspection(ctx context.Context, t *Task, reason error) {
	msg := ironwork.ErrorMessage(reason)
	if ironwork.ErrorCode(reason) == ironwork.EINTERNAL {
		msg = reason.Error()
	}
	if err := c.leaveRamdisk(ctx, t); err != nil {
		msg += " Cleaning up after the failure failed: " + errText(err)
	}
	if err := c.transitionWith(ctx, t, ironwork.EventFail, msg, "", ForgetAgent); err != nil {
		t.Log.Error("record inspection failure", "reason", msg, "error", err)
	}
}

// inspectTimeoutReason is Ironic's reason for an inspection that timed out.
func inspectTimeoutReason(timeout time.Duration) string {
	return fmt.Sprintf("Timeout reached while inspecting the node (inspect_wait_timeout %s). Please check if the ramdisk responsible for the inspection is running on the node.", timeout)
}

// NodeByBMCAddress finds the node whose driver_info names one of the BMC addresses (an
// *_address key: an IP address, a host name or a URL); ENOTFOUND when none does.
func NodeByBMCAddress(ctx context.Context, store *sqlstore.Store, addrs []string) (*ironwork.Node, error) {
	if len(addrs) == 0 {
		return nil, errNodeNotFound()
	}
	want := map[string]bool{}
	for _, a := range addrs {
		want[normalHost(a)] = true
	}
	marker := ""
	for {
		nodes, err := store.ListNodes(ctx, sqlstore.NodeFilter{}, sqlstore.Page{Limit: 500, Marker: marker, SortKey: "id"})
		if err != nil {
			return nil, fmt.Errorf("look up nodes by BMC address: %w", err)
		}
		for _, n := range nodes {
			for k, v := range n.DriverInfo {
				s, ok := v.(string)
				if ok && strings.HasSuffix(k, "_address") && want[bmcHost(s)] {
					return n, nil
				}
			}
		}
		if len(nodes) < 500 {
			return nil, errNodeNotFound()
		}
		marker = nodes[len(nodes)-1].UUID
	}
}

// bmcHost is the host of a BMC address in driver_info: an address, a host name, host:port or
// a URL.
func bmcHost(s string) string {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err == nil {
			return normalHost(u.Hostname())
		}
	}
	if h, _, err := net.SplitHostPort(s); err == nil {
		return normalHost(h)
	}
	return normalHost(strings.Trim(s, "[]"))
}

// normalHost writes IP addresses in one form, host names in lower case.
func normalHost(s string) string {
	if ip := net.ParseIP(s); ip != nil {
		return ip.String()
	}
	return strings.ToLower(s)
}
