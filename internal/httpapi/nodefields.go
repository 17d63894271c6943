package httpapi

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ironwork/ironwork"
)

// Version that introduced each interface field of a node.
var interfaceSince = map[ironwork.InterfaceKind]int{
	ironwork.NetworkInterface: 20, ironwork.BootInterface: 31, ironwork.ConsoleInterface: 31,
	ironwork.DeployInterface: 31, ironwork.InspectInterface: 31, ironwork.ManagementInterface: 31,
	ironwork.PowerInterface: 31, ironwork.RAIDInterface: 31, ironwork.VendorInterface: 31,
	ironwork.StorageInterface: 33, ironwork.RescueInterface: 38, ironwork.BIOSInterface: 40,
	ironwork.FirmwareInterface: 86,
}

func ifaceField(k ironwork.InterfaceKind) field[ironwork.Node] {
	return field[ironwork.Node]{name: k.Field(), since: interfaceSince[k], access: readWrite,
		get: func(n *ironwork.Node) any { return optStr(n.Interfaces[k]) },
		set: func(n *ironwork.Node, v any) error {
			s, err := asString("node", v, 255)
			if err != nil {
				return err
			}
			if n.Interfaces == nil {
				n.Interfaces = map[ironwork.InterfaceKind]string{}
			}
			n.Interfaces[k] = s
			return nil
		}}
}

var conductorGroupRE = regexp.MustCompile(`^[a-zA-Z0-9_\-\.]*$`)

// nodeFields is the node object as the API shows it, in Ironic's order, without the links and
// the fields computed per request (conductor, allocation_uuid, chassis_uuid).
func nodeFields() fieldTable[ironwork.Node] {
	type N = ironwork.Node
	const k = "node"
	iface := func(kind ironwork.InterfaceKind) field[N] { return ifaceField(kind) }
	f := []field[N]{
		uuidField[N](k, "uuid", 1, canCreate, func(n *N) *string { return &n.UUID }),
		timeField[N]("created_at", func(n *N) *time.Time { return &n.CreatedAt }),
		optTimeField[N]("updated_at", 1, func(n *N) **time.Time { return &n.UpdatedAt }),
		optBoolField[N](k, "automated_clean", 47, readWrite, func(n *N) **bool { return &n.AutomatedClean }),
		iface(ironwork.BIOSInterface),
		iface(ironwork.BootInterface),
		{name: "boot_mode", since: 75, access: canCreate, get: func(n *N) any { return optStr(n.BootMode) },
			set: func(n *N, v any) error {
				s, err := asString(k, v, 16)
				if err == nil && s != "" && s != "uefi" && s != "bios" {
					err = schemaError(k, "'%s' is not one of ['uefi', 'bios', None]", s)
				}
				n.BootMode = s
				return err
			}},
		objField[N](k, "clean_step", 7, readOnly, func(n *N) *ironwork.JSONObject { return &n.CleanStep }, false),
		{name: "conductor_group", since: 46, access: readWrite, get: func(n *N) any { return n.ConductorGroup },
			set: func(n *N, v any) error {
				s, err := asString(k, v, 255)
				if err != nil {
					return err
				}
				if !conductorGroupRE.MatchString(s) {
					return invalid("Expected a conductor group but received %s.", s)
				}
				n.ConductorGroup = strings.ToLower(s)
				return nil
			}},
		boolField[N](k, "console_enabled", 1, canCreate, func(n *N) *bool { return &n.ConsoleEnabled }),
		iface(ironwork.ConsoleInterface),
		iface(ironwork.DeployInterface),
		objField[N](k, "deploy_step", 44, readOnly, func(n *N) *ironwork.JSONObject { return &n.DeployStep }, false),
		strField[N](k, "description", 51, readWrite, func(n *N) *string { return &n.Description }, 4096),
		boolField[N](k, "disable_power_off", 95, readWrite, func(n *N) *bool { return &n.DisablePowerOff }),
		{name: "driver", since: 1, access: readWrite, get: func(n *N) any { return n.Driver },
			set: func(n *N, v any) error {
				if v == nil {
					return schemaError(k, "'driver' is a required property")
				}
				s, err := asString(k, v, 255)
				n.Driver = s
				return err
			}},
		objField[N](k, "driver_info", 1, readWrite, func(n *N) *ironwork.JSONObject { return &n.DriverInfo }, true),
		objField[N](k, "driver_internal_info", 3, readOnly, func(n *N) *ironwork.JSONObject { return &n.DriverInternalInfo }, true),
		objField[N](k, "extra", 1, readWrite, func(n *N) *ironwork.JSONObject { return &n.Extra }, false),
		roField[N]("fault", 42, func(n *N) any { return optStr(n.Fault) }),
		iface(ironwork.FirmwareInterface),
		iface(ironwork.InspectInterface),
		optTimeField[N]("inspection_finished_at", 6, func(n *N) **time.Time { return &n.InspectionFinishedAt }),
		optTimeField[N]("inspection_started_at", 6, func(n *N) **time.Time { return &n.InspectionStartedAt }),
		instanceInfoField(),
		uuidField[N](k, "instance_uuid", 1, readWrite, func(n *N) *string { return &n.InstanceUUID }),
		roField[N]("last_error", 1, func(n *N) any { return optStr(n.LastError) }),
		roField[N]("health", vHealth, func(n *N) any { return optStr(n.Health) }),
		{name: "instance_name", since: vInstanceName, access: readWrite, get: func(n *N) any { return optStr(n.InstanceName) },
			set: func(n *N, v any) error {
				s, err := asString(k, v, 255)
				if err == nil && v != nil && s == "" {
					err = schemaError(k, "'' should be non-empty")
				}
				n.InstanceName = s
				return err
			}},
		strField[N](k, "lessee", 65, readWrite, func(n *N) *string { return &n.Lessee }, 255),
		boolField[N](k, "maintenance", 1, readWrite, func(n *N) *bool { return &n.Maintenance }),
		roField[N]("maintenance_reason", 1, func(n *N) any { return optStr(n.MaintenanceReason) }),
		iface(ironwork.ManagementInterface),
		strField[N](k, "name", 5, readWrite, func(n *N) *string { return &n.Name }, 255),
		objField[N](k, "network_data", 66, readWrite, func(n *N) *ironwork.JSONObject { return &n.NetworkData }, false),
		iface(ironwork.NetworkInterface),
		strField[N](k, "owner", 50, readWrite, func(n *N) *string { return &n.Owner }, 255),
		strField[N](k, "parent_node", 83, readWrite, func(n *N) *string { return &n.ParentNode }, 255),
		iface(ironwork.PowerInterface),
		roField[N]("power_state", 1, func(n *N) any { return optStr(n.PowerState) }),
		objField[N](k, "properties", 1, readWrite, func(n *N) *ironwork.JSONObject { return &n.Properties }, false),
		boolField[N](k, "protected", 48, canPatch, func(n *N) *bool { return &n.Protected }),
		strField[N](k, "protected_reason", 48, canPatch, func(n *N) *string { return &n.ProtectedReason }, 0),
		roField[N]("provision_state", 1, func(n *N) any { return optStr(n.ProvisionState) }),
		optTimeField[N]("provision_updated_at", 1, func(n *N) **time.Time { return &n.ProvisionUpdatedAt }),
		objField[N](k, "raid_config", 12, readOnly, func(n *N) *ironwork.JSONObject { return &n.RAIDConfig }, false),
		iface(ironwork.RAIDInterface),
		iface(ironwork.RescueInterface),
		roField[N]("reservation", 1, func(n *N) any { return optStr(n.Reservation) }),
		strField[N](k, "resource_class", 21, readWrite, func(n *N) *string { return &n.ResourceClass }, 80),
		boolField[N](k, "retired", 61, readWrite, func(n *N) *bool { return &n.Retired }),
		strField[N](k, "retired_reason", 61, readWrite, func(n *N) *string { return &n.RetiredReason }, 0),
		optBoolField[N](k, "secure_boot", 75, canCreate, func(n *N) **bool { return &n.SecureBoot }),
		objField[N](k, "service_step", 87, readOnly, func(n *N) *ironwork.JSONObject { return &n.ServiceStep }, false),
		strField[N](k, "shard", 82, readWrite, func(n *N) *string { return &n.Shard }, 255),
		iface(ironwork.StorageInterface),
		roField[N]("target_power_state", 1, func(n *N) any { return optStr(n.TargetPowerState) }),
		roField[N]("target_provision_state", 1, func(n *N) any { return optStr(n.TargetProvisionState) }),
		objField[N](k, "target_raid_config", 12, readOnly, func(n *N) *ironwork.JSONObject { return &n.TargetRAIDConfig }, false),
		roField[N]("traits", vTraits, func(n *N) any {
			if n.Traits == nil {
				return []string{}
			}
			return n.Traits
		}),
		iface(ironwork.VendorInterface),
		roField[N]("allocation_uuid", vAllocations, func(n *N) any { return optStr(n.AllocationUUID) }),
		uuidField[N](k, "chassis_uuid", 1, readWrite, func(n *N) *string { return &n.ChassisUUID }),
	}
	return fieldTable[N]{kind: k, fields: f}
}

// instanceInfoField masks secrets, the config drive and the image URL, as Ironic does.
func instanceInfoField() field[ironwork.Node] {
	f := objField[ironwork.Node]("node", "instance_info", 1, readWrite,
		func(n *ironwork.Node) *ironwork.JSONObject { return &n.InstanceInfo }, true)
	f.get = func(n *ironwork.Node) any { return maskInstanceInfo(n.InstanceInfo) }
	return f
}

// maskInstanceInfo is instance_info as shown: secrets masked, and a configdrive or image_url
// that is neither null nor "" hidden.
func maskInstanceInfo(o ironwork.JSONObject) ironwork.JSONObject {
	m := maskSecrets(obj(o))
	for _, k := range []string{"configdrive", "image_url"} {
		if v, ok := m[k]; ok && v != nil && v != "" {
			m[k] = Masked
		}
	}
	return m
}

// nodeDefaultFields are what a list without detail shows.
var nodeDefaultFields = []string{"uuid", "instance_uuid", "maintenance", "power_state", "provision_state", "name"}

// updateAllowed lists the provision states in which a node with a transition in progress may
// still be updated, as Ironic's UPDATE_ALLOWED_STATES.
var updateAllowed = []ironwork.ProvisionState{
	ironwork.DeployFailed, ironwork.Inspecting, ironwork.InspectFailed, ironwork.InspectWait,
	ironwork.CleanFailed, ironwork.ProvisionError, ironwork.Verifying, ironwork.AdoptFailed,
	ironwork.RescueFailed, ironwork.UnrescueFailed, ironwork.Servicing, ironwork.ServiceHold, ironwork.ServiceFailed,
}

// interfaceChangeAllowed lists the states in which a node's interfaces may change outside
// maintenance.
var interfaceChangeAllowed = []ironwork.ProvisionState{
	ironwork.Enroll, ironwork.Inspecting, ironwork.InspectWait, ironwork.Manageable, ironwork.Available,
}

var (
	nameRE       = regexp.MustCompile(`^[A-Za-z0-9\-._~]+$`)
	hostnameRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?(\.[a-z0-9\-_]{0,62}[a-z0-9])*\.?$`)
	reservedName = []string{"maintenance", "management", "states", "vendor_passthru", "detail", "validate"}
)

// validNodeName reports whether name is a valid logical node name at version ver.
func validNodeName(name string, ver int) bool {
	if len(name) == 0 || len(name) > 255 || ironwork.IsUUID(name) {
		return false
	}
	if ver < 10 {
		return hostnameRE.MatchString(name)
	}
	return nameRE.MatchString(name)
}

func checkNodeName(name string, ver int, create bool, ident string) error {
	if slices.Contains(reservedName, name) {
		return invalid("The word \"%s\" is reserved and can not be used as a node name. Reserved words are: %s.",
			name, "maintenance, management, states, vendor_passthru, detail, validate")
	}
	if !validNodeName(name, ver) {
		if create {
			return invalid("Cannot create node with invalid name '%s'", name)
		}
		return invalid("Node %s: Cannot change name to invalid name '%s'", ident, name)
	}
	return nil
}
