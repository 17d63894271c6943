package conductor_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/driver/fake"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// env is one conductor on a fresh SQLite store, with the fake driver registered and a
// recording driver ("rec") for every interface kind.
type env struct {
	store   *sqlstore.Store
	drivers ironwork.DriverConfig
	reg     conductor.Registry
	rec     *recorder
	c       *conductor.Conductor
	host    string
}

// envOption changes the configuration of a conductor before it starts.
type envOption func(*conductor.Config)

// quiet makes the periodic tasks never fire during a test: tests call them directly.
func quiet(cfg *conductor.Config) {
	cfg.PowerSyncInterval, cfg.TimeoutCheckInterval, cfg.HeartbeatInterval = time.Hour, time.Hour, time.Hour
}

// newStore opens an empty SQLite store in a temporary directory.
func newStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "ironwork.db"), nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newEnv starts a conductor named "c1" on a new store.
func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newEnvOn(t, newStore(t), "c1", nil, opts...)
}

// newEnvOn starts a conductor named host on store; before runs between its registration and
// its start (to leave state a previous run of it left behind).
func newEnvOn(t *testing.T, store *sqlstore.Store, host string, before func(e *env), opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{store: store, drivers: ironwork.DefaultDriverConfig(), reg: conductor.Registry{}, rec: newRecorder(), host: host}
	fake.Register(e.reg)
	e.rec.register(e.reg)
	if err := store.RegisterConductor(ctx, &ironwork.Conductor{Hostname: host, Drivers: []string{"fake-hardware"}}); err != nil {
		t.Fatalf("register conductor: %v", err)
	}
	cfg := conductor.Defaults()
	cfg.Hostname = host
	quiet(&cfg)
	for _, o := range opts {
		o(&cfg)
	}
	e.c = conductor.New(cfg, store, e.drivers, e.reg, nil)
	if before != nil {
		before(e)
	}
	if err := start(t, e.c); err != nil {
		t.Fatalf("start conductor: %v", err)
	}
	t.Cleanup(e.c.Stop)
	return e
}

// node creates a fake-hardware node whose every interface is the recording driver, in state
// available unless fn says otherwise.
func (e *env) node(t *testing.T, fn func(n *ironwork.Node)) *ironwork.Node {
	t.Helper()
	n := &ironwork.Node{Driver: "fake-hardware", ProvisionState: ironwork.Available, PowerState: ironwork.PowerOff}
	if err := e.drivers.ResolveInterfaces(n); err != nil {
		t.Fatalf("resolve interfaces: %v", err)
	}
	for _, k := range ironwork.InterfaceKinds {
		n.Interfaces[k] = "rec"
	}
	if fn != nil {
		fn(n)
	}
	if err := e.store.CreateNode(context.Background(), n); err != nil {
		t.Fatalf("create node: %v", err)
	}
	return n
}

// get reads a node back from the store.
func (e *env) get(t *testing.T, ident string) *ironwork.Node {
	t.Helper()
	n, err := e.store.GetNode(context.Background(), ident)
	if err != nil {
		t.Fatalf("get node %s: %v", ident, err)
	}
	return n
}

// update changes a node in the store directly, as a test's setup.
func (e *env) update(t *testing.T, ident string, fn func(n *ironwork.Node)) *ironwork.Node {
	t.Helper()
	n, err := e.store.UpdateNode(context.Background(), ident, func(n *ironwork.Node) error {
		if n.DriverInternalInfo == nil {
			n.DriverInternalInfo = ironwork.JSONObject{}
		}
		fn(n)
		return nil
	})
	if err != nil {
		t.Fatalf("update node %s: %v", ident, err)
	}
	return n
}

// conductorID returns the id of a conductor's row.
func (e *env) conductorID(t *testing.T, host string) int64 {
	t.Helper()
	cd, err := e.store.GetConductor(context.Background(), host)
	if err != nil {
		t.Fatalf("get conductor %s: %v", host, err)
	}
	return cd.ID
}

// history returns the events of a node's history.
func (e *env) history(t *testing.T, n *ironwork.Node) []string {
	t.Helper()
	hs, err := e.store.NodeHistory(context.Background(), n.ID)
	if err != nil {
		t.Fatalf("node history: %v", err)
	}
	var out []string
	for _, h := range hs {
		out = append(out, h.Event)
	}
	return out
}

// settled checks that a node rests in state want, unlocked, and returns it.
func (e *env) settled(t *testing.T, ident string, want ironwork.ProvisionState) *ironwork.Node {
	t.Helper()
	e.c.Wait()
	n := e.get(t, ident)
	if n.ProvisionState != want {
		t.Fatalf("node %s is in state %q, want %q (last_error %q)", ident, n.ProvisionState, want, n.LastError)
	}
	if n.Reservation != "" {
		t.Fatalf("node %s is still locked by %q", ident, n.Reservation)
	}
	return n
}

// wantCode checks that err carries the error code want.
func wantCode(t *testing.T, err error, want ironwork.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one with code %s", want)
	}
	if got := ironwork.ErrorCode(err); got != want {
		t.Fatalf("got error %q with code %s, want code %s", err, got, want)
	}
}

// ok fails the test on an error.
func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// stepMap builds a requested step as the API passes it on; a negative priority is none.
func stepMap(iface, name string, priority int, args map[string]any) conductor.StepRequest {
	r := conductor.StepRequest{Interface: iface, Step: name, Args: args}
	if priority >= 0 {
		r.Priority = &priority
	}
	return r
}
