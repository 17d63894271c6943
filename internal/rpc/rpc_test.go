package rpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/fake"
	"github.com/ironwork/ironwork/internal/driver/network"
	"github.com/ironwork/ironwork/internal/rpc"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// newConductor serves a real conductor's JSON-RPC on a loopback test server.
func newConductor(t testing.TB) (*httptest.Server, *sqlstore.Store, *conductor.Conductor) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "rpc.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.RegisterConductor(ctx, &ironwork.Conductor{Hostname: "rpc-c", Drivers: []string{"fake-hardware"}}); err != nil {
		t.Fatal(err)
	}
	reg := conductor.Registry{}
	fake.Register(reg)
	network.Register(reg)
	cfg := conductor.Defaults()
	cfg.Hostname = "rpc-c"
	c := conductor.New(cfg, store, ironwork.DefaultDriverConfig(), reg, nil)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	ts := httptest.NewServer(rpc.Handler(c, slog.New(slog.DiscardHandler)))
	t.Cleanup(ts.Close)
	return ts, store, c
}

// remoteNode registers conductor rpc-c, serving fake-hardware at url, and creates an enrolled
// fake-hardware node called name.
func remoteNode(ctx context.Context, tb testing.TB, store *sqlstore.Store, url, name string) *ironwork.Node {
	tb.Helper()
	if err := store.RegisterConductor(ctx, &ironwork.Conductor{Hostname: "rpc-c", Drivers: []string{"fake-hardware"}, RPCURL: url}); err != nil {
		tb.Fatal(err)
	}
	n := &ironwork.Node{Name: name, Driver: "fake-hardware", ProvisionState: ironwork.Enroll}
	if err := ironwork.DefaultDriverConfig().ResolveInterfaces(n); err != nil {
		tb.Fatal(err)
	}
	if err := store.CreateNode(ctx, n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestRouterCallsARemoteConductor checks that an API-only router reaches the node's conductor
// over JSON-RPC and that error kinds survive the trip.
func TestRouterCallsARemoteConductor(t *testing.T) {
	ts, store, c := newConductor(t)
	ctx := context.Background()
	n := remoteNode(ctx, t, store, ts.URL, "rpc-node")
	r := rpc.NewRouter(nil, store, conductor.NewRing(), "api-only", slog.New(slog.DiscardHandler))
	if err := r.Refresh(ctx, 60e9); err != nil {
		t.Fatal(err)
	}
	ref := conductor.NodeRef{Node: n.UUID}
	// The API request's id and user cross the trip: the remote conductor's history names them.
	who := conductor.Requester{RequestID: "req-3f0c3d5e-8a58-4c8e-9a43-2b1d8f0c0d11", User: "rpc-user"}
	if err := conductor.Do(conductor.WithRequester(ctx, who), r, conductor.OpProvision, conductor.ProvisionRequest{NodeRef: ref, Target: "manage"}); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	got, _ := store.GetNode(ctx, n.UUID)
	if got.ProvisionState != ironwork.Manageable {
		t.Fatalf("after manage over RPC: %s (%s)", got.ProvisionState, got.LastError)
	}
	hist, err := store.NodeHistory(ctx, n.ID)
	if err != nil || len(hist) == 0 {
		t.Fatalf("history: %v, %d entries", err, len(hist))
	}
	for _, e := range hist {
		if e.User != who.User || !strings.HasSuffix(e.Event, "(request "+who.RequestID+")") {
			t.Errorf("history entry %q by %q: want the request id and user of the call", e.Event, e.User)
		}
	}
	err = conductor.Do(ctx, r, conductor.OpProvision, conductor.ProvisionRequest{NodeRef: ref, Target: "rescue"})
	if ironwork.ErrorCode(err) != ironwork.EINVALID {
		t.Fatalf("a refused verb over RPC: %v (code %q), want EINVALID", err, ironwork.ErrorCode(err))
	}
	if err := store.CreatePort(ctx, &ironwork.Port{Address: "52:54:00:00:09:01", NodeUUID: n.UUID}); err != nil {
		t.Fatal(err)
	}
	if err := conductor.Do(ctx, r, conductor.OpAttachVIF, conductor.AttachVIFRequest{NodeRef: ref, VIF: conductor.VIF{ID: "vif-rpc"}}); err != nil {
		t.Fatalf("attach over RPC: %v", err)
	}
	if err := conductor.Do(ctx, r, conductor.OpAttachVIF, conductor.AttachVIFRequest{NodeRef: ref, VIF: conductor.VIF{ID: "vif-rpc"}}); ironwork.ErrorCode(err) != ironwork.ECONFLICT {
		t.Fatalf("attach twice over RPC: %v, want ECONFLICT", err)
	}
	if vifs, err := conductor.Call(ctx, r, conductor.OpListVIFs, ref); err != nil || len(vifs) != 1 || vifs[0].ID != "vif-rpc" {
		t.Fatalf("list over RPC: %v %v", vifs, err)
	}
	if err := conductor.Do(ctx, r, conductor.OpDetachVIF, conductor.DetachVIFRequest{NodeRef: ref, VIF: "vif-rpc"}); err != nil {
		t.Fatalf("detach over RPC: %v", err)
	}
	if err := conductor.Do(ctx, r, conductor.OpDetachVIF, conductor.DetachVIFRequest{NodeRef: ref, VIF: "vif-rpc"}); ironwork.ErrorCode(err) != ironwork.EINVALID {
		t.Fatalf("detach unknown over RPC: %v, want EINVALID", err)
	}
	if _, err := store.ReserveNode(ctx, n.UUID, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	if err := conductor.Do(ctx, r, conductor.OpSetPower, conductor.SetPowerRequest{NodeRef: ref, Target: ironwork.PowerOn}); ironwork.ErrorCode(err) != ironwork.ELOCKED {
		t.Fatalf("a locked node over RPC: %v, want ELOCKED", err)
	}
	v, err := conductor.Call(ctx, r, conductor.OpValidate, ref)
	if err != nil || v[ironwork.PowerInterface].Result == nil || !*v[ironwork.PowerInterface].Result {
		t.Fatalf("validate over RPC: %v %v", v, err)
	}
}

// FuzzRPCRequest sends arbitrary bodies to a conductor's JSON-RPC endpoint: every answer is a
// well-formed JSON-RPC response, never a crash or a 5xx.
func FuzzRPCRequest(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","method":"provision","params":{"node":"n","target":"manage"},"id":1}`,
		`{"jsonrpc":"2.0","method":"set_power","params":{"node":"n","target":"power on","timeout":-1},"id":2}`,
		`{"jsonrpc":"2.0","method":"set_boot_device","params":{"node":"n"},"id":3}`,
		`{"jsonrpc":"2.0","method":"vif_attach","params":{"node":"n","vif":{"id":"v","port_uuid":"x"}},"id":4}`,
		`{"jsonrpc":"2.0","method":"vif_detach","params":{"node":"n"},"id":5}`,
		`{"jsonrpc":"2.0","method":"create_allocation","params":{},"id":6}`,
		`{"jsonrpc":"2.0","method":"delete_allocation","id":7}`,
		`{"method":"nope"}`, `[]`, `{`, `null`,
	} {
		f.Add([]byte(s))
	}
	ts, _, _ := newConductor(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := http.Post(ts.URL+"/rpc", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d for %q", resp.StatusCode, body)
		}
		var out struct {
			JSONRPC string          `json:"jsonrpc"`
			Result  json.RawMessage `json:"result"`
			Error   *struct {
				Code int `json:"code"`
			} `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.JSONRPC != "2.0" {
			t.Fatalf("answer to %q is not JSON-RPC: %v %+v", body, err, out)
		}
	})
}

// TestEveryOperationIsServed checks that the conductor's JSON-RPC endpoint serves every
// declared operation by its name, that names are unique, and that an unknown name is refused.
func TestEveryOperationIsServed(t *testing.T) {
	ts, _, _ := newConductor(t)
	post := func(method string) (kind ironwork.Code, msg string) {
		t.Helper()
		body := `{"jsonrpc":"2.0","method":"` + method + `","params":{"node":"no-such-node"},"id":1}`
		resp, err := http.Post(ts.URL+"/rpc", "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Error *struct {
				Message string `json:"message"`
				Data    struct {
					Kind ironwork.Code `json:"kind"`
				} `json:"data"`
			} `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		if out.Error == nil {
			return "", ""
		}
		return out.Error.Data.Kind, out.Error.Message
	}
	seen := map[string]bool{}
	for _, op := range conductor.Operations() {
		name := op.Method()
		if seen[name] {
			t.Errorf("operation %q is declared twice", name)
		}
		seen[name] = true
		if _, msg := post(name); strings.HasPrefix(msg, "unknown method") {
			t.Errorf("operation %q is not served: %s", name, msg)
		}
	}
	if len(seen) < 17 {
		t.Errorf("%d operations, want at least the 17 the API uses", len(seen))
	}
	if kind, msg := post("no_such_operation"); kind != ironwork.EINVALID || !strings.HasPrefix(msg, "unknown method") {
		t.Errorf("an unknown method: %s %q, want EINVALID unknown method", kind, msg)
	}
}
