package conductor

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ironwork/ironwork"
)

// PassthruMethod describes one vendor passthru method as Ironic's method discovery
// (GET .../vendor_passthru/methods) shows it.
type PassthruMethod struct {
	// HTTPMethods are the HTTP methods the method answers (POST, GET, ...).
	HTTPMethods []string `json:"http_methods"`
	// Async methods run in a conductor worker: the API answers 202 with no result.
	Async       bool   `json:"async"`
	Description string `json:"description"`
	// Attach asks for the result to be sent as the raw response body.
	Attach bool `json:"attach"`
	// RequireExclusiveLock takes the node's lock for the call (and, for an async method,
	// until its worker ends).
	RequireExclusiveLock bool `json:"require_exclusive_lock"`
}

// PassthruCall is one call of a node's vendor passthru method.
type PassthruCall struct {
	Method     string         // the method's name
	HTTPMethod string         // upper case: POST, GET, PUT, PATCH or DELETE
	Args       map[string]any // the request's JSON body (empty when none)
}

// Vendor is a vendor interface (Ironic's VendorInterface): methods an operator calls on a
// node through /v1/nodes/{node}/vendor_passthru. The conductor checks the method and HTTP
// method against VendorMethods, validates the call (before answering, even for an async
// method) and then runs it.
type Vendor interface {
	VendorMethods() map[string]PassthruMethod
	ValidatePassthru(ctx context.Context, t *Task, call PassthruCall) error
	// CallPassthru runs the call; its result must encode as JSON.
	CallPassthru(ctx context.Context, t *Task, call PassthruCall) (any, error)
}

type (
	// VendorPassthruRequest calls a vendor passthru method of a node.
	VendorPassthruRequest struct {
		NodeRef
		Method     string         `json:"method"`
		HTTPMethod string         `json:"http_method"`
		Args       map[string]any `json:"args,omitempty"`
	}
	// VendorPassthruResult is what a vendor passthru call answered, as Ironic's conductor
	// returns it: Return is nil for an async call.
	VendorPassthruResult struct {
		Return any  `json:"return"`
		Async  bool `json:"async"`
		Attach bool `json:"attach"`
	}
)

// The vendor passthru operations.
var (
	OpVendorPassthruMethods = Op[NodeRef, map[string]PassthruMethod]{Name: "get_node_vendor_passthru_methods", Run: (*Conductor).VendorPassthruMethods}
	OpVendorPassthru        = Op[VendorPassthruRequest, VendorPassthruResult]{Name: "vendor_passthru", Run: (*Conductor).VendorPassthru}
)

// vendorOf returns the node's vendor interface, or nil for one that has no methods (no-vendor).
func vendorOf(t *Task) Vendor {
	v, _ := t.Driver.Impl(ironwork.VendorInterface).(Vendor)
	return v
}

// VendorPassthruMethods lists the vendor passthru methods of a node's vendor interface; an
// interface without methods (no-vendor) has none, as in Ironic.
func (c *Conductor) VendorPassthruMethods(ctx context.Context, req NodeRef) (map[string]PassthruMethod, error) {
	t, err := c.shared(ctx, req.Node)
	if err != nil {
		return nil, err
	}
	out := map[string]PassthruMethod{}
	if v := vendorOf(t); v != nil {
		for name, m := range v.VendorMethods() {
			out[name] = m
		}
	}
	return out, nil
}

// VendorPassthru calls a vendor passthru method of a node, as Ironic's conductor does: the
// method must exist ("No handler for method X") and answer the HTTP method; the exclusive
// lock is taken when the method asks for it; the vendor interface validates the call; a
// synchronous method's result is returned, an asynchronous one runs in a worker (its failure
// is logged, as Ironic's).
func (c *Conductor) VendorPassthru(ctx context.Context, req VendorPassthruRequest) (VendorPassthruResult, error) {
	t, err := c.shared(ctx, req.Node)
	if err != nil {
		return VendorPassthruResult{}, err
	}
	v := vendorOf(t)
	var m PassthruMethod
	ok := false
	if v != nil {
		m, ok = v.VendorMethods()[req.Method]
	}
	if !ok {
		return VendorPassthruResult{}, ironwork.Errorf(ironwork.EINVALID, "No handler for method %s", req.Method)
	}
	call := PassthruCall{Method: req.Method, HTTPMethod: strings.ToUpper(req.HTTPMethod), Args: req.Args}
	if call.Args == nil {
		call.Args = map[string]any{}
	}
	if !slices.Contains(m.HTTPMethods, call.HTTPMethod) {
		return VendorPassthruResult{}, ironwork.Errorf(ironwork.EINVALID, "The method %s does not support HTTP %s", req.Method, call.HTTPMethod)
	}
	res := VendorPassthruResult{Async: m.Async, Attach: m.Attach}
	if m.RequireExclusiveLock {
		if t, err = c.lock(ctx, req.Node); err != nil {
			return VendorPassthruResult{}, err
		}
	}
	unlock := func() {
		if m.RequireExclusiveLock {
			c.release(t.Node)
		}
	}
	if err := v.ValidatePassthru(ctx, t, call); err != nil {
		unlock()
		return VendorPassthruResult{}, err
	}
	if !m.Async {
		defer unlock()
		ret, err := v.CallPassthru(ctx, t, call)
		if err != nil {
			return VendorPassthruResult{}, err
		}
		t.Log.Info("vendor passthru method called", "method", call.Method, "http_method", call.HTTPMethod)
		res.Return = ret
		return res, nil
	}
	done, err := c.acquireWorker()
	if err != nil {
		unlock()
		return VendorPassthruResult{}, err
	}
	work := func(ctx context.Context, t *Task) {
		if _, err := v.CallPassthru(ctx, t, call); err != nil {
			t.Log.Error("vendor passthru method failed", "method", call.Method, "error", err)
			return
		}
		t.Log.Info("vendor passthru method done", "method", call.Method, "http_method", call.HTTPMethod)
	}
	if m.RequireExclusiveLock {
		c.background(t, done, work)
		return res, nil
	}
	// A shared-lock method's worker holds no lock to release.
	go func() {
		defer done()
		ctx, cancel := c.lifetime()
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				t.Log.Error("panic in vendor passthru", "method", call.Method, "panic", fmt.Sprint(p))
			}
		}()
		work(ctx, t)
	}()
	return res, nil
}
