package ironwork

import (
	"slices"
	"sort"
	"strings"
)

// HardwareType describes a family of hardware and the interface implementations it supports,
// in order of preference: the first enabled one is a node's default.
//
// The catalogue names only implementations this build has: a name here that no driver
// registers would be offered by the API, chosen as a default and then fail every operation.
// internal/server's tests check both directions (every name listed is registered, every
// registered one is listed); an interface still to come joins the catalogue when its
// implementation does.
type HardwareType struct {
	Name      string
	Supported map[InterfaceKind][]string
}

// generic lists what every real hardware type supports in addition to its own interfaces.
// Where Ironic has a "no-" implementation for a kind a hardware type cannot do, so do we.
func generic() map[InterfaceKind][]string {
	return map[InterfaceKind][]string{
		BIOSInterface:       {"no-bios"},
		BootInterface:       {"ipxe", "pxe", "http"},
		ConsoleInterface:    {"no-console"},
		DeployInterface:     {"direct", "ramdisk"},
		FirmwareInterface:   {"no-firmware"},
		InspectInterface:    {"agent", "no-inspect"},
		ManagementInterface: {},
		NetworkInterface:    {"flat", "noop"},
		PowerInterface:      {},
		// As in Ironic's generic hardware types, the agent (software RAID) after no-raid.
		RAIDInterface: {"no-raid", "agent"},
		// As in Ironic, "agent" (through the ramdisk) only when a node or the configured
		// default asks for it.
		RescueInterface:  {"no-rescue", "agent"},
		StorageInterface: {"noop"},
		VendorInterface:  {"no-vendor"},
	}
}

func withFirst(base map[InterfaceKind][]string, first map[InterfaceKind][]string) map[InterfaceKind][]string {
	for k, v := range first {
		base[k] = append(slices.Clone(v), base[k]...)
	}
	return base
}

// withConsole offers a console interface after "no-console", which stays the default as in
// Ironic (whose enabled_console_interfaces is only no-console unless configured): a console
// listens on a port, so a node gets one only when asked for by console_interface.
func withConsole(base map[InterfaceKind][]string, names ...string) map[InterfaceKind][]string {
	base[ConsoleInterface] = append(base[ConsoleInterface], names...)
	return base
}

// withInspect offers out-of-band inspect interfaces after "agent", which stays the default (the
// interface Metal3 asks for, and one every BMC can serve).
func withInspect(base map[InterfaceKind][]string, names ...string) map[InterfaceKind][]string {
	base[InspectInterface] = append(base[InspectInterface][:1:1], append(names, base[InspectInterface][1:]...)...)
	return base
}

// withLast offers implementations after the others of their kind (not the default).
func withLast(base map[InterfaceKind][]string, last map[InterfaceKind][]string) map[InterfaceKind][]string {
	for k, v := range last {
		base[k] = append(base[k], v...)
	}
	return base
}

// hardwareTypeNames are the hardware types Ironwork knows, sorted.
var hardwareTypeNames = [...]string{"fake-hardware", "ipmi", "manual-management", "redfish"}

// HardwareTypes returns the catalogue of hardware types Ironwork knows, sorted by name.
func HardwareTypes() []HardwareType {
	out := make([]HardwareType, len(hardwareTypeNames))
	for i, name := range hardwareTypeNames {
		out[i], _ = knownHardwareType(name)
	}
	return out
}

// knownHardwareType returns the hardware type of the catalogue named name; only that one is
// built (an enrolment looks up its node's).
func knownHardwareType(name string) (HardwareType, bool) {
	switch name {
	case "fake-hardware":
		return HardwareType{Name: name, Supported: withFirst(generic(), map[InterfaceKind][]string{
			BIOSInterface: {"fake"}, BootInterface: {"fake"}, ConsoleInterface: {"fake"},
			DeployInterface: {"fake"}, FirmwareInterface: {"fake"}, InspectInterface: {"fake"},
			ManagementInterface: {"fake"}, PowerInterface: {"fake"}, RAIDInterface: {"fake"},
			RescueInterface: {"fake"}, StorageInterface: {"fake"}, VendorInterface: {"fake"},
		})}, true
	case "ipmi":
		return HardwareType{Name: name, Supported: withConsole(withFirst(generic(), map[InterfaceKind][]string{
			ManagementInterface: {"ipmitool", "noop"}, PowerInterface: {"ipmitool"}, VendorInterface: {"ipmitool"},
		}), "ipmitool-socat")}, true
	case "manual-management":
		return HardwareType{Name: name, Supported: withFirst(generic(), map[InterfaceKind][]string{
			ManagementInterface: {"noop"}, PowerInterface: {"fake"},
		})}, true
	case "redfish":
		return HardwareType{Name: name, Supported: withInspect(withLast(withFirst(generic(), map[InterfaceKind][]string{
			ManagementInterface: {"redfish"}, PowerInterface: {"redfish"}, VendorInterface: {"redfish"},
			// Ironic's redfish hardware type prefers its redfish bios interface, enabled by default.
			BIOSInterface: {"redfish"},
		}), map[InterfaceKind][]string{BootInterface: {"redfish-virtual-media", "redfish-https"}, RAIDInterface: {"redfish"},
			// Offered after no-firmware, not the default: Ironic enables its redfish firmware
			// interface only when configured (Metal3 names it per node).
			FirmwareInterface: {"redfish"}}), "redfish")}, true
	}
	return HardwareType{}, false
}

// InterfaceProperties documents the driver_info keys an interface implementation reads, as
// Ironic's get_properties: key to description, each saying whether it is required.
func InterfaceProperties(kind InterfaceKind, impl string) map[string]string {
	switch {
	case (kind == PowerInterface || kind == ManagementInterface) && impl == "ipmitool":
		return map[string]string{
			"ipmi_address":      "IP address or hostname of the BMC. Required.",
			"ipmi_port":         "UDP port of the BMC's IPMI service. Optional, default 623.",
			"ipmi_username":     "User name on the BMC. Optional.",
			"ipmi_password":     "Password of the BMC user. Optional.",
			"ipmi_cipher_suite": "IPMI 2.0 cipher suite: 3 or 17. Optional, default 17 with a fallback to 3.",
			"ipmi_priv_level":   "Privilege level: ADMINISTRATOR (default), CALLBACK, OPERATOR or USER. Optional.",
			"ipmi_bridging":     "Bridging type: only \"no\" (the default) is supported. Optional.",
		}
	case kind == ConsoleInterface && impl == "ipmitool-socat":
		props := InterfaceProperties(PowerInterface, "ipmitool")
		props["ipmi_terminal_port"] = "TCP port the conductor serves the node's console on. Optional: by default a free port of the conductor's console port range."
		return props
	case (kind == PowerInterface || kind == ManagementInterface || kind == RAIDInterface) && impl == "redfish":
		return map[string]string{
			"redfish_address":   "URL of the Redfish service, e.g. https://10.0.0.5. Required.",
			"redfish_system_id": "Path of the ComputerSystem resource, e.g. /redfish/v1/Systems/1. Optional if the BMC has one system.",
			"redfish_username":  "User name on the BMC. Optional.",
			"redfish_password":  "Password of the BMC user. Optional.",
			"redfish_verify_ca": "true, false or the path of a CA bundle to verify the BMC's certificate. Optional, default true.",
		}
	case kind == PowerInterface && impl == "fake":
		return map[string]string{"fake_power_fail": "true makes every power call fail. Optional, for tests."}
	case kind == BootInterface && (impl == "redfish-virtual-media" || impl == "redfish-https"):
		return map[string]string{
			"deploy_kernel":                "URL or path of the deploy kernel. Required for deployment and cleaning.",
			"deploy_ramdisk":               "URL or path of the deploy ramdisk. Required for deployment and cleaning.",
			"rescue_kernel":                "URL or path of the rescue kernel. Optional, with rescue_ramdisk; rescue uses the deploy ramdisk without them.",
			"rescue_ramdisk":               "URL or path of the rescue ramdisk. Optional, with rescue_kernel.",
			"kernel_append_params":         "Extra kernel command line of the ramdisk: printable words with no quote or backslash. Optional.",
			"force_persistent_boot_device": "Whether the boot device is set persistently (Always, Never or Default). Optional.",
		}
	case kind == BootInterface && (impl == "ipxe" || impl == "pxe" || impl == "http"):
		return map[string]string{
			"deploy_kernel":                "URL or path of the deploy kernel. Required for deployment and cleaning.",
			"deploy_ramdisk":               "URL or path of the deploy ramdisk. Required for deployment and cleaning.",
			"rescue_kernel":                "URL or path of the rescue kernel. Optional, with rescue_ramdisk; rescue uses the deploy ramdisk without them.",
			"rescue_ramdisk":               "URL or path of the rescue ramdisk. Optional, with rescue_kernel.",
			"kernel_append_params":         "Extra kernel command line of the ramdisk, one line. Optional.",
			"force_persistent_boot_device": "Whether the boot device is set persistently (Always, Never or Default). Optional.",
		}
	case kind == DeployInterface && impl == "fake":
		return map[string]string{
			"fake_deploy_fail":  "true makes the deploy step fail. Optional, for tests.",
			"fake_deploy_wait":  "true makes the deploy step wait for a callback. Optional, for tests.",
			"fake_deploy_delay": "Seconds the deploy step takes. Optional, for tests.",
			"fake_clean_fail":   "true makes the erase clean steps fail. Optional, for tests.",
		}
	}
	return nil
}

// DriverConfig says which hardware types and interface implementations are enabled, and which
// implementation a node gets when it names none.
type DriverConfig struct {
	EnabledHardwareTypes []string
	Enabled              map[InterfaceKind][]string
	Defaults             map[InterfaceKind]string // optional; empty means "first supported and enabled"
}

// DefaultDriverConfig enables every hardware type and every implementation in the catalogue
// with the ordering of the catalogue.
func DefaultDriverConfig() DriverConfig {
	c := DriverConfig{Enabled: map[InterfaceKind][]string{}, Defaults: map[InterfaceKind]string{}}
	for _, hw := range HardwareTypes() {
		c.EnabledHardwareTypes = append(c.EnabledHardwareTypes, hw.Name)
		for k, impls := range hw.Supported {
			for _, impl := range impls {
				if !slices.Contains(c.Enabled[k], impl) {
					c.Enabled[k] = append(c.Enabled[k], impl)
				}
			}
		}
	}
	for k := range c.Enabled {
		sort.Strings(c.Enabled[k])
	}
	// As Ironic's default_storage_interface: no remote volumes unless a node asks for them.
	c.Defaults[StorageInterface] = "noop"
	return c
}

// Properties are the driver_info keys a node of hw reads with its default interfaces, as
// Ironic's driver properties.
func (c DriverConfig) Properties(hw HardwareType) map[string]string {
	out := map[string]string{}
	for _, kind := range InterfaceKinds {
		impl, err := c.DefaultFor(hw, kind)
		if err != nil {
			continue
		}
		for k, v := range InterfaceProperties(kind, impl) {
			out[k] = v
		}
	}
	return out
}

// HasHardwareType says whether name is an enabled hardware type of the catalogue, without
// building its table of interfaces as HardwareType does: a conductor asks for every node it
// touches, 25,000 a power-sync pass.
func (c DriverConfig) HasHardwareType(name string) bool {
	return slices.Contains(c.EnabledHardwareTypes, name) && slices.Contains(hardwareTypeNames[:], name)
}

// HardwareType returns an enabled hardware type by name.
func (c DriverConfig) HardwareType(name string) (HardwareType, bool) {
	if !c.HasHardwareType(name) {
		return HardwareType{}, false
	}
	return knownHardwareType(name)
}

// EnabledFor returns the implementations of kind that hw supports and that are enabled, in the
// hardware type's order of preference.
func (c DriverConfig) EnabledFor(hw HardwareType, kind InterfaceKind) []string {
	var out []string
	for _, impl := range hw.Supported[kind] {
		if slices.Contains(c.Enabled[kind], impl) {
			out = append(out, impl)
		}
	}
	return out
}

// DefaultFor returns the implementation of kind a node of hw gets when it names none.
func (c DriverConfig) DefaultFor(hw HardwareType, kind InterfaceKind) (string, error) {
	ok := c.EnabledFor(hw, kind)
	if d := c.Defaults[kind]; d != "" {
		if slices.Contains(ok, d) {
			return d, nil
		}
	} else if len(ok) > 0 {
		return ok[0], nil
	}
	return "", Errorf(EINVALID, "No default value found for %s interface for node with hardware type %s.", kind, hw.Name)
}

// ResolveInterfaces fills every interface of n that is empty with its default and checks that
// every named one is supported by the node's hardware type and enabled.
func (c DriverConfig) ResolveInterfaces(n *Node) error {
	hw, ok := c.HardwareType(n.Driver)
	if !ok {
		return Errorf(EINVALID, "Could not find a conductor that supports hardware type %s. Enabled hardware types: %s.",
			n.Driver, strings.Join(c.EnabledHardwareTypes, ", "))
	}
	if n.Interfaces == nil {
		n.Interfaces = map[InterfaceKind]string{}
	}
	for _, kind := range InterfaceKinds {
		impl := n.Interfaces[kind]
		if impl == "" {
			d, err := c.DefaultFor(hw, kind)
			if err != nil {
				return err
			}
			n.Interfaces[kind] = d
			continue
		}
		if !slices.Contains(c.EnabledFor(hw, kind), impl) {
			return Errorf(EINVALID, "Could not find a suitable %s interface %q for hardware type %s. Valid values: %s.",
				kind, impl, hw.Name, strings.Join(c.EnabledFor(hw, kind), ", "))
		}
	}
	return nil
}
