package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/agent/initsys"
	"github.com/ironwork/ironwork/internal/agent/server"
)

const fixtureRoot = "../../internal/agent/testdata/sysroot-qemu"

// fakeInspector plays Ironic's continue_inspection: it records each post and answers with
// the statuses given in turn (the last one repeats), the 2xx answer being answer.
type fakeInspector struct {
	mu       sync.Mutex
	statuses []int
	answer   any
	posts    []map[string]any
	versions []string
}

func (f *fakeInspector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&body)
	f.mu.Lock()
	f.posts = append(f.posts, body)
	f.versions = append(f.versions, r.Header.Get(api.VersionHeader))
	status := f.statuses[min(len(f.posts), len(f.statuses))-1]
	f.mu.Unlock()
	if err != nil || r.Method != http.MethodPost || r.URL.Path != "/v1/continue_inspection" {
		http.Error(w, `{"error_message": "bad request"}`, http.StatusBadRequest)
		return
	}
	if status/100 != 2 {
		w.WriteHeader(status)
		w.Write([]byte(`{"error_message": "{\"faultstring\": \"not now\"}"}`))
		return
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(f.answer)
}

func testEnv(powerOffs *atomic.Int32) agentEnv {
	return agentEnv{log: slog.New(slog.DiscardHandler), console: initsys.NewConsole(io.Discard), logs: server.NewLogBuffer(1 << 20),
		powerOff: func() error { powerOffs.Add(1); return nil },
		retry:    inspectionRetry{Attempts: 3, Wait: 10 * time.Millisecond, MaxWait: 20 * time.Millisecond}}
}

// TestInspectionPostsAndPowersOff: the agent posts IPA's body (inventory, root_disk,
// boot_interface, configuration, error; root_disk the smallest disk of 4 GiB or more, as
// IPA guesses it) to the callback URL at 1.84, retries a 503, and powers
// off when the answer holds no token.
func TestInspectionPostsAndPowersOff(t *testing.T) {
	f := &fakeInspector{statuses: []int{503, 202}, answer: map[string]any{"uuid": testNode}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.InspectionURL, cfg.SysRoot, cfg.CollectLLDP, cfg.BootMAC = srv.URL+"/v1/continue_inspection", fixtureRoot, false, "52:54:00:1a:01:01"
	var offs atomic.Int32
	if err := runAgent(context.Background(), cfg, testEnv(&offs)); err != nil {
		t.Fatal(err)
	}
	if offs.Load() != 1 {
		t.Errorf("%d power offs, want 1", offs.Load())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.posts) != 2 || f.versions[1] != "1.84" {
		t.Fatalf("%d posts, versions %v", len(f.posts), f.versions)
	}
	body := f.posts[1]
	for _, k := range []string{"inventory", "root_disk", "boot_interface", "configuration", "error"} {
		if _, ok := body[k]; !ok {
			t.Errorf("body lacks %q", k)
		}
	}
	if _, ok := body["lldp_raw"]; ok {
		t.Error("lldp_raw sent with LLDP collection off")
	}
	inv := body["inventory"].(map[string]any)
	if inv["cpu"].(map[string]any)["count"] != 2.0 || inv["memory"].(map[string]any)["physical_mb"] != 1536.0 ||
		len(inv["disks"].([]any)) != 2 || len(inv["interfaces"].([]any)) != 2 {
		t.Errorf("inventory %v", inv)
	}
	if rd := body["root_disk"].(map[string]any); rd["name"] != "/dev/vdb" || rd["size"] != float64(4<<30) {
		t.Errorf("root_disk %v", rd)
	}
	if body["boot_interface"] != "52:54:00:1a:01:01" || body["error"] != nil {
		t.Errorf("boot_interface %v, error %v", body["boot_interface"], body["error"])
	}
}

// TestInspectionFastTrack: an answer with an agent token keeps the agent up: it looks the
// node up and heartbeats with that token.
func TestInspectionFastTrack(t *testing.T) {
	const token = "inspection-token"
	f := &fakeInspector{statuses: []int{202}, answer: api.LookupResponse{Node: map[string]any{"uuid": testNode},
		Config: api.LookupConfig{HeartbeatTimeout: 30, AgentToken: token, AgentTokenRequired: true}}}
	beats := make(chan api.HeartbeatRequest, 4)
	var lookupNode atomic.Value
	mux := http.NewServeMux()
	mux.Handle("POST /v1/continue_inspection", f)
	mux.HandleFunc("GET /v1/lookup", func(w http.ResponseWriter, r *http.Request) {
		lookupNode.Store(r.URL.Query().Get("node_uuid"))
		json.NewEncoder(w).Encode(api.LookupResponse{Node: map[string]any{"uuid": testNode},
			Config: api.LookupConfig{HeartbeatTimeout: 30, AgentToken: hiddenToken}})
	})
	mux.HandleFunc("POST /v1/heartbeat/{node}", func(w http.ResponseWriter, r *http.Request) {
		var hb api.HeartbeatRequest
		json.NewDecoder(r.Body).Decode(&hb)
		select {
		case beats <- hb:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.APIURL, cfg.InspectionURL, cfg.SysRoot, cfg.CollectLLDP = srv.URL, srv.URL+"/v1/continue_inspection", fixtureRoot, false
	cfg.Listen, cfg.AdvertiseURL = "127.0.0.1:0", "http://127.0.0.1:9999"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var offs atomic.Int32
	done := make(chan error, 1)
	go func() { done <- runAgent(ctx, cfg, testEnv(&offs)) }()
	select {
	case hb := <-beats:
		if hb.AgentToken != token {
			t.Errorf("heartbeat token %q, want the one inspection gave", hb.AgentToken)
		}
	case err := <-done:
		t.Fatalf("agent ended before heartbeating: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no heartbeat within 30 s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("agent: %v", err)
	}
	if lookupNode.Load() != testNode || offs.Load() != 0 {
		t.Errorf("lookup node_uuid %v, %d power offs", lookupNode.Load(), offs.Load())
	}
}

// TestInspectionRefused: a 404 (no node, discovery off) is final; with no API to look the
// node up in, the agent stops with an error naming the answer and does not power off.
func TestInspectionRefused(t *testing.T) {
	f := &fakeInspector{statuses: []int{404}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.InspectionURL, cfg.SysRoot, cfg.CollectLLDP = srv.URL+"/v1/continue_inspection", fixtureRoot, false
	var offs atomic.Int32
	err := runAgent(context.Background(), cfg, testEnv(&offs))
	if err == nil || !strings.Contains(err.Error(), "404") && !strings.Contains(err.Error(), "not now") {
		t.Errorf("err = %v", err)
	}
	if len(f.posts) != 1 || offs.Load() != 0 {
		t.Errorf("%d posts, %d power offs", len(f.posts), offs.Load())
	}
}
