package direct

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/ironwork/ironwork/api"
)

// errUnreachable marks a call that did not reach the agent (refused, timed out): worth trying
// again at the next heartbeat, unlike an answer that says the command failed.
var errUnreachable = errors.New("agent unreachable")

// agentClient speaks the deploy agent's command API (ironic-python-agent's), at the callback
// URL the agent heartbeats with, carrying the node's agent token.
type agentClient struct {
	http *http.Client
}

func (a agentClient) do(ctx context.Context, method, base, path, token string, q url.Values, body any, out any) error {
	if q == nil {
		q = url.Values{}
	}
	if token != "" {
		q.Set("agent_token", token)
	}
	u := strings.TrimRight(base, "/") + path + "?" + q.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		// The URL carries the agent token: keep it out of errors, which end up in last_error.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("agent at %s: %s %s: %w: %w", base, method, path, errUnreachable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("agent at %s: read answer: %w", base, err)
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("agent at %s answered %s: %s", base, resp.Status, agentErrorText(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("agent at %s: decode answer: %w", base, err)
		}
	}
	return nil
}

// agentErrorText is the message of an agent's error body, or the body itself.
func agentErrorText(b []byte) string {
	var e struct {
		Message     string `json:"message"`
		Description string `json:"description"`
		Details     string `json:"details"`
	}
	if json.Unmarshal(b, &e) == nil {
		for _, s := range []string{e.Details, e.Description, e.Message} {
			if s != "" {
				return s
			}
		}
	}
	if len(b) > 300 {
		b = b[:300]
	}
	return strings.TrimSpace(string(b))
}

// run starts a command; with wait it returns the command's end.
func (a agentClient) run(ctx context.Context, base, token, name string, params map[string]any, wait bool) (api.CommandResult, error) {
	var res api.CommandResult
	q := url.Values{"wait": {fmt.Sprint(wait)}}
	if params == nil {
		params = map[string]any{}
	}
	err := a.do(ctx, http.MethodPost, base, "/v1/commands/", token, q, api.AgentCommand{Name: name, Params: params}, &res)
	if err != nil {
		return res, fmt.Errorf("run %s: %w", name, err)
	}
	return res, nil
}

// status returns the agent's record of command id.
func (a agentClient) status(ctx context.Context, base, token, id string) (api.CommandResult, error) {
	var list api.CommandList
	if err := a.do(ctx, http.MethodGet, base, "/v1/commands/", token, nil, nil, &list); err != nil {
		return api.CommandResult{}, fmt.Errorf("read command status: %w", err)
	}
	for _, c := range list.Commands {
		if c.ID == id {
			return c, nil
		}
	}
	return api.CommandResult{}, fmt.Errorf("the agent has no command %s: it may have restarted", id)
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
