package direct

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/conductor"
)

const testToken = "s3cr3t-agent-token-value"

// testConfig has short bounds so that failing calls end quickly.
func testConfig() Config {
	return Config{ConnectTimeout: 2 * time.Second, CommandTimeout: 2 * time.Second, MaxCommandAttempts: 3,
		CommandRetryInterval: 50 * time.Millisecond}.withDefaults()
}

// agentPeer is a real HTTP server on loopback that answers the agent's command API and
// counts the connections and requests it sees; behave decides each request's fate.
type agentPeer struct {
	t        *testing.T
	ln       net.Listener
	srv      *http.Server
	conns    atomic.Int64
	requests atomic.Int64
	behave   func(n int64, w http.ResponseWriter, r *http.Request) // n counts from 1
}

// startPeer serves on addr ("127.0.0.1:0" for a new port).
func startPeer(t *testing.T, addr string, behave func(n int64, w http.ResponseWriter, r *http.Request)) *agentPeer {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port of a closed peer may take a moment to be free
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	p := &agentPeer{t: t, ln: ln, behave: behave}
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("agent_token") != testToken {
				http.Error(w, `{"message": "bad token"}`, http.StatusUnauthorized)
				return
			}
			p.behave(p.requests.Add(1), w, r)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				p.conns.Add(1)
			}
		},
	}
	go p.srv.Serve(ln)
	t.Cleanup(p.close)
	return p
}

func (p *agentPeer) url() string { return "http://" + p.ln.Addr().String() }

func (p *agentPeer) close() { p.srv.Close() }

// answer writes a command result.
func answer(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodGet {
		fmt.Fprint(w, `{"commands": [{"id": "c1", "command_name": "standby.prepare_image", "command_status": "RUNNING"}]}`)
		return
	}
	io.Copy(io.Discard, r.Body)
	fmt.Fprint(w, `{"id": "c1", "command_name": "standby.prepare_image", "command_status": "RUNNING"}`)
}

// hangUp closes the connection without answering, after reading the request.
func hangUp(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	c, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		c.(*net.TCPConn).SetLinger(0) // a reset, as from a machine that rebooted
		c.Close()
	}
}

func checkUnreachable(t *testing.T, err error, url string) {
	t.Helper()
	if !errors.Is(err, conductor.ErrAgentUnreachable) {
		t.Fatalf("error %v: want ErrAgentUnreachable", err)
	}
	if strings.Contains(err.Error(), testToken) || !strings.Contains(err.Error(), url) {
		t.Fatalf("error %q: must name the agent's URL and not carry the token", err)
	}
}

// TestAgentClientOpensAConnectionPerCall: no connection outlives a call, so none can reach the
// next agent booted on the same address; an agent restarted on the same port (cleaning, then
// deploy) answers the very next call.
func TestAgentClientOpensAConnectionPerCall(t *testing.T) {
	a := newAgentClient(testConfig(), slog.New(slog.DiscardHandler))
	ctx := context.Background()
	first := startPeer(t, "127.0.0.1:0", func(_ int64, w http.ResponseWriter, r *http.Request) { answer(w, r) })
	for i := 0; i < 3; i++ {
		if _, err := a.status(ctx, endpoint{URL: first.url(), Token: testToken}, "c1"); err != nil {
			t.Fatal(err)
		}
	}
	if got := first.conns.Load(); got != 3 {
		t.Fatalf("3 calls used %d connections; want one each", got)
	}
	addr := first.ln.Addr().String()
	first.close()
	second := startPeer(t, addr, func(_ int64, w http.ResponseWriter, r *http.Request) { answer(w, r) })
	res, err := a.run(ctx, endpoint{URL: second.url(), Token: testToken}, "standby.prepare_image", nil, false)
	if err != nil || res.ID != "c1" {
		t.Fatalf("call to the restarted agent: %+v, %v", res, err)
	}
	if second.requests.Load() != 1 {
		t.Fatalf("the restarted agent saw %d requests, want 1", second.requests.Load())
	}
}

// TestAgentClientRetries: calls that get no answer are made again up to MaxCommandAttempts
// times, except a POST that reached the agent (it may have run); an answer is never retried.
func TestAgentClientRetries(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	t.Run("GET after resets succeeds at the third attempt", func(t *testing.T) {
		p := startPeer(t, "127.0.0.1:0", func(n int64, w http.ResponseWriter, r *http.Request) {
			if n < 3 {
				hangUp(w, r)
				return
			}
			answer(w, r)
		})
		a := newAgentClient(testConfig(), log)
		if _, err := a.status(ctx, endpoint{URL: p.url(), Token: testToken}, "c1"); err != nil {
			t.Fatal(err)
		}
		if got := p.requests.Load(); got != 3 {
			t.Fatalf("%d requests, want 3", got)
		}
	})
	t.Run("GET that is always reset gives up after three attempts", func(t *testing.T) {
		p := startPeer(t, "127.0.0.1:0", func(_ int64, w http.ResponseWriter, r *http.Request) { hangUp(w, r) })
		a := newAgentClient(testConfig(), log)
		_, err := a.status(ctx, endpoint{URL: p.url(), Token: testToken}, "c1")
		checkUnreachable(t, err, p.url())
		if got := p.requests.Load(); got != 3 {
			t.Fatalf("%d requests, want 3", got)
		}
	})
	t.Run("POST that reached the agent is not sent twice", func(t *testing.T) {
		p := startPeer(t, "127.0.0.1:0", func(_ int64, w http.ResponseWriter, r *http.Request) { hangUp(w, r) })
		a := newAgentClient(testConfig(), log)
		_, err := a.run(ctx, endpoint{URL: p.url(), Token: testToken}, "standby.prepare_image", nil, false)
		checkUnreachable(t, err, p.url())
		if got := p.requests.Load(); got != 1 {
			t.Fatalf("%d requests, want 1", got)
		}
	})
	t.Run("POST refused twice is sent at the third attempt", func(t *testing.T) {
		p := startPeer(t, "127.0.0.1:0", func(_ int64, w http.ResponseWriter, r *http.Request) { answer(w, r) })
		cfg := testConfig()
		var dials atomic.Int64
		cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials.Add(1) < 3 {
				return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
		a := newAgentClient(cfg, log)
		if _, err := a.run(ctx, endpoint{URL: p.url(), Token: testToken}, "standby.prepare_image", nil, false); err != nil {
			t.Fatal(err)
		}
		if dials.Load() != 3 || p.requests.Load() != 1 {
			t.Fatalf("%d dials, %d requests; want 3 and 1", dials.Load(), p.requests.Load())
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String()
		ln.Close()
		a := newAgentClient(testConfig(), log)
		_, err = a.run(ctx, endpoint{URL: url, Token: testToken}, "standby.sync", nil, false)
		checkUnreachable(t, err, url)
		_, err = a.status(ctx, endpoint{URL: url, Token: testToken}, "id")
		checkUnreachable(t, err, url)
	})
	for _, code := range []int{http.StatusBadRequest, http.StatusConflict, http.StatusInternalServerError} {
		t.Run(fmt.Sprintf("HTTP %d is an answer", code), func(t *testing.T) {
			p := startPeer(t, "127.0.0.1:0", func(_ int64, w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(code)
				fmt.Fprint(w, `{"type": "CommandExecutionError", "code": 409, "message": "Error", "details": "busy writing an image"}`)
			})
			a := newAgentClient(testConfig(), log)
			_, err := a.run(ctx, endpoint{URL: p.url(), Token: testToken}, "standby.prepare_image", nil, false)
			if err == nil || errors.Is(err, conductor.ErrAgentUnreachable) || !strings.Contains(err.Error(), "busy writing an image") {
				t.Fatalf("error %v: want the agent's answer, not unreachable", err)
			}
			if got := p.requests.Load(); got != 1 {
				t.Fatalf("%d requests, want 1", got)
			}
		})
	}
}

// TestAgentClientStall: an agent that takes the request and never answers costs
// CommandTimeout per attempt, then the call ends as unreachable.
func TestAgentClientStall(t *testing.T) {
	stop := make(chan struct{})
	var once sync.Once
	p := startPeer(t, "127.0.0.1:0", func(_ int64, w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { once.Do(func() { close(stop) }) })
	cfg := testConfig()
	cfg.CommandTimeout = 300 * time.Millisecond
	a := newAgentClient(cfg, slog.New(slog.DiscardHandler))
	began := time.Now()
	_, err := a.status(context.Background(), endpoint{URL: p.url(), Token: testToken}, "c1")
	t.Logf("stalled GET: %d attempts of %s ended after %s", p.requests.Load(), cfg.CommandTimeout, time.Since(began).Round(time.Millisecond))
	checkUnreachable(t, err, p.url())
	if got := p.requests.Load(); got != 3 {
		t.Fatalf("%d requests, want 3", got)
	}
	began = time.Now()
	_, err = a.run(context.Background(), endpoint{URL: p.url(), Token: testToken}, "standby.prepare_image", nil, false)
	t.Logf("stalled POST ended after %s", time.Since(began).Round(time.Millisecond))
	checkUnreachable(t, err, p.url())
	if got := p.requests.Load(); got != 4 {
		t.Fatalf("%d requests in all, want 4 (the POST once)", got)
	}
}

// TestCallErrorBodies: the agent's error bodies and Ironic's both give their message.
func TestCallErrorBodies(t *testing.T) {
	for body, want := range map[string]string{
		`{"type": "X", "code": 400, "message": "Invalid request", "details": "no image_info"}`: "no image_info",
		`{"error_message": "{\"faultstring\": \"Node x could not be found.\"}"}`:               "Node x could not be found.",
		"plain text": "plain text",
	} {
		if got := api.ErrorMessage([]byte(body)); got != want {
			t.Errorf("ErrorMessage(%s) = %q, want %q", body, got, want)
		}
	}
}

// TestHeartbeatWithAnUnreachableAgent: at a heartbeat, an agent that does not answer leaves
// the node waiting (an error wrapping ErrAgentUnreachable, which the conductor neither
// records nor counts as progress); an agent that answers with a failed command fails the
// step with the agent's reason.
func TestHeartbeatWithAnUnreachableAgent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + ln.Addr().String()
	ln.Close()
	cfg := testConfig()
	d := New(cfg, nil)
	task := func(wait map[string]any) *conductor.Task {
		return &conductor.Task{Node: &ironwork.Node{UUID: "u1", DriverInternalInfo: ironwork.JSONObject{waitKey: wait}},
			Log: slog.New(slog.DiscardHandler)}
	}
	hb := conductor.Heartbeat{CallbackURL: gone, AgentToken: testToken}
	for name, wait := range map[string]map[string]any{
		"status read":    {"name": "standby.prepare_image", "id": "c1"},
		"unsent command": {"name": "standby.prepare_image", "step": "write_image", "priority": 80.0},
	} {
		resume, err := d.Heartbeat(context.Background(), task(wait), hb)
		if resume || !errors.Is(err, conductor.ErrAgentUnreachable) || !strings.Contains(err.Error(), gone) {
			t.Errorf("%s: resume %v, error %v: want to keep waiting on ErrAgentUnreachable naming %s", name, resume, err, gone)
		}
	}
	p := startPeer(t, "127.0.0.1:0", func(_ int64, w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"commands": [{"id": "c1", "command_name": "standby.prepare_image", "command_status": "FAILED",
			"command_error": {"type": "ImageChecksumError", "details": "image checksum mismatch"}}]}`)
	})
	hb.CallbackURL = p.url()
	for name, wait := range map[string]map[string]any{
		"status read": {"name": "standby.prepare_image", "id": "c1"},
		// The command reached the agent before the answer was lost: it is adopted, not resent.
		"unsent command": {"name": "standby.prepare_image", "step": "write_image", "priority": 80.0},
	} {
		_, err := d.Heartbeat(context.Background(), task(wait), hb)
		if err == nil || errors.Is(err, conductor.ErrAgentUnreachable) || !strings.Contains(err.Error(), "image checksum mismatch") {
			t.Errorf("%s: error %v: want the agent's reason", name, err)
		}
	}
	if got := p.requests.Load(); got != 2 {
		t.Errorf("the agent saw %d requests, want 2 status reads and no command sent", got)
	}
}
