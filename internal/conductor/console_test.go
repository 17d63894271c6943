package conductor_test

import (
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/conductor"
)

// accepts reports whether something accepts TCP connections at a console URL.
func accepts(url string) bool {
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "tcp://"), 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// consoleClient connects to the console at url; the console closes the connection when it
// stops.
func consoleClient(t *testing.T, url string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "tcp://"), 2*time.Second)
	if err != nil {
		t.Fatalf("connect to the console at %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByConsole reports whether the console closed c within 10 s, that is, stopped. Dialling
// the console's port again would not tell: the tests of this package run in parallel on one
// port range, and another test's console may listen on the port as soon as it is free.
func closedByConsole(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

func consolePorts(cfg *conductor.Config) {
	cfg.Console.Ports.First, cfg.Console.Ports.Last = 41000, 45000
}

func TestConsoleEnableDisable(t *testing.T) {
	e := newEnv(t, consolePorts)
	n := e.node(t, nil)
	info, err := consoleInfo(t, e.c, n.UUID)
	ok(t, err)
	if info.Enabled || info.URL != "" {
		t.Fatalf("a new node's console: %+v", info)
	}
	ok(t, setConsole(t, e.c, n.UUID, true))
	got := e.settled(t, n.UUID, ironwork.Available)
	info, err = consoleInfo(t, e.c, n.UUID)
	ok(t, err)
	if !got.ConsoleEnabled || !info.Enabled || info.Type != "socat" || !accepts(info.URL) {
		t.Fatalf("after enable: node %v, info %+v", got.ConsoleEnabled, info)
	}
	// Enabling again is a no-op: no lock taken, same URL.
	ok(t, setConsole(t, e.c, n.UUID, true))
	if again, _ := consoleInfo(t, e.c, n.UUID); again.URL != info.URL {
		t.Fatalf("enable twice moved the console: %s -> %s", info.URL, again.URL)
	}
	cl := consoleClient(t, info.URL)
	ok(t, setConsole(t, e.c, n.UUID, false))
	got = e.settled(t, n.UUID, ironwork.Available)
	if got.ConsoleEnabled || !closedByConsole(cl) {
		t.Fatalf("after disable: enabled %v, or the console still serves its client", got.ConsoleEnabled)
	}
	if off, _ := consoleInfo(t, e.c, n.UUID); off.Enabled || off.URL != "" {
		t.Fatalf("info after disable: %+v", off)
	}
}

func TestConsoleRefusals(t *testing.T) {
	e := newEnv(t, consolePorts)
	none := e.node(t, func(n *ironwork.Node) { n.Interfaces[ironwork.ConsoleInterface] = "no-console" })
	err := setConsole(t, e.c, none.UUID, true)
	wantCode(t, err, ironwork.EINVALID)
	if !strings.Contains(err.Error(), "Driver fake-hardware does not support console") {
		t.Fatalf("no-console: %v", err)
	}
	_, err = consoleInfo(t, e.c, none.UUID)
	wantCode(t, err, ironwork.EINVALID)

	n := e.node(t, nil)
	e.rec.set(func(r *recorder) { r.fail["console.Validate"] = errors.New("ipmi_address is missing") })
	err = setConsole(t, e.c, n.UUID, true)
	wantCode(t, err, ironwork.EINVALID)
	if !strings.Contains(err.Error(), "ipmi_address is missing") {
		t.Fatalf("validation failure: %v", err)
	}
	e.rec.set(func(r *recorder) { delete(r.fail, "console.Validate") })

	// A console that cannot start: the node says why and stays disabled.
	bad := e.node(t, func(n *ironwork.Node) { n.DriverInfo = ironwork.JSONObject{"ipmi_terminal_port": "not-a-port"} })
	ok(t, setConsole(t, e.c, bad.UUID, true))
	got := e.settled(t, bad.UUID, ironwork.Available)
	if got.ConsoleEnabled || !strings.Contains(got.LastError, "Error enabling the console on node "+bad.UUID) ||
		!strings.Contains(got.LastError, "ipmi_terminal_port") {
		t.Fatalf("failed enable: enabled %v, last_error %q", got.ConsoleEnabled, got.LastError)
	}
	if h := e.history(t, got); !slices.ContainsFunc(h, func(s string) bool { return strings.Contains(s, "Error enabling the console") }) {
		t.Fatalf("history: %q", h)
	}

	// A locked node: 409 as for any other operation.
	e.update(t, n.UUID, func(n *ironwork.Node) { n.Reservation = "elsewhere" })
	wantCode(t, setConsole(t, e.c, n.UUID, true), ironwork.ELOCKED)
}

// TestConsoleRestoredAndForgotten: a conductor that starts serves the enabled consoles a
// previous run left recorded, and a sync stops the consoles of deleted and disabled nodes.
func TestConsoleRestoredAndForgotten(t *testing.T) {
	store := newStore(t)
	var served, hidden, deleted, disabled *ironwork.Node
	e := newEnvOn(t, store, "c1", func(e *env) {
		served = e.node(t, nil)
		e.update(t, served.UUID, func(n *ironwork.Node) {
			n.ConsoleEnabled = true
			n.DriverInternalInfo["ironwork_console_url"] = "tcp://127.0.0.1:1" // the previous run's
		})
		// Enabled but hidden (between undeploy and deploy): not served.
		hidden = e.node(t, func(n *ironwork.Node) { n.ConsoleEnabled = true })
	}, consolePorts)
	if h, err := consoleInfo(t, e.c, hidden.UUID); err != nil || !h.Enabled || h.URL != "" {
		t.Fatalf("a hidden console after start: %+v %v", h, err)
	}
	info, err := consoleInfo(t, e.c, served.UUID)
	ok(t, err)
	if !info.Enabled || info.URL == "tcp://127.0.0.1:1" || !accepts(info.URL) {
		t.Fatalf("after start: %+v", info)
	}
	if h := e.history(t, served); !slices.ContainsFunc(h, func(s string) bool { return strings.HasPrefix(s, "Console restored on conductor c1") }) {
		t.Fatalf("history: %q", h)
	}

	deleted, disabled = e.node(t, nil), e.node(t, nil)
	var urls []string
	var clients []net.Conn
	for _, n := range []*ironwork.Node{deleted, disabled} {
		ok(t, setConsole(t, e.c, n.UUID, true))
		e.c.Wait()
		i, err := consoleInfo(t, e.c, n.UUID)
		ok(t, err)
		urls, clients = append(urls, i.URL), append(clients, consoleClient(t, i.URL))
	}
	ok(t, store.DeleteNode(t.Context(), deleted.UUID, func(*ironwork.Node) error { return nil }))
	e.update(t, disabled.UUID, func(n *ironwork.Node) { n.ConsoleEnabled = false })
	ok(t, syncConsoles(t, e.c))
	for i, c := range clients {
		if !closedByConsole(c) {
			t.Errorf("console %d (%s) still served after sync", i, urls[i])
		}
	}
	if !accepts(info.URL) {
		t.Error("the enabled console stopped")
	}
	// StopConsole (before a delete) stops and records at once.
	cl := consoleClient(t, info.URL)
	ok(t, stopConsole(t, e.c, served.UUID))
	if !closedByConsole(cl) || e.get(t, served.UUID).ConsoleEnabled {
		t.Fatal("StopConsole left the console")
	}
}
