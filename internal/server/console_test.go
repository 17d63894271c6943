package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/lockedbuf"
	"github.com/ironwork/ironwork/internal/server"
	"github.com/ironwork/ironwork/internal/sqlstore/sqlstoretest"
	"github.com/ironwork/ironwork/internal/vbmc"
)

// serialMachine plays QEMU's serial socket: each connection gets a banner, then an echo of
// what it receives.
func serialMachine(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "serial.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte("serial line attached\r\n"))
				io.Copy(c, c)
			}()
		}
	}()
	return sock
}

type consoleState struct {
	Enabled bool `json:"console_enabled"`
	Info    *struct {
		Type string `json:"type"`
		URL  string `json:"url"`
	} `json:"console_info"`
}

func getConsole(t *testing.T, c *api.Client, node string) consoleState {
	t.Helper()
	var st consoleState
	if err := c.Do(context.Background(), http.MethodGet, "/v1/nodes/"+node+"/states/console", nil, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// setConsole enables or disables the console and waits (30 s at most) for the node to show it.
func setConsole(t *testing.T, c *api.Client, node string, on bool) consoleState {
	t.Helper()
	if err := c.Do(context.Background(), http.MethodPut, "/v1/nodes/"+node+"/states/console", map[string]any{"enabled": on}, nil); err != nil {
		t.Fatalf("set console %v: %v", on, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := getConsole(t, c, node)
		if st.Enabled == on && (st.Info != nil) == on {
			return st
		}
		if time.Now().After(deadline) {
			var n map[string]any
			c.Do(context.Background(), http.MethodGet, "/v1/nodes/"+node, nil, &n)
			t.Fatalf("console still %+v 30 s after asking for %v; last_error %v", st, on, n["last_error"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dialConsole connects to a console URL and reads until want (10 s at most).
func dialConsole(t *testing.T, url, want string) (net.Conn, *bufio.Reader) {
	t.Helper()
	addr, ok := strings.CutPrefix(url, "tcp://")
	if !ok {
		t.Fatalf("console URL %q is not tcp://", url)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	expect(t, c, r, want)
	return c, r
}

// attach connects to a console URL as its client: it types probe until the serial line echoes
// it (the slot may still be held by a client that just left), 15 s at most.
func attach(t *testing.T, url, probe string) (net.Conn, *bufio.Reader) {
	t.Helper()
	addr, _ := strings.CutPrefix(url, "tcp://")
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		c.Write([]byte(probe))
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		var got []byte
		for !bytes.Contains(got, []byte(probe)) {
			b, err := r.ReadByte()
			if err != nil {
				break
			}
			got = append(got, b)
		}
		if bytes.Contains(got, []byte(probe)) {
			return c, r
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the console at %s did not echo %q: read %q", url, probe, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func expect(t *testing.T, c net.Conn, r *bufio.Reader, want string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	for !bytes.Contains(got, []byte(want)) {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatalf("console: waiting for %q: %v; read %q", want, err, got)
		}
		got = append(got, b)
	}
}

// closedWithin reads c until the server closes it, failing after 15 s.
func closedWithin(t *testing.T, c net.Conn, r io.Reader) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatalf("the console connection was not closed by the server: %v", err)
	}
}

func consoleConfig(logDir string) func(*server.Config) {
	return func(cfg *server.Config) {
		cfg.ConsolePortRange = "20000:40000"
		cfg.ConsoleLogDir = logDir
		cfg.HeartbeatInterval = server.Duration{Duration: 500 * time.Millisecond}
	}
}

// TestConsoleOverIPMI enables the console of an IPMI node whose BMC is `ironwork vbmc` serving
// Serial-over-LAN from a machine's serial socket, and uses it over TCP and the websocket.
func TestConsoleOverIPMI(t *testing.T) {
	const password = "Console-S3cret-pw"
	sock := serialMachine(t)
	v, err := vbmc.Start(vbmc.Config{Username: "admin", Password: password, Machines: []vbmc.MachineConfig{{Name: "vm1",
		IPMIListen: "127.0.0.1:0", Command: []string{"sh", "-c", "exec sleep 300", "vm"}, SerialSocket: sock}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	vctx, stopVBMC := context.WithCancel(context.Background())
	go v.Serve(vctx)
	defer func() { stopVBMC(); v.Close() }()
	host, port, _ := strings.Cut(v.IPMIAddrs["vm1"], ":")

	logDir := t.TempDir()
	var serverLog lockedbuf.Buffer
	srv := startServerLog(t, sqlstoretest.Targets()[0].DSN(t), slog.New(slog.NewTextHandler(&serverLog, &slog.HandlerOptions{Level: slog.LevelDebug})),
		consoleConfig(logDir))
	c := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	ctx := context.Background()
	di := map[string]any{"ipmi_address": host, "ipmi_port": port, "ipmi_username": "admin", "ipmi_password": password}
	var plain, node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "no-console", "driver": "ipmi", "driver_info": di}, &plain); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "sol", "driver": "ipmi", "driver_info": di,
		"console_interface": "ipmitool-socat"}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)

	// Bad input: a driver without a console, a body that is not {"enabled": bool}.
	for _, tc := range []struct {
		node string
		body any
		want string
	}{
		{"no-console", map[string]any{"enabled": true}, "Driver ipmi does not support console (disabled or not implemented)."},
		{"sol", map[string]any{}, "Missing mandatory parameter: enabled"},
		{"sol", map[string]any{"enabled": "maybe"}, "Invalid enabled: 'maybe' is not a boolean."},
		{"sol", map[string]any{"enabled": true, "port": 1}, "Additional properties are not allowed ('port' was unexpected)"},
	} {
		err := c.Do(ctx, http.MethodPut, "/v1/nodes/"+tc.node+"/states/console", tc.body, nil)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, tc.want) {
			t.Errorf("PUT %v on %s: %v, want 400 %q", tc.body, tc.node, err, tc.want)
		}
	}
	var ae *api.Error
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/no-console/states/console", nil, nil); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Errorf("GET the console of a node without one: %v", err)
	}
	if st := getConsole(t, c, uuid); st.Enabled || st.Info != nil {
		t.Fatalf("a new node's console: %+v", st)
	}

	start := time.Now()
	st := setConsole(t, c, "sol", true)
	t.Logf("console enabled and served in %s at %s", time.Since(start), st.Info.URL)
	if st.Info.Type != "socat" || !strings.HasPrefix(st.Info.URL, "tcp://127.0.0.1:") {
		t.Fatalf("console info %+v", st.Info)
	}
	// Enabling again changes nothing (Ironic: "No console action was triggered").
	if again := setConsole(t, c, "sol", true); again.Info.URL != st.Info.URL {
		t.Fatalf("enabling twice moved the console from %s to %s", st.Info.URL, again.Info.URL)
	}

	start = time.Now()
	conn, r := attach(t, st.Info.URL, "hello over SOL\r")
	t.Logf("typed line echoed over SOL %s after connecting", time.Since(start))

	// A second client is refused with a message, and the first keeps working.
	second, sr := dialConsole(t, st.Info.URL, "is in use by another client")
	closedWithin(t, second, sr)
	conn.Write([]byte("still here\r"))
	expect(t, conn, r, "still here\r")

	// The websocket form while the TCP client holds the console: the same refusal.
	wsURL := "ws" + strings.TrimPrefix(srv.URL(), "http") + "/v1/nodes/sol/console/ws"
	ws, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, msg, err := ws.Read(rctx)
	cancel()
	if err != nil || !strings.Contains(string(msg), "is in use by another client") {
		t.Fatalf("websocket while the console is taken: %q, %v", msg, err)
	}
	ws.CloseNow()
	conn.Close()

	// Once the TCP client left, the websocket gets the console.
	var got strings.Builder
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(got.String(), "typed in a browser") {
		if time.Now().After(deadline) {
			t.Fatalf("websocket console read %q", got.String())
		}
		got.Reset()
		ws, _, err = websocket.Dial(ctx, wsURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		ws.Write(ctx, websocket.MessageText, []byte("typed in a browser\r"))
		for !strings.Contains(got.String(), "typed in a browser") {
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			_, b, err := ws.Read(rctx)
			cancel()
			if err != nil {
				break
			}
			got.Write(b)
		}
		if !strings.Contains(got.String(), "typed in a browser") {
			ws.CloseNow()
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Disabling closes the client's connection and the port.
	setConsole(t, c, "sol", false)
	rctx, cancel = context.WithTimeout(ctx, 15*time.Second)
	for {
		if _, _, err := ws.Read(rctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure && rctx.Err() != nil {
				t.Fatalf("websocket not closed after the console was disabled: %v", err)
			}
			break
		}
	}
	cancel()
	if c, err := net.Dial("tcp", strings.TrimPrefix(st.Info.URL, "tcp://")); err == nil {
		c.Close()
		t.Fatalf("the console port %s still accepts connections after disable", st.Info.URL)
	}
	if err := c.Do(ctx, http.MethodGet, "/v1/nodes/sol/console/ws", nil, nil); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Errorf("websocket of a disabled console: %v", err)
	}

	b, err := os.ReadFile(filepath.Join(logDir, uuid+".log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"serial line attached", "hello over SOL", "typed in a browser"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("console log lacks %q: %q", want, b)
		}
	}
	var full map[string]any
	c.Do(ctx, http.MethodGet, "/v1/nodes/sol", nil, &full)
	for what, text := range map[string]string{"the console log": string(b), "the server log": serverLog.String(),
		"the node": fmt.Sprint(full), "the console info": fmt.Sprint(st)} {
		if strings.Contains(text, password) {
			t.Errorf("the BMC password appears in %s", what)
		}
	}
}

// TestConsoleRestoredAfterRestartAndStoppedOnDelete enables a fake-hardware node's console,
// restarts the server on the same database (the console comes back on its own), then deletes
// the node (the console closes).
func TestConsoleRestoredAfterRestartAndStoppedOnDelete(t *testing.T) {
	dsn := sqlstoretest.Targets()[0].DSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := server.Default()
	cfg.Listen, cfg.DataDir, cfg.Database, cfg.Hostname = "127.0.0.1:0", t.TempDir(), dsn, "test-conductor"
	consoleConfig("")(&cfg)
	srv, err := server.Start(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	c := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	var node map[string]any
	if err := c.Do(ctx, http.MethodPost, "/v1/nodes", map[string]any{"name": "fake-1", "driver": "fake-hardware"}, &node); err != nil {
		t.Fatal(err)
	}
	uuid := node["uuid"].(string)
	st := setConsole(t, c, uuid, true)
	conn, r := attach(t, st.Info.URL, "echo\r")
	cancel()
	<-done
	srv.Close()
	closedWithin(t, conn, r)

	// The restarted server serves the console again, without being asked.
	cfg.Listen = "127.0.0.1:0"
	srv = startServer(t, dsn, func(c2 *server.Config) { *c2 = cfg })
	c = &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	var url string
	deadline := time.Now().Add(20 * time.Second)
	for {
		st = getConsole(t, c, uuid)
		if st.Enabled && st.Info != nil {
			if cn, err := net.Dial("tcp", strings.TrimPrefix(st.Info.URL, "tcp://")); err == nil {
				cn.Close()
				url = st.Info.URL
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("console after restart: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	conn, r = attach(t, url, "after restart\r")

	// Deleting the node closes its console.
	if err := c.Do(context.Background(), http.MethodDelete, "/v1/nodes/"+uuid, nil, nil); err != nil {
		t.Fatal(err)
	}
	closedWithin(t, conn, r)
	if cn, err := net.Dial("tcp", strings.TrimPrefix(url, "tcp://")); err == nil {
		cn.Close()
		t.Fatal("the console of a deleted node still accepts connections")
	}
}

// TestConsoleAcrossPowerUndeployAndDeploy follows Ironic: a power off keeps the console; an
// undeploy stops it but keeps console_enabled (the next user must not see it), and the end of
// the next deployment serves it again.
func TestConsoleAcrossPowerUndeployAndDeploy(t *testing.T) {
	srv := startServer(t, sqlstoretest.Targets()[0].DSN(t), consoleConfig(""))
	gc := gopherClient(t, srv, "1.87")
	c := &api.Client{BaseURL: srv.URL(), Version: "1.87"}
	ctx := context.Background()
	n, err := nodes.Create(ctx, gc, nodes.CreateOpts{Name: "life-console", Driver: "fake-hardware"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	provision(t, gc, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
	waitFor(t, gc, n.UUID, 10*time.Second, inState("manageable"))
	provision(t, gc, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetProvide})
	waitFor(t, gc, n.UUID, 10*time.Second, inState("available"))
	provision(t, gc, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetActive})
	waitFor(t, gc, n.UUID, 30*time.Second, inState("active"))

	st := setConsole(t, c, n.UUID, true)
	conn, r := attach(t, st.Info.URL, "before power off\r")
	if err := retryLocked(func() error {
		return nodes.ChangePowerState(ctx, gc, n.UUID, nodes.PowerStateOpts{Target: nodes.PowerOff}).ExtractErr()
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, gc, n.UUID, 10*time.Second, func(n *nodes.Node) bool { return n.PowerState == "power off" && n.TargetPowerState == "" })
	conn.Write([]byte("after power off\r"))
	expect(t, conn, r, "after power off\r")
	if got := getConsole(t, c, n.UUID); !got.Enabled || got.Info == nil || got.Info.URL != st.Info.URL {
		t.Fatalf("console after power off: %+v", got)
	}

	provision(t, gc, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetDeleted})
	closedWithin(t, conn, r)
	waitFor(t, gc, n.UUID, 30*time.Second, inState("available"))
	if got := getConsole(t, c, n.UUID); !got.Enabled || got.Info != nil {
		t.Fatalf("console after undeploy: %+v, want enabled and not served", got)
	}
	provision(t, gc, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetActive})
	waitFor(t, gc, n.UUID, 30*time.Second, inState("active"))
	got := getConsole(t, c, n.UUID)
	if !got.Enabled || got.Info == nil {
		t.Fatalf("console after the next deploy: %+v", got)
	}
	conn, _ = attach(t, got.Info.URL, "after deploy\r")
	conn.Close()
}
