package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/lockedbuf"
)

// serveProc is an `ironwork serve` child process on a data directory the test keeps, so that
// it can be killed and started again on the same database.
type serveProc struct {
	cmd  *exec.Cmd
	log  *lockedbuf.Buffer
	done chan struct{}
}

func startServe(t *testing.T, bin, dataDir, config string) *serveProc {
	t.Helper()
	file := filepath.Join(dataDir, "ironwork.toml")
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{log: &lockedbuf.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--config", file, "--data-dir", dataDir)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("--- log of ironwork serve (pid %d) ---\n%s", p.cmd.Process.Pid, p.log.String())
		}
	})
	return p
}

// kill sends sig and waits (bounded) for the process to end; SIGKILL follows after 15 s.
func (p *serveProc) kill(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitAPI waits (bounded) until the API answers.
func waitAPI(t *testing.T, c *api.Client, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var v map[string]any
		if err := c.Do(context.Background(), http.MethodGet, "/v1/nodes", nil, &v); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API did not answer within %s", within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFaultServeKilledMidDeploy is fault 3 of docs/reliability.md: `ironwork serve` (SQLite)
// is killed with SIGKILL while nodes are deploying (held in "deploying" by fake_deploy_delay)
// and waiting for their agent ("wait call-back"), then started again on the same data
// directory. Within two minutes no node may keep a reservation, every interrupted deploy must
// end in "deploy failed" with a reason (the working ones at start-up, the waiting ones at the
// callback timeout) and the nodes that were active must stay active.
func TestFaultServeKilledMidDeploy(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the process restart test")
	}
	t.Parallel()
	dir := t.TempDir()
	bin := builtBinary(t, "../../cmd/ironwork")
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	// Long enough that the waiting nodes are still waiting when the test, on a loaded machine,
	// has set up all 24 nodes and kills the server.
	const callbackTimeout = 30 * time.Second
	config := fmt.Sprintf("hostname = \"fault-conductor\"\nlisten = %q\ncallback_timeout = %q\ntimeout_check_interval = \"1s\"\n"+
		"power_sync_interval = \"1h\"\nautomated_clean = false\n", addr, callbackTimeout)
	first := startServe(t, bin, data, config)
	c := &api.Client{BaseURL: "http://" + addr, Version: "1.87"}
	ctx := context.Background()
	waitAPI(t, c, 30*time.Second)

	// Three groups: deploying when killed, waiting for the agent when killed, active before.
	groups := map[string]map[string]any{
		"deploying": {"fake_deploy_delay": 600},
		"waiting":   {"fake_deploy_wait": true},
		"active":    {},
	}
	const perGroup = 8
	group := map[string]string{} // uuid -> group
	for g, info := range groups {
		for i := range perGroup {
			var n map[string]any
			if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": fmt.Sprintf("%s-%d", g, i),
				"driver": "fake-hardware", "driver_info": info}, &n); err != nil {
				t.Fatal(err)
			}
			group[n["uuid"].(string)] = g
		}
	}
	for _, verb := range []string{"manage", "provide"} {
		for u := range group {
			provisionVerb(t, c, u, verb)
		}
		want := map[string]string{"manage": "manageable", "provide": "available"}[verb]
		waitAll(t, c, 30*time.Second, func(st string) bool { return st == want })
	}
	for u := range group {
		provisionVerb(t, c, u, "active")
	}
	wantBefore := map[string]string{"deploying": "deploying", "waiting": "wait call-back", "active": "active"}
	waitAllNodes(t, c, 30*time.Second, func(u, st string) bool { return st == wantBefore[group[u]] })
	locks := nodeField(t, c, "reservation")
	held := 0
	for u, r := range locks {
		if r != nil && group[u] == "deploying" {
			held++
		}
	}
	if held != perGroup {
		t.Fatalf("%d of the %d deploying nodes hold a lock before the kill; the test needs them locked", held, perGroup)
	}

	first.kill(syscall.SIGKILL)
	killed := time.Now()
	startServe(t, bin, data, config)
	waitAPI(t, c, 30*time.Second)
	t.Logf("restarted: API answers %.1f s after the SIGKILL", time.Since(killed).Seconds())

	// Working nodes fail at start-up and no lock survives it.
	freed := time.Duration(0)
	deadline := killed.Add(2 * time.Minute)
	for freed == 0 {
		locks := nodeField(t, c, "reservation")
		states := nodeField(t, c, "provision_state")
		ok := true
		for u := range group {
			if locks[u] != nil || states[u] == "deploying" {
				ok = false
			}
		}
		if ok {
			freed = time.Since(killed)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("two minutes after the restart: locks %v, states %v", locks, states)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("no lock held and no node deploying %.1f s after the SIGKILL", freed.Seconds())

	wantAfter := map[string]string{"deploying": "deploy failed", "waiting": "deploy failed", "active": "active"}
	final := waitAllNodes(t, c, time.Until(deadline), func(u, st string) bool { return st == wantAfter[group[u]] })
	t.Logf("outcome: every interrupted deploy failed %.1f s after the SIGKILL (callback timeout %s)", time.Since(killed).Seconds(), callbackTimeout)

	wantReason := map[string]string{
		"deploying": "stopped while the node was in state \"deploying\"",
		"waiting":   "Timeout reached while waiting for callback",
	}
	for u, g := range group {
		var n map[string]any
		if err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+u, nil, &n); err != nil {
			t.Fatal(err)
		}
		le, _ := n["last_error"].(string)
		if w := wantReason[g]; w != "" && !strings.Contains(le, w) {
			t.Errorf("%s node %s in %v: last_error %q, want it to say %q", g, u, final[u], le, w)
		}
		if g == "active" && n["last_error"] != nil {
			t.Errorf("active node %s gained last_error %q", u, le)
		}
		if n["reservation"] != nil {
			t.Errorf("%s node %s: reservation %v", g, u, n["reservation"])
		}
	}

	// A failed node deploys again after the restart.
	var one string
	for u, g := range group {
		if g == "waiting" {
			one = u
			break
		}
	}
	if err := c.Do(ctx, http.MethodPatch, "/v1/nodes/"+one, []map[string]any{{"op": "replace", "path": "/driver_info/fake_deploy_wait", "value": false}}, nil); err != nil {
		t.Fatal(err)
	}
	provisionVerb(t, c, one, "active")
	waitState(t, c, one, "active", 30*time.Second)
}

// waitAllNodes waits until ok holds for every node's provision state and returns the states.
func waitAllNodes(t *testing.T, c *api.Client, within time.Duration, ok func(uuid, state string) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		states := nodeField(t, c, "provision_state")
		var bad []string
		for u, st := range states {
			if s, _ := st.(string); !ok(u, s) {
				bad = append(bad, u+"="+s)
			}
		}
		if len(bad) == 0 {
			return states
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes not in the wanted state after %s: %v", within, bad)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
