package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ironwork/ironwork"
	"github.com/ironwork/ironwork/api"
	"github.com/ironwork/ironwork/internal/instance"
)

// provisionVerbs are the node verbs that move the provision state: the target sent, and the
// states the node may rest in when the verb succeeded.
var provisionVerbs = map[string]struct {
	target string
	ends   []string
}{
	"manage":   {"manage", []string{"manageable"}},
	"provide":  {"provide", []string{"available"}},
	"deploy":   {"active", []string{"active"}},
	"rebuild":  {"rebuild", []string{"active"}},
	"undeploy": {"deleted", []string{"available", "manageable"}},
	"inspect":  {"inspect", []string{"manageable"}},
	"adopt":    {"adopt", []string{"active"}},
	"abort":    {"abort", nil}, // wherever the aborted work leaves the node
}

// isTerminal reports whether w is a terminal, where --watch redraws in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// streamOrNil opens the events stream, or returns nil when the server has none (an older
// server, or one that does not stream): the caller polls instead.
func streamOrNil(ctx context.Context, c *api.Client, q url.Values, stderr io.Writer) *api.EventStream {
	s, err := c.Events(ctx, q)
	if err != nil {
		if api.IsStatus(err, http.StatusUnauthorized) {
			fmt.Fprintf(stderr, "events stream: %v\n", err)
		}
		return nil
	}
	return s
}

// watchList prints the node list, then prints it again after every change until ctx ends:
// on a terminal in place, elsewhere one table after another under a line naming the change.
func (c command) watchList(ctx context.Context, q url.Values, stderr io.Writer) error {
	stream := streamOrNil(ctx, c.c, nil, stderr)
	items, err := c.c.List(ctx, c.res.path, c.res.key, q)
	if err != nil {
		if stream != nil {
			stream.Close()
		}
		return err
	}
	filtered := len(q) > 0
	rows := map[string]map[string]any{}
	var order []string
	for _, it := range items {
		u := fmt.Sprint(it["uuid"])
		rows[u] = it
		order = append(order, u)
	}
	tty := isTerminal(c.stdout)
	draw := func(note string) error {
		if tty {
			fmt.Fprint(c.stdout, "\x1b[H\x1b[2J")
		} else if note != "" {
			fmt.Fprintf(c.stdout, "\n--- %s %s\n", time.Now().Format("15:04:05"), note)
		}
		list := make([]map[string]any, 0, len(order))
		for _, u := range order {
			list = append(list, rows[u])
		}
		return c.printList(list, c.res.columns)
	}
	if err := draw(""); err != nil {
		return err
	}
	if stream == nil {
		fmt.Fprintln(stderr, "the server has no events stream: polling every 2 s")
		return c.pollList(ctx, q, draw, rows, &order)
	}
	events := make(chan api.NodeEvent)
	errc := make(chan error, 1)
	go func() {
		defer stream.Close()
		for {
			ev, err := stream.Next()
			if err != nil {
				errc <- err
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
		}
	}()
	// Changes that come together are drawn once.
	var pending []string
	var flush <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(stderr, "events stream ended (%v): polling every 2 s\n", err)
			return c.pollList(ctx, q, draw, rows, &order)
		case ev := <-events:
			u := ev.Node.UUID
			row, known := rows[u]
			switch {
			case ev.Type == "node.deleted":
				if !known {
					continue
				}
				delete(rows, u)
				order = removeString(order, u)
				pending = append(pending, label(ev.Node)+" deleted")
				flush = time.After(200 * time.Millisecond)
				continue
			case !known && filtered:
				continue // a node the filters did not select
			case !known:
				row = map[string]any{"uuid": u}
				rows[u] = row
				order = append(order, u)
			}
			row["name"] = nilIfEmpty(ev.Node.Name)
			row["provision_state"] = ev.Node.ProvisionState
			row["target_provision_state"] = nilIfEmpty(ev.Node.TargetProvisionState)
			row["power_state"] = nilIfEmpty(ev.Node.PowerState)
			row["maintenance"] = ev.Node.Maintenance
			row["last_error"] = nilIfEmpty(ev.Node.LastError)
			pending = append(pending, label(ev.Node)+" "+ev.Node.ProvisionState)
			if flush == nil {
				flush = time.After(200 * time.Millisecond)
			}
		case <-flush:
			flush = nil
			if err := draw(strings.Join(pending, ", ")); err != nil {
				return err
			}
			pending = nil
		}
	}
}

// pollList reads the list every 2 s and draws it when it changed, until ctx ends.
func (c command) pollList(ctx context.Context, q url.Values, draw func(string) error, rows map[string]map[string]any, order *[]string) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
		items, err := c.c.List(ctx, c.res.path, c.res.key, q)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var changed []string
		seen := map[string]bool{}
		var next []string
		for _, it := range items {
			u := fmt.Sprint(it["uuid"])
			seen[u] = true
			next = append(next, u)
			old, known := rows[u]
			if !known || cell(old["provision_state"]) != cell(it["provision_state"]) || cell(old["power_state"]) != cell(it["power_state"]) ||
				cell(old["maintenance"]) != cell(it["maintenance"]) {
				changed = append(changed, cell(it["name"])+" "+cell(it["provision_state"]))
			}
			rows[u] = it
		}
		for u, old := range rows {
			if !seen[u] {
				changed = append(changed, cell(old["name"])+" deleted")
				delete(rows, u)
			}
		}
		*order = next
		if len(changed) > 0 {
			if err := draw(strings.Join(changed, ", ")); err != nil {
				return err
			}
		}
	}
}

func removeString(list []string, s string) []string {
	out := list[:0]
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func label(n api.NodeState) string {
	if n.Name != "" {
		return n.Name
	}
	return n.UUID
}

// provision runs a provision verb on a node; with --wait it follows the node until it rests,
// showing each state, step and the bytes the agent wrote, from the events stream (or by polling
// when the server has none).
func (c command) provision(ctx context.Context, verb string, stderr io.Writer) error {
	pv := provisionVerbs[verb]
	id, err := c.one()
	if err != nil {
		return err
	}
	wait := c.a.get("wait", "false") == "true"
	timeout := 30 * time.Minute
	if v := c.a.get("timeout", ""); v != "" {
		if timeout, err = time.ParseDuration(v); err != nil || timeout <= 0 {
			return fmt.Errorf("--timeout takes a duration such as 30m, not %q", v)
		}
	}
	for name := range c.a.flags {
		switch name {
		case "wait", "timeout":
		case "image", "checksum":
			if verb != "deploy" && verb != "rebuild" {
				return fmt.Errorf("--%s is only for deploy and rebuild", name)
			}
		default:
			return fmt.Errorf("unknown flag --%s", name)
		}
	}
	var node map[string]any
	if err := c.c.Do(ctx, http.MethodGet, "/v1/nodes/"+id, nil, &node); err != nil {
		return err
	}
	uuid := fmt.Sprint(node["uuid"])
	var ops []api.PatchOp
	if v := c.a.get("image", ""); v != "" {
		ops = append(ops, api.PatchOp{Op: "add", Path: "/instance_info/image_source", Value: v})
	}
	if v := c.a.get("checksum", ""); v != "" {
		ops = append(ops, api.PatchOp{Op: "add", Path: "/instance_info/image_checksum", Value: v})
	}
	if len(ops) > 0 {
		if err := c.c.Do(ctx, http.MethodPatch, "/v1/nodes/"+uuid, ops, nil); err != nil {
			return err
		}
	}
	var stream *api.EventStream
	if wait {
		ctx2, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		ctx = ctx2
		// Subscribed before the request, so no change is missed.
		stream = streamOrNil(ctx, c.c, url.Values{"node": {uuid}}, stderr)
		if stream != nil {
			defer stream.Close()
		}
	}
	if err := c.c.Do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": pv.target}, nil); err != nil {
		return err
	}
	if !wait {
		fmt.Fprintf(c.stdout, "%s requested on node %s\n", verb, label(api.NodeState{UUID: uuid, Name: fmt.Sprint(node["name"])}))
		return nil
	}
	p := newProgress(stderr)
	start := time.Now()
	var st api.NodeState
	// The request's first transition is done when it answers: read where the node is now.
	if err := c.c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid, nil, &st); err != nil {
		return err
	}
	for {
		p.show(statusOf(st, start))
		if resting(st.ProvisionState) {
			break
		}
		next, err := nextState(ctx, c.c, stream, uuid)
		if errors.Is(err, errStreamEnded) {
			fmt.Fprintln(stderr, "events stream ended: polling every second")
			stream.Close()
			stream = nil
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for node %s: %w", uuid, err)
		}
		if next.UpdatedAt.Before(st.UpdatedAt) {
			continue // queued before the state already shown
		}
		st = next
	}
	p.done()
	if pv.ends != nil && !contains(pv.ends, st.ProvisionState) {
		return fmt.Errorf("node %s is %s: %s", label(st), st.ProvisionState, st.LastError)
	}
	fmt.Fprintf(c.stdout, "node %s is %s\n", label(st), st.ProvisionState)
	return nil
}

// resting reports whether a node in state s is done with the verb's work: in a stable state,
// failed, or held. A node waiting for its agent (wait call-back, clean wait) is not.
func resting(s string) bool {
	return ironwork.IsStable(ironwork.ProvisionState(s)) || s == "error" ||
		strings.HasSuffix(s, " failed") || strings.HasSuffix(s, " hold")
}

var errStreamEnded = errors.New("events stream ended")

// nextState waits for the node's next state: its next event, or a second's poll.
func nextState(ctx context.Context, c *api.Client, stream *api.EventStream, uuid string) (api.NodeState, error) {
	if stream != nil {
		for {
			ev, err := stream.Next()
			if ctx.Err() != nil {
				return api.NodeState{}, ctx.Err()
			}
			if err != nil {
				return api.NodeState{}, errStreamEnded
			}
			if ev.Type == "node.deleted" {
				return api.NodeState{}, fmt.Errorf("the node was deleted")
			}
			if ev.Node.UUID == uuid {
				return ev.Node, nil
			}
		}
	}
	select {
	case <-ctx.Done():
		return api.NodeState{}, ctx.Err()
	case <-time.After(time.Second):
	}
	var st api.NodeState
	err := c.Do(ctx, http.MethodGet, "/v1/nodes/"+uuid, nil, &st)
	return st, err
}

// statusOf is the progress line's view of a node state.
func statusOf(st api.NodeState, start time.Time) instance.Status {
	s := instance.Status{Node: st.UUID, ProvisionState: st.ProvisionState, TargetState: st.TargetProvisionState,
		LastError: st.LastError, Elapsed: time.Since(start), BytesTotal: -1}
	step := st.DeployStep
	if len(step) == 0 {
		step = st.CleanStep
	}
	if len(step) > 0 {
		s.Step = fmt.Sprintf("%v.%v", step["interface"], step["step"])
	}
	if st.Progress != nil {
		s.BytesDone, s.BytesTotal = st.Progress.BytesDone, st.Progress.BytesTotal
	}
	return s
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
