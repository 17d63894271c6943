package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/agent"
	"github.com/ironwork/ironwork/internal/agent/initsys"
	"github.com/ironwork/ironwork/internal/agent/server"
)

// Log attribute keys.
const (
	logKeyNode     = "node"
	logKeyURL      = "url"
	logKeyError    = "error"
	logKeyMACs     = "macs"
	logKeyStatus   = "status"
	logKeyInterval = "interval"
)

// apiVersion is the microversion the agent speaks (lookup with node_uuid, agent tokens).
const apiVersion = "1.68"

// hiddenToken is what lookup answers when the node's token was handed out already.
const hiddenToken = "******"

// errPoweredOff ends runAgent when standby.power_off ran with --no-poweroff.
var errPoweredOff = errors.New("powered off")

// errRescued ends runAgent after rescue.finalize_rescue: the agent's API and heartbeats stop
// and the node belongs to the rescue environment (runInit starts its logins).
var errRescued = errors.New("rescued")

// agentEnv is what runAgent needs from its caller.
type agentEnv struct {
	log      *slog.Logger
	console  *initsys.Console
	logs     *server.LogBuffer
	powerOff func() error
	retry    inspectionRetry // how the inspection post is retried (zero: IPA's)
}

// runAgent looks the node up, serves the command API and heartbeats until ctx is cancelled
// or standby.power_off ran. It returns nil on those ends.
func runAgent(ctx context.Context, cfg Config, env agentEnv) error {
	if cfg.InspectionURL != "" {
		retry := env.retry
		if retry.Attempts == 0 {
			retry = defaultInspectionRetry
		}
		outcome, err := inspect(ctx, &cfg, env, retry)
		switch {
		case outcome == afterInspectionPowerOff:
			return powerOffAfterInspection(cfg, env)
		case cfg.APIURL == "":
			return fmt.Errorf("inspection failed and there is no API to look the node up in: %w", err)
		case err != nil:
			env.log.Error("inspection failed; going on with the lookup", logKeyError, err)
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	client := newAPIClient(cfg)
	macs, err := localMACs(cfg.BootMAC)
	if err != nil {
		return err
	}
	env.console.Printf("lookup: %s with MACs %s", cfg.APIURL, strings.Join(macs, ","))
	lr, err := client.lookupRetry(ctx, env.log, macs, cfg.NodeUUID, cfg.LookupTimeout)
	if err != nil {
		return err
	}
	nodeUUID, _ := lr.Node["uuid"].(string)
	if nodeUUID == "" {
		return errors.New("lookup answer has no node uuid")
	}
	token := lr.Config.AgentToken
	if token == hiddenToken || token == "" {
		if cfg.AgentToken == "" {
			return fmt.Errorf("lookup of node %s: the API withheld the agent token (%q: it was handed out to an earlier agent) and none was given on the kernel command line (ipa-agent-token); power-cycle the node so the conductor issues a new one", nodeUUID, token)
		}
		token = cfg.AgentToken
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen for commands: %w", err)
	}
	callback := cfg.AdvertiseURL
	if callback == "" {
		if callback, err = advertiseURL(cfg, ln.Addr()); err != nil {
			ln.Close()
			return err
		}
	}
	var verifyCA string
	if cfg.AutoTLS {
		if callback, verifyCA, ln, err = startAutoTLS(ctx, client, callback, ln, env); err != nil {
			ln.Close()
			return err
		}
	}
	env.console.Printf("node %s: commands on %s, heartbeating to %s", nodeUUID, callback, cfg.APIURL)
	env.log.Info("looked up", logKeyNode, nodeUUID, logKeyURL, callback)

	kick := make(chan struct{}, 1)
	machine := &server.Machine{
		RootDevice: cfg.RootDevice,
		SysRoot:    cfg.SysRoot,
		Node:       lr.Node,
		BootMAC:    cfg.BootMAC,
		RescueRoot: cfg.RescueRoot,
		EFIVars:    cfg.EFIVars,
		HTTPClient: client.imageClient,
		Logger:     env.log,
		Logs:       env.logs,
		PowerOff: func() {
			go func() {
				time.Sleep(time.Second) // let the conductor read the result first
				if cfg.NoPowerOff {
					env.console.Printf("power off requested; --no-poweroff: exiting")
					cancel(errPoweredOff)
					return
				}
				if err := env.powerOff(); err != nil {
					env.log.Error("power off", logKeyError, err)
				}
			}()
		},
	}
	if cfg.SoftwareRAID {
		machine.SoftwareRAID = agent.KernelMD{SysRoot: cfg.SysRoot}
	}
	machine.Rescued = func() {
		go func() {
			time.Sleep(time.Second) // let the conductor read the result first
			env.console.Printf("rescue: the agent stops its API and heartbeats")
			cancel(errRescued)
		}()
	}
	srv := server.New(server.Config{
		Token:    token,
		Version:  version,
		Commands: machine.Commands(),
		Logger:   env.log,
		OnDone: func(api.CommandResult) {
			select {
			case kick <- struct{}{}:
			default:
			}
		},
	})
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ctx, ln) }()

	hb := heartbeater{client: client, node: nodeUUID, token: token, callback: callback, verifyCA: verifyCA, srv: srv, log: env.log}
	hb.loop(ctx, heartbeatInterval(lr.Config.HeartbeatTimeout), kick)
	cancel(nil)
	if err := <-serveErr; err != nil {
		return err
	}
	if cause := context.Cause(ctx); errors.Is(cause, errRescued) {
		return errRescued
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, errPoweredOff) && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// powerOffAfterInspection ends an inspection the conductor needs nothing else from.
func powerOffAfterInspection(cfg Config, env agentEnv) error {
	if cfg.NoPowerOff {
		env.console.Printf("inspection done; --no-poweroff: exiting")
		return nil
	}
	env.console.Printf("inspection done: powering off")
	unix.Sync()
	if err := env.powerOff(); err != nil {
		return fmt.Errorf("power off after inspection: %w", err)
	}
	return nil
}

// heartbeatInterval is min(timeout/3, 10s), at least a second.
func heartbeatInterval(timeoutSeconds int) time.Duration {
	d := 10 * time.Second
	if t := time.Duration(timeoutSeconds) * time.Second / 3; timeoutSeconds > 0 && t < d {
		d = t
	}
	return max(d, time.Second)
}

// apiClient talks to the Ironic API.
type apiClient struct {
	base        string
	http        *http.Client
	imageClient *http.Client
}

func newAPIClient(cfg Config) *apiClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.Insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // ipa-insecure asks for it
	}
	return &apiClient{
		base:        strings.TrimRight(cfg.APIURL, "/"),
		http:        &http.Client{Transport: tr, Timeout: 30 * time.Second},
		imageClient: &http.Client{Transport: tr},
	}
}

// do calls the API with the agent's microversion. The status is that of an error answer
// (0 for success or no answer).
func (c *apiClient) do(ctx context.Context, method, path string, body any, out any) (int, error) {
	err := api.Call(ctx, c.http, api.Request{
		Method: method, URL: c.base + path, Header: http.Header{api.VersionHeader: {apiVersion}}, Body: body, Limit: 4 << 20,
	}, out, nil)
	var answer *api.Error
	if errors.As(err, &answer) {
		return answer.Status, err
	}
	return 0, err
}

// lookup asks the API which node has these MACs.
func (c *apiClient) lookup(ctx context.Context, macs []string, node string) (api.LookupResponse, error) {
	q := url.Values{"addresses": {strings.Join(macs, ",")}}
	if node != "" {
		q.Set("node_uuid", node)
	}
	var lr api.LookupResponse
	_, err := c.do(ctx, http.MethodGet, "/v1/lookup?"+q.Encode(), nil, &lr)
	return lr, err
}

// lookupRetry retries the lookup with exponential backoff (1 s doubling to 30 s) until it
// succeeds or timeout passes.
func (c *apiClient) lookupRetry(ctx context.Context, log *slog.Logger, macs []string, node string, timeout time.Duration) (api.LookupResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := time.Second
	for attempt := 1; ; attempt++ {
		lr, err := c.lookup(ctx, macs, node)
		if err == nil {
			return lr, nil
		}
		log.Warn("lookup failed, retrying", logKeyError, err, logKeyMACs, strings.Join(macs, ","), "attempt", attempt)
		select {
		case <-ctx.Done():
			return api.LookupResponse{}, fmt.Errorf("lookup of MACs %s at %s gave no node within %s: %w", strings.Join(macs, ","), c.base, timeout, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// heartbeater posts the agent's state.
type heartbeater struct {
	client   *apiClient
	node     string
	token    string
	callback string
	verifyCA string // the auto-TLS certificate (PEM), sent in every heartbeat
	srv      *server.Server
	log      *slog.Logger
	plain    bool // send IPA's heartbeat fields only (the API refused ours)
}

// loop heartbeats at once, then every interval and whenever kick fires, until ctx ends.
func (h *heartbeater) loop(ctx context.Context, interval time.Duration, kick <-chan struct{}) {
	h.log.Info("heartbeating", logKeyInterval, interval)
	first := true
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		h.beat(ctx, first)
		first = false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
			t.Reset(interval)
		}
	}
}

func (h *heartbeater) beat(ctx context.Context, first bool) {
	st := h.srv.Status()
	req := api.HeartbeatRequest{
		CallbackURL:   h.callback,
		AgentToken:    h.token,
		AgentVersion:  "ironwork-agent " + version,
		AgentStatus:   "idle",
		AgentVerifyCA: h.verifyCA,
	}
	switch {
	case st.Busy:
		req.AgentStatus = "busy"
		req.AgentStatusMessage = "running " + st.Command
		req.Progress = st.Progress
	case first:
		req.AgentStatus = "start"
	case st.Failed:
		req.AgentStatus = "error"
		req.AgentStatusMessage = st.Command + " failed"
	}
	hctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	path := "/v1/heartbeat/" + url.PathEscape(h.node)
	if h.plain {
		req = api.HeartbeatRequest{CallbackURL: req.CallbackURL, AgentToken: req.AgentToken, AgentVersion: req.AgentVersion, AgentVerifyCA: req.AgentVerifyCA}
	}
	code, err := h.client.do(hctx, http.MethodPost, path, req, nil)
	if code == http.StatusBadRequest && !h.plain {
		// An Ironic that knows neither agent_status (API 1.72) nor ironwork_progress refuses
		// the body: from now on send only what IPA sends at 1.68.
		h.log.Warn("heartbeat refused, falling back to IPA's fields", logKeyError, err)
		h.plain = true
		req = api.HeartbeatRequest{CallbackURL: req.CallbackURL, AgentToken: req.AgentToken, AgentVersion: req.AgentVersion, AgentVerifyCA: req.AgentVerifyCA}
		_, err = h.client.do(hctx, http.MethodPost, path, req, nil)
	}
	if err != nil && ctx.Err() == nil {
		h.log.Warn("heartbeat failed", logKeyNode, h.node, logKeyError, err)
		return
	}
	h.log.Debug("heartbeat", logKeyNode, h.node, logKeyStatus, req.AgentStatus)
}

// localMACs are the MACs of this machine's NICs (non-loopback, Ethernet), BOOTIF's first.
func localMACs(bootMAC string) ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var macs []string
	seen := map[string]bool{}
	add := func(m string) {
		if m != "" && !seen[m] {
			seen[m] = true
			macs = append(macs, m)
		}
	}
	add(strings.ToLower(bootMAC))
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 || len(ifc.HardwareAddr) != 6 {
			continue
		}
		add(ifc.HardwareAddr.String())
	}
	if len(macs) == 0 {
		return nil, errors.New("no network interface with a MAC address: nothing to look the node up by")
	}
	return macs, nil
}

// advertiseURL is http://<address>:<listening port>: ipa-advertise-host, else the local
// address of the route to the API (a UDP "connect" sends nothing), else the listen address.
func advertiseURL(cfg Config, listen net.Addr) (string, error) {
	_, port, err := net.SplitHostPort(listen.String())
	if err != nil {
		return "", fmt.Errorf("callback URL: %w", err)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(cfg.AdvertiseHost, "["), "]") // "[2001:db8::5]" as well
	if host == "" {
		u, err := url.Parse(cfg.APIURL)
		if err != nil {
			return "", fmt.Errorf("callback URL: %w", err)
		}
		apiPort := u.Port()
		if apiPort == "" {
			apiPort = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		conn, err := net.Dial("udp", net.JoinHostPort(u.Hostname(), apiPort))
		if err != nil {
			return "", fmt.Errorf("callback URL: no route to the API %s: %w", u.Host, err)
		}
		local := conn.LocalAddr().(*net.UDPAddr)
		conn.Close()
		host = local.IP.String()
		if local.Zone != "" { // a link-local API: the zone goes into the URL as %25zone (RFC 6874)
			host += "%" + local.Zone
		}
	}
	// JoinHostPort brackets an IPv6 literal; a zone's "%" must be escaped in a URL.
	return "http://" + strings.Replace(net.JoinHostPort(host, port), "%", "%25", 1), nil
}
