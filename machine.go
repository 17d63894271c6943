package ironwork

import "sort"

// Event is what moves a node from one provision state to another: a verb of the provision API
// (deploy, manage, ...) or an outcome of the work (done, fail, wait, ...).
type Event string

// Events of Ironic's provision state machine.
const (
	EventDeploy   Event = "deploy"
	EventDelete   Event = "delete"
	EventManage   Event = "manage"
	EventProvide  Event = "provide"
	EventInspect  Event = "inspect"
	EventAbort    Event = "abort"
	EventClean    Event = "clean"
	EventAdopt    Event = "adopt"
	EventRescue   Event = "rescue"
	EventUnrescue Event = "unrescue"
	EventUnhold   Event = "unhold"
	EventService  Event = "service"
	EventRebuild  Event = "rebuild"
	EventDone     Event = "done"
	EventFail     Event = "fail"
	EventWait     Event = "wait"
	EventResume   Event = "resume"
	EventHold     Event = "hold"
)

// Transition is one edge of the provision state machine.
type Transition struct {
	From  ProvisionState
	Event Event
	To    ProvisionState
}

// Transitions is Ironic's provision state machine, edge by edge.
var Transitions = []Transition{
	{Available, EventDeploy, Deploying},
	{Deploying, EventFail, DeployFailed},
	{DeployFailed, EventRebuild, Deploying},
	{DeployFailed, EventDeploy, Deploying},
	{Deploying, EventWait, DeployWait},
	{Deploying, EventHold, DeployHold},
	{DeployWait, EventHold, DeployHold},
	{DeployWait, EventResume, Deploying},
	{DeployWait, EventFail, DeployFailed},
	{DeployHold, EventUnhold, DeployWait},
	{DeployHold, EventAbort, DeployFailed},
	{DeployWait, EventAbort, DeployFailed},
	{Deploying, EventDone, Active},
	{Active, EventRebuild, Deploying},
	{Active, EventDelete, Deleting},
	{DeployWait, EventDelete, Deleting},
	{DeployFailed, EventDelete, Deleting},
	{Deleting, EventFail, ProvisionError},
	{Deleting, EventClean, Cleaning},
	{Cleaning, EventDone, Available},
	{Cleaning, EventFail, CleanFailed},
	{CleanWait, EventFail, CleanFailed},
	{CleanWait, EventAbort, CleanFailed},
	{Cleaning, EventWait, CleanWait},
	{Cleaning, EventHold, CleanHold},
	{CleanWait, EventHold, CleanHold},
	{CleanWait, EventResume, Cleaning},
	{CleanHold, EventAbort, CleanFailed},
	{CleanHold, EventUnhold, CleanWait},
	{CleanFailed, EventManage, Manageable},
	{Manageable, EventProvide, Cleaning},
	{Manageable, EventClean, Cleaning},
	{Cleaning, EventManage, Manageable},
	{Available, EventManage, Manageable},
	{ProvisionError, EventRebuild, Deploying},
	{ProvisionError, EventDelete, Deleting},
	{Manageable, EventInspect, Inspecting},
	{Inspecting, EventDone, Manageable},
	{Inspecting, EventFail, InspectFailed},
	{Inspecting, EventWait, InspectWait},
	{InspectWait, EventDone, Manageable},
	{InspectWait, EventFail, InspectFailed},
	{InspectWait, EventAbort, InspectFailed},
	{InspectWait, EventResume, Inspecting},
	{InspectFailed, EventManage, Manageable},
	{InspectFailed, EventInspect, Inspecting},
	{Active, EventRescue, Rescuing},
	{Rescuing, EventDone, Rescue},
	{Rescuing, EventWait, RescueWait},
	{RescueWait, EventResume, Rescuing},
	{Rescue, EventRescue, Rescuing},
	{Rescue, EventDelete, Deleting},
	{RescueWait, EventFail, RescueFailed},
	{Rescuing, EventFail, RescueFailed},
	{RescueWait, EventAbort, RescueFailed},
	{RescueFailed, EventRescue, Rescuing},
	{RescueFailed, EventUnrescue, Unrescuing},
	{RescueFailed, EventDelete, Deleting},
	{RescueWait, EventDelete, Deleting},
	{Rescue, EventUnrescue, Unrescuing},
	{Unrescuing, EventDone, Active},
	{Unrescuing, EventFail, UnrescueFailed},
	{UnrescueFailed, EventRescue, Rescuing},
	{UnrescueFailed, EventUnrescue, Unrescuing},
	{UnrescueFailed, EventDelete, Deleting},
	{Enroll, EventManage, Verifying},
	{Verifying, EventDone, Manageable},
	{Verifying, EventFail, Enroll},
	{Manageable, EventAdopt, Adopting},
	{Adopting, EventDone, Active},
	{Adopting, EventFail, AdoptFailed},
	{AdoptFailed, EventAdopt, Adopting},
	{AdoptFailed, EventManage, Manageable},
	{Servicing, EventDone, Active},
	{Active, EventService, Servicing},
	{Servicing, EventFail, ServiceFailed},
	{Servicing, EventWait, ServiceWait},
	{Servicing, EventHold, ServiceHold},
	{ServiceWait, EventHold, ServiceHold},
	{ServiceHold, EventService, Servicing},
	{ServiceHold, EventUnhold, ServiceWait},
	{ServiceWait, EventResume, Servicing},
	{ServiceWait, EventFail, ServiceFailed},
	{ServiceHold, EventFail, ServiceFailed},
	{ServiceWait, EventAbort, ServiceFailed},
	{ServiceHold, EventAbort, ServiceFailed},
	{ServiceFailed, EventService, Servicing},
	{ServiceFailed, EventRescue, Rescuing},
	{ServiceFailed, EventWait, ServiceWait},
	{ServiceFailed, EventHold, ServiceHold},
	{ServiceFailed, EventDelete, Deleting},
	{ServiceFailed, EventAbort, Active},
	{ServiceWait, EventDelete, Deleting},
}

// stableStates are the states a node rests in; every other state has a target.
var stableStates = map[ProvisionState]bool{
	Enroll: true, Manageable: true, Available: true, Active: true, ProvisionError: true, Rescue: true,
}

// targets maps each unstable state to the stable state it is heading for.
var targets = map[ProvisionState]ProvisionState{
	Verifying: Manageable, Deploying: Active, DeployWait: Active, DeployFailed: Active, DeployHold: Active,
	Cleaning: Available, CleanWait: Available, CleanFailed: Available, CleanHold: Available,
	Deleting: Available, Inspecting: Manageable, InspectFailed: Manageable, InspectWait: Manageable,
	Adopting: Active, AdoptFailed: Active, Rescuing: Rescue, RescueWait: Rescue, RescueFailed: Rescue,
	Unrescuing: Active, UnrescueFailed: Active, Servicing: Active, ServiceWait: Active,
	ServiceFailed: Active, ServiceHold: Active,
}

// IsStable reports whether s is a state a node rests in.
func IsStable(s ProvisionState) bool { return stableStates[s] }

// NextState returns the state event leads to from s, or false when s does not allow it.
func NextState(s ProvisionState, e Event) (ProvisionState, bool) {
	for _, t := range Transitions {
		if t.From == s && t.Event == e {
			return t.To, true
		}
	}
	return "", false
}

// TargetOf returns the target provision state a node in state s shows: the stable state an
// unstable one is heading for, and none for a stable state.
func TargetOf(s ProvisionState) ProvisionState { return targets[s] }

// FailedState returns the state a node in s fails into when its work is lost or times out (a
// dead conductor, a missed callback).
func FailedState(s ProvisionState) (ProvisionState, bool) {
	next, ok := NextState(s, EventFail)
	return next, ok
}

// ProvisionStates lists every provision state, sorted.
func ProvisionStates() []ProvisionState {
	seen := map[ProvisionState]bool{}
	for _, t := range Transitions {
		seen[t.From], seen[t.To] = true, true
	}
	out := make([]ProvisionState, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
