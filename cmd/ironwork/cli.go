package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ironwork/ironwork/api"
)

// resource describes how the CLI handles one kind of record.
type resource struct {
	path       string            // below /v1
	key        string            // collection key
	columns    []string          // list columns
	positional string            // field set from the argument of create, if any
	scalars    map[string]bool   // settable fields; true means boolean
	dicts      map[string]string // flag name -> dict field
	jsonFields map[string]bool   // settable fields whose flag value is a JSON document
	readOnly   bool
}

var resources = map[string]resource{
	"node": {path: "/v1/nodes", key: "nodes", columns: []string{"uuid", "name", "instance_uuid", "power_state", "provision_state", "maintenance"},
		scalars: map[string]bool{"name": false, "driver": false, "resource_class": false, "uuid": false, "chassis_uuid": false,
			"conductor_group": false, "owner": false, "lessee": false, "description": false, "maintenance": true,
			"automated_clean": true, "protected": true, "protected_reason": false, "retired": true, "retired_reason": false,
			"shard": false, "parent_node": false, "instance_uuid": false, "network_interface": false, "boot_interface": false,
			"deploy_interface": false, "power_interface": false, "management_interface": false, "inspect_interface": false,
			"console_interface": false, "raid_interface": false, "rescue_interface": false, "storage_interface": false,
			"vendor_interface": false, "bios_interface": false, "firmware_interface": false, "disable_power_off": true},
		dicts: map[string]string{"property": "properties", "driver-info": "driver_info", "extra": "extra",
			"instance-info": "instance_info"}},
	"port": {path: "/v1/ports", key: "ports", columns: []string{"uuid", "address"}, positional: "address",
		scalars: map[string]bool{"node_uuid": false, "address": false, "pxe_enabled": true, "physical_network": false,
			"portgroup_uuid": false, "name": false, "is_smartnic": true, "uuid": false},
		dicts: map[string]string{"extra": "extra", "local-link-connection": "local_link_connection"}},
	"portgroup": {path: "/v1/portgroups", key: "portgroups", columns: []string{"uuid", "address", "name"},
		scalars: map[string]bool{"node_uuid": false, "address": false, "name": false, "mode": false,
			"standalone_ports_supported": true, "uuid": false},
		dicts: map[string]string{"extra": "extra", "property": "properties"}},
	"chassis": {path: "/v1/chassis", key: "chassis", columns: []string{"uuid", "description"},
		scalars: map[string]bool{"description": false, "uuid": false}, dicts: map[string]string{"extra": "extra"}},
	"inspection-rule": {path: "/v1/inspection_rules", key: "inspection_rules", columns: []string{"uuid", "priority", "phase", "description"},
		scalars:    map[string]bool{"description": false, "phase": false, "sensitive": true, "uuid": false},
		jsonFields: map[string]bool{"conditions": true, "actions": true, "priority": true}},
	"driver":    {path: "/v1/drivers", key: "drivers", columns: []string{"name", "hosts"}, readOnly: true},
	"conductor": {path: "/v1/conductors", key: "conductors", columns: []string{"hostname", "conductor_group", "alive"}, readOnly: true},
}

// cliArgs is a parsed command line: positional arguments and repeated --flag values.
type cliArgs struct {
	pos   []string
	flags map[string][]string
	order []string // flag names in the order given
}

// parseCLI splits args into positional arguments and flags (--name value, --name=value, -o v).
func parseCLI(args []string, boolFlags map[string]bool) (cliArgs, error) {
	a := cliArgs{flags: map[string][]string{}}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			a.pos = append(a.pos, arg)
			continue
		}
		name := strings.TrimLeft(arg, "-")
		val, hasVal := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, val, hasVal = k, v, true
		}
		if !hasVal {
			if boolFlags[name] {
				val = "true"
				if i+1 < len(args) {
					if _, err := strconv.ParseBool(args[i+1]); err == nil {
						i++
						val = args[i]
					}
				}
			} else {
				if i+1 >= len(args) {
					return a, fmt.Errorf("flag --%s needs a value", name)
				}
				i++
				val = args[i]
			}
		}
		a.flags[name] = append(a.flags[name], val)
		a.order = append(a.order, name)
	}
	return a, nil
}

func (a cliArgs) get(name, def string) string {
	if v := a.flags[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return def
}

func runCLI(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	res := resources[args[0]]
	if len(args) < 2 {
		fmt.Fprintf(stderr, "ironwork %s: a verb is needed: list, show%s\n", args[0], map[bool]string{false: ", create, set, unset, delete", true: ""}[res.readOnly])
		return 2
	}
	verb := args[1]
	bools := map[string]bool{"detail": true, "unset-all": true, "watch": true, "wait": true}
	unsetting := verb == "unset"
	for f, isBool := range res.scalars {
		if isBool || unsetting {
			bools[strings.ReplaceAll(f, "_", "-")] = true
		}
	}
	for f := range res.jsonFields {
		if unsetting {
			bools[strings.ReplaceAll(f, "_", "-")] = true
		}
	}
	a, err := parseCLI(args[2:], bools)
	if err != nil {
		fmt.Fprintf(stderr, "ironwork %s %s: %v\n", args[0], verb, err)
		return 2
	}
	endpoint := a.get("url", firstEnv("IRONWORK_URL", "OS_ENDPOINT"))
	if endpoint == "" {
		endpoint = "http://127.0.0.1:6385"
	}
	c := &api.Client{BaseURL: endpoint, Username: a.get("username", os.Getenv("IRONWORK_USERNAME")),
		Password: a.get("password", os.Getenv("IRONWORK_PASSWORD"))}
	for _, f := range []string{"url", "username", "password"} {
		delete(a.flags, f)
	}
	out := a.get("o", a.get("output", "table"))
	delete(a.flags, "o")
	delete(a.flags, "output")
	if out != "table" && out != "json" {
		fmt.Fprintf(stderr, "ironwork: output format %q is not table or json\n", out)
		return 2
	}
	cmd := command{c: c, res: res, name: args[0], a: a, out: out, stdout: stdout}
	if args[0] == "node" {
		_, provisioning := provisionVerbs[verb]
		watching := verb == "list" && a.get("watch", "") == "true"
		if provisioning || watching {
			if watching {
				delete(cmd.a.flags, "watch")
				err = cmd.watchList(ctx, cmd.listQuery(), stderr)
			} else {
				err = cmd.provision(ctx, verb, stderr)
			}
			if err != nil {
				fmt.Fprintf(stderr, "ironwork %s %s: %v\n", args[0], verb, err)
				return 1
			}
			return 0
		}
	}
	switch verb {
	case "list":
		err = cmd.list(ctx)
	case "show":
		err = cmd.show(ctx)
	case "create":
		err = cmd.create(ctx)
	case "set", "unset":
		err = cmd.patch(ctx, verb == "unset")
	case "delete":
		err = cmd.delete(ctx)
	case "properties":
		err = cmd.properties(ctx)
	case "inspect":
		err = cmd.nodeOnly(verb) // "node inspect" is a provision verb (watch.go)
	case "inventory":
		if err = cmd.nodeOnly(verb); err == nil {
			err = cmd.inventory(ctx)
		}
	default:
		fmt.Fprintf(stderr, "ironwork %s: unknown verb %q\n", args[0], verb)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "ironwork %s %s: %v\n", args[0], verb, err)
		return 1
	}
	return 0
}

// jsonValue decodes the JSON document of a flag, or @FILE's contents.
func jsonValue(flag, v string) (any, error) {
	if file, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
		v = string(b)
	}
	d := json.NewDecoder(strings.NewReader(v))
	d.UseNumber()
	var out any
	if err := d.Decode(&out); err != nil {
		return nil, fmt.Errorf("--%s takes a JSON document: %w", flag, err)
	}
	return out, nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

type command struct {
	c      *api.Client
	res    resource
	name   string
	a      cliArgs
	out    string
	stdout io.Writer
}

func (c command) one() (string, error) {
	if len(c.a.pos) != 1 {
		return "", fmt.Errorf("exactly one %s identifier is needed", c.name)
	}
	return url.PathEscape(c.a.pos[0]), nil
}

// listQuery is the list's query from the flags.
func (c command) listQuery() url.Values {
	q := url.Values{}
	for name, vals := range c.a.flags {
		switch name {
		case "detail":
			q.Set("detail", "true")
		case "limit":
			q.Set("limit", vals[0])
		default:
			q.Set(strings.ReplaceAll(name, "-", "_"), vals[len(vals)-1])
		}
	}
	return q
}

func (c command) list(ctx context.Context) error {
	q := c.listQuery()
	if c.res.readOnly && c.res.key == "drivers" {
		var body map[string][]map[string]any
		if err := c.c.Do(ctx, http.MethodGet, c.res.path, nil, &body); err != nil {
			return err
		}
		return c.printList(body[c.res.key], c.res.columns)
	}
	items, err := c.c.List(ctx, c.res.path, c.res.key, q)
	if err != nil {
		return err
	}
	cols := c.res.columns
	if q.Get("detail") != "" && len(items) > 0 {
		cols = sortedKeys(items[0])
	}
	return c.printList(items, cols)
}

func (c command) show(ctx context.Context) error {
	id, err := c.one()
	if err != nil {
		return err
	}
	var obj map[string]any
	if err := c.c.Do(ctx, http.MethodGet, c.res.path+"/"+id, nil, &obj); err != nil {
		return err
	}
	return c.printObject(obj)
}

func (c command) properties(ctx context.Context) error {
	id, err := c.one()
	if err != nil {
		return err
	}
	var obj map[string]any
	if err := c.c.Do(ctx, http.MethodGet, c.res.path+"/"+id+"/properties", nil, &obj); err != nil {
		return err
	}
	return c.printObject(obj)
}

// fieldValue converts a flag value for field f.
func (c command) fieldValue(f, v string) any {
	if c.res.scalars[f] {
		if b, err := strconv.ParseBool(v); err == nil {
			return b
		}
	}
	return v
}

func (c command) create(ctx context.Context) error {
	if c.res.readOnly {
		return fmt.Errorf("%s records are read-only", c.name)
	}
	body := map[string]any{}
	if c.res.positional != "" {
		if len(c.a.pos) != 1 {
			return fmt.Errorf("the %s is needed as the argument", c.res.positional)
		}
		body[c.res.positional] = c.a.pos[0]
	} else if len(c.a.pos) > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(c.a.pos, " "))
	}
	for name, vals := range c.a.flags {
		if name == "node" && c.name != "node" {
			name = "node-uuid"
			if !looksLikeUUID(vals[0]) {
				var n map[string]any
				if err := c.c.Do(ctx, http.MethodGet, "/v1/nodes/"+url.PathEscape(vals[0]), nil, &n); err != nil {
					return err
				}
				vals = []string{fmt.Sprint(n["uuid"])}
			}
		}
		if dict, ok := c.res.dicts[name]; ok {
			m, _ := body[dict].(map[string]any)
			if m == nil {
				m = map[string]any{}
			}
			for _, kv := range vals {
				k, v, found := strings.Cut(kv, "=")
				if !found {
					return fmt.Errorf("--%s takes KEY=VALUE, got %q", name, kv)
				}
				m[k] = v
			}
			body[dict] = m
			continue
		}
		f := strings.ReplaceAll(name, "-", "_")
		if c.res.jsonFields[f] {
			v, err := jsonValue(name, vals[len(vals)-1])
			if err != nil {
				return err
			}
			body[f] = v
			continue
		}
		if _, ok := c.res.scalars[f]; !ok {
			return fmt.Errorf("unknown flag --%s", name)
		}
		body[f] = c.fieldValue(f, vals[len(vals)-1])
	}
	var obj map[string]any
	if err := c.c.Do(ctx, http.MethodPost, c.res.path, body, &obj); err != nil {
		return err
	}
	return c.printObject(obj)
}

func (c command) patch(ctx context.Context, unset bool) error {
	if c.res.readOnly {
		return fmt.Errorf("%s records are read-only", c.name)
	}
	id, err := c.one()
	if err != nil {
		return err
	}
	var ops []api.PatchOp
	for _, name := range c.a.order {
		vals, ok := c.a.flags[name]
		if !ok {
			continue // a client flag, already consumed
		}
		if dict, ok := c.res.dicts[name]; ok {
			for _, kv := range vals {
				k, v, found := strings.Cut(kv, "=")
				path := "/" + dict + "/" + strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
				if unset {
					ops = append(ops, api.PatchOp{Op: "remove", Path: path})
					continue
				}
				if !found {
					return fmt.Errorf("--%s takes KEY=VALUE, got %q", name, kv)
				}
				ops = append(ops, api.PatchOp{Op: "add", Path: path, Value: v})
			}
			continue
		}
		f := strings.ReplaceAll(name, "-", "_")
		if c.res.jsonFields[f] && !unset {
			v, err := jsonValue(name, vals[len(vals)-1])
			if err != nil {
				return err
			}
			ops = append(ops, api.PatchOp{Op: "add", Path: "/" + f, Value: v})
			continue
		}
		if _, ok := c.res.scalars[f]; !ok && !c.res.jsonFields[f] {
			return fmt.Errorf("unknown flag --%s", name)
		}
		if unset {
			ops = append(ops, api.PatchOp{Op: "remove", Path: "/" + f})
		} else {
			ops = append(ops, api.PatchOp{Op: "add", Path: "/" + f, Value: c.fieldValue(f, vals[len(vals)-1])})
		}
	}
	if len(ops) == 0 {
		return fmt.Errorf("nothing to change: give at least one flag")
	}
	var obj map[string]any
	if err := c.c.Do(ctx, http.MethodPatch, c.res.path+"/"+id, ops, &obj); err != nil {
		return err
	}
	return c.printObject(obj)
}

func (c command) delete(ctx context.Context) error {
	if c.res.readOnly {
		return fmt.Errorf("%s records are read-only", c.name)
	}
	if len(c.a.pos) == 0 {
		return fmt.Errorf("at least one %s identifier is needed", c.name)
	}
	var failed []string
	for _, id := range c.a.pos {
		if err := c.c.Do(ctx, http.MethodDelete, c.res.path+"/"+url.PathEscape(id), nil, nil); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		fmt.Fprintf(c.stdout, "Deleted %s %s\n", c.name, id)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return nil
}

func looksLikeUUID(s string) bool {
	return len(s) == 36 && strings.Count(s, "-") == 4
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "links" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return x
	case bool, float64:
		return fmt.Sprint(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func (c command) printList(items []map[string]any, cols []string) error {
	if c.out == "json" {
		return printJSON(c.stdout, items)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	upper := make([]string, len(cols))
	for i, col := range cols {
		upper[i] = strings.ToUpper(col)
	}
	fmt.Fprintln(tw, strings.Join(upper, "\t"))
	for _, it := range items {
		row := make([]string, len(cols))
		for i, col := range cols {
			row[i] = cell(it[col])
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

func (c command) printObject(obj map[string]any) error {
	if c.out == "json" {
		return printJSON(c.stdout, obj)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FIELD\tVALUE")
	for _, k := range sortedKeys(obj) {
		if k == "ports" || k == "portgroups" || k == "states" || k == "volume" || k == "nodes" || k == "properties" && c.name == "driver" {
			if _, isLinks := obj[k].([]any); isLinks {
				continue
			}
		}
		fmt.Fprintf(tw, "%s\t%s\n", k, cell(obj[k]))
	}
	return tw.Flush()
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
