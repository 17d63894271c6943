package conductor

import (
	"context"
	"time"

	"github.com/ironwork/ironwork"
)

// Request is the request of a conductor operation. RouteKey names the node whose conductor
// must run it; an empty key lets any conductor run it.
type Request interface {
	RouteKey() string
}

// NodeRef names the node an operation acts on (its UUID or name). Embedded in a request, it
// routes the request to the node's conductor.
type NodeRef struct {
	Node string `json:"node"`
}

// RouteKey routes to the node's conductor.
func (r NodeRef) RouteKey() string { return r.Node }

// None is the response of an operation that answers nothing but its error.
type None struct{}

// Op declares a conductor operation once: its name on the wire, its request and response
// types, and the conductor method that runs it. Everything else (the API's calls, local
// dispatch, JSON-RPC to another conductor) follows from the declaration.
type Op[Req Request, Resp any] struct {
	Name string
	Run  func(c *Conductor, ctx context.Context, req Req) (Resp, error)
}

// Action declares an operation whose method answers only an error.
func Action[Req Request](name string, run func(c *Conductor, ctx context.Context, req Req) error) Op[Req, None] {
	return Op[Req, None]{Name: name, Run: func(c *Conductor, ctx context.Context, req Req) (None, error) {
		return None{}, run(c, ctx, req)
	}}
}

// Operation is an Op with its types erased, as a server that receives calls by name needs it.
type Operation interface {
	// Method is the operation's name on the wire.
	Method() string
	// Invoke decodes the request with decode (given a pointer to the Req), runs it on c, and
	// returns the response and the request's route key.
	Invoke(ctx context.Context, c *Conductor, decode func(req any) error) (resp any, key string, err error)
}

// Method implements Operation.
func (o Op[Req, Resp]) Method() string { return o.Name }

// Invoke implements Operation.
func (o Op[Req, Resp]) Invoke(ctx context.Context, c *Conductor, decode func(req any) error) (any, string, error) {
	var req Req
	if err := decode(&req); err != nil {
		return nil, "", ironwork.Errorf(ironwork.EINVALID, "Invalid parameters of %s: %v", o.Name, err)
	}
	resp, err := o.Run(c, ctx, req)
	return resp, req.RouteKey(), err
}

// Remote is a conductor in another process, reached by name and JSON-compatible values.
type Remote interface {
	Call(ctx context.Context, method string, req, resp any) error
}

// Caller finds the conductor that runs a request: the local one (returned, run directly) or a
// remote one.
type Caller interface {
	Route(ctx context.Context, key string) (*Conductor, Remote, error)
}

// Call runs op on the conductor that owns req: directly when that is the local conductor (no
// encoding), over the remote's transport otherwise.
func Call[Req Request, Resp any](ctx context.Context, via Caller, op Op[Req, Resp], req Req) (Resp, error) {
	var resp Resp
	local, remote, err := via.Route(ctx, req.RouteKey())
	if err != nil {
		return resp, err
	}
	if f, ok := ctx.Value(waitHookKey{}).(func()); ok {
		f()
	}
	if local != nil {
		return op.Run(local, ctx, req)
	}
	err = remote.Call(ctx, op.Name, req, &resp)
	return resp, err
}

type waitHookKey struct{}

// WithWaitHook returns ctx carrying f, which Call runs before it hands an operation to a
// conductor, whose work may wait on hardware for seconds: the API gives its request's turn
// back there (httpapi's admit), so that slow BMCs do not hold every turn. f must be safe to
// run more than once.
func WithWaitHook(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, waitHookKey{}, f)
}

// Do runs an operation that answers nothing but its error, as Call does.
func Do[Req Request](ctx context.Context, via Caller, op Op[Req, None], req Req) error {
	_, err := Call(ctx, via, op, req)
	return err
}

// The requests of the operations. A request embeds NodeRef when the node's conductor must run it.
type (
	// SetPowerRequest asks for a power change; a zero Timeout takes the configured one.
	SetPowerRequest struct {
		NodeRef
		Target  ironwork.PowerState `json:"target"`
		Timeout time.Duration       `json:"timeout,omitempty"`
	}
	// SetMaintenanceRequest puts a node into maintenance (On) with a reason, or takes it out.
	SetMaintenanceRequest struct {
		NodeRef
		On     bool   `json:"on"`
		Reason string `json:"reason,omitempty"`
	}
	// SetBootDeviceRequest sets a node's boot device.
	SetBootDeviceRequest struct {
		NodeRef
		Device BootDevice `json:"device"`
	}
	// SetBootModeRequest switches a node between bios and uefi.
	SetBootModeRequest struct {
		NodeRef
		Mode string `json:"mode"`
	}
	// SetSecureBootRequest turns secure boot on or off.
	SetSecureBootRequest struct {
		NodeRef
		On bool `json:"on"`
	}
	// SetTargetRAIDRequest records a node's target RAID configuration.
	SetTargetRAIDRequest struct {
		NodeRef
		Config ironwork.JSONObject `json:"config"`
	}
	// HeartbeatRequest is a heartbeat of a node's agent.
	HeartbeatRequest struct {
		NodeRef
		Heartbeat Heartbeat `json:"heartbeat"`
	}
	// AttachVIFRequest attaches a VIF to a node.
	AttachVIFRequest struct {
		NodeRef
		VIF VIF `json:"vif"`
	}
	// DetachVIFRequest detaches the VIF with the ID from a node.
	DetachVIFRequest struct {
		NodeRef
		VIF string `json:"vif"`
	}
	// CreateAllocationRequest creates an allocation. With BackfillNode (a node UUID) it
	// records that node's existing deployment and runs on the node's conductor; without, any
	// conductor takes it.
	CreateAllocationRequest struct {
		Allocation   *ironwork.Allocation `json:"allocation"`
		BackfillNode string               `json:"backfill_node,omitempty"`
	}
	// DeleteAllocationRequest deletes an allocation (UUID or name). The store's transaction
	// decides, so any conductor may run it.
	DeleteAllocationRequest struct {
		Allocation string `json:"allocation"`
	}
)

// RouteKey routes a backfill to the node's conductor and a new allocation to any conductor.
func (r CreateAllocationRequest) RouteKey() string { return r.BackfillNode }

// RouteKey lets any conductor delete an allocation.
func (r DeleteAllocationRequest) RouteKey() string { return "" }

// The conductor's operations. Each is a value assigned once and never changed, like a
// sentinel error; Operations lists them for a server that receives calls by name.
var (
	OpProvision            = Action("provision", (*Conductor).Provision)
	OpSetPower             = Action("set_power", (*Conductor).SetPower)
	OpSetMaintenance       = Action("set_maintenance", (*Conductor).SetMaintenance)
	OpValidate             = Op[NodeRef, map[ironwork.InterfaceKind]ValidationResult]{Name: "validate", Run: (*Conductor).Validate}
	OpBootDevice           = Op[NodeRef, BootDevice]{Name: "boot_device", Run: (*Conductor).BootDevice}
	OpSupportedBootDevices = Op[NodeRef, []string]{Name: "supported_boot_devices", Run: (*Conductor).SupportedBootDevices}
	OpSetBootDevice        = Action("set_boot_device", (*Conductor).SetBootDevice)
	OpInjectNMI            = Action("inject_nmi", (*Conductor).InjectNMI)
	OpSetBootMode          = Action("set_boot_mode", (*Conductor).SetBootMode)
	OpSetSecureBoot        = Action("set_secure_boot", (*Conductor).SetSecureBoot)
	OpSetTargetRAID        = Action("set_target_raid", (*Conductor).SetTargetRAID)
	OpAgentHeartbeat       = Action("agent_heartbeat", (*Conductor).AgentHeartbeat)
	OpLookupAgent          = Op[NodeRef, AgentLookup]{Name: "agent_lookup", Run: (*Conductor).LookupAgent}
	OpCreateAllocation     = Op[CreateAllocationRequest, *ironwork.Allocation]{Name: "create_allocation", Run: (*Conductor).CreateAllocation}
	OpDeleteAllocation     = Action("delete_allocation", (*Conductor).DeleteAllocation)
	OpAttachVIF            = Action("vif_attach", (*Conductor).AttachVIF)
	OpDetachVIF            = Action("vif_detach", (*Conductor).DetachVIF)
	OpListVIFs             = Op[NodeRef, []VIF]{Name: "vif_list", Run: (*Conductor).ListVIFs}
	OpContinueInspection   = Op[ContinueInspectionRequest, InspectionResult]{Name: "continue_inspection", Run: (*Conductor).ContinueInspection}
	OpDiscover             = Op[DiscoverRequest, InspectionResult]{Name: "discover", Run: (*Conductor).Discover}
	OpSetConsoleMode       = Action("set_console_mode", (*Conductor).SetConsoleMode)
	OpConsoleInfo          = Op[NodeRef, ConsoleInfo]{Name: "console_info", Run: (*Conductor).ConsoleInfo}
	OpStopConsole          = Action("stop_console", (*Conductor).StopConsole)
)

// Operations lists every operation a conductor serves to other processes.
func Operations() []Operation {
	return []Operation{
		OpProvision, OpSetPower, OpSetMaintenance, OpValidate, OpBootDevice, OpSupportedBootDevices,
		OpSetBootDevice, OpInjectNMI, OpSetBootMode, OpSetSecureBoot, OpSetTargetRAID,
		OpAgentHeartbeat, OpLookupAgent, OpCreateAllocation, OpDeleteAllocation, OpAttachVIF, OpDetachVIF, OpListVIFs,
		OpContinueInspection, OpDiscover, OpSetConsoleMode, OpConsoleInfo, OpStopConsole,
		OpAttachVirtualMedia, OpDetachVirtualMedia, OpVirtualMedia,
		OpVendorPassthruMethods, OpVendorPassthru, OpSupportedIndicators, OpIndicatorState, OpSetIndicatorState,
	}
}
