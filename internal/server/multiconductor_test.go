package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
)

// process is an ironwork serve child process.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// spawn starts `ironwork serve` with a config file and kills it when the test ends.
func spawn(t *testing.T, bin, name, config string) *process {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "ironwork.toml")
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &process{name: name, log: &bytes.Buffer{}}
	p.cmd = exec.Command(bin, "serve", "--config", file, "--data-dir", dir)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { p.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				p.cmd.Process.Kill()
				<-done
			}
		}
		if t.Failed() {
			t.Logf("--- log of %s ---\n%s", name, p.log.String())
		}
	})
	return p
}

// TestMultiConductorTakeover runs one API-only server and two conductors on PostgreSQL, deploys
// 500 fake nodes, kills one conductor with SIGKILL in the middle, and checks that within two
// heartbeat timeouts the survivor owns every node, no lock names the dead conductor, and no node
// is left in a working state.
func TestMultiConductorTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the three-process test")
	}
	dsn := sqlstoretest.PostgresDSN(t)
	bin := builtBinary(t, "../../cmd/ironwork")
	const heartbeat, timeout = time.Second, 3 * time.Second
	common := fmt.Sprintf("database = %q\nheartbeat_interval = %q\nheartbeat_timeout = %q\npower_sync_interval = \"1h\"\nautomated_clean = false\n",
		dsn, heartbeat, timeout)
	spawn(t, bin, "conductor-a", common+"role = \"conductor\"\nhostname = \"conductor-a\"\n")
	b := spawn(t, bin, "conductor-b", common+"role = \"conductor\"\nhostname = \"conductor-b\"\n")
	apiAddr := freeAddr(t)
	spawn(t, bin, "api", common+fmt.Sprintf("role = \"api\"\nhostname = \"api\"\nlisten = %q\n", apiAddr))
	c := &api.Client{BaseURL: "http://" + apiAddr, Version: "1.87"}
	ctx := context.Background()

	deadline := time.Now().Add(30 * time.Second)
	for {
		var cs struct {
			Conductors []map[string]any `json:"conductors"`
		}
		err := c.Do(ctx, http.MethodGet, "/v1/conductors", nil, &cs)
		if err == nil && len(cs.Conductors) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API and two conductors did not come up: %v %v", err, cs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * heartbeat) // let the API's ring see both conductors

	const total = 500
	uuids := make([]string, total)
	parallel(t, total, 16, func(i int) error {
		var n map[string]any
		err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": fmt.Sprintf("mc-%03d", i), "driver": "fake-hardware",
			"driver_info": map[string]any{"fake_deploy_delay": 6}}, &n)
		if err == nil {
			uuids[i] = n["uuid"].(string)
		}
		return err
	})
	owners := nodeField(t, c, "conductor")
	count := map[any]int{}
	for _, o := range owners {
		count[o]++
	}
	if count["conductor-a"] == 0 || count["conductor-b"] == 0 || count["conductor-a"]+count["conductor-b"] != total {
		t.Fatalf("nodes per conductor: %v", count)
	}
	t.Logf("nodes per conductor before the kill: %v", count)
	for _, verb := range []string{"manage", "provide"} {
		parallel(t, total, 16, func(i int) error {
			return c.Do(ctx, http.MethodPut, "/v1/nodes/"+uuids[i]+"/states/provision", map[string]any{"target": verb}, nil)
		})
		want := map[string]string{"manage": "manageable", "provide": "available"}[verb]
		waitAll(t, c, 30*time.Second, func(st string) bool { return st == want })
	}
	// A conductor takes at most 250 concurrent deploys (Ironic's max_concurrent_deploy) and
	// answers 503 past that: those nodes stay available.
	var busy sync.Map
	parallel(t, total, 16, func(i int) error {
		err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+uuids[i]+"/states/provision", map[string]any{"target": "active"}, nil)
		if api.IsStatus(err, http.StatusServiceUnavailable) {
			busy.Store(uuids[i], true)
			return nil
		}
		return err
	})
	time.Sleep(500 * time.Millisecond)
	deploying := 0
	for _, st := range nodeField(t, c, "provision_state") {
		if st == "deploying" {
			deploying++
		}
	}
	if deploying < total/2 {
		t.Fatalf("only %d nodes deploying when the conductor is killed", deploying)
	}
	owners = nodeField(t, c, "conductor")
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.cmd.Wait()
	killed := time.Now()
	// What the dead conductor was still deploying when it died must fail; deploys that had
	// finished before (a loaded machine takes seconds to send 500 requests) stay active.
	// Nothing changes these nodes until the survivor sees the conductor dead, a heartbeat
	// timeout from now.
	deployingAtKill := nodeField(t, c, "provision_state")

	// Within two heartbeat timeouts: the survivor owns everything, no lock names the dead.
	for {
		owners := nodeField(t, c, "conductor")
		locks := nodeField(t, c, "reservation")
		ok := true
		for u := range owners {
			if owners[u] != "conductor-a" || locks[u] == "conductor-b" {
				ok = false
			}
		}
		if ok {
			t.Logf("survivor owns every node and holds every lock %s after the kill", time.Since(killed).Round(10*time.Millisecond))
			break
		}
		if time.Since(killed) > 2*timeout+2*heartbeat {
			t.Fatalf("not taken over within two heartbeat timeouts (%s)", 2*timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The dead conductor's deploys fail; the survivor's finish: no node stays in a working state.
	states := waitAll(t, c, 30*time.Second, func(st string) bool { return st == "active" || st == "deploy failed" || st == "available" })
	tally := map[string]int{}
	wantFailed := 0
	for u, st := range states {
		tally[st.(string)]++
		if owners[u] == "conductor-b" && deployingAtKill[u] == "deploying" {
			wantFailed++
		}
		if _, skipped := busy.Load(u); st == "available" && !skipped {
			t.Errorf("node %s is available but its deploy was accepted", u)
		}
	}
	t.Logf("after the kill: %v", tally)
	if tally["deploy failed"] != wantFailed {
		t.Errorf("%d nodes failed, but the dead conductor was deploying %d", tally["deploy failed"], wantFailed)
	}
}

func parallel(t *testing.T, n, workers int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, workers)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(i); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// nodeField returns one field of every node, by UUID.
func nodeField(t *testing.T, c *api.Client, field string) map[string]any {
	t.Helper()
	items, err := c.List(context.Background(), "/v1/nodes", "nodes", map[string][]string{"fields": {"uuid," + field}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for _, it := range items {
		out[it["uuid"].(string)] = it[field]
	}
	return out
}

// waitAll waits until every node's provision state satisfies ok and returns the states.
func waitAll(t *testing.T, c *api.Client, within time.Duration, ok func(string) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		states := nodeField(t, c, "provision_state")
		bad := map[string]int{}
		for _, st := range states {
			if s, _ := st.(string); !ok(s) {
				bad[s]++
			}
		}
		if len(bad) == 0 {
			return states
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(bad)
			t.Fatalf("nodes not in the wanted state after %s: %s", within, strings.TrimSpace(string(b)))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
