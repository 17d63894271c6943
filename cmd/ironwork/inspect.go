package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The node verbs of inspection: "node inspect NODE [--wait] [--timeout D]" and
// "node inventory NODE".

// inspectPoll is how often "node inspect --wait" reads the node.
const inspectPoll = 2 * time.Second

// inspect starts the inspection of a node and, with --wait, follows it until the node is
// manageable again (success) or "inspect failed" (an error with the node's last_error).
func (c command) inspect(ctx context.Context) error {
	id, err := c.one()
	if err != nil {
		return err
	}
	if err := c.c.Do(ctx, http.MethodPut, c.res.path+"/"+id+"/states/provision", map[string]any{"target": "inspect"}, nil); err != nil {
		return err
	}
	if c.a.get("wait", "false") != "true" {
		fmt.Fprintf(c.stdout, "inspection of node %s started\n", c.a.pos[0])
		return nil
	}
	timeout, err := time.ParseDuration(c.a.get("timeout", "30m"))
	if err != nil || timeout <= 0 {
		return fmt.Errorf("--timeout %q is not a positive duration", c.a.get("timeout", ""))
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		var n map[string]any
		if err := c.c.Do(ctx, http.MethodGet, c.res.path+"/"+id, nil, &n); err != nil {
			return err
		}
		st, _ := n["provision_state"].(string)
		if st != last && c.out == "table" {
			fmt.Fprintf(c.stdout, "node %s: %s\n", c.a.pos[0], st)
			last = st
		}
		target, _ := n["target_provision_state"].(string)
		switch {
		case st == "inspect failed":
			return fmt.Errorf("inspection failed: %v", n["last_error"])
		case st == "manageable" && target == "":
			if c.out == "json" {
				return printJSON(c.stdout, n)
			}
			return nil
		case st != "inspecting" && st != "inspect wait" && st != "manageable":
			return fmt.Errorf("node left inspection for state %q", st)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node still %q after %s: %w", st, timeout, ctx.Err())
		case <-time.After(inspectPoll):
		}
	}
}

// inventory prints the inventory and plugin data of a node's last inspection (JSON: they are
// nested documents).
func (c command) inventory(ctx context.Context) error {
	id, err := c.one()
	if err != nil {
		return err
	}
	var body map[string]any
	if err := c.c.Do(ctx, http.MethodGet, c.res.path+"/"+id+"/inventory", nil, &body); err != nil {
		return err
	}
	return printJSON(c.stdout, body)
}

// nodeOnly refuses a node verb for another resource.
func (c command) nodeOnly(verb string) error {
	if c.name != "node" {
		return fmt.Errorf("%s applies to nodes, not %ss", verb, strings.TrimSuffix(c.name, "s"))
	}
	return nil
}
