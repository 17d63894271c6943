package rpc_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/rpc"
)

// TestPassthruAndIndicatorsOverRPC runs the vendor passthru and indicator operations from an
// API-only router on a remote conductor: arguments (a JSON number among them), results and
// error kinds cross the trip.
func TestPassthruAndIndicatorsOverRPC(t *testing.T) {
	ts, store, c := newConductor(t)
	ctx := context.Background()
	n := remoteNode(ctx, t, store, ts.URL, "rpc-passthru")
	r := rpc.NewRouter(nil, store, conductor.NewRing(), "api-only", slog.New(slog.DiscardHandler))
	if err := r.Refresh(ctx, 60e9); err != nil {
		t.Fatal(err)
	}
	ref := conductor.NodeRef{Node: n.UUID}
	methods, err := conductor.Call(ctx, r, conductor.OpVendorPassthruMethods, ref)
	if err != nil || methods["third_method_sync"].Async || !methods["second_method"].Async || len(methods["third_method_sync"].HTTPMethods) != 1 {
		t.Fatalf("methods over RPC: %v %v", methods, err)
	}
	res, err := conductor.Call(ctx, r, conductor.OpVendorPassthru, conductor.VendorPassthruRequest{NodeRef: ref,
		Method: "third_method_sync", HTTPMethod: "post", Args: map[string]any{"bar": "meow", "n": json.Number("3")}})
	if err != nil || res.Return != true || res.Async {
		t.Fatalf("sync call over RPC: %+v %v", res, err)
	}
	res, err = conductor.Call(ctx, r, conductor.OpVendorPassthru, conductor.VendorPassthruRequest{NodeRef: ref,
		Method: "second_method", HTTPMethod: "POST", Args: map[string]any{"bar": "kazoo"}})
	if err != nil || res.Return != nil || !res.Async {
		t.Fatalf("async call over RPC: %+v %v", res, err)
	}
	c.Wait()
	if got, _ := store.GetNode(ctx, n.UUID); got.Reservation != "" {
		t.Errorf("the async method's worker left the lock with %q", got.Reservation)
	}
	_, err = conductor.Call(ctx, r, conductor.OpVendorPassthru, conductor.VendorPassthruRequest{NodeRef: ref, Method: "nope", HTTPMethod: "POST"})
	if ironwork.ErrorCode(err) != ironwork.EINVALID || !strings.Contains(ironwork.ErrorMessage(err), "No handler for method nope") {
		t.Fatalf("unknown method over RPC: %v", err)
	}
	if _, err := store.ReserveNode(ctx, n.UUID, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	// A method that needs the exclusive lock is refused while another holds it; one that does
	// not (Ironic's fourth_method_shared_lock) runs.
	_, err = conductor.Call(ctx, r, conductor.OpVendorPassthru, conductor.VendorPassthruRequest{NodeRef: ref,
		Method: "third_method_sync", HTTPMethod: "POST", Args: map[string]any{"bar": "meow"}})
	if ironwork.ErrorCode(err) != ironwork.ELOCKED {
		t.Fatalf("exclusive method on a locked node: %v, want ELOCKED", err)
	}
	if _, err := conductor.Call(ctx, r, conductor.OpVendorPassthru, conductor.VendorPassthruRequest{NodeRef: ref,
		Method: "fourth_method_shared_lock", HTTPMethod: "POST", Args: map[string]any{"bar": "woof"}}); err != nil {
		t.Fatalf("shared-lock method on a locked node: %v", err)
	}
	c.Wait()
	if got, _ := store.GetNode(ctx, n.UUID); got.Reservation != "elsewhere" {
		t.Errorf("the shared-lock method touched the lock: %q", got.Reservation)
	}
	inds, err := conductor.Call(ctx, r, conductor.OpSupportedIndicators, ref)
	if err != nil || !inds[conductor.ComponentChassis]["led-0"].ReadOnly || len(inds[conductor.ComponentSystem]["led"].States) != 3 {
		t.Fatalf("indicators over RPC: %v %v", inds, err)
	}
	st, err := conductor.Call(ctx, r, conductor.OpIndicatorState, conductor.IndicatorRequest{NodeRef: ref, Component: "system", Name: "led"})
	if err != nil || st != conductor.IndicatorOn {
		t.Fatalf("indicator state over RPC: %q %v", st, err)
	}
	err = conductor.Do(ctx, r, conductor.OpSetIndicatorState, conductor.SetIndicatorRequest{
		IndicatorRequest: conductor.IndicatorRequest{NodeRef: ref, Component: "system", Name: "led"}, State: "PURPLE"})
	if ironwork.ErrorCode(err) != ironwork.EINVALID {
		t.Fatalf("bad state over RPC: %v", err)
	}
}
