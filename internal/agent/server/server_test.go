package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
)

const testToken = "s3cret-token"

// testAgent serves a Server with test commands on a real loopback listener.
type testAgent struct {
	url     string
	srv     *Server
	release chan struct{} // closes to let test.block finish
	done    chan api.CommandResult
	once    sync.Once
}

// finish lets a running test.block command end.
func (ta *testAgent) finish() { ta.once.Do(func() { close(ta.release) }) }

func startAgent(t *testing.T) *testAgent {
	t.Helper()
	ta := &testAgent{release: make(chan struct{}), done: make(chan api.CommandResult, 16)}
	cmds := map[string]Command{
		"test.block": {Run: func(ctx context.Context, _ map[string]any, progress ProgressFunc) (any, error) {
			progress(api.Progress{BytesDone: 5, BytesTotal: 10})
			select {
			case <-ta.release:
				return map[string]any{"done": true}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}},
		"test.fail": {Run: func(context.Context, map[string]any, ProgressFunc) (any, error) {
			return nil, errors.New("disk on fire")
		}},
		"test.echo": {Run: func(_ context.Context, p map[string]any, _ ProgressFunc) (any, error) {
			return fmt.Sprint(p["say"]), nil
		}, Validate: func(p map[string]any) error {
			if _, ok := p["say"]; !ok {
				return errors.New("say is required")
			}
			return nil
		}},
		"test.sync": {Run: func(context.Context, map[string]any, ProgressFunc) (any, error) {
			time.Sleep(50 * time.Millisecond)
			return []int{1, 2}, nil
		}, Sync: true},
		"test.panic": {Run: func(context.Context, map[string]any, ProgressFunc) (any, error) {
			panic("boom")
		}},
	}
	ta.srv = New(Config{Token: testToken, Version: "test-1", Commands: cmds,
		OnDone: func(r api.CommandResult) { ta.done <- r }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- ta.srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		ta.finish()
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	ta.url = "http://" + ln.Addr().String()
	return ta
}

func (ta *testAgent) post(t *testing.T, token string, wait string, body string) (int, []byte) {
	t.Helper()
	q := url.Values{}
	if token != "" {
		q.Set("agent_token", token)
	}
	if wait != "" {
		q.Set("wait", wait)
	}
	resp, err := http.Post(ta.url+"/v1/commands/?"+q.Encode(), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (ta *testAgent) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(ta.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func TestStatus(t *testing.T) {
	ta := startAgent(t)
	code, b := ta.get(t, "/v1/status")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	st := decode[map[string]any](t, b)
	if st["version"] != "test-1" {
		t.Errorf("version = %v", st["version"])
	}
	if at, ok := st["started_at"].(float64); !ok || at < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("started_at = %v", st["started_at"])
	}
}

func TestTokenRequired(t *testing.T) {
	ta := startAgent(t)
	for _, tc := range []struct{ name, token, want string }{
		{"missing", "", "Agent token is required"},
		{"wrong", "s3cret-tokeX", "Token invalid."},
		{"prefix", "s3cret", "Token invalid."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := ta.post(t, tc.token, "true", `{"name":"test.echo","params":{"say":"hi"}}`)
			if code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", code, b)
			}
			e := decode[api.CommandError](t, b)
			if e.Type != "Unauthorized" || e.Code != 401 || e.Message != tc.want {
				t.Errorf("error body %+v", e)
			}
		})
	}
	// Nothing ran.
	_, b := ta.get(t, "/v1/commands/")
	if l := decode[api.CommandList](t, b); len(l.Commands) != 0 {
		t.Errorf("commands ran without a token: %+v", l.Commands)
	}
}

func TestBusyAsyncPoll(t *testing.T) {
	ta := startAgent(t)
	code, b := ta.post(t, testToken, "false", `{"name":"test.block","params":{}}`)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, b)
	}
	first := decode[api.CommandResult](t, b)
	if first.CommandStatus != api.CommandRunning || first.CommandName != "block" || first.ID == "" {
		t.Fatalf("first answer %+v", first)
	}
	// A second command while the first runs: 409 AgentIsBusy.
	code, b = ta.post(t, testToken, "false", `{"name":"test.echo","params":{"say":"x"}}`)
	if code != http.StatusConflict {
		t.Fatalf("second command: status %d, want 409: %s", code, b)
	}
	if e := decode[api.CommandError](t, b); e.Type != "AgentIsBusy" || e.Code != 409 || e.Details != "executing command block" {
		t.Errorf("busy body %+v", e)
	}
	// Heartbeat view while running: busy with progress.
	deadline := time.Now().Add(5 * time.Second)
	for st := ta.srv.Status(); st.Progress == nil; st = ta.srv.Status() {
		if time.Now().After(deadline) {
			t.Fatal("no progress reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := ta.srv.Status(); !st.Busy || st.Command != "block" || st.Progress.BytesDone != 5 || st.Progress.Command != "block" {
		t.Errorf("status %+v progress %+v", st, st.Progress)
	}
	ta.finish()
	select {
	case r := <-ta.done:
		if r.ID != first.ID {
			t.Errorf("OnDone for %s, want %s", r.ID, first.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnDone not called")
	}
	var got api.CommandResult
	for i := 0; i < 100; i++ {
		code, b = ta.get(t, "/v1/commands/"+first.ID)
		if code != http.StatusOK {
			t.Fatalf("poll: status %d", code)
		}
		if got = decode[api.CommandResult](t, b); got.CommandStatus != api.CommandRunning {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got.CommandStatus != api.CommandSucceeded || string(got.CommandResult) != `{"done":true}` || got.CommandError != nil {
		t.Errorf("final %+v result %s", got, got.CommandResult)
	}
	_, b = ta.get(t, "/v1/commands")
	if l := decode[api.CommandList](t, b); len(l.Commands) != 1 || l.Commands[0].ID != first.ID {
		t.Errorf("list %+v", l)
	}
	if st := ta.srv.Status(); st.Busy || st.Failed {
		t.Errorf("status after %+v", st)
	}
}

func TestFailedCommand(t *testing.T) {
	ta := startAgent(t)
	code, b := ta.post(t, testToken, "true", `{"name":"test.fail","params":{"disk":"/dev/sda"}}`)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, b)
	}
	r := decode[api.CommandResult](t, b)
	if r.CommandStatus != api.CommandFailed || r.CommandError == nil {
		t.Fatalf("result %+v", r)
	}
	want := api.CommandError{Type: "CommandExecutionError", Code: 500, Message: "Command execution failed", Details: "disk on fire"}
	if *r.CommandError != want {
		t.Errorf("error %+v, want %+v", *r.CommandError, want)
	}
	if r.CommandParams["disk"] != "/dev/sda" {
		t.Errorf("params %+v", r.CommandParams)
	}
	if st := ta.srv.Status(); !st.Failed {
		t.Errorf("status %+v, want failed", st)
	}
	// A panicking command fails the same way and the agent lives on.
	_, b = ta.post(t, testToken, "true", `{"name":"test.panic"}`)
	if r := decode[api.CommandResult](t, b); r.CommandStatus != api.CommandFailed || !strings.Contains(r.CommandError.Details, "boom") {
		t.Errorf("panic result %+v", r)
	}
}

func TestWaitAndSync(t *testing.T) {
	ta := startAgent(t)
	code, b := ta.post(t, testToken, "true", `{"name":"test.echo","params":{"say":"hello"}}`)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, b)
	}
	r := decode[api.CommandResult](t, b)
	if r.CommandStatus != api.CommandSucceeded || string(r.CommandResult) != `{"result":"echo: hello"}` {
		t.Errorf("wait=true result %+v %s", r, r.CommandResult)
	}
	// Sync commands answer with the result even with wait=false.
	_, b = ta.post(t, testToken, "false", `{"name":"test.sync"}`)
	if r := decode[api.CommandResult](t, b); r.CommandStatus != api.CommandSucceeded || string(r.CommandResult) != `[1,2]` {
		t.Errorf("sync result %+v %s", r, r.CommandResult)
	}
}

func TestBadRequests(t *testing.T) {
	ta := startAgent(t)
	for _, tc := range []struct {
		name, wait, body string
		code             int
		typ              string
	}{
		{"unknown command", "true", `{"name":"nope.nothing","params":{}}`, 400, "InvalidCommandError"},
		{"bad json", "true", `{"name":`, 400, "InvalidContentError"},
		{"not an object", "true", `[1,2]`, 400, "InvalidContentError"},
		{"params not an object", "true", `{"name":"test.echo","params":"x"}`, 400, "InvalidContentError"},
		{"bad wait", "maybe", `{"name":"test.echo","params":{"say":1}}`, 400, "InvalidContentError"},
		{"invalid params", "true", `{"name":"test.echo","params":{}}`, 400, "InvalidCommandParamsError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := ta.post(t, testToken, tc.wait, tc.body)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, b)
			}
			if e := decode[api.CommandError](t, b); e.Type != tc.typ || e.Code != tc.code || e.Details == "" {
				t.Errorf("error %+v", e)
			}
		})
	}
	if code, _ := ta.get(t, "/v1/commands/no-such-id"); code != http.StatusNotFound {
		t.Errorf("unknown id: %d", code)
	}
}

func TestBodyLimit(t *testing.T) {
	s := New(Config{Token: testToken, MaxBody: 1024, Commands: map[string]Command{"a.b": {Run: func(context.Context, map[string]any, ProgressFunc) (any, error) { return nil, nil }}}})
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, ln); close(done) }()
	defer func() { cancel(); <-done }()
	body := `{"name":"a.b","params":{"configdrive":"` + strings.Repeat("A", 4096) + `"}}`
	resp, err := http.Post("http://"+ln.Addr().String()+"/v1/commands?agent_token="+testToken, "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
}

func TestRedactLargeParams(t *testing.T) {
	got := redact(map[string]any{"configdrive": strings.Repeat("x", 5000), "image_info": map[string]any{"id": "a"}})
	if got["configdrive"] != "<5000 bytes omitted>" || got["image_info"].(map[string]any)["id"] != "a" {
		t.Errorf("redact %+v", got)
	}
}
