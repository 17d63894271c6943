package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
	"github.com/ironwork/ironwork/internal/httpapi"
	"github.com/ironwork/ironwork/internal/metrics"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// turns records the order in which requests are admitted, by their X-Name header; the
// request named hold waits, holding its turn, until release is closed.
type turns struct {
	mu      sync.Mutex
	seen    []string
	hold    string
	held    chan struct{} // closed when the held request has its turn
	release chan struct{}
}

func (a *turns) admitted(r *http.Request) {
	name := r.Header.Get("X-Name")
	a.mu.Lock()
	a.seen = append(a.seen, name)
	a.mu.Unlock()
	if name == a.hold {
		close(a.held)
		<-a.release
	}
}

func (a *turns) order() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen)
}

// TestAdmitInOrder: with one request handled at a time, requests wait their turn and are
// handled in order of arrival; one whose client goes away while it waits is never handled;
// the event stream and the metrics do not wait for a turn, and the metrics show the queue.
func TestAdmitInOrder(t *testing.T) {
	store, err := sqlstore.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "api.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	auth := &turns{hold: "first", held: make(chan struct{}), release: make(chan struct{})}
	m := metrics.New(prometheus.NewRegistry())
	srv := httpapi.New(httpapi.Options{Store: store, Drivers: ironwork.DefaultDriverConfig(), MaxConcurrent: 1,
		Metrics: m, MetricsHandler: m.Handler(slog.New(slog.DiscardHandler))})
	m.WatchAPI(srv)
	srv.OnAdmit(auth.admitted)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	released := false
	t.Cleanup(func() {
		if !released {
			close(auth.release)
		}
	})

	type result struct {
		name   string
		status int
		err    error
	}
	results := make(chan result, 8)
	send := func(ctx context.Context, name, path string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+path, nil)
		req.Header.Set("X-Name", name)
		resp, err := ts.Client().Do(req)
		r := result{name: name, err: err}
		if err == nil {
			r.status = resp.StatusCode
			resp.Body.Close()
		}
		results <- r
	}
	waitFor := func(n int) {
		t.Helper()
		for i := 0; waiting(srv) != n; i++ {
			if i > 10000 {
				t.Fatalf("%d requests waiting, want %d", waiting(srv), n)
			}
			time.Sleep(time.Millisecond)
		}
	}

	go send(context.Background(), "first", "/v1/nodes")
	<-auth.held // first holds the only turn
	go send(context.Background(), "second", "/v1/nodes")
	waitFor(1)
	if running, _ := srv.Admission(); running != 1 {
		t.Fatalf("%d requests hold a turn, want 1", running)
	}
	gone, cancel := context.WithCancel(context.Background())
	go send(gone, "gone", "/v1/nodes")
	waitFor(2)
	go send(context.Background(), "third", "/v1/chassis")
	waitFor(3)
	// The metrics answer while the only turn is held, and show the queue.
	mctx, mstop := context.WithTimeout(context.Background(), 20*time.Second)
	defer mstop()
	req, _ := http.NewRequestWithContext(mctx, http.MethodGet, ts.URL+"/metrics", nil)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("GET /metrics while the turn is held: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"\nironwork_api_requests_running 1\n", "\nironwork_api_requests_waiting 3\n"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", strings.TrimSpace(want), body)
		}
	}
	cancel()
	if r := <-results; r.name != "gone" || r.err == nil {
		t.Fatalf("the cancelled request: %+v, want its client's error", r)
	}
	waitFor(2)

	// The event stream takes no turn: it answers (503 here: this server has no event source)
	// while first still holds the only one.
	ctx, stop := context.WithTimeout(context.Background(), 20*time.Second)
	defer stop()
	send(ctx, "events", httpapi.EventsPath)
	if r := <-results; r.err != nil || r.status != http.StatusServiceUnavailable {
		t.Fatalf("event stream while the turn is held: %+v, want 503", r)
	}

	close(auth.release)
	released = true
	for range 3 {
		if r := <-results; r.err != nil || r.status != http.StatusOK {
			t.Fatalf("request %s: status %d, %v", r.name, r.status, r.err)
		}
	}
	if got, want := auth.order(), []string{"first", "second", "third"}; !slices.Equal(got, want) {
		t.Fatalf("requests handled in the order %v, want %v", got, want)
	}
	// The last turn is given back after its answer was written: poll a moment.
	for i := 0; ; i++ {
		running, waiting := srv.Admission()
		if running == 0 && waiting == 0 {
			break
		}
		if i > 5000 {
			t.Fatalf("%d requests still hold a turn, %d still wait", running, waiting)
		}
		time.Sleep(time.Millisecond)
	}
}

// stuckConductor is a remote conductor whose every call waits until release is closed.
type stuckConductor struct {
	entered chan struct{} // closed by the first call
	release chan struct{}
	once    sync.Once
}

func (c *stuckConductor) Route(context.Context, string) (*conductor.Conductor, conductor.Remote, error) {
	return nil, c, nil
}

func (c *stuckConductor) Call(ctx context.Context, method string, req, resp any) error {
	c.once.Do(func() { close(c.entered) })
	select {
	case <-c.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestAdmitGivesTheTurnBackToWaitOnAConductor: a request handed to a conductor (which may
// wait on a BMC) no longer holds its turn, so with one turn another request is answered
// meanwhile.
func TestAdmitGivesTheTurnBackToWaitOnAConductor(t *testing.T) {
	stuck := &stuckConductor{entered: make(chan struct{}), release: make(chan struct{})}
	ts, _ := newAPI(t, func(o *httpapi.Options) { o.MaxConcurrent, o.Conductor = 1, stuck })
	released := false
	t.Cleanup(func() {
		if !released {
			close(stuck.release)
		}
	})
	created := call(t, ts, "POST", "/v1/nodes", "1.82", map[string]any{"driver": "fake-hardware", "name": "slow-bmc"})
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.raw)
	}
	type answer struct {
		status int
		body   string
		err    error
	}
	power := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPut, ts.URL+"/v1/nodes/slow-bmc/states/power", strings.NewReader(`{"target": "power on"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-OpenStack-Ironic-API-Version", "1.82")
		resp, err := ts.Client().Do(req)
		if err != nil {
			power <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		power <- answer{status: resp.StatusCode, body: string(b)}
	}()
	select {
	case <-stuck.entered:
	case a := <-power:
		t.Fatalf("power request answered %d (%v) without calling its conductor: %s", a.status, a.err, a.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/v1/nodes", nil)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("a list while the power request waits on its conductor: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list: status %d", resp.StatusCode)
	}
	close(stuck.release)
	released = true
	if a := <-power; a.status != http.StatusAccepted {
		t.Fatalf("power request: status %d (%v), want 202: %s", a.status, a.err, a.body)
	}
}

// waiting is how many requests wait for their turn, as the metrics read it.
func waiting(srv *httpapi.Server) int {
	_, w := srv.Admission()
	return w
}
