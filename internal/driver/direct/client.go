package direct

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/conductor"
)

// errNoCommand: the agent answered but has no record of the command a node waits for (it
// restarted, or it is another agent).
var errNoCommand = errors.New("the agent has no such command")

// agentClient speaks the deploy agent's command API (ironic-python-agent's), at the callback
// URL the agent heartbeats with, carrying the node's agent token.
//
// It keeps no connection open between calls: an agent's address outlives the agent (a node
// that reboots from cleaning into the deploy ramdisk comes back on the same address and
// port), and a request written on a kept-alive connection to the previous agent is reset.
// Agent calls are a few per step, so a new TCP connection each time costs nothing that
// matters (docs/decisions.md).
type agentClient struct {
	http     *http.Client
	tr       *http.Transport
	verify   verifyCA // for https agents that pinned no certificate
	attempts int
	pause    time.Duration
	timeout  time.Duration
	log      *slog.Logger
}

func newAgentClient(cfg Config, log *slog.Logger) agentClient {
	dial := cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: cfg.ConnectTimeout}).DialContext
	} else {
		inner := dial
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
			defer cancel()
			return inner(ctx, network, addr)
		}
	}
	tr := &http.Transport{
		DialContext:           dial,
		DisableKeepAlives:     true,
		ResponseHeaderTimeout: cfg.CommandTimeout,
	}
	return agentClient{
		http:     &http.Client{Transport: tr},
		tr:       tr,
		verify:   cfg.verify,
		attempts: cfg.MaxCommandAttempts,
		pause:    cfg.CommandRetryInterval,
		timeout:  cfg.CommandTimeout,
		log:      log,
	}
}

// do makes one call to the agent at base, trying again (up to attempts in all) when the agent
// did not answer and trying again cannot run a command twice: any GET, a POST only when it
// was never written out. An error that is no answer wraps conductor.ErrAgentUnreachable and
// names the agent's URL, never the token.
func (a agentClient) do(ctx context.Context, method string, ep endpoint, path string, q url.Values, body, out any) error {
	if q == nil {
		q = url.Values{}
	}
	if ep.Token != "" {
		q.Set("agent_token", ep.Token)
	}
	base := ep.URL
	u := strings.TrimRight(base, "/") + path + "?" + q.Encode()
	client, err := a.clientFor(ep)
	if err != nil {
		return fmt.Errorf("agent at %s: %w", base, err)
	}
	attempts := max(a.attempts, 1)
	for i := 1; i <= attempts; i++ {
		var sent api.Sent
		actx, cancel := context.WithTimeout(ctx, a.timeout)
		err = api.Call(actx, client, api.Request{Method: method, URL: u, Body: body}, out, &sent)
		cancel()
		if err == nil {
			return nil
		}
		var answer *api.Error
		if errors.As(err, &answer) {
			return fmt.Errorf("agent at %s answered %s %s with HTTP %d: %s", base, method, path, answer.Status, answer.Message)
		}
		if !errors.Is(err, api.ErrNoAnswer) {
			return fmt.Errorf("agent at %s: %w", base, err)
		}
		if ctx.Err() != nil || i == attempts || (method != http.MethodGet && sent.Written) {
			break
		}
		a.log.Warn("agent did not answer, trying again", "url", base, "attempt", i, "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(a.pause):
		}
	}
	return fmt.Errorf("agent at %s: %w: %w", base, conductor.ErrAgentUnreachable, err)
}

// run starts a command; with wait it returns the command's end.
func (a agentClient) run(ctx context.Context, ep endpoint, name string, params map[string]any, wait bool) (api.CommandResult, error) {
	var res api.CommandResult
	q := url.Values{"wait": {fmt.Sprint(wait)}}
	if params == nil {
		params = map[string]any{}
	}
	err := a.do(ctx, http.MethodPost, ep, "/v1/commands/", q, api.AgentCommand{Name: name, Params: params}, &res)
	if err != nil {
		return res, fmt.Errorf("run %s: %w", name, err)
	}
	return res, nil
}

// commands returns the agent's record of its commands, oldest first.
func (a agentClient) commands(ctx context.Context, ep endpoint) ([]api.CommandResult, error) {
	var list api.CommandList
	if err := a.do(ctx, http.MethodGet, ep, "/v1/commands/", nil, nil, &list); err != nil {
		return nil, fmt.Errorf("read command status: %w", err)
	}
	return list.Commands, nil
}

// status returns the agent's record of command id.
func (a agentClient) status(ctx context.Context, ep endpoint, id string) (api.CommandResult, error) {
	list, err := a.commands(ctx, ep)
	if err != nil {
		return api.CommandResult{}, err
	}
	for _, c := range list {
		if c.ID == id {
			return c, nil
		}
	}
	return api.CommandResult{}, fmt.Errorf("command %s: %w: it may have restarted", id, errNoCommand)
}

// commandError is the text of a failed command.
func commandError(c api.CommandResult) string {
	if c.CommandError == nil {
		return "no reason given"
	}
	for _, s := range []string{c.CommandError.Details, c.CommandError.Message, c.CommandError.Type} {
		if s != "" {
			return s
		}
	}
	return "no reason given"
}
