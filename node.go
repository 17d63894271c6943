package ironwork

import (
	"regexp"
	"strings"
	"time"
)

// JSONObject is a free-form JSON object such as a node's driver_info or extra.
type JSONObject = map[string]any

// InterfaceKind names one of the driver interfaces a node is composed of.
type InterfaceKind string

// The driver interface kinds, in the order Ironic lists them.
const (
	BIOSInterface       InterfaceKind = "bios"
	BootInterface       InterfaceKind = "boot"
	ConsoleInterface    InterfaceKind = "console"
	DeployInterface     InterfaceKind = "deploy"
	FirmwareInterface   InterfaceKind = "firmware"
	InspectInterface    InterfaceKind = "inspect"
	ManagementInterface InterfaceKind = "management"
	NetworkInterface    InterfaceKind = "network"
	PowerInterface      InterfaceKind = "power"
	RAIDInterface       InterfaceKind = "raid"
	RescueInterface     InterfaceKind = "rescue"
	StorageInterface    InterfaceKind = "storage"
	VendorInterface     InterfaceKind = "vendor"
)

// InterfaceKinds lists every interface kind in a stable order.
var InterfaceKinds = []InterfaceKind{
	BIOSInterface, BootInterface, ConsoleInterface, DeployInterface, FirmwareInterface,
	InspectInterface, ManagementInterface, NetworkInterface, PowerInterface, RAIDInterface,
	RescueInterface, StorageInterface, VendorInterface,
}

// Field returns the API field name of the kind, such as "boot_interface".
func (k InterfaceKind) Field() string { return string(k) + "_interface" }

// Node is a physical server enrolled in Ironwork. Empty strings stand for JSON null.
type Node struct {
	ID                   int64 // internal key; never shown
	UUID                 string
	Name                 string
	Driver               string
	DriverInfo           JSONObject
	DriverInternalInfo   JSONObject
	Extra                JSONObject
	InstanceInfo         JSONObject
	InstanceUUID         string
	InstanceName         string
	Health               string // the BMC's view of the hardware's health (API 1.109); "" when unknown
	ChassisUUID          string
	Properties           JSONObject
	PowerState           PowerState
	TargetPowerState     PowerState
	ProvisionState       ProvisionState
	TargetProvisionState ProvisionState
	ProvisionUpdatedAt   *time.Time
	LastError            string
	Maintenance          bool
	MaintenanceReason    string
	Fault                string
	ConsoleEnabled       bool
	InspectionStartedAt  *time.Time
	InspectionFinishedAt *time.Time
	Reservation          string // name of the conductor holding the exclusive lock
	ConductorAffinity    int64  // internal: the conductor that last prepared the node's boot
	RAIDConfig           JSONObject
	TargetRAIDConfig     JSONObject
	CleanStep            JSONObject
	DeployStep           JSONObject
	ServiceStep          JSONObject
	ResourceClass        string
	Interfaces           map[InterfaceKind]string
	Traits               []string
	ConductorGroup       string
	AutomatedClean       *bool
	Protected            bool
	ProtectedReason      string
	Owner                string
	Lessee               string
	Description          string
	Conductor            string // hostname of the conductor the hash ring maps the node to
	AllocationUUID       string
	Retired              bool
	RetiredReason        string
	NetworkData          JSONObject
	BootMode             string
	SecureBoot           *bool
	Shard                string
	ParentNode           string
	DisablePowerOff      bool
	CreatedAt            time.Time
	UpdatedAt            *time.Time
}

// Port is a network interface of a node, identified by its MAC address.
type Port struct {
	ID                  int64
	UUID                string
	Name                string
	Address             string
	NodeID              int64
	NodeUUID            string
	PortgroupID         int64
	PortgroupUUID       string
	LocalLinkConnection JSONObject
	PXEEnabled          bool
	PhysicalNetwork     string
	IsSmartNIC          bool
	Extra               JSONObject
	InternalInfo        JSONObject
	Description         string
	Vendor              string
	Category            string
	// NotForDynamicPortgroup keeps the port out of portgroups built on demand: the API's
	// available_for_dynamic_portgroup (1.111) inverted, so that the zero value is its default.
	NotForDynamicPortgroup bool
	CreatedAt              time.Time
	UpdatedAt              *time.Time
}

// Portgroup is a bond of ports of one node.
type Portgroup struct {
	ID                       int64
	UUID                     string
	Name                     string
	Address                  string
	NodeID                   int64
	NodeUUID                 string
	Mode                     string
	Properties               JSONObject
	StandalonePortsSupported bool
	PhysicalNetwork          string
	Category                 string
	DynamicPortgroup         bool // built on demand rather than by an operator (API 1.111); read-only
	Extra                    JSONObject
	InternalInfo             JSONObject
	CreatedAt                time.Time
	UpdatedAt                *time.Time
}

// Chassis groups nodes that share an enclosure.
type Chassis struct {
	ID          int64
	UUID        string
	Description string
	Extra       JSONObject
	CreatedAt   time.Time
	UpdatedAt   *time.Time
}

// Conductor is a registered conductor process.
type Conductor struct {
	ID             int64
	Hostname       string
	ConductorGroup string
	Online         bool
	Drivers        []string
	RPCURL         string // where the conductor answers JSON-RPC; empty for API-only servers
	CreatedAt      time.Time
	UpdatedAt      *time.Time // the last heartbeat
}

// NodeHistoryEvent is one entry of a node's event history.
type NodeHistoryEvent struct {
	ID        int64
	UUID      string
	NodeID    int64
	Conductor string
	EventType string
	Severity  string
	Event     string
	User      string
	Project   string // the requester's project (API 1.113)
	// The node's provision state and target when the event was recorded, and the seconds
	// since its provision state last changed (API 1.115); Duration is nil when unknown.
	State                ProvisionState
	TargetProvisionState ProvisionState
	Duration             *int
	CreatedAt            time.Time
}

// Allocation is a request for a node matching a resource class and traits.
type Allocation struct {
	ID                int64
	UUID              string
	Name              string
	NodeID            int64
	NodeUUID          string
	State             string
	LastError         string
	ResourceClass     string
	Traits            []string
	CandidateNodes    []string
	Owner             string
	Extra             JSONObject
	Capabilities      map[string]string // Ironwork extension: required node capabilities
	ConductorAffinity int64
	CreatedAt         time.Time
	UpdatedAt         *time.Time
}

var (
	uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)
	macRE  = regexp.MustCompile(`^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$`)
)

// IsUUID reports whether s is a UUID in canonical or hex-only form.
func IsUUID(s string) bool { return uuidRE.MatchString(s) }

// NormalizeMAC returns a colon-separated MAC address in lower case, or an EINVALID error
// naming the field it came from.
func NormalizeMAC(field, s string) (string, error) {
	if !macRE.MatchString(s) {
		return "", Errorf(EINVALID, "Expected valid MAC address for %s: %s", field, s)
	}
	return strings.ToLower(s), nil
}
