package rpc_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/rpc"
)

// wireTap is a reverse proxy between a router and a conductor that keeps every request body
// it forwards, as an eavesdropper on the network would see it.
type wireTap struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (w *wireTap) serve(t *testing.T, target string) *httptest.Server {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		w.bodies = append(w.bodies, b)
		w.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		proxy.ServeHTTP(rw, r)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (w *wireTap) last() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bodies[len(w.bodies)-1]
}

func (w *wireTap) all() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Join(w.bodies, []byte("\n"))
}

// TestSealedRPC runs a real conductor behind the sealing handler, reached by a router through
// a proxy that records the wire: calls with the shared secret work; requests that are not
// sealed, sealed with another secret, or replayed from the wire are refused with 401 and
// change nothing; no secret of a call is readable on the wire.
func TestSealedRPC(t *testing.T) {
	ctx := context.Background()
	_, store, c := newConductor(t)
	secret := []byte("0123456789abcdef0123456789abcdef")
	sealer, err := rpc.NewSealer(secret)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logged, &logMu}, nil))
	conductorSrv := httptest.NewServer(sealer.Handler(rpc.Handler(c, log), log))
	t.Cleanup(conductorSrv.Close)
	tap := &wireTap{}
	proxy := tap.serve(t, conductorSrv.URL)
	n := remoteNode(ctx, t, store, proxy.URL, "sealed-node")
	router := func(s *rpc.Sealer) *rpc.Router {
		r := rpc.NewRouter(nil, store, conductor.NewRing(), "api-only", slog.New(slog.DiscardHandler))
		if s != nil {
			r.Secure(s, nil)
		}
		if err := r.Refresh(ctx, 60e9); err != nil {
			t.Fatal(err)
		}
		return r
	}
	good := router(sealer)
	maintenance := func() bool {
		got, err := store.GetNode(ctx, n.UUID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Maintenance
	}

	if err := conductor.Do(ctx, good, conductor.OpSetMaintenance, conductor.SetMaintenanceRequest{NodeRef: conductor.NodeRef{Node: n.UUID}, On: true, Reason: "sealed"}); err != nil {
		t.Fatalf("a sealed call: %v", err)
	}
	replay := tap.last()
	if !maintenance() {
		t.Fatal("the sealed call did not set maintenance")
	}
	if err := conductor.Do(ctx, good, conductor.OpSetMaintenance, conductor.SetMaintenanceRequest{NodeRef: conductor.NodeRef{Node: n.UUID}, On: false, Reason: ""}); err != nil || maintenance() {
		t.Fatalf("a sealed call to end maintenance: %v", err)
	}

	// A plain JSON-RPC request, as any local process could send before.
	plain := `{"jsonrpc":"2.0","method":"set_maintenance","params":{"node":"` + n.UUID + `","on":true,"reason":"x"},"id":1}`
	resp, err := http.Post(proxy.URL+"/rpc", "application/json", strings.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || maintenance() {
		t.Fatalf("an unsealed request: status %d, maintenance %v; want 401 and no change", resp.StatusCode, maintenance())
	}
	// The same through a router without the secret, and through one with another secret.
	if err := conductor.Do(ctx, router(nil), conductor.OpSetMaintenance, conductor.SetMaintenanceRequest{NodeRef: conductor.NodeRef{Node: n.UUID}, On: true, Reason: "x"}); err == nil || maintenance() {
		t.Fatalf("a router without the secret: %v, maintenance %v", err, maintenance())
	}
	other, _ := rpc.NewSealer([]byte("another secret of 32 bytes......"))
	if err := conductor.Do(ctx, router(other), conductor.OpSetMaintenance, conductor.SetMaintenanceRequest{NodeRef: conductor.NodeRef{Node: n.UUID}, On: true, Reason: "x"}); err == nil || maintenance() {
		t.Fatalf("a router with another secret: %v, maintenance %v", err, maintenance())
	}
	// The sealed request that set maintenance, replayed from the wire.
	resp, err = http.Post(proxy.URL+"/rpc", "application/json", bytes.NewReader(replay))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || maintenance() {
		t.Fatalf("a replayed request: status %d, maintenance %v; want 401 and no change", resp.StatusCode, maintenance())
	}
	logMu.Lock()
	refusals := strings.Count(logged.String(), "rpc request refused")
	leaked := strings.Contains(logged.String(), string(secret))
	logMu.Unlock()
	if refusals != 4 || leaked {
		t.Fatalf("%d refusals logged (want 4), secret in the log: %v", refusals, leaked)
	}

	// Secrets in calls: whatever the conductor answers, the wire must not show them.
	tap.mu.Lock()
	tap.bodies = nil // forget the unsealed requests this test sent itself
	tap.mu.Unlock()
	const password, configDrive = "Rescue-Pa55word-on-the-wire", "CONFIGDRIVE-user-data-on-the-wire"
	_ = conductor.Do(ctx, good, conductor.OpProvision, conductor.ProvisionRequest{NodeRef: conductor.NodeRef{Node: n.UUID}, Target: "rescue", RescuePassword: password})
	_ = conductor.Do(ctx, good, conductor.OpProvision, conductor.ProvisionRequest{NodeRef: conductor.NodeRef{Node: n.UUID}, Target: "active", ConfigDrive: &conductor.ConfigDrive{Dict: map[string]any{"user_data": configDrive}}})
	wire := tap.all()
	if len(wire) < 100 {
		t.Fatalf("the tap saw %d bytes", len(wire))
	}
	for _, s := range []string{password, configDrive, "set_maintenance", n.UUID} {
		if bytes.Contains(wire, []byte(s)) {
			t.Errorf("%q is readable on the wire", s)
		}
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestSealedRPCOverTLS reaches a conductor serving https, its certificate verified against the
// CA file the router is given; a router that does not trust that CA cannot call it.
func TestSealedRPCOverTLS(t *testing.T) {
	ctx := context.Background()
	_, store, c := newConductor(t)
	sealer, err := rpc.NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	ts := httptest.NewTLSServer(sealer.Handler(rpc.Handler(c, log), log))
	t.Cleanup(ts.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	n := remoteNode(ctx, t, store, ts.URL, "tls-node")
	for _, tc := range []struct {
		name  string
		files rpc.TLSFiles
		ok    bool
	}{
		{"trusted CA", rpc.TLSFiles{CA: caFile}, true},
		{"system roots", rpc.TLSFiles{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clientTLS, err := tc.files.ClientConfig()
			if err != nil {
				t.Fatal(err)
			}
			r := rpc.NewRouter(nil, store, conductor.NewRing(), "api-only", log)
			r.Secure(sealer, clientTLS)
			if err := r.Refresh(ctx, 60e9); err != nil {
				t.Fatal(err)
			}
			_, err = conductor.Call(ctx, r, conductor.OpValidate, conductor.NodeRef{Node: n.UUID})
			if (err == nil) != tc.ok {
				t.Fatalf("validate over https: %v, want success %v", err, tc.ok)
			}
		})
	}
}
