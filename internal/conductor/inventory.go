package conductor

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/agent"
)

// An inventory as ironic-python-agent sends it to /v1/continue_inspection: the agent's own
// wire type (internal/agent), read here with what inspection derives from it.

// Inventory is a node's hardware as its agent reported it.
type Inventory = agent.Inventory

// ParseInventory reads an inventory object and checks what inspection needs of it: at least
// one interface with a MAC address or a BMC address to find the node by. The error is worded
// for a 400 answer.
func ParseInventory(raw json.RawMessage) (Inventory, error) {
	var inv Inventory
	if len(raw) == 0 || string(raw) == "null" {
		return inv, ironwork.Errorf(ironwork.EINVALID, "Inventory is required.")
	}
	if err := json.Unmarshal(raw, &inv); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return inv, ironwork.Errorf(ironwork.EINVALID, "Invalid inventory: %s must be a %s, not %s.", fieldOr(te.Field, "inventory"), jsonKind(te.Type.Kind().String()), te.Value)
		}
		return inv, ironwork.Errorf(ironwork.EINVALID, "Invalid inventory: %s", err)
	}
	if len(inventoryMACs(inv)) == 0 && len(BMCAddresses(inv)) == 0 {
		return inv, ironwork.Errorf(ironwork.EINVALID, "No lookup attributes were found in the inventory: it needs an interface with a valid MAC address or a BMC address.")
	}
	return inv, nil
}

func fieldOr(f, def string) string {
	if f == "" {
		return def
	}
	return "inventory." + f
}

// jsonKind names a Go kind as JSON does.
func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "number"
	case k == "slice", k == "array":
		return "list"
	case k == "struct", k == "map":
		return "object"
	case k == "bool":
		return "boolean"
	}
	return k
}

// nic is an interface of an inventory with a valid MAC address (lower case).
type nic struct {
	agent.InventoryInterface
	mac string
}

// inventoryNICs lists the interfaces with a valid unicast Ethernet MAC address, loopback
// excluded, as Ironic's validation of interfaces does; the first of each MAC wins.
func inventoryNICs(inv Inventory) []nic {
	var out []nic
	seen := map[string]bool{}
	for _, i := range inv.Interfaces {
		if i.Name == "lo" {
			continue
		}
		hw, err := net.ParseMAC(strings.TrimSpace(i.MACAddress))
		if err != nil || len(hw) != 6 || hw[0]&1 == 1 || hw.String() == "00:00:00:00:00:00" {
			continue
		}
		mac := hw.String()
		if seen[mac] {
			continue
		}
		seen[mac] = true
		out = append(out, nic{InventoryInterface: i, mac: mac})
	}
	return out
}

// inventoryMACs lists the valid MAC addresses of an inventory.
func inventoryMACs(inv Inventory) []string {
	var out []string
	for _, n := range inventoryNICs(inv) {
		out = append(out, n.mac)
	}
	return out
}

// InventoryMACs lists the MAC addresses a node is looked up by, in the inventory's order.
func InventoryMACs(inv Inventory) []string { return inventoryMACs(inv) }

// BMCAddresses lists the inventory's BMC addresses (IPv4, then IPv6), without the
// placeholders agents send when they found none.
func BMCAddresses(inv Inventory) []string {
	var out []string
	for _, a := range []*string{inv.BMCAddress, inv.BMCV6Address} {
		if a == nil {
			continue
		}
		s := strings.TrimSpace(*a)
		if ip := net.ParseIP(s); ip == nil || ip.IsUnspecified() {
			continue
		}
		out = append(out, s)
	}
	return out
}

// pxeMAC is the MAC of the interface the node booted from, when the agent knows it.
func pxeMAC(inv Inventory) string {
	if inv.Boot.PXEInterface == nil {
		return ""
	}
	s := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(*inv.Boot.PXEInterface)), "01-")
	hw, err := net.ParseMAC(strings.ReplaceAll(s, "-", ":"))
	if err != nil {
		return ""
	}
	return hw.String()
}

// Add and keep policies of ports, Ironic's [inspector] add_ports and keep_ports.
const (
	AddPortsPXE      = "pxe"
	AddPortsActive   = "active"
	AddPortsAll      = "all"
	AddPortsDisabled = "disabled"

	KeepPortsAll     = "all"
	KeepPortsPresent = "present"
	KeepPortsAdded   = "added"
)

// portsToAdd picks the interfaces that get ports: every one (all), those with an IP address
// (active), the one the node booted from (pxe; the active ones when the agent does not know
// it), or none.
func portsToAdd(inv Inventory, policy string) []nic {
	nics := inventoryNICs(inv)
	active := func() []nic {
		var out []nic
		for _, n := range nics {
			if nonEmpty(n.IPv4Address) || nonEmpty(n.IPv6Address) {
				out = append(out, n)
			}
		}
		return out
	}
	switch policy {
	case AddPortsDisabled:
		return nil
	case AddPortsAll:
		return nics
	case AddPortsActive:
		return active()
	}
	if p := pxeMAC(inv); p != "" {
		for _, n := range nics {
			if n.mac == p {
				return []nic{n}
			}
		}
	}
	return active()
}

func nonEmpty(s *string) bool { return s != nil && strings.TrimSpace(*s) != "" }

// LLDP TLV types and subtypes that local_link_connection is read from (IEEE 802.1AB).
const (
	lldpChassisID       = 1
	lldpPortID          = 2
	lldpSystemName      = 5
	lldpChassisMAC      = 4
	lldpPortMAC         = 3
	lldpPortIfaceName   = 5
	lldpPortLocallyAssd = 7
)

// localLinkConnection reads the switch and port an interface is cabled to from its raw LLDP
// TLVs (the agent's [type, hex payload] pairs): switch_id from a MAC chassis ID, port_id from
// a MAC, interface-name or local port ID, switch_info from the system name. When the raw TLVs
// say nothing, the parsed LLDP of the plugin data (parsed_lldp.<interface>) is used.
func localLinkConnection(i agent.InventoryInterface, plugin map[string]any) ironwork.JSONObject {
	llc := ironwork.JSONObject{}
	for _, raw := range i.LLDP {
		pair, ok := raw.([]any)
		if !ok || len(pair) != 2 {
			continue
		}
		typ, ok1 := pair[0].(float64)
		hx, ok2 := pair[1].(string)
		if !ok1 || !ok2 {
			continue
		}
		b, err := hex.DecodeString(hx)
		if err != nil || len(b) == 0 {
			continue
		}
		switch int(typ) {
		case lldpChassisID:
			if b[0] == lldpChassisMAC && len(b) == 7 {
				llc["switch_id"] = net.HardwareAddr(b[1:]).String()
			}
		case lldpPortID:
			switch b[0] {
			case lldpPortMAC:
				if len(b) == 7 {
					llc["port_id"] = net.HardwareAddr(b[1:]).String()
				}
			case lldpPortIfaceName, lldpPortLocallyAssd:
				if s := printableText(b[1:]); s != "" {
					llc["port_id"] = s
				}
			}
		case lldpSystemName:
			if s := printableText(b); s != "" {
				llc["switch_info"] = s
			}
		}
	}
	if parsed, ok := plugin["parsed_lldp"].(map[string]any); ok {
		if p, ok := parsed[i.Name].(map[string]any); ok {
			for key, from := range map[string]string{"switch_id": "switch_chassis_id", "port_id": "switch_port_id", "switch_info": "switch_system_name"} {
				if _, have := llc[key]; have {
					continue
				}
				if s, _ := p[from].(string); s != "" && printableText([]byte(s)) == s {
					llc[key] = s
				}
			}
		}
	}
	return llc
}

// printableText is b when it is printable ASCII, else "".
func printableText(b []byte) string {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return ""
		}
	}
	return string(b)
}

// giB is a gibibyte.
const giB = 1 << 30

// inspectedProperties are the node properties an inventory sets: cpus, cpu_arch, memory_mb,
// local_gb (the root disk's size in GiB less one, as Ironic leaves room for partitioning; 0
// when no disk qualifies) and the boot_mode capability; the root disk is the one
// properties.root_device picks, else the smallest of at least 4 GiB. The warning says why local_gb is 0, when it is.
func inspectedProperties(inv Inventory, props ironwork.JSONObject) (set ironwork.JSONObject, warning string) {
	set = ironwork.JSONObject{}
	if inv.CPU.Count > 0 {
		set["cpus"] = inv.CPU.Count
	}
	if inv.CPU.Architecture != "" {
		set["cpu_arch"] = inv.CPU.Architecture
	}
	switch {
	case inv.Memory.PhysicalMB > 0:
		set["memory_mb"] = inv.Memory.PhysicalMB
	case inv.Memory.Total > 0:
		set["memory_mb"] = inv.Memory.Total / (1 << 20)
	}
	disks := make([]agent.Disk, 0, len(inv.Disks))
	for _, d := range inv.Disks {
		disks = append(disks, agent.Disk{Name: d.Name, Size: d.Size, Model: d.Model, Vendor: d.Vendor, Rotational: d.Rotational,
			Serial: deref(d.Serial), WWN: deref(d.WWN), WWNWithExtension: deref(d.WWNWithExtension),
			WWNVendorExtension: deref(d.WWNVendorExtension), HCTL: deref(d.HCTL), ByPath: deref(d.ByPath)})
	}
	hints, _ := props["root_device"].(map[string]any)
	root, err := agent.ChooseRootDevice(disks, hints)
	localGB := int64(0)
	if err != nil {
		warning = "no root disk: " + err.Error()
	} else if gb := root.Size / giB; gb > 1 {
		localGB = gb - 1
	}
	set["local_gb"] = localGB
	if m := strings.ToLower(inv.Boot.CurrentBootMode); m == "uefi" || m == "bios" {
		set["capabilities"] = withCapability(props["capabilities"], "boot_mode", m)
	}
	return set, warning
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// withCapability sets key:value in Ironic's capabilities (a "k1:v1,k2:v2" string or an
// object), keeping the others; the result is a string, sorted by key.
func withCapability(caps any, key, value string) string {
	m := map[string]string{}
	switch c := caps.(type) {
	case string:
		for _, kv := range strings.Split(c, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), ":")
			if ok && k != "" {
				m[k] = v
			}
		}
	case map[string]any:
		for k, v := range c {
			m[k] = fmt.Sprint(v)
		}
	}
	m[key] = value
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+":"+m[k])
	}
	return strings.Join(parts, ",")
}
