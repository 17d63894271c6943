package api

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// EventsPath is Ironwork's stream of node changes (server-sent events); Ironic has none.
const EventsPath = "/v1/ironwork/events"

// NodeEvent is one change of a node on the events stream.
type NodeEvent struct {
	Seq  uint64    `json:"seq"`
	Type string    `json:"type"` // "node" or "node.deleted"
	Node NodeState `json:"node"`
}

// NodeState is the part of a node the events stream carries.
type NodeState struct {
	UUID                 string         `json:"uuid"`
	Name                 string         `json:"name"`
	ProvisionState       string         `json:"provision_state"`
	TargetProvisionState string         `json:"target_provision_state"`
	PowerState           string         `json:"power_state"`
	TargetPowerState     string         `json:"target_power_state"`
	Maintenance          bool           `json:"maintenance"`
	MaintenanceReason    string         `json:"maintenance_reason"`
	Fault                string         `json:"fault"`
	LastError            string         `json:"last_error"`
	DeployStep           map[string]any `json:"deploy_step"`
	CleanStep            map[string]any `json:"clean_step"`
	Progress             *struct {
		Command        string  `json:"command"`
		BytesDone      int64   `json:"bytes_done"`
		BytesTotal     int64   `json:"bytes_total"`
		BytesPerSecond float64 `json:"bytes_per_second"`
	} `json:"progress"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SSE is one server-sent event: its type ("message" when the stream named none), data and id.
type SSE struct {
	Event, Data, ID string
}

// maxEventBytes bounds one event of a stream.
const maxEventBytes = 1 << 20

// ErrEventTooLarge is an event past maxEventBytes.
var ErrEventTooLarge = errors.New("server-sent event too large")

// ReadSSE reads the next event of a text/event-stream (comments and retry lines are skipped).
// It returns io.EOF at the end of the stream.
func ReadSSE(r *bufio.Reader) (SSE, error) {
	var ev SSE
	var data []string
	size, seen := 0, false
	for {
		line, err := r.ReadString('\n')
		size += len(line)
		if size > maxEventBytes {
			return SSE{}, ErrEventTooLarge
		}
		if err != nil {
			if errors.Is(err, io.EOF) && line == "" && !seen {
				return SSE{}, io.EOF
			}
			if errors.Is(err, io.EOF) {
				return SSE{}, io.ErrUnexpectedEOF
			}
			return SSE{}, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if !seen {
				continue
			}
			ev.Data = strings.Join(data, "\n")
			if ev.Event == "" {
				ev.Event = "message"
			}
			return ev, nil
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.Event, seen = value, true
		case "data":
			data, seen = append(data, value), true
		case "id":
			ev.ID, seen = value, true
		}
	}
}

// EventStream is an open events stream.
type EventStream struct {
	body io.ReadCloser
	r    *bufio.Reader
}

// Events opens the events stream (query may be nil; "node" keeps one node's events) and
// returns once the server has subscribed it ("ready"): a read of the nodes after it misses no
// change. Close it when done.
func (c *Client) Events(ctx context.Context, query url.Values) (*EventStream, error) {
	u := strings.TrimRight(c.BaseURL, "/") + EventsPath
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("open events stream: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	v := c.Version
	if v == "" {
		v = DefaultVersion
	}
	req.Header.Set(VersionHeader, v)
	if c.Username != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password)))
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("open events stream: %w: %w", ErrNoAnswer, unwrapURLError(err))
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, &Error{Status: resp.StatusCode, Message: ErrorMessage(b)}
	}
	s := &EventStream{body: resp.Body, r: bufio.NewReader(resp.Body)}
	for {
		ev, err := ReadSSE(s.r)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("read events stream: %w", err)
		}
		if ev.Event == "ready" {
			return s, nil
		}
	}
}

// ErrDropped is a stream the server ended because the reader fell behind.
var ErrDropped = errors.New("events stream dropped: the reader fell behind")

// Next returns the next node event. It returns ErrDropped when the server dropped the
// stream, io.EOF when it ended.
func (s *EventStream) Next() (NodeEvent, error) {
	for {
		ev, err := ReadSSE(s.r)
		if err != nil {
			return NodeEvent{}, err
		}
		switch ev.Event {
		case "dropped":
			return NodeEvent{}, ErrDropped
		case "node", "node.deleted":
			var ne NodeEvent
			if err := json.Unmarshal([]byte(ev.Data), &ne); err != nil {
				return NodeEvent{}, fmt.Errorf("decode node event: %w", err)
			}
			return ne, nil
		}
	}
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }
