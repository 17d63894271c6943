package ironwork

// ProvisionState is a node's place in the provisioning lifecycle, spelled as Ironic spells it.
type ProvisionState string

// Provision states, stable and transient, as Ironic names them.
const (
	Enroll         ProvisionState = "enroll"
	Verifying      ProvisionState = "verifying"
	Manageable     ProvisionState = "manageable"
	Inspecting     ProvisionState = "inspecting"
	InspectWait    ProvisionState = "inspect wait"
	InspectFailed  ProvisionState = "inspect failed"
	Cleaning       ProvisionState = "cleaning"
	CleanWait      ProvisionState = "clean wait"
	CleanHold      ProvisionState = "clean hold"
	CleanFailed    ProvisionState = "clean failed"
	Available      ProvisionState = "available"
	Deploying      ProvisionState = "deploying"
	DeployWait     ProvisionState = "wait call-back"
	DeployHold     ProvisionState = "deploy hold"
	DeployFailed   ProvisionState = "deploy failed"
	DeployComplete ProvisionState = "deploy complete"
	Active         ProvisionState = "active"
	Deleting       ProvisionState = "deleting"
	Deleted        ProvisionState = "deleted"
	ProvisionError ProvisionState = "error"
	Rebuild        ProvisionState = "rebuild"
	Rescuing       ProvisionState = "rescuing"
	RescueWait     ProvisionState = "rescue wait"
	RescueFailed   ProvisionState = "rescue failed"
	Rescue         ProvisionState = "rescue"
	Unrescuing     ProvisionState = "unrescuing"
	UnrescueFailed ProvisionState = "unrescue failed"
	Adopting       ProvisionState = "adopting"
	AdoptFailed    ProvisionState = "adopt failed"
	Servicing      ProvisionState = "servicing"
	ServiceWait    ProvisionState = "service wait"
	ServiceHold    ProvisionState = "service hold"
	ServiceFailed  ProvisionState = "service failed"
)

// NoState is the empty target state: nothing is in progress.
const NoState ProvisionState = ""

// deleteAllowed lists the provision states in which a node record may be deleted; in any other
// state a node may be deleted only while in maintenance.
var deleteAllowed = map[ProvisionState]bool{
	Manageable: true, Enroll: true, AdoptFailed: true, Available: true,
}

// CanDelete reports whether a node in state s may be deleted.
func CanDelete(s ProvisionState, maintenance bool) bool {
	return deleteAllowed[s] || maintenance
}

// PowerState is a node's power state as Ironic reports it.
type PowerState string

// Power states and the power targets of PUT /states/power.
const (
	PowerOn       PowerState = "power on"
	PowerOff      PowerState = "power off"
	Rebooting     PowerState = "rebooting"
	SoftPowerOff  PowerState = "soft power off"
	SoftRebooting PowerState = "soft rebooting"
	PowerError    PowerState = "error"
	PowerNone     PowerState = ""
)
