package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// "node inventory NODE"; "node inspect NODE [--wait]" is a provision verb (watch.go).

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
