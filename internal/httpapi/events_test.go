package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/events"
	"github.com/ironwork/ironwork/internal/httpapi"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// TestEventStreamSeveralSubscribers: three clients of the stream see the same changes, in
// order, and ?node= keeps one node's.
func TestEventStreamSeveralSubscribers(t *testing.T) {
	hub := events.NewHub(nil)
	ts, store := newAPI(t, func(o *httpapi.Options) { o.Events = hub })
	store.ObserveNodes(hub.Observe)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &api.Client{BaseURL: ts.URL}
	var streams []*api.EventStream
	for range 3 {
		s, err := c.Events(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		streams = append(streams, s)
	}
	var a, b map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "ev-a", "driver": "fake-hardware"}, &a); err != nil {
		t.Fatal(err)
	}
	only, err := c.Events(ctx, url.Values{"node": {"ev-a"}})
	if err != nil {
		t.Fatal(err)
	}
	defer only.Close()
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "ev-b", "driver": "fake-hardware"}, &b); err != nil {
		t.Fatal(err)
	}
	for _, node := range []string{"ev-a", "ev-b"} {
		ops := []api.PatchOp{{Op: "replace", Path: "/maintenance", Value: true}}
		if err := c.Do(ctx, http.MethodPatch, "/v1/nodes/"+node, ops, nil); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"ev-a false", "ev-b false", "ev-a true", "ev-b true"}
	for i, s := range streams {
		for j, w := range want {
			ev, err := s.Next()
			if err != nil {
				t.Fatalf("stream %d event %d: %v", i, j, err)
			}
			got := ev.Node.Name + " " + map[bool]string{true: "true", false: "false"}[ev.Node.Maintenance]
			if got != w || ev.Seq != uint64(j+1) {
				t.Errorf("stream %d event %d: %q seq %d, want %q seq %d", i, j, got, ev.Seq, w, j+1)
			}
		}
	}
	ev, err := only.Next()
	if err != nil || ev.Node.Name != "ev-a" || !ev.Node.Maintenance {
		t.Errorf("the stream of ev-a: %+v %v, want its maintenance", ev, err)
	}
	if err := c.Do(ctx, http.MethodGet, api.EventsPath+"?buffer=3", nil, nil); !api.IsStatus(err, http.StatusBadRequest) {
		t.Errorf("a buffer of 3: %v, want 400", err)
	}
	if err := c.Do(ctx, http.MethodGet, api.EventsPath+"?node=nope", nil, nil); !api.IsStatus(err, http.StatusNotFound) {
		t.Errorf("an unknown node: %v, want 404", err)
	}
}

func TestEventStreamNeedsCredentials(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte("admin:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := httpapi.LoadBasicAuth(file)
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := newAPI(t, func(o *httpapi.Options) { o.Auth, o.Events = auth, events.NewHub(nil) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := (&api.Client{BaseURL: ts.URL}).Events(ctx, nil); !api.IsStatus(err, http.StatusUnauthorized) {
		t.Errorf("no credentials: %v, want 401", err)
	}
	s, err := (&api.Client{BaseURL: ts.URL, Username: "admin", Password: "s3cret"}).Events(ctx, nil)
	if err != nil {
		t.Fatalf("with credentials: %v", err)
	}
	s.Close()
}

// stalledWriter is a ResponseWriter whose writes wait until released, as a client that stopped
// reading does once the socket buffers are full.
type stalledWriter struct {
	header  http.Header
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  chan struct{}
}

func (w *stalledWriter) Header() http.Header { return w.header }
func (w *stalledWriter) WriteHeader(int)     {}
func (w *stalledWriter) Write(b []byte) (int, error) {
	select {
	case w.writes <- struct{}{}:
	default:
	}
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(b)
}
func (w *stalledWriter) Flush() {}

// TestEventStreamDropsASlowReader: a reader that stops reading is dropped once its buffer is
// full, the conductor's writes go on meanwhile, and the stream ends with "event: dropped".
func TestEventStreamDropsASlowReader(t *testing.T) {
	hub := events.NewHub(nil)
	store := ironworkStore(t)
	srv := httpapi.New(httpapi.Options{Store: store, Drivers: ironwork.DefaultDriverConfig(), Events: hub})
	w := &stalledWriter{header: http.Header{}, release: make(chan struct{}), writes: make(chan struct{}, 1)}
	req, _ := http.NewRequest(http.MethodGet, api.EventsPath+"?buffer=16", nil)
	done := make(chan struct{})
	go func() { srv.ServeHTTP(w, req); close(done) }()
	<-w.writes // the handler subscribed and is stuck writing "ready"
	t0 := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	for i := range 100 {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		hub.Observe(&ironwork.Node{UUID: "n1", ProvisionState: ironwork.ProvisionState("s" + at.Format("150405.000")), UpdatedAt: &at})
	}
	if hub.Subscribers() != 0 {
		t.Fatalf("%d subscribers after 100 events to a stalled reader, want it dropped", hub.Subscribers())
	}
	close(w.release)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the handler did not end after the drop")
	}
	out := w.buf.String()
	if !strings.HasSuffix(out, "event: dropped\ndata: {\"reason\": \"the reader fell behind\"}\n\n") {
		t.Errorf("the stream does not end with the drop:\n%s", out)
	}
	if n := strings.Count(out, "event: node\n"); n > 16 {
		t.Errorf("%d events written to a reader with a buffer of 16", n)
	}
}

func ironworkStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	_, store := newAPI(t)
	return store
}
