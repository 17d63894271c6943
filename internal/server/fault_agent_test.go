package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/server"
)

// Image server behaviours of the agent fault tests.
const (
	serveWhole = iota // the whole image
	serveDie          // half the image, then the server closes the connection and stops listening
	serveHang         // half the image, then nothing until the client goes away
)

// faultRig is one in-process server with a node that deploys through the real ironwork-agent
// (run as a process here, its disk a file) from an image server whose behaviour the test sets.
type faultRig struct {
	srv      *server.Server
	c        *api.Client
	agent    string // agent binary
	disk     string
	image    []byte
	mode     atomic.Int32
	halfSent chan struct{} // receives when the image server stopped half-way
	images   *httptest.Server
	node     string
	mac      string
}

// faultCallbackTimeout is the callback timeout of the fault rigs: twice the agent's
// heartbeat interval (10 s), so a live agent never times out.
const faultCallbackTimeout = 20 * time.Second

// diskSize is the node's disk: 0xAA in its first 16 MiB and its last MiB, so that zeroing
// shows; the image is 8 MiB.
const diskSize = 96 << 20

func newFaultRig(t *testing.T, agent string, image []byte) *faultRig {
	t.Helper()
	dir := t.TempDir()
	r := &faultRig{mac: hostMAC(t), halfSent: make(chan struct{}, 4), agent: agent, image: image}
	r.images = httptest.NewServer(http.HandlerFunc(r.serveImage))
	t.Cleanup(r.images.Close)

	r.disk = filepath.Join(dir, "disk.img")
	f, err := os.Create(r.disk)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt(bytes.Repeat([]byte{0xAA}, 16<<20), 0)
	if err == nil {
		_, err = f.WriteAt(bytes.Repeat([]byte{0xAA}, 1<<20), diskSize-1<<20)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	off := false
	r.srv = startServer(t, "sqlite://"+filepath.Join(dir, "db"), func(c *server.Config) {
		c.AgentPowerOffTimeout = server.Duration{Duration: 2 * time.Second}
		c.CallbackTimeout = server.Duration{Duration: faultCallbackTimeout}
		c.TimeoutCheckInterval = server.Duration{Duration: time.Second}
		c.AutomatedClean = &off
	})
	r.c = &api.Client{BaseURL: r.srv.URL(), Version: "1.87"}
	sum := sha256.Sum256(r.image)
	var node map[string]any
	ctx := context.Background()
	if err := r.c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "fault-1", "driver": "fake-hardware",
		"deploy_interface": "direct", "boot_interface": "fake",
		"instance_info": map[string]any{"image_source": r.images.URL + "/image.raw", "image_checksum": "sha256:" + hex.EncodeToString(sum[:]),
			"image_disk_format": "raw"}}, &node); err != nil {
		t.Fatal(err)
	}
	r.node = node["uuid"].(string)
	if err := r.c.Do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": r.node, "address": r.mac}, nil); err != nil {
		t.Fatal(err)
	}
	provisionVerb(t, r.c, r.node, "manage")
	waitState(t, r.c, r.node, "manageable", 10*time.Second)
	provisionVerb(t, r.c, r.node, "provide")
	waitState(t, r.c, r.node, "available", 10*time.Second)
	return r
}

func (r *faultRig) serveImage(w http.ResponseWriter, req *http.Request) {
	mode := r.mode.Load()
	if mode == serveWhole {
		http.ServeContent(w, req, "image.raw", time.Time{}, bytes.NewReader(r.image))
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(r.image)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(r.image[:len(r.image)/2])
	w.(http.Flusher).Flush()
	select {
	case r.halfSent <- struct{}{}:
	default:
	}
	if mode == serveDie {
		_ = r.images.Listener.Close()
		panic(http.ErrAbortHandler) // the connection is cut, not ended
	}
	select { // serveHang
	case <-req.Context().Done():
	case <-time.After(2 * time.Minute):
	}
}

// waitHalf waits (bounded) until the image server has stopped half-way.
func (r *faultRig) waitHalf(t *testing.T) {
	t.Helper()
	select {
	case <-r.halfSent:
	case <-time.After(60 * time.Second):
		t.Fatal("the agent did not download half the image within 60 s")
	}
}

// deployAgain deploys the node from "deploy failed" with the whole image and checks the disk.
func (r *faultRig) deployAgain(t *testing.T) time.Duration {
	t.Helper()
	r.mode.Store(serveWhole)
	start := time.Now()
	provisionVerb(t, r.c, r.node, "active")
	waitState(t, r.c, r.node, "wait call-back", 10*time.Second)
	startAgent(t, r.agent, r.srv.URL(), r.disk)
	waitState(t, r.c, r.node, "active", 90*time.Second)
	b := readDisk(t, r.disk, 0, int64(len(r.image)))
	if !bytes.Equal(b, r.image) {
		t.Fatal("after the second deploy the disk does not hold the image")
	}
	return time.Since(start)
}

func readDisk(t *testing.T, path string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// assertHeadZeroed checks the agent's promise: a failed or interrupted write leaves the
// disk's first MiB zeroed, so the node cannot boot half an image (or the old one).
func assertHeadZeroed(t *testing.T, disk string) {
	t.Helper()
	if !bytes.Equal(readDisk(t, disk, 0, 1<<20), make([]byte, 1<<20)) {
		t.Error("the disk's first MiB is not zeroed")
	}
	if !bytes.Equal(readDisk(t, disk, diskSize-1<<20, 1<<20), make([]byte, 1<<20)) {
		t.Error("the disk's last MiB is not zeroed")
	}
}

func lastError(t *testing.T, n map[string]any) string {
	t.Helper()
	le, _ := n["last_error"].(string)
	if le == "" {
		t.Errorf("node %v in %v has no last_error", n["uuid"], n["provision_state"])
	}
	return le
}

// TestFaultAgent runs the faults of docs/reliability.md that involve the deploy agent, in
// parallel, each with a server and node of its own, sharing one build of the agent.
func TestFaultAgent(t *testing.T) {
	dir := t.TempDir()
	hostMAC(t)
	image, _ := qemuImage(t, dir)
	agent := buildAgent(t)
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, r *faultRig)
	}{
		{"ImageServerDies", faultImageServerDies},
		{"ResetDuringImageWrite", faultResetDuringImageWrite},
		{"RestartInWaitState", faultAgentRestartInWaitState},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newFaultRig(t, agent, image))
		})
	}
}

// faultImageServerDies is fault 4 of docs/reliability.md: the image server stops
// half-way through the download (connection cut, listener closed). The deploy must fail with
// a reason that says the download was cut, the disk's first and last MiB must be zeroed, and
// the next deploy (server back) must succeed.
func faultImageServerDies(t *testing.T, r *faultRig) {
	r.mode.Store(serveDie)
	start := time.Now()
	provisionVerb(t, r.c, r.node, "active")
	waitState(t, r.c, r.node, "wait call-back", 10*time.Second)
	startAgent(t, r.agent, r.srv.URL(), r.disk)
	r.waitHalf(t)
	cut := time.Now()
	n := waitState(t, r.c, r.node, "deploy failed", faultCallbackTimeout+30*time.Second)
	le := lastError(t, n)
	t.Logf("outcome: deploy failed %.1f s after the image server died (%.1f s after the deploy began): %s",
		time.Since(cut).Seconds(), time.Since(start).Seconds(), le)
	if !strings.Contains(le, "truncated") || strings.Contains(le, "Timeout reached") {
		t.Errorf("last_error does not say the download was cut: %q", le)
	}
	assertHeadZeroed(t, r.disk)

	// The server comes back (on a new listener, same URL is gone): point the node at it.
	back := httptest.NewServer(http.HandlerFunc(r.serveImage))
	defer back.Close()
	if err := r.c.Do(context.Background(), http.MethodPatch, "/v1/nodes/"+r.node, []map[string]any{{"op": "replace",
		"path": "/instance_info/image_source", "value": back.URL + "/image.raw"}}, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("next deploy: active in %.1f s", r.deployAgain(t).Seconds())
}

// faultResetDuringImageWrite is fault 1 of docs/reliability.md on the real agent without
// QEMU: the machine "resets" while the agent writes the image (the agent process is killed
// with SIGKILL half-way through the download, losing its memory as a reset would), and the
// ramdisk boots again (a new agent process on the same disk). The new agent is refused the
// token of the old boot, so the deploy must fail at the callback timeout with that reason; the
// disk's first MiB must not hold a partition table (it is zeroed before anything is written
// and the image's own first MiB goes last); and the next deploy must succeed.
func faultResetDuringImageWrite(t *testing.T, r *faultRig) {
	r.mode.Store(serveHang)
	provisionVerb(t, r.c, r.node, "active")
	waitState(t, r.c, r.node, "wait call-back", 10*time.Second)
	a := startAgent(t, r.agent, r.srv.URL(), r.disk)
	r.waitHalf(t)
	// Reset once the agent is writing: image bytes past the first MiB are on the disk.
	deadline := time.Now().Add(60 * time.Second)
	for probe := r.image[1<<20 : 1<<20+4096]; !bytes.Equal(readDisk(t, r.disk, 1<<20, 4096), probe); {
		if time.Now().After(deadline) {
			t.Fatal("the agent wrote nothing past the first MiB within 60 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.stop() // SIGKILL: the reset
	reset := time.Now()
	assertHeadZeroed(t, r.disk) // zeroed before the first byte of the image was written

	// The machine boots the ramdisk again: the agent looks up and gets no token.
	again := startAgent(t, r.agent, r.srv.URL(), r.disk)
	select {
	case err := <-again.done:
		again.done <- err
		t.Logf("the rebooted agent exits (%v): %s", err, lastLine(again.out.String()))
		if !strings.Contains(again.out.String(), "withheld the agent token") {
			t.Errorf("the rebooted agent does not say why it stops")
		}
	case <-time.After(30 * time.Second):
		t.Log("the rebooted agent is still running after 30 s")
	}
	n := waitState(t, r.c, r.node, "deploy failed", faultCallbackTimeout+30*time.Second)
	le := lastError(t, n)
	took := time.Since(reset)
	t.Logf("outcome: deploy failed %.1f s after the reset (callback timeout %s): %s", took.Seconds(), faultCallbackTimeout, le)
	if !strings.Contains(le, "Timeout reached while waiting for callback") {
		t.Errorf("last_error: %q, want the callback timeout", le)
	}
	if n["reservation"] != nil {
		t.Errorf("the failed node is locked by %v", n["reservation"])
	}
	t.Logf("next deploy: active in %.1f s", r.deployAgain(t).Seconds())
}

// faultAgentRestartInWaitState is fault 5 of docs/reliability.md: the agent restarts (a
// new process in the same boot) while the node waits for it. The first agent looked up and
// got the node's token (played here by the test, through the same API call); the restarted
// agent (the real one) looks up again, is refused the token that was already handed out and
// stops; the node fails at the callback timeout with the reason; and the old token is
// refused once the node leaves the agent states and again after the next deploy begins.
func faultAgentRestartInWaitState(t *testing.T, r *faultRig) {
	r.mode.Store(serveWhole)
	provisionVerb(t, r.c, r.node, "active")
	waitState(t, r.c, r.node, "wait call-back", 10*time.Second)
	ctx := context.Background()
	lookup := "/v1/lookup?" + url.Values{"addresses": {r.mac}}.Encode()
	var first api.LookupResponse
	if err := r.c.Do(ctx, http.MethodGet, lookup, nil, &first); err != nil {
		t.Fatal(err)
	}
	oldToken := first.Config.AgentToken
	if oldToken == "" || oldToken == "******" {
		t.Fatalf("the first lookup got token %q", oldToken)
	}
	restarted := time.Now()
	again := startAgent(t, r.agent, r.srv.URL(), r.disk)
	select {
	case err := <-again.done:
		again.done <- err
		t.Logf("the restarted agent exits (%v): %s", err, lastLine(again.out.String()))
	case <-time.After(30 * time.Second):
		t.Log("the restarted agent is still running after 30 s")
	}
	n := waitState(t, r.c, r.node, "deploy failed", faultCallbackTimeout+30*time.Second)
	le := lastError(t, n)
	t.Logf("outcome: deploy failed %.1f s after the agent restarted (callback timeout %s): %s",
		time.Since(restarted).Seconds(), faultCallbackTimeout, le)
	if !strings.Contains(le, "Timeout reached while waiting for callback") {
		t.Errorf("last_error: %q, want the callback timeout", le)
	}

	heartbeat := func() error {
		return r.c.Do(ctx, http.MethodPost, "/v1/heartbeat/"+r.node, map[string]any{"callback_url": "http://127.0.0.1:9/",
			"agent_token": oldToken, "agent_version": "test"}, nil)
	}
	if err := heartbeat(); err == nil || !(api.IsStatus(err, http.StatusForbidden) || api.IsStatus(err, http.StatusConflict)) {
		t.Errorf("heartbeat with the old token in deploy failed: %v, want 403 or 409", err)
	}
	r.mode.Store(serveWhole)
	provisionVerb(t, r.c, r.node, "active")
	waitState(t, r.c, r.node, "wait call-back", 10*time.Second)
	if err := heartbeat(); !api.IsStatus(err, http.StatusForbidden) {
		t.Errorf("heartbeat with the old boot's token in the next deploy: %v, want 403", err)
	}
	startAgent(t, r.agent, r.srv.URL(), r.disk)
	waitState(t, r.c, r.node, "active", 90*time.Second)
	t.Log("next deploy: active")
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return fmt.Sprintf("%.300s", s)
}
