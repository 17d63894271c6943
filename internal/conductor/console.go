package conductor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/internal/console"
	"github.com/ironwork/ironwork/internal/sqlstore"
)

// ConsoleConfig configures the serial consoles a conductor serves (Ironic's [console]).
type ConsoleConfig struct {
	// Address is where consoles listen and what their URLs name (Ironic's socat_address);
	// default 127.0.0.1.
	Address string
	// Ports is the range console ports are taken from (Ironic's port_range); default
	// 10000:20000. A node's driver_info ipmi_terminal_port, when set, is used instead.
	Ports console.PortRange
	// LogDir, when set, receives one file per node, <node uuid>.log, with everything its
	// console printed while served by this conductor.
	LogDir string
	// RetryMax bounds the wait before re-attaching a serial line the BMC dropped (default 30 s).
	RetryMax time.Duration
}

// ConsoleInfo is what GET /v1/nodes/{node}/states/console shows.
type ConsoleInfo struct {
	Enabled bool `json:"console_enabled"`
	// Type and URL describe where the console is served; empty while it is enabled but not
	// served (between an undeploy and the next deploy, as Ironic hides it from the next user).
	Type string `json:"type,omitempty"`
	URL  string `json:"url,omitempty"`
}

// SetConsoleRequest enables or disables a node's serial console.
type SetConsoleRequest struct {
	NodeRef
	Enabled bool `json:"enabled"`
}

// consoleURLKey is the driver_internal_info key (owned here) holding the URL of the served
// console; absent while the console is not served.
const consoleURLKey = "ironwork_console_url"

// consoleURL returns the URL of a node's served console, or "".
func consoleURL(n *ironwork.Node) string {
	s, _ := n.DriverInternalInfo[consoleURLKey].(string)
	return s
}

func setConsoleURL(n *ironwork.Node, url string) {
	if url == "" {
		delete(n.DriverInternalInfo, consoleURLKey)
		return
	}
	if n.DriverInternalInfo == nil {
		n.DriverInternalInfo = ironwork.JSONObject{}
	}
	n.DriverInternalInfo[consoleURLKey] = url
}

// consoles are the consoles this conductor serves, by node UUID.
type consoles struct {
	mu     sync.Mutex
	served map[string]*servedConsole
	wg     sync.WaitGroup
}

type servedConsole struct {
	port   int
	url    string
	cancel context.CancelFunc
	done   chan struct{}
}

// consoleOf returns the serial console of a task's node, or the error Ironic gives when its
// console interface has none (400).
func consoleOf(ctx context.Context, t *Task) (SerialConsole, error) {
	impl := t.Driver.Impl(ironwork.ConsoleInterface)
	unsupported := ironwork.Errorf(ironwork.EINVALID, "Driver %s does not support console (disabled or not implemented).", t.Node.Driver)
	if impl == nil {
		return nil, unsupported
	}
	sc, ok := impl.(SerialConsole)
	if !ok {
		return nil, unsupported
	}
	if v, ok := impl.(Validator); ok {
		if err := v.Validate(ctx, t); errors.Is(err, ErrUnsupported) {
			return nil, unsupported
		} else if err != nil {
			return nil, ironwork.Errorf(ironwork.EINVALID, "%s", errText(err))
		}
	}
	return sc, nil
}

// SetConsoleMode enables or disables a node's serial console, as Ironic's set_console_mode:
// the console interface is validated in the request (400 when the node has none); asking for
// the mode the node is already in does nothing; otherwise a worker starts or stops the console
// under the node's lock and records console_enabled, or last_error and a history event.
func (c *Conductor) SetConsoleMode(ctx context.Context, req SetConsoleRequest) error {
	t, err := c.shared(ctx, req.Node)
	if err != nil {
		return err
	}
	if _, err := consoleOf(ctx, t); err != nil {
		return err
	}
	if t.Node.ConsoleEnabled == req.Enabled {
		t.Log.Info("no console action: the console is already in the requested mode", "enabled", req.Enabled)
		return nil
	}
	if t, err = c.lock(ctx, req.Node); err != nil {
		return err
	}
	done, err := c.acquireWorker()
	if err != nil {
		c.release(t.Node)
		return err
	}
	if err := t.Save(ctx, func(n *ironwork.Node) { n.LastError = "" }); err != nil {
		done()
		c.release(t.Node)
		return err
	}
	c.background(t, done, func(ctx context.Context, t *Task) {
		var err error
		if req.Enabled {
			err = c.startConsole(ctx, t)
		} else {
			c.stopConsole(t.Node.UUID)
		}
		if err != nil {
			msg := fmt.Sprintf("Error enabling the console on node %s. Reason: %s", t.Node.UUID, errText(err))
			t.Log.Error("console not enabled", "error", err)
			_ = t.Save(ctx, func(n *ironwork.Node) { n.LastError = msg })
			c.consoleHistory(ctx, t, msg, true)
			return
		}
		if err := t.Save(ctx, func(n *ironwork.Node) {
			n.ConsoleEnabled, n.LastError = req.Enabled, ""
			if !req.Enabled {
				setConsoleURL(n, "")
			}
		}); err != nil {
			t.Log.Error("record console mode", "error", err)
			return
		}
		t.Log.Info("console mode set", "enabled", req.Enabled, "url", consoleURL(t.Node))
	})
	return nil
}

// StopConsole stops a node's console at once and records it disabled, for a node about to be
// deleted (as Ironic's destroy_node does).
func (c *Conductor) StopConsole(ctx context.Context, req NodeRef) error {
	return c.withLock(ctx, req.Node, func(t *Task) error {
		c.stopConsole(t.Node.UUID)
		return t.Save(ctx, func(n *ironwork.Node) {
			n.ConsoleEnabled = false
			setConsoleURL(n, "")
		})
	})
}

// ConsoleInfo answers whether a node's console is enabled and where it is served.
func (c *Conductor) ConsoleInfo(ctx context.Context, req NodeRef) (ConsoleInfo, error) {
	t, err := c.shared(ctx, req.Node)
	if err != nil {
		return ConsoleInfo{}, err
	}
	if _, err := consoleOf(ctx, t); err != nil {
		return ConsoleInfo{}, err
	}
	info := ConsoleInfo{Enabled: t.Node.ConsoleEnabled}
	if url := consoleURL(t.Node); info.Enabled && url != "" {
		info.Type, info.URL = "socat", url
	}
	return info, nil
}

func (c *Conductor) consoleHistory(ctx context.Context, t *Task, event string, failed bool) {
	severity := "INFO"
	if failed {
		severity = "ERROR"
	}
	if err := c.store.AddNodeHistory(ctx, &ironwork.NodeHistoryEvent{UUID: uuid.NewString(), NodeID: t.Node.ID,
		Conductor: c.cfg.Hostname, EventType: "console", Severity: severity, Event: event}); err != nil {
		t.Log.Warn("record node history", "error", err)
	}
}

// terminalPort is the port a node's driver_info asks for (Ironic's ipmi_terminal_port), or 0.
func terminalPort(n *ironwork.Node) (int, error) {
	v, ok := n.DriverInfo["ipmi_terminal_port"]
	if !ok || v == nil || v == "" {
		return 0, nil
	}
	var p int
	switch x := v.(type) {
	case float64:
		p = int(x)
		if float64(p) != x {
			p = -1
		}
	case string:
		var err error
		if p, err = strconv.Atoi(x); err != nil {
			p = -1
		}
	default:
		p = -1
	}
	if p < 1 || p > 65535 {
		return 0, ironwork.Errorf(ironwork.EINVALID, "ipmi_terminal_port %v is not a valid network port.", v)
	}
	return p, nil
}

// startConsole serves a task's node's console on this conductor (replacing a console it
// already served) and records its URL.
func (c *Conductor) startConsole(ctx context.Context, t *Task) error {
	if _, err := consoleOf(ctx, t); err != nil {
		return err
	}
	c.stopConsole(t.Node.UUID)
	cfg := c.cfg.Console
	fixed, err := terminalPort(t.Node)
	if err != nil {
		return err
	}
	ports := cfg.Ports
	if fixed != 0 {
		ports = console.PortRange{First: fixed, Last: fixed}
	}
	c.consoles.mu.Lock()
	taken := map[int]bool{}
	for _, s := range c.consoles.served {
		taken[s.port] = true
	}
	c.consoles.mu.Unlock()
	ln, err := console.Listen(cfg.Address, ports, func(p int) bool { return taken[p] })
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	url := console.URL(cfg.Address, port)
	logFile := ""
	if cfg.LogDir != "" {
		logFile = filepath.Join(cfg.LogDir, t.Node.UUID+".log")
		// Fail the enable, not the served console, when the log cannot be written.
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			ln.Close()
			return fmt.Errorf("open the console log: %w", err)
		}
		f.Close()
	}
	node, log := t.Node.UUID, t.Log
	attach := func(ctx context.Context, in io.Reader, out io.Writer) error {
		// Read the node anew at each attachment: its credentials may have changed.
		at, err := c.shared(ctx, node)
		if err != nil {
			return err
		}
		sc, err := consoleOf(ctx, at)
		if err != nil {
			return err
		}
		return sc.AttachConsole(ctx, at, in, out)
	}
	sctx, cancel := c.lifetime()
	s := &servedConsole{port: port, url: url, cancel: cancel, done: make(chan struct{})}
	c.consoles.mu.Lock()
	if c.consoles.served == nil {
		c.consoles.served = map[string]*servedConsole{}
	}
	c.consoles.served[node] = s
	c.consoles.wg.Add(1)
	c.consoles.mu.Unlock()
	go func() {
		defer c.consoles.wg.Done()
		defer close(s.done)
		defer cancel()
		err := console.Serve(sctx, console.Config{Name: node, Listener: ln, Attach: attach, LogFile: logFile,
			Log: log.With("console", url), RetryMax: cfg.RetryMax})
		if err != nil {
			// Forget it, so that the next sync serves the console again.
			log.Error("console stopped; the next console sync starts it again", "error", err)
			c.consoles.mu.Lock()
			if c.consoles.served[node] == s {
				delete(c.consoles.served, node)
			}
			c.consoles.mu.Unlock()
		}
	}()
	if err := t.Save(ctx, func(n *ironwork.Node) { setConsoleURL(n, url) }); err != nil {
		c.stopConsole(node)
		return err
	}
	t.Log.Info("console served", "url", url, "log_file", logFile)
	return nil
}

// stopConsole stops serving a node's console on this conductor, if it does, and waits (10 s
// at most) until its port and client are closed.
func (c *Conductor) stopConsole(node string) {
	c.consoles.mu.Lock()
	s := c.consoles.served[node]
	delete(c.consoles.served, node)
	c.consoles.mu.Unlock()
	if s == nil {
		return
	}
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		c.log.Warn("console still closing after 10 s", "node", node)
	}
	c.log.Info("console stopped", "node", node, "url", s.url)
}

// servingConsole reports whether this conductor serves the node's console.
func (c *Conductor) servingConsole(node string) bool {
	c.consoles.mu.Lock()
	defer c.consoles.mu.Unlock()
	return c.consoles.served[node] != nil
}

// hideConsole stops a node's console when its instance is torn down, keeping console_enabled:
// Ironic stops it then so that the next user of the node does not see this one's console, and
// starts it again when the next deployment ends (restoreConsoleAfterDeploy).
func (c *Conductor) hideConsole(ctx context.Context, t *Task) {
	if !t.Node.ConsoleEnabled && consoleURL(t.Node) == "" {
		return
	}
	c.stopConsole(t.Node.UUID)
	if err := t.Save(ctx, func(n *ironwork.Node) { setConsoleURL(n, "") }); err != nil {
		t.Log.Warn("forget the console's URL", "error", err)
	}
}

// restoreConsoleAfterDeploy serves the console of a node whose deployment ends, when it is
// enabled; a failure disables it and records last_error, as Ironic's deploy does.
func (c *Conductor) restoreConsoleAfterDeploy(ctx context.Context, t *Task) {
	if !t.Node.ConsoleEnabled {
		return
	}
	if err := c.startConsole(ctx, t); err != nil {
		msg := fmt.Sprintf("Failed to start console while deploying the node %s: %s.", t.Node.UUID, errText(err))
		t.Log.Error("console not restored after deploy", "error", err)
		_ = t.Save(ctx, func(n *ironwork.Node) { n.ConsoleEnabled, n.LastError = false, msg })
		c.consoleHistory(ctx, t, msg, true)
	}
}

// SyncConsoles makes the consoles this conductor serves match the nodes: it serves the
// enabled console of every node the ring gives it that another conductor served before (a
// takeover, or this conductor's restart), and stops serving the consoles of nodes that are
// gone, disabled, hidden or no longer its own. Locked nodes are left to their lock holder.
func (c *Conductor) SyncConsoles(ctx context.Context) error {
	mine, err := c.myNodes(ctx, sqlstore.NodeKeyFilter{ConsoleEnabled: true}, nil)
	if err != nil {
		return err
	}
	want := map[string]*ironwork.Node{}
	for _, n := range mine {
		if n.ConsoleEnabled && consoleURL(n) != "" {
			want[n.UUID] = n
		}
	}
	c.consoles.mu.Lock()
	var stale []string
	for node := range c.consoles.served {
		if want[node] == nil {
			stale = append(stale, node)
		}
	}
	c.consoles.mu.Unlock()
	for _, node := range stale {
		if n, err := c.store.GetNode(ctx, node); err == nil && n.Reservation != "" {
			continue // its lock holder decides
		}
		c.stopConsole(node)
	}
	for node, n := range want {
		if n.Reservation != "" || (c.servingConsole(node) && consoleURL(n) == c.servedURL(node)) {
			continue
		}
		t, err := c.lock(ctx, node)
		if err != nil {
			continue
		}
		if t.Node.ConsoleEnabled && consoleURL(t.Node) != "" {
			if err := c.startConsole(ctx, t); err != nil {
				msg := fmt.Sprintf("Failed to start console while taking over the node %s: %s.", node, errText(err))
				t.Log.Error("console not restored", "error", err)
				_ = t.Save(ctx, func(n *ironwork.Node) { n.ConsoleEnabled, n.LastError = false, msg; setConsoleURL(n, "") })
				c.consoleHistory(ctx, t, msg, true)
			} else {
				c.consoleHistory(ctx, t, "Console restored on conductor "+c.cfg.Hostname+" at "+consoleURL(t.Node), false)
			}
		}
		c.release(t.Node)
	}
	return nil
}

// servedURL is the URL of a console this conductor serves, or "".
func (c *Conductor) servedURL(node string) string {
	c.consoles.mu.Lock()
	defer c.consoles.mu.Unlock()
	if s := c.consoles.served[node]; s != nil {
		return s.url
	}
	return ""
}

// stopConsoles stops every console this conductor serves (at Stop).
func (c *Conductor) stopConsoles() {
	c.consoles.mu.Lock()
	var nodes []string
	for node := range c.consoles.served {
		nodes = append(nodes, node)
	}
	c.consoles.mu.Unlock()
	for _, node := range nodes {
		c.stopConsole(node)
	}
	c.consoles.wg.Wait()
}
