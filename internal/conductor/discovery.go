package conductor

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// Discovery: an inventory that no enrolled node's MAC or BMC address matches enrols a node,
// when discovery is on (Ironic's [auto_discovery]).

// DiscoverRequest is an inventory for which the API found no node. Any conductor may take it.
type DiscoverRequest struct {
	Inventory  json.RawMessage `json:"inventory"`
	PluginData json.RawMessage `json:"plugin_data,omitempty"`
}

// RouteKey lets any conductor enrol a discovered machine.
func (DiscoverRequest) RouteKey() string { return "" }

// bmcAddressKey is the driver_info key of the BMC address of a hardware type.
func bmcAddressKey(hw string) (string, bool) {
	switch hw {
	case "ipmi":
		return "ipmi_address", true
	case "redfish":
		return "redfish_address", true
	}
	return "", false
}

// Discover enrols the machine an inventory describes: a node in enroll with the configured
// driver, the BMC address in driver_info with the configured defaults, the inventory's
// properties and ports, and a name made from its MAC address. With discovery off, or when a
// node already has one of the machine's MAC or BMC addresses, nothing is enrolled: the
// answer is "not found" or a conflict naming the node.
func (c *Conductor) Discover(ctx context.Context, req DiscoverRequest) (InspectionResult, error) {
	dc := c.cfg.Inspection.Discovery
	if !dc.Enabled {
		return InspectionResult{}, errNodeNotFound()
	}
	inv, err := ParseInventory(req.Inventory)
	if err != nil {
		return InspectionResult{}, err
	}
	plugin, err := pluginObject(req.PluginData)
	if err != nil {
		return InspectionResult{}, err
	}
	hw, ok := c.drivers.HardwareType(dc.Driver)
	if !ok {
		return InspectionResult{}, ironwork.Errorf(ironwork.EINVALID, "The discovery driver %s is not enabled.", dc.Driver)
	}
	// One discovery at a time in this conductor; ports' unique MAC addresses settle a race
	// between conductors (the loser deletes its node).
	c.discovering.Lock()
	defer c.discovering.Unlock()
	macs, bmcs := InventoryMACs(inv), BMCAddresses(inv)
	if n, err := c.store.NodeByPortAddress(ctx, macs); err == nil {
		return InspectionResult{}, alreadyEnrolled(n)
	}
	if n, err := NodeByBMCAddress(ctx, c.store, bmcs); err == nil {
		return InspectionResult{}, alreadyEnrolled(n)
	}

	n := &ironwork.Node{Driver: hw.Name, ProvisionState: ironwork.Enroll, PowerState: ironwork.PowerNone,
		Name: discoveredName(inv), DriverInfo: ironwork.JSONObject{}, Properties: ironwork.JSONObject{},
		Extra: ironwork.JSONObject{}, InstanceInfo: ironwork.JSONObject{}, DriverInternalInfo: ironwork.JSONObject{}}
	maps.Copy(n.DriverInfo, dc.DriverInfo)
	if key, ok := bmcAddressKey(hw.Name); ok && len(bmcs) > 0 {
		n.DriverInfo[key] = bmcs[0]
		if hw.Name == "redfish" {
			n.DriverInfo[key] = "https://" + bracketV6(bmcs[0])
		}
	}
	props, _ := inspectedProperties(inv, nil)
	maps.Copy(n.Properties, props)
	if err := c.drivers.ResolveInterfaces(n); err != nil {
		return InspectionResult{}, err
	}
	if err := c.store.CreateNode(ctx, n); err != nil {
		return InspectionResult{}, fmt.Errorf("enrol discovered node: %w", err)
	}
	plugin["auto_discovered"] = true
	if err := c.enrolDiscovered(ctx, n, inv, req.Inventory, plugin); err != nil {
		if derr := c.store.DeleteNode(ctx, n.UUID, nil); derr != nil {
			c.log.Error("delete the discovered node after a failed enrolment", "node", n.UUID, "error", derr)
		}
		return InspectionResult{}, err
	}
	c.log.Info("node discovered", "node", n.UUID, "name", n.Name, "driver", n.Driver, "mac", strings.Join(macs, ","), "bmc", strings.Join(bmcs, ","))
	return InspectionResult{UUID: n.UUID}, nil
}

// enrolDiscovered stores a discovered node's inventory and ports and runs the rules on it.
func (c *Conductor) enrolDiscovered(ctx context.Context, n *ironwork.Node, inv Inventory, rawInv json.RawMessage, plugin map[string]any) error {
	pluginRaw, err := json.Marshal(plugin)
	if err != nil {
		return fmt.Errorf("encode plugin data: %w", err)
	}
	if err := c.store.PutNodeInventory(ctx, n.ID, sqlstore.NodeInventory{Inventory: rawInv, PluginData: pluginRaw}); err != nil {
		return err
	}
	boot := pxeMAC(inv)
	for _, x := range portsToAdd(inv, c.cfg.Inspection.AddPorts) {
		p := &ironwork.Port{Address: x.mac, NodeID: n.ID, NodeUUID: n.UUID, PXEEnabled: boot == "" || boot == x.mac,
			LocalLinkConnection: localLinkConnection(x.InventoryInterface, plugin), Extra: ironwork.JSONObject{}, InternalInfo: ironwork.JSONObject{}}
		if err := c.store.CreatePort(ctx, p); err != nil {
			if ironwork.ErrorCode(err) == ironwork.ECONFLICT {
				return ironwork.Errorf(ironwork.ECONFLICT, "The machine with MAC address %s is already enrolled.", x.mac)
			}
			return fmt.Errorf("create port %s: %w", x.mac, err)
		}
	}
	ruled, err := c.applyRules(ctx, n.UUID, rawInv, plugin)
	if err != nil || ruled == nil {
		return err
	}
	_, err = c.store.UpdateNode(ctx, n.UUID, func(n *ironwork.Node) error {
		ruled(n)
		return nil
	})
	return err
}

func alreadyEnrolled(n *ironwork.Node) error {
	return ironwork.Errorf(ironwork.ECONFLICT, "The machine is already enrolled as node %s.", n.UUID)
}

// nameUnsafe is what a node name may not hold (Ironic's names are RFC 3986 unreserved).
var nameUnsafe = regexp.MustCompile(`[^a-zA-Z0-9._~-]+`)

// discoveredName names a discovered node after the MAC it booted from (or its first MAC), or
// its serial number when it has no MAC: "discovered-525400aabbcc".
func discoveredName(inv Inventory) string {
	id := pxeMAC(inv)
	if id == "" {
		if macs := InventoryMACs(inv); len(macs) > 0 {
			id = macs[0]
		}
	}
	id = strings.ReplaceAll(id, ":", "")
	if id == "" {
		id = nameUnsafe.ReplaceAllString(inv.SystemVendor.SerialNumber, "-")
	}
	if id == "" {
		return ""
	}
	name := "discovered-" + strings.ToLower(id)
	if len(name) > 255 {
		name = name[:255]
	}
	return name
}

func bracketV6(a string) string {
	if strings.Contains(a, ":") {
		return "[" + a + "]"
	}
	return a
}
