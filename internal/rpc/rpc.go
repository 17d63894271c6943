// Package rpc carries conductor calls between Ironwork processes: an API-only server routes
// each node's work to the conductor the hash ring names, over JSON-RPC 2.0 on HTTP, and a
// process that is both API and conductor calls its own conductor directly. It owns the wire
// format and the routing; what the calls do belongs to the conductor.
package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// params are the arguments of every method; each uses the fields it needs.
type params struct {
	Node      string                      `json:"node"`
	Provision *conductor.ProvisionRequest `json:"provision,omitempty"`
	Power     ironwork.PowerState         `json:"power,omitempty"`
	TimeoutS  float64                     `json:"timeout_s,omitempty"`
	On        bool                        `json:"on,omitempty"`
	Reason    string                      `json:"reason,omitempty"`
	Device    *conductor.BootDevice       `json:"device,omitempty"`
	Mode      string                      `json:"mode,omitempty"`
	Config    ironwork.JSONObject         `json:"config,omitempty"`
	Heartbeat *conductor.Heartbeat        `json:"heartbeat,omitempty"`
	Alloc     *ironwork.Allocation        `json:"allocation,omitempty"`
	VIF       *conductor.VIF              `json:"vif,omitempty"`
}

type request struct {
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
	Params  params `json:"params"`
	ID      int64  `json:"id"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    struct {
		Kind ironwork.Code `json:"kind"`
	} `json:"data"`
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
	ID      int64           `json:"id"`
}

// Handler serves the conductor's methods at POST /rpc.
func Handler(c *conductor.Conductor, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /rpc", func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&req); err != nil {
			writeResponse(w, response{Error: &rpcError{Code: -32700, Message: "parse error: " + err.Error()}})
			return
		}
		result, err := dispatch(r.Context(), c, req)
		resp := response{ID: req.ID}
		if err != nil {
			e := &rpcError{Code: -32000, Message: ironwork.ErrorMessage(err)}
			e.Data.Kind = ironwork.ErrorCode(err)
			if e.Data.Kind == ironwork.EINTERNAL {
				log.Error("rpc call failed", "method", req.Method, "node", req.Params.Node, "error", err)
			}
			resp.Error = e
		} else {
			resp.Result, _ = json.Marshal(result)
		}
		writeResponse(w, resp)
	})
	return mux
}

func writeResponse(w http.ResponseWriter, resp response) {
	resp.JSONRPC = "2.0"
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func dispatch(ctx context.Context, c *conductor.Conductor, req request) (any, error) {
	p := req.Params
	switch req.Method {
	case "provision":
		if p.Provision == nil {
			return nil, ironwork.Errorf(ironwork.EINVALID, "provision needs its request")
		}
		return nil, c.Provision(ctx, p.Node, *p.Provision)
	case "set_power":
		return nil, c.SetPower(ctx, p.Node, p.Power, time.Duration(p.TimeoutS*float64(time.Second)))
	case "set_maintenance":
		return nil, c.SetMaintenance(ctx, p.Node, p.On, p.Reason)
	case "validate":
		return c.Validate(ctx, p.Node)
	case "boot_device":
		return c.BootDevice(ctx, p.Node)
	case "supported_boot_devices":
		return c.SupportedBootDevices(ctx, p.Node)
	case "set_boot_device":
		if p.Device == nil {
			return nil, ironwork.Errorf(ironwork.EINVALID, "set_boot_device needs a device")
		}
		return nil, c.SetBootDevice(ctx, p.Node, *p.Device)
	case "inject_nmi":
		return nil, c.InjectNMI(ctx, p.Node)
	case "set_boot_mode":
		return nil, c.SetBootMode(ctx, p.Node, p.Mode)
	case "set_secure_boot":
		return nil, c.SetSecureBoot(ctx, p.Node, p.On)
	case "set_target_raid":
		return nil, c.SetTargetRAID(ctx, p.Node, p.Config)
	case "create_allocation":
		if p.Alloc == nil {
			return nil, ironwork.Errorf(ironwork.EINVALID, "create_allocation needs an allocation")
		}
		return c.CreateAllocation(ctx, p.Alloc, p.Node)
	case "delete_allocation":
		return nil, c.DeleteAllocation(ctx, p.Reason)
	case "agent_heartbeat":
		if p.Heartbeat == nil {
			return nil, ironwork.Errorf(ironwork.EINVALID, "agent_heartbeat needs a heartbeat")
		}
		return nil, c.AgentHeartbeat(ctx, p.Node, *p.Heartbeat)
	case "agent_lookup":
		return c.LookupAgent(ctx, p.Node)
	case "vif_attach", "vif_detach":
		if p.VIF == nil {
			return nil, ironwork.Errorf(ironwork.EINVALID, "%s needs a VIF", req.Method)
		}
		if req.Method == "vif_detach" {
			return nil, c.DetachVIF(ctx, p.Node, p.VIF.ID)
		}
		return nil, c.AttachVIF(ctx, p.Node, *p.VIF)
	case "vif_list":
		return c.ListVIFs(ctx, p.Node)
	}
	return nil, ironwork.Errorf(ironwork.EINVALID, "unknown method %q", req.Method)
}

// Router sends each node's calls to the conductor the hash ring names: the local one directly,
// others over JSON-RPC.
type Router struct {
	local *conductor.Conductor // nil on an API-only server
	store *sqlstore.Store
	ring  *conductor.Ring
	self  string
	http  *http.Client
	log   *slog.Logger

	mu   sync.RWMutex
	urls map[string]string
	seq  atomic.Int64
}

// NewRouter returns a router. local may be nil; ring is the local conductor's ring, or a ring
// the caller keeps fresh with Refresh.
func NewRouter(local *conductor.Conductor, store *sqlstore.Store, ring *conductor.Ring, self string, log *slog.Logger) *Router {
	return &Router{local: local, store: store, ring: ring, self: self, log: log, urls: map[string]string{},
		http: &http.Client{Timeout: 60 * time.Second}}
}

// Refresh rebuilds the ring and the conductors' addresses from the database.
func (r *Router) Refresh(ctx context.Context, timeout time.Duration) error {
	urls, err := conductor.RefreshRing(ctx, r.store, r.ring, timeout, "")
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.urls = urls
	r.mu.Unlock()
	return nil
}

// route returns the local conductor, or the URL of the node's remote conductor.
func (r *Router) route(ctx context.Context, ident string) (*conductor.Conductor, string, error) {
	n, err := r.store.GetNode(ctx, ident)
	if err != nil {
		return nil, "", err
	}
	owner := r.ring.ConductorFor(n)
	if owner == "" {
		return nil, "", ironwork.Errorf(ironwork.EUNAVAILABLE, "No conductor is alive for conductor group \"%s\" of node %s.", n.ConductorGroup, n.UUID)
	}
	if r.local != nil && owner == r.self {
		return r.local, "", nil
	}
	r.mu.RLock()
	url := r.urls[owner]
	r.mu.RUnlock()
	if url == "" {
		if err := r.Refresh(ctx, 0); err == nil {
			r.mu.RLock()
			url = r.urls[owner]
			r.mu.RUnlock()
		}
	}
	if url == "" {
		if r.local != nil {
			return r.local, "", nil // the owner takes no calls: do the work here, under the node lock
		}
		return nil, "", ironwork.Errorf(ironwork.EUNAVAILABLE, "Conductor %s has no RPC address.", owner)
	}
	return nil, url, nil
}

// anyConductor returns the local conductor, or the URL of some live remote one, for work that
// belongs to no node yet (a new allocation).
func (r *Router) anyConductor(ctx context.Context) (*conductor.Conductor, string, error) {
	if r.local != nil {
		return r.local, "", nil
	}
	pick := func() string {
		r.mu.RLock()
		defer r.mu.RUnlock()
		for _, u := range r.urls {
			if u != "" {
				return u
			}
		}
		return ""
	}
	url := pick()
	if url == "" {
		if err := r.Refresh(ctx, 0); err == nil {
			url = pick()
		}
	}
	if url == "" {
		return nil, "", ironwork.Errorf(ironwork.EUNAVAILABLE, "No conductor is alive to process the allocation.")
	}
	return nil, url, nil
}

// call runs method on the node's conductor and decodes the result into out.
func (r *Router) call(ctx context.Context, p params, method string, localFn func(c *conductor.Conductor) (any, error), out any) error {
	var c *conductor.Conductor
	var url string
	var err error
	if p.Node == "" {
		c, url, err = r.anyConductor(ctx)
	} else {
		c, url, err = r.route(ctx, p.Node)
	}
	if err != nil {
		return err
	}
	if c != nil {
		res, err := localFn(c)
		if err != nil || out == nil {
			return err
		}
		b, _ := json.Marshal(res)
		return json.Unmarshal(b, out)
	}
	body, _ := json.Marshal(request{JSONRPC: "2.0", Method: method, Params: p, ID: r.seq.Add(1)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/rpc", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return ironwork.Errorf(ironwork.EUNAVAILABLE, "Conductor at %s did not answer: %v", url, err)
	}
	defer resp.Body.Close()
	var rr response
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&rr); err != nil {
		return fmt.Errorf("decode rpc answer from %s: %w", url, err)
	}
	if rr.Error != nil {
		kind := rr.Error.Data.Kind
		if kind == "" {
			kind = ironwork.EINTERNAL
		}
		return &ironwork.Error{Code: kind, Message: rr.Error.Message}
	}
	if out != nil && len(rr.Result) > 0 {
		return json.Unmarshal(rr.Result, out)
	}
	return nil
}

// Provision implements httpapi.Conductor.
func (r *Router) Provision(ctx context.Context, ident string, req conductor.ProvisionRequest) error {
	// Only the hash of a rescue password goes to the conductor, local or remote.
	if err := req.HashRescuePassword(); err != nil {
		return err
	}
	return r.call(ctx, params{Node: ident, Provision: &req}, "provision",
		func(c *conductor.Conductor) (any, error) { return nil, c.Provision(ctx, ident, req) }, nil)
}

// SetPower implements httpapi.Conductor.
func (r *Router) SetPower(ctx context.Context, ident string, target ironwork.PowerState, timeout time.Duration) error {
	return r.call(ctx, params{Node: ident, Power: target, TimeoutS: timeout.Seconds()}, "set_power",
		func(c *conductor.Conductor) (any, error) { return nil, c.SetPower(ctx, ident, target, timeout) }, nil)
}

// SetMaintenance implements httpapi.Conductor.
func (r *Router) SetMaintenance(ctx context.Context, ident string, on bool, reason string) error {
	return r.call(ctx, params{Node: ident, On: on, Reason: reason}, "set_maintenance",
		func(c *conductor.Conductor) (any, error) { return nil, c.SetMaintenance(ctx, ident, on, reason) }, nil)
}

// Validate implements httpapi.Conductor.
func (r *Router) Validate(ctx context.Context, ident string) (map[ironwork.InterfaceKind]conductor.ValidationResult, error) {
	var out map[ironwork.InterfaceKind]conductor.ValidationResult
	err := r.call(ctx, params{Node: ident}, "validate",
		func(c *conductor.Conductor) (any, error) { return c.Validate(ctx, ident) }, &out)
	return out, err
}

// BootDevice implements httpapi.Conductor.
func (r *Router) BootDevice(ctx context.Context, ident string) (conductor.BootDevice, error) {
	var out conductor.BootDevice
	err := r.call(ctx, params{Node: ident}, "boot_device",
		func(c *conductor.Conductor) (any, error) { return c.BootDevice(ctx, ident) }, &out)
	return out, err
}

// SupportedBootDevices implements httpapi.Conductor.
func (r *Router) SupportedBootDevices(ctx context.Context, ident string) ([]string, error) {
	var out []string
	err := r.call(ctx, params{Node: ident}, "supported_boot_devices",
		func(c *conductor.Conductor) (any, error) { return c.SupportedBootDevices(ctx, ident) }, &out)
	return out, err
}

// SetBootDevice implements httpapi.Conductor.
func (r *Router) SetBootDevice(ctx context.Context, ident string, dev conductor.BootDevice) error {
	return r.call(ctx, params{Node: ident, Device: &dev}, "set_boot_device",
		func(c *conductor.Conductor) (any, error) { return nil, c.SetBootDevice(ctx, ident, dev) }, nil)
}

// InjectNMI implements httpapi.Conductor.
func (r *Router) InjectNMI(ctx context.Context, ident string) error {
	return r.call(ctx, params{Node: ident}, "inject_nmi",
		func(c *conductor.Conductor) (any, error) { return nil, c.InjectNMI(ctx, ident) }, nil)
}

// SetBootMode implements httpapi.Conductor.
func (r *Router) SetBootMode(ctx context.Context, ident, mode string) error {
	return r.call(ctx, params{Node: ident, Mode: mode}, "set_boot_mode",
		func(c *conductor.Conductor) (any, error) { return nil, c.SetBootMode(ctx, ident, mode) }, nil)
}

// SetSecureBoot implements httpapi.Conductor.
func (r *Router) SetSecureBoot(ctx context.Context, ident string, on bool) error {
	return r.call(ctx, params{Node: ident, On: on}, "set_secure_boot",
		func(c *conductor.Conductor) (any, error) { return nil, c.SetSecureBoot(ctx, ident, on) }, nil)
}

// SetTargetRAID implements httpapi.Conductor.
func (r *Router) SetTargetRAID(ctx context.Context, ident string, cfg ironwork.JSONObject) error {
	return r.call(ctx, params{Node: ident, Config: cfg}, "set_target_raid",
		func(c *conductor.Conductor) (any, error) { return nil, c.SetTargetRAID(ctx, ident, cfg) }, nil)
}

// AgentHeartbeat implements httpapi.Conductor.
func (r *Router) AgentHeartbeat(ctx context.Context, ident string, hb conductor.Heartbeat) error {
	return r.call(ctx, params{Node: ident, Heartbeat: &hb}, "agent_heartbeat",
		func(c *conductor.Conductor) (any, error) { return nil, c.AgentHeartbeat(ctx, ident, hb) }, nil)
}

// LookupAgent implements httpapi.Conductor.
func (r *Router) LookupAgent(ctx context.Context, ident string) (conductor.AgentLookup, error) {
	var out conductor.AgentLookup
	err := r.call(ctx, params{Node: ident}, "agent_lookup",
		func(c *conductor.Conductor) (any, error) { return c.LookupAgent(ctx, ident) }, &out)
	return out, err
}

// CreateAllocation implements httpapi.Conductor: a backfill goes to the node's conductor, a new
// allocation to the local conductor or any live one.
func (r *Router) CreateAllocation(ctx context.Context, a *ironwork.Allocation, backfillNode string) (*ironwork.Allocation, error) {
	var out ironwork.Allocation
	err := r.call(ctx, params{Node: backfillNode, Alloc: a}, "create_allocation",
		func(c *conductor.Conductor) (any, error) { return c.CreateAllocation(ctx, a, backfillNode) }, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteAllocation implements httpapi.Conductor. The store's transaction decides, so any
// conductor may do it.
func (r *Router) DeleteAllocation(ctx context.Context, ident string) error {
	return r.call(ctx, params{Reason: ident}, "delete_allocation",
		func(c *conductor.Conductor) (any, error) { return nil, c.DeleteAllocation(ctx, ident) }, nil)
}

// AttachVIF implements httpapi.Conductor.
func (r *Router) AttachVIF(ctx context.Context, ident string, vif conductor.VIF) error {
	return r.call(ctx, params{Node: ident, VIF: &vif}, "vif_attach",
		func(c *conductor.Conductor) (any, error) { return nil, c.AttachVIF(ctx, ident, vif) }, nil)
}

// DetachVIF implements httpapi.Conductor.
func (r *Router) DetachVIF(ctx context.Context, ident, id string) error {
	return r.call(ctx, params{Node: ident, VIF: &conductor.VIF{ID: id}}, "vif_detach",
		func(c *conductor.Conductor) (any, error) { return nil, c.DetachVIF(ctx, ident, id) }, nil)
}

// ListVIFs implements httpapi.Conductor.
func (r *Router) ListVIFs(ctx context.Context, ident string) ([]conductor.VIF, error) {
	var out []conductor.VIF
	err := r.call(ctx, params{Node: ident}, "vif_list",
		func(c *conductor.Conductor) (any, error) { return c.ListVIFs(ctx, ident) }, &out)
	return out, err
}

// Ring is the ring the router routes by.
func (r *Router) Ring() *conductor.Ring { return r.ring }
